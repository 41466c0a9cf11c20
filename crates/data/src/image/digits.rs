//! The UCI optical-recognition 8x8 digits as scikit-learn ships them (`digits.csv.gz`): one
//! row per image, 64 values in `0..=16` then the digit, no header.

use std::path::Path;

use crate::error::{Result, line_error, read_decompressed};
use crate::raster::convert;
use crate::{ImageItem, ImageShape, LabelledDataset};

const SIDE: usize = 8;
const MAX: f32 = 16.0;

/// All rows of `path` (gzip or plain CSV), upsampled bilinearly to `target`.
pub fn load_digits_csv(path: &Path, target: ImageShape) -> Result<LabelledDataset<ImageItem>> {
    let text = read_decompressed(path)?;
    let native = ImageShape::square(1, SIDE);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_slice());
    let mut items = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            line_error(path, line, e.to_string())
        })?;
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != native.len() + 1 {
            return Err(line_error(
                path,
                line,
                format!("{} fields, expected {}", record.len(), native.len() + 1),
            ));
        }
        let values = record
            .iter()
            .map(|f| {
                f.trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|v| (0.0..=MAX).contains(v))
            })
            .collect::<Option<Vec<f32>>>()
            .ok_or_else(|| line_error(path, line, "a field is not a number in 0..=16"))?;
        let label = values[native.len()];
        if label.fract() != 0.0 || label > 9.0 {
            return Err(line_error(
                path,
                line,
                format!("label {label} is not a digit"),
            ));
        }
        let pixels: Vec<f32> = values[..native.len()].iter().map(|v| v / MAX).collect();
        items.push(ImageItem {
            pixels: convert(&pixels, native, target),
            label: label as usize,
        });
    }
    Ok(LabelledDataset::new(
        items,
        (0..10).map(|d| d.to_string()).collect(),
    ))
}
