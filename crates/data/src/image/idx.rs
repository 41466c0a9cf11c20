//! IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or plain: a big-endian header
//! (magic `0x00000803` images / `0x00000801` labels, then one u32 per dimension) and u8 data.

use std::path::Path;

use crate::error::{DataError, Result, read_decompressed};
use crate::raster::convert;
use crate::{ImageItem, ImageShape, LabelledDataset};

const IMAGES_MAGIC: u32 = 0x0803;
const LABELS_MAGIC: u32 = 0x0801;

/// The images of an IDX file: `count` images of `rows x cols` u8 pixels, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

/// Reads an IDX image file (`idx3`).
pub fn read_idx_images(path: &Path) -> Result<IdxImages> {
    let data = read_decompressed(path)?;
    let dims = header(path, &data, IMAGES_MAGIC, 3)?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    let pixels = body(path, &data, 16, &dims)?;
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels,
    })
}

/// Reads an IDX label file (`idx1`).
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>> {
    let data = read_decompressed(path)?;
    let dims = header(path, &data, LABELS_MAGIC, 1)?;
    body(path, &data, 8, &dims)
}

/// Images and labels of an IDX pair, converted to `target`. Classes are named by their ids
/// ("0", "1", ...) up to the largest label.
pub fn load_idx(
    images: &Path,
    labels: &Path,
    target: ImageShape,
) -> Result<LabelledDataset<ImageItem>> {
    let imgs = read_idx_images(images)?;
    let labs = read_idx_labels(labels)?;
    if labs.len() != imgs.count {
        return Err(DataError::Format {
            path: labels.to_path_buf(),
            offset: 4,
            message: format!(
                "holds {} labels but {} holds {} images",
                labs.len(),
                images.display(),
                imgs.count
            ),
        });
    }
    let from = ImageShape {
        channels: 1,
        height: imgs.rows,
        width: imgs.cols,
    };
    if imgs.count == 0 || from.is_empty() {
        return Err(DataError::Format {
            path: images.to_path_buf(),
            offset: 4,
            message: format!(
                "{} images of size {}x{}: nothing to load",
                imgs.count, imgs.rows, imgs.cols
            ),
        });
    }
    let items = imgs
        .pixels
        .chunks_exact(from.len())
        .zip(&labs)
        .map(|(raw, &label)| {
            let pixels: Vec<f32> = raw.iter().map(|&p| f32::from(p) / 255.0).collect();
            ImageItem {
                pixels: convert(&pixels, from, target),
                label: usize::from(label),
            }
        })
        .collect();
    let n_classes = labs.iter().max().map_or(0, |&m| usize::from(m) + 1);
    Ok(LabelledDataset::new(
        items,
        (0..n_classes).map(|c| c.to_string()).collect(),
    ))
}

/// Checks the magic and reads `n_dims` big-endian u32 dimensions.
fn header(path: &Path, data: &[u8], magic: u32, n_dims: usize) -> Result<Vec<usize>> {
    let err = |offset: usize, message: String| DataError::Format {
        path: path.to_path_buf(),
        offset: offset as u64,
        message,
    };
    let need = 4 + 4 * n_dims;
    if data.len() < need {
        return Err(err(
            data.len(),
            format!(
                "truncated header: {need} bytes needed, file has {}",
                data.len()
            ),
        ));
    }
    let word = |i: usize| u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
    let found = word(0);
    if found != magic {
        return Err(err(
            0,
            format!(
                "wrong magic 0x{found:08x}, expected 0x{magic:08x} (an IDX file with {n_dims} dimensions)"
            ),
        ));
    }
    Ok((0..n_dims).map(|d| word(4 + 4 * d) as usize).collect())
}

/// The data after the header, checked to be exactly the product of the dimensions long.
fn body(path: &Path, data: &[u8], start: usize, dims: &[usize]) -> Result<Vec<u8>> {
    let err = |offset: usize, message: String| DataError::Format {
        path: path.to_path_buf(),
        offset: offset as u64,
        message,
    };
    let len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| err(4, format!("dimensions {dims:?} overflow")))?;
    let end = start.saturating_add(len);
    match data.len() {
        n if n < end => Err(err(
            n,
            format!("truncated: dimensions {dims:?} need {end} bytes, file has {n}"),
        )),
        n if n > end => Err(err(end, format!("{} unexpected trailing bytes", n - end))),
        _ => Ok(data[start..end].to_vec()),
    }
}
