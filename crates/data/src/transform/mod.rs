//! Deterministic input shifts: the covariate-shift side of the task suites.

mod image;
mod text;

pub use image::{ImageTransform, apply_image_transforms};
pub use text::{TextTransform, apply_text_transforms};
