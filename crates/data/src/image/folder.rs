//! Users' own images: `root/<class>/<file>.{png,jpg,jpeg}`, one sub-folder per class, or
//! `root/{train,val,test}/<class>/...` when the user has split them. Hidden entries
//! (`.ipynb_checkpoints`, `.DS_Store`) are not classes or images.

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result, invalid};
use crate::raster::convert;
use crate::{GivenSplits, ImageItem, ImageShape, LabelledDataset};

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// The user's own splits when `root` has a `train/` folder: `train/`, and `val/` and `test/`
/// where present, each read with [`load_image_folder`] and labelled by train's classes, so a
/// hold-out the user kept apart stays apart. Without `train/`, all of `root` is training data.
/// Any other folder beside `train/` is refused: it is most likely a class put one level too high.
pub fn load_image_splits(root: &Path, target: ImageShape) -> Result<GivenSplits<ImageItem>> {
    let train_dir = root.join("train");
    if !train_dir.is_dir() {
        return Ok(load_image_folder(root, target)?.into());
    }
    if let Some(stray) = sorted_entries(root)?
        .into_iter()
        .find(|p| p.is_dir() && !["train", "val", "test"].contains(&name(p).as_str()))
    {
        return Err(invalid(
            &stray,
            "beside train/ only val/ and test/ may be here (does this class belong in train/?)",
        ));
    }
    let train = load_image_folder(&train_dir, target)?;
    Ok(GivenSplits {
        val: held_out(&root.join("val"), &train.classes, target)?,
        test: held_out(&root.join("test"), &train.classes, target)?,
        train,
    })
}

/// The images of `dir`, if it exists, labelled by `classes` (train's).
fn held_out(
    dir: &Path,
    classes: &[String],
    target: ImageShape,
) -> Result<Option<LabelledDataset<ImageItem>>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    read_folder(dir, target, EmptyClass::Skipped)?
        .relabelled(classes, |c| {
            invalid(&dir.join(c), "a class folder that train/ lacks")
        })
        .map(Some)
}

/// Every PNG/JPEG under `root`, converted to `target`. Classes are the sub-folder names,
/// sorted; files are read in name order, so example indices are stable. Other files and hidden
/// entries are skipped; a class folder that holds folders but no image is refused (the root is
/// then usually one level too high, e.g. above `train/` and `test/`: see [`load_image_splits`]).
pub fn load_image_folder(root: &Path, target: ImageShape) -> Result<LabelledDataset<ImageItem>> {
    read_folder(root, target, EmptyClass::Refused)
}

/// What a class folder without images means: a class with no examples in training data
/// (refused: a head would learn a class it never sees), a class the split happens to lack in
/// held-out data (skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EmptyClass {
    Refused,
    Skipped,
}

fn read_folder(
    root: &Path,
    target: ImageShape,
    empty: EmptyClass,
) -> Result<LabelledDataset<ImageItem>> {
    let mut classes: Vec<PathBuf> = sorted_entries(root)?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect();
    if classes.is_empty() {
        return Err(invalid(root, "no class sub-folders"));
    }
    if empty == EmptyClass::Skipped {
        classes.retain(|dir| sorted_entries(dir).is_ok_and(|e| e.iter().any(|p| is_image(p))));
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
        if items.len() == before {
            return Err(invalid(
                dir,
                "a class folder with no PNG or JPEG image; a class needs examples (remove the folder if it is not a class)",
            ));
        }
    }
    Ok(LabelledDataset::new(
        items,
        classes.iter().map(|p| name(p)).collect(),
    ))
}

fn name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
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

/// The longest side an image keeps once decoded: larger ones are first shrunk to it (area
/// filter), so a small file of huge dimensions cannot take gigabytes as floats. Twice the
/// largest input side ([`MAX_IMAGE_SIDE`](crate::MAX_IMAGE_SIDE)), so the final resize is
/// unchanged in kind.
pub const MAX_DECODED_SIDE: u32 = 2048;

/// One PNG or JPEG file decoded to grey (one target channel) or RGB (otherwise), converted to
/// `target`: shrunk by area where larger, enlarged bilinearly where smaller. An image with a
/// side above [`MAX_DECODED_SIDE`] is shrunk to it first.
pub fn read_image(path: &Path, target: ImageShape) -> Result<Vec<f32>> {
    let mut img = image::open(path).map_err(|source| DataError::Image {
        path: path.to_path_buf(),
        source,
    })?;
    if img.width().max(img.height()) > MAX_DECODED_SIDE {
        img = img.resize(
            MAX_DECODED_SIDE,
            MAX_DECODED_SIDE,
            image::imageops::FilterType::Triangle,
        );
    }
    if img.color().has_alpha() {
        img = on_white(img);
    }
    // Shrunk to the target with a triangle filter over the whole footprint (each output pixel
    // averages the pixels it covers): sampled at a few points instead, the thin lines of a
    // large drawing fall between samples and vanish.
    let (to_width, to_height) = (target.width as u32, target.height as u32);
    if img.width() > to_width || img.height() > to_height {
        img = img.resize_exact(to_width, to_height, image::imageops::FilterType::Triangle);
    }
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

/// The image painted over a white background: the colour a file leaves under its transparent
/// pixels is arbitrary (clip art stores black or stray edge colours there), and read as is it
/// would make unrelated drawings look alike.
fn on_white(img: image::DynamicImage) -> image::DynamicImage {
    let mut rgba = img.to_rgba32f();
    for pixel in rgba.pixels_mut() {
        let alpha = pixel[3];
        for channel in &mut pixel.0[..3] {
            *channel = *channel * alpha + (1.0 - alpha);
        }
        pixel[3] = 1.0;
    }
    image::DynamicImage::ImageRgb32F(image::DynamicImage::ImageRgba32F(rgba).to_rgb32f())
}

/// The images to predict under `root`: those directly in it (no label) and those of its
/// sub-folders (labelled by the folder's name), in name order; hidden entries skipped.
pub fn image_files(root: &Path) -> Result<Vec<(PathBuf, Option<String>)>> {
    let mut files = Vec::new();
    for entry in sorted_entries(root)? {
        if entry.is_dir() {
            let class = name(&entry);
            for file in sorted_entries(&entry)?.into_iter().filter(|p| is_image(p)) {
                files.push((file, Some(class.clone())));
            }
        } else if is_image(&entry) {
            files.push((entry, None));
        }
    }
    Ok(files)
}
