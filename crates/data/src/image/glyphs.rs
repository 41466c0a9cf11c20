//! Letters rendered from font files: a notMNIST-like source. Every font in the folder draws
//! the letters a-j in lower and upper case, white on black, scaled so that the glyph's
//! longer side spans [`BOX`] of the image's shorter side and centred, as MNIST's digits were
//! normalised. One rendering per (font, letter, case): no jittered copies that could fall on
//! both sides of a split.
//!
//! Two labellings of the same renderings: the letter ([`load_glyph_letters`]) and the font's
//! style from its own tables ([`load_glyph_styles`]): a question about the same pixels that
//! no letter, digit or garment classifier has been asked.

use std::path::{Path, PathBuf};

use ab_glyph::{Font, FontRef, point};

use crate::error::{Result, invalid, list_files, read};
use crate::raster::convert;
use crate::{ImageItem, ImageShape, LabelledDataset};

/// The letters drawn, each in lower then upper case; their lower-case form names the class.
pub const GLYPH_LETTERS: [char; 10] = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];

/// Style classes, in label order: `bold` when the font's weight class is at least 600
/// (semibold and heavier), `italic` when it is flagged italic or oblique or its italic angle
/// is not zero.
pub const GLYPH_STYLES: [&str; 4] = ["regular", "bold", "italic", "bold-italic"];

/// Share of the image's shorter side the glyph's longer side spans (MNIST: 20 of 28).
const BOX: f32 = 20.0 / 28.0;

/// The letters of every `.ttf` / `.otf` font in `dir` (sorted by file name), labelled `a`-`j`.
pub fn load_glyph_letters(dir: &Path, target: ImageShape) -> Result<LabelledDataset<ImageItem>> {
    let items = render_fonts(dir, target, |_, letter| letter)?;
    Ok(LabelledDataset::new(
        items,
        GLYPH_LETTERS.iter().map(|c| c.to_string()).collect(),
    ))
}

/// The same renderings as [`load_glyph_letters`], labelled by the font's style
/// ([`GLYPH_STYLES`]).
pub fn load_glyph_styles(dir: &Path, target: ImageShape) -> Result<LabelledDataset<ImageItem>> {
    let items = render_fonts(dir, target, |style, _| style)?;
    Ok(LabelledDataset::new(
        items,
        GLYPH_STYLES.iter().map(|s| s.to_string()).collect(),
    ))
}

/// The font files of `dir`, sorted by name.
fn font_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let files = list_files(dir, |p| {
        p.is_file()
            && p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("ttf") || e.eq_ignore_ascii_case("otf"))
    })?;
    if files.is_empty() {
        return Err(invalid(dir, "no `.ttf` or `.otf` font files"));
    }
    Ok(files)
}

/// Renders every font's letters; `label(style, letter)` picks the label of each.
fn render_fonts(
    dir: &Path,
    target: ImageShape,
    label: impl Fn(usize, usize) -> usize,
) -> Result<Vec<ImageItem>> {
    let native = ImageShape {
        channels: 1,
        ..target
    };
    let mut items = Vec::new();
    for path in font_files(dir)? {
        let data = read(&path)?;
        let font = FontRef::try_from_slice(&data)
            .map_err(|e| invalid(&path, format!("not a font file: {e}")))?;
        let style = style_of(&data).ok_or_else(|| invalid(&path, "unreadable font tables"))?;
        for (letter, &lower) in GLYPH_LETTERS.iter().enumerate() {
            for c in [lower, lower.to_ascii_uppercase()] {
                let pixels = render(&font, c, native)
                    .ok_or_else(|| invalid(&path, format!("the font has no outline for `{c}`")))?;
                items.push(ImageItem {
                    pixels: convert(&pixels, native, target),
                    label: label(style, letter),
                });
            }
        }
    }
    Ok(items)
}

/// The index in [`GLYPH_STYLES`] of the font in `data`.
fn style_of(data: &[u8]) -> Option<usize> {
    let face = ttf_parser::Face::parse(data, 0).ok()?;
    let bold = face.weight().to_number() >= 600;
    let italic = face.is_italic() || face.is_oblique() || face.italic_angle() != 0.0;
    Some(usize::from(bold) + 2 * usize::from(italic))
}

/// `c` drawn white on black into one `shape.height x shape.width` plane, or `None` when the
/// font maps `c` to no glyph or the glyph has no outline.
fn render(font: &FontRef, c: char, shape: ImageShape) -> Option<Vec<f32>> {
    let id = font.glyph_id(c);
    if id.0 == 0 {
        return None;
    }
    // The ink's box, measured on a large rendering: an outline's own bounds are those of its
    // control points, looser than the ink for curves and slanted strokes.
    const PROBE: f32 = 256.0;
    let probe = font.outline_glyph(id.with_scale_and_position(PROBE, point(0.0, 0.0)))?;
    let origin = probe.px_bounds().min;
    let (mut lo, mut hi) = ([f32::MAX; 2], [f32::MIN; 2]);
    probe.draw(|x, y, coverage| {
        if coverage >= INK {
            let (x, y) = (origin.x + x as f32, origin.y + y as f32);
            lo = [lo[0].min(x), lo[1].min(y)];
            hi = [hi[0].max(x + 1.0), hi[1].max(y + 1.0)];
        }
    });
    let extent = (hi[0] - lo[0]).max(hi[1] - lo[1]);
    if extent <= 0.0 {
        return None;
    }
    // Scale the ink's longer side to the box and put the ink's centre on the image's centre
    // (to the sub-pixel: the rasteriser takes fractional positions).
    let side = BOX * shape.height.min(shape.width) as f32;
    let ratio = side / extent;
    let centre = |i: usize, size: usize| size as f32 / 2.0 - (lo[i] + hi[i]) / 2.0 * ratio;
    let position = point(centre(0, shape.width), centre(1, shape.height));
    let glyph = font.outline_glyph(id.with_scale_and_position(PROBE * ratio, position))?;
    let min = glyph.px_bounds().min;
    let mut plane = vec![0.0f32; shape.plane()];
    glyph.draw(|x, y, coverage| {
        let (x, y) = (min.x as i64 + x as i64, min.y as i64 + y as i64);
        if (0..shape.width as i64).contains(&x) && (0..shape.height as i64).contains(&y) {
            plane[y as usize * shape.width + x as usize] += coverage;
        }
    });
    // At 8 bits, as a rendered image is stored: the rasteriser's accumulation leaves coverage
    // of ~1e-7 all over the glyph's box, which would read as faint ink.
    for p in &mut plane {
        *p = (p.clamp(0.0, 1.0) * 255.0).round() / 255.0;
    }
    Some(plane)
}

/// Coverage that counts as ink when measuring a glyph: half an 8-bit step.
const INK: f32 = 0.5 / 255.0;
