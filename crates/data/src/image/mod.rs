//! Image loaders. Every loader takes the [`ImageShape`](crate::ImageShape) the model wants and
//! returns items already at that size (bilinear resize) and channel count.

mod digits;
mod folder;
mod glyphs;
mod idx;
mod mnist_json;

use std::path::Path;

pub use digits::load_digits_csv;
pub use folder::{MAX_DECODED_SIDE, image_files, load_image_folder, load_image_splits, read_image};
pub use glyphs::{GLYPH_LETTERS, GLYPH_STYLES, load_glyph_letters, load_glyph_styles};
pub(crate) use glyphs::{GlyphLabel, load_glyphs};
pub use idx::{IdxImages, load_idx, read_idx_images, read_idx_labels};
pub use mnist_json::load_mnist_json;

use crate::error::{Result, invalid};
use crate::{ImageItem, ImageShape, LabelledDataset};

/// Fashion-MNIST class names, in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
];

/// Fashion-MNIST from `dir` as the fetch step lays it out: the 60k training images, then the 10k
/// test images (example `60000 + i` is test image `i`). loramix draws its own splits.
pub fn load_fashion_mnist(dir: &Path, target: ImageShape) -> Result<LabelledDataset<ImageItem>> {
    let mut all = Vec::new();
    for part in ["train", "t10k"] {
        let labels = dir.join(format!("{part}-labels-idx1-ubyte.gz"));
        let set = load_idx(
            &dir.join(format!("{part}-images-idx3-ubyte.gz")),
            &labels,
            target,
        )?;
        if set.classes.len() > FASHION_MNIST_CLASSES.len() {
            return Err(invalid(
                &labels,
                format!(
                    "label {} is not a Fashion-MNIST class",
                    set.classes.len() - 1
                ),
            ));
        }
        all.extend(set.items);
    }
    Ok(LabelledDataset::new(
        all,
        FASHION_MNIST_CLASSES
            .iter()
            .map(|c| c.to_string())
            .collect(),
    ))
}
