//! Users' own images: `root/<class>/<file>.{png,jpg,jpeg}`, one sub-folder per class. Hidden
//! entries (`.ipynb_checkpoints`, `.DS_Store`) are not classes or images.

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result, invalid};
use crate::raster::convert;
use crate::{ImageItem, ImageShape, LabelledDataset};

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Every PNG/JPEG under `root`, converted to `target`. Classes are the sub-folder names,
/// sorted; files are read in name order, so example indices are stable. Other files and hidden
/// entries are skipped; a class folder that holds folders but no image is refused (the root is
/// then usually one level too high, e.g. above `train/` and `test/`).
pub fn load_image_folder(root: &Path, target: ImageShape) -> Result<LabelledDataset<ImageItem>> {
    let classes: Vec<PathBuf> = sorted_entries(root)?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect();
    if classes.is_empty() {
        return Err(invalid(root, "no class sub-folders"));
    }
    let mut items = Vec::new();
    for (label, dir) in classes.iter().enumerate() {
        let entries = sorted_entries(dir)?;
        let before = items.len();
        for file in entries.iter().filter(|p| is_image(p)) {
            items.push(ImageItem {
                pixels: read_image(file, target)?,
                label,
            });
        }
        if items.len() == before && entries.iter().any(|p| p.is_dir()) {
            return Err(invalid(
                dir,
                "holds sub-folders but no image: point the path at the folder whose sub-folders are the classes",
            ));
        }
    }
    let names = classes
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    Ok(LabelledDataset::new(items, names))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    paths.retain(|p| !is_hidden(p));
    paths.sort();
    Ok(paths)
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.to_string_lossy().starts_with('.'))
}

fn is_image(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Decodes one file to grey (one target channel) or RGB (otherwise), then converts it.
fn read_image(path: &Path, target: ImageShape) -> Result<Vec<f32>> {
    let img = image::open(path).map_err(|source| DataError::Image {
        path: path.to_path_buf(),
        source,
    })?;
    let (width, height) = (img.width() as usize, img.height() as usize);
    let (pixels, channels) = if target.channels == 1 {
        (img.to_luma32f().into_raw(), 1)
    } else {
        (img.to_rgb32f().into_raw(), 3)
    };
    // `image` stores pixels interleaved (HWC); batches want channel-major (CHW).
    let plane = width * height;
    let chw: Vec<f32> = (0..channels)
        .flat_map(|c| (0..plane).map(move |i| (c, i)))
        .map(|(c, i)| pixels[i * channels + c])
        .collect();
    let from = ImageShape {
        channels,
        height,
        width,
    };
    Ok(convert(&chw, from, target))
}
