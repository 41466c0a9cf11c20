//! Covariate shifts for images. Every parameter is a strength where 0 leaves the image as it
//! is; randomness (only `noise` draws any) comes from the seed, so a seed reproduces the output.

use serde::{Deserialize, Serialize};

use crate::ImageShape;
use crate::raster::{Border, sample};
use loramix_rng::{Rng, example_seed};

/// One image transform, written in suite TOML as `{ rotate = 45.0 }`, `{ noise = 0.2 }`, ...
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageTransform {
    /// Rotate counter-clockwise by this many degrees about the centre; black fills the corners.
    Rotate(f32),
    /// Blend towards the negative: `x + a * (1 - 2x)`; 1 inverts fully.
    Invert(f32),
    /// Gaussian blur with this standard deviation in pixels (edges clamped).
    Blur(f32),
    /// Add Gaussian noise of this standard deviation, then clip to `[0, 1]`.
    Noise(f32),
    /// Horizontal shear: a row at distance `dy` below the centre moves right by `k * dy`.
    Shear(f32),
    /// Zoom about the centre by `1 + s` (0.25 enlarges by a quarter, -0.3 shrinks to 70%).
    Scale(f32),
    /// Scale the distance from each channel's mean by `1 + c` (-0.5 halves contrast), clipped.
    Contrast(f32),
}

impl ImageTransform {
    /// The transformed pixels of one image of `shape`.
    pub fn apply(&self, pixels: &[f32], shape: ImageShape, seed: u64) -> Vec<f32> {
        use ImageTransform::*;
        match *self {
            Rotate(d) | Invert(d) | Blur(d) | Noise(d) | Shear(d) | Scale(d) | Contrast(d)
                if d == 0.0 =>
            {
                pixels.to_vec()
            }
            Rotate(degrees) => {
                // Image rows grow downwards, so counter-clockwise on screen reads the source
                // at the output offset rotated the other way.
                let (sin, cos) = degrees.to_radians().sin_cos();
                warp(pixels, shape, |dy, dx| {
                    (cos * dy + sin * dx, cos * dx - sin * dy)
                })
            }
            Shear(k) => warp(pixels, shape, |dy, dx| (dy, dx - k * dy)),
            Scale(s) => {
                let zoom = (1.0 + s).max(1e-3);
                warp(pixels, shape, |dy, dx| (dy / zoom, dx / zoom))
            }
            Invert(a) => pixels.iter().map(|&x| x + a * (1.0 - 2.0 * x)).collect(),
            Blur(sigma) => blur(pixels, shape, sigma),
            Noise(std) => {
                let mut rng = Rng::new(seed);
                pixels
                    .iter()
                    .map(|&x| (x + std * rng.normal()).clamp(0.0, 1.0))
                    .collect()
            }
            Contrast(c) => pixels
                .chunks_exact(shape.plane())
                .flat_map(|plane| {
                    let mean = plane.iter().sum::<f32>() / plane.len() as f32;
                    plane
                        .iter()
                        .map(move |&x| (mean + (1.0 + c) * (x - mean)).clamp(0.0, 1.0))
                })
                .collect(),
        }
    }
}

/// Applies `transforms` in order; transform `i` draws from its own stream of `seed`.
pub fn apply_image_transforms(
    transforms: &[ImageTransform],
    pixels: &[f32],
    shape: ImageShape,
    seed: u64,
) -> Vec<f32> {
    transforms
        .iter()
        .enumerate()
        .fold(pixels.to_vec(), |px, (i, t)| {
            t.apply(&px, shape, example_seed(seed, i))
        })
}

/// Resamples every channel: output pixel at offset `(dy, dx)` from the centre reads the input
/// at centre + `source(dy, dx)`.
fn warp(pixels: &[f32], shape: ImageShape, source: impl Fn(f32, f32) -> (f32, f32)) -> Vec<f32> {
    let (h, w) = (shape.height, shape.width);
    let (cy, cx) = ((h as f32 - 1.0) / 2.0, (w as f32 - 1.0) / 2.0);
    let mut out = Vec::with_capacity(pixels.len());
    for plane in pixels.chunks_exact(shape.plane()) {
        for y in 0..h {
            for x in 0..w {
                let (sy, sx) = source(y as f32 - cy, x as f32 - cx);
                out.push(sample(plane, h, w, cy + sy, cx + sx, Border::Zero));
            }
        }
    }
    out
}

/// Separable Gaussian blur, kernel radius `ceil(3 sigma)`.
fn blur(pixels: &[f32], shape: ImageShape, sigma: f32) -> Vec<f32> {
    let radius = (3.0 * sigma.abs()).ceil() as isize;
    let weights: Vec<f32> = (-radius..=radius)
        .map(|i| (-((i * i) as f32) / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = weights.iter().sum();
    let (h, w) = (shape.height as isize, shape.width as isize);
    let pass = |src: &[f32], horizontal: bool| -> Vec<f32> {
        let mut out = vec![0.0; src.len()];
        for y in 0..h {
            for x in 0..w {
                let acc: f32 = (-radius..=radius)
                    .zip(&weights)
                    .map(|(o, wt)| {
                        let (yy, xx) = if horizontal {
                            (y, (x + o).clamp(0, w - 1))
                        } else {
                            ((y + o).clamp(0, h - 1), x)
                        };
                        wt * src[(yy * w + xx) as usize]
                    })
                    .sum();
                out[(y * w + x) as usize] = acc / total;
            }
        }
        out
    };
    pixels
        .chunks_exact(shape.plane())
        .flat_map(|plane| pass(&pass(plane, true), false))
        .collect()
}
