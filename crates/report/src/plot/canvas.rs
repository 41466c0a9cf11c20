//! A white RGB raster with the few primitives the plots need: thick lines, rectangles,
//! markers and 8x8 bitmap text (font8x8), scaled by whole pixels.

use crate::error::{ReportError, Result};
use font8x8::{BASIC_FONTS, UnicodeFonts};
use image::{Rgb as Pixel, RgbImage};
use std::path::Path;

pub(crate) type Rgb = [u8; 3];

pub(crate) const BLACK: Rgb = [0, 0, 0];
pub(crate) const GRID: Rgb = [225, 225, 225];
pub(crate) const MUTED: Rgb = [110, 110, 110];

/// Glyph cell size in pixels at scale 1.
pub(crate) const GLYPH: u32 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
    Cross,
}

pub(crate) struct Canvas {
    image: RgbImage,
}

impl Canvas {
    pub fn new(width: u32, height: u32) -> Canvas {
        Canvas {
            image: RgbImage::from_pixel(width, height, Pixel([255, 255, 255])),
        }
    }

    pub fn width(&self) -> u32 {
        self.image.width()
    }

    pub fn height(&self) -> u32 {
        self.image.height()
    }

    /// Sets one pixel; anything off the canvas is clipped.
    fn put(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && x < self.width() as i64 && y < self.height() as i64 {
            self.image.put_pixel(x as u32, y as u32, Pixel(c));
        }
    }

    /// Fills `[x0, x1) x [y0, y1)`.
    pub fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb) {
        for y in y0..y1 {
            for x in x0..x1 {
                self.put(x, y, c);
            }
        }
    }

    /// A line `width` pixels thick, drawn by stamping squares along it.
    pub fn line(&mut self, from: (f64, f64), to: (f64, f64), width: u32, c: Rgb) {
        let (dx, dy) = (to.0 - from.0, to.1 - from.1);
        let steps = dx.abs().max(dy.abs()).ceil().max(1.0) as usize;
        let w = i64::from(width);
        let off = (w - 1) / 2;
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            let x = (from.0 + t * dx).round() as i64 - off;
            let y = (from.1 + t * dy).round() as i64 - off;
            self.rect(x, y, x + w, y + w, c);
        }
    }

    /// A filled marker of radius `r` centred on `(cx, cy)`.
    pub fn marker(&mut self, (cx, cy): (f64, f64), r: f64, shape: Marker, c: Rgb) {
        let (x0, y0) = (cx.round() as i64, cy.round() as i64);
        let span = r.ceil() as i64 + 1;
        for y in -span..=span {
            for x in -span..=span {
                let (dx, dy) = (x as f64, y as f64);
                let inside = match shape {
                    Marker::Circle => dx * dx + dy * dy <= r * r,
                    Marker::Square => dx.abs() <= 0.85 * r && dy.abs() <= 0.85 * r,
                    Marker::Diamond => dx.abs() + dy.abs() <= 1.2 * r,
                    Marker::Triangle => dy.abs() <= r && dx.abs() <= (dy + r) * 0.6,
                    Marker::Cross => dx.abs() <= r && (dx.abs() - dy.abs()).abs() <= 1.2,
                };
                if inside {
                    self.put(x0 + x, y0 + y, c);
                }
            }
        }
    }

    /// Width in pixels of `text` at `scale`.
    pub fn text_width(text: &str, scale: u32) -> u32 {
        text.chars().count() as u32 * GLYPH * scale
    }

    /// Draws `text` with its top-left corner at `(x, y)`; characters outside ASCII show as `?`.
    pub fn text(&mut self, x: i64, y: i64, text: &str, scale: u32, c: Rgb) {
        self.glyphs(text, scale, c, |gx, gy| (x + gx, y + gy));
    }

    /// Draws `text` turned 90 degrees counter-clockwise (read bottom to top), its bottom-left
    /// corner at `(x, y)`: for a y-axis label.
    pub fn text_up(&mut self, x: i64, y: i64, text: &str, scale: u32, c: Rgb) {
        self.glyphs(text, scale, c, |gx, gy| (x + gy, y - gx));
    }

    /// Draws `text` at `(x, y)` horizontally centred.
    pub fn text_centred(&mut self, cx: i64, y: i64, text: &str, scale: u32, c: Rgb) {
        let w = i64::from(Self::text_width(text, scale));
        self.text(cx - w / 2, y, text, scale, c);
    }

    /// Rasterises `text` in glyph coordinates (x along the text, y down) and maps each lit
    /// pixel onto the canvas with `at`.
    fn glyphs(&mut self, text: &str, scale: u32, c: Rgb, at: impl Fn(i64, i64) -> (i64, i64)) {
        let s = i64::from(scale);
        for (i, ch) in text.chars().enumerate() {
            let ch = if ch.is_ascii() { ch } else { '?' };
            let Some(rows) = BASIC_FONTS.get(ch) else {
                continue;
            };
            let left = i as i64 * i64::from(GLYPH) * s;
            for (gy, bits) in rows.iter().enumerate() {
                for gx in 0..8 {
                    if bits & (1 << gx) == 0 {
                        continue;
                    }
                    for sy in 0..s {
                        for sx in 0..s {
                            let (px, py) = at(left + gx * s + sx, gy as i64 * s + sy);
                            self.put(px, py, c);
                        }
                    }
                }
            }
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        self.image.save(path).map_err(|source| ReportError::Image {
            path: path.to_path_buf(),
            source,
        })
    }

    #[cfg(test)]
    pub fn pixel(&self, x: u32, y: u32) -> Rgb {
        self.image.get_pixel(x, y).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_at_least_two_pixels_wide() {
        let mut c = Canvas::new(20, 20);
        c.line((2.0, 10.0), (18.0, 10.0), 2, BLACK);
        assert_eq!(c.pixel(10, 10), BLACK);
        assert_eq!(c.pixel(10, 11), BLACK);
        assert_eq!(c.pixel(10, 12), [255, 255, 255]);
    }

    #[test]
    fn text_lights_pixels_and_clips_at_the_edge() {
        let mut c = Canvas::new(40, 20);
        c.text(0, 0, "H", 2, BLACK);
        c.text(35, 15, "long text off the edge", 2, BLACK);
        let lit = (0..16)
            .flat_map(|y| (0..16).map(move |x| (x, y)))
            .filter(|&(x, y)| c.pixel(x, y) == BLACK)
            .count();
        assert!(lit > 20, "H drew {lit} pixels");
    }
}
