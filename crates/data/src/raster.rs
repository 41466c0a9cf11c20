//! Pixel geometry shared by the loaders (resizing) and the transforms (warping).

use crate::ImageShape;

/// What a sample outside the image reads: the nearest edge pixel (resizing) or black
/// (warping, so rotated digits get the dark background they were drawn on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Border {
    Clamp,
    Zero,
}

/// Bilinear sample of one `h x w` plane at pixel coordinates `(y, x)` (pixel centres at integers).
pub(crate) fn sample(plane: &[f32], h: usize, w: usize, y: f32, x: f32, border: Border) -> f32 {
    let (y0, x0) = (y.floor(), x.floor());
    let (fy, fx) = (y - y0, x - x0);
    let at = |yy: f32, xx: f32| -> f32 {
        let inside = yy >= 0.0 && xx >= 0.0 && yy < h as f32 && xx < w as f32;
        match border {
            _ if inside => plane[yy as usize * w + xx as usize],
            Border::Zero => 0.0,
            Border::Clamp => {
                let yy = yy.clamp(0.0, (h - 1) as f32) as usize;
                let xx = xx.clamp(0.0, (w - 1) as f32) as usize;
                plane[yy * w + xx]
            }
        }
    };
    let top = at(y0, x0) * (1.0 - fx) + at(y0, x0 + 1.0) * fx;
    let bottom = at(y0 + 1.0, x0) * (1.0 - fx) + at(y0 + 1.0, x0 + 1.0) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// Bilinear resize of every channel to `height x width`, pixel centres aligned (as OpenCV and
/// PIL do), so an 8x8 digit keeps its position when upsampled to 28x28.
pub fn resize_bilinear(pixels: &[f32], from: ImageShape, height: usize, width: usize) -> Vec<f32> {
    if (from.height, from.width) == (height, width) {
        return pixels.to_vec();
    }
    let sy = from.height as f32 / height as f32;
    let sx = from.width as f32 / width as f32;
    let mut out = Vec::with_capacity(from.channels * height * width);
    for plane in pixels.chunks_exact(from.plane()) {
        for y in 0..height {
            let src_y = (y as f32 + 0.5) * sy - 0.5;
            for x in 0..width {
                let src_x = (x as f32 + 0.5) * sx - 0.5;
                out.push(sample(
                    plane,
                    from.height,
                    from.width,
                    src_y,
                    src_x,
                    Border::Clamp,
                ));
            }
        }
    }
    out
}

/// Pixels of shape `from` converted to shape `to`: resized, then grey replicated to every
/// channel, or colour averaged to grey (for other channel counts, channels are cycled).
pub fn convert(pixels: &[f32], from: ImageShape, to: ImageShape) -> Vec<f32> {
    let resized = resize_bilinear(pixels, from, to.height, to.width);
    if from.channels == to.channels {
        return resized;
    }
    let plane = to.plane();
    if to.channels == 1 {
        let n = from.channels as f32;
        return (0..plane)
            .map(|i| {
                (0..from.channels)
                    .map(|c| resized[c * plane + i])
                    .sum::<f32>()
                    / n
            })
            .collect();
    }
    (0..to.channels)
        .flat_map(|c| {
            let src = (c % from.channels) * plane;
            resized[src..src + plane].iter().copied()
        })
        .collect()
}
