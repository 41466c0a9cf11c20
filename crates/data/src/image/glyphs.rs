//! Letters rendered from font files: a notMNIST-like source. Every font in the folder draws
//! the letters a-j in lower and upper case, white on black, scaled so that the glyph's
//! longer side spans [`BOX`] of the image's shorter side and centred, as MNIST's digits were
//! normalised. One rendering per (font, letter, case): no jittered copies that could fall on
//! both sides of a split; and suites split by font family ([`load_glyphs`] says each
//! rendering's), so no family's design is on both sides either.
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
    Ok(load_glyphs(dir, target, GlyphLabel::Letter)?.0)
}

/// The same renderings as [`load_glyph_letters`], labelled by the font's style
/// ([`GLYPH_STYLES`]).
pub fn load_glyph_styles(dir: &Path, target: ImageShape) -> Result<LabelledDataset<ImageItem>> {
    Ok(load_glyphs(dir, target, GlyphLabel::Style)?.0)
}

/// Which question the renderings answer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum GlyphLabel {
    Letter,
    Style,
}

/// The renderings labelled by letter or by style, with the font family of each (numbered in
/// order of first appearance): a suite splits by family, since sibling faces (regular and bold,
/// condensed, light) share their letters' design and would put near copies of a test letter,
/// and the family's style habits, in training.
pub(crate) fn load_glyphs(
    dir: &Path,
    target: ImageShape,
    by: GlyphLabel,
) -> Result<(LabelledDataset<ImageItem>, Vec<usize>)> {
    let (items, families) = render_fonts(dir, target, |style, letter| match by {
        GlyphLabel::Letter => letter,
        GlyphLabel::Style => style,
    })?;
    let classes = match by {
        GlyphLabel::Letter => GLYPH_LETTERS.iter().map(|c| c.to_string()).collect(),
        GlyphLabel::Style => GLYPH_STYLES.iter().map(|s| s.to_string()).collect(),
    };
    Ok((LabelledDataset::new(items, classes), families))
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

/// Renders every font's letters, with each rendering's font family; `label(style, letter)`
/// picks the label of each.
fn render_fonts(
    dir: &Path,
    target: ImageShape,
    label: impl Fn(usize, usize) -> usize,
) -> Result<(Vec<ImageItem>, Vec<usize>)> {
    let native = ImageShape {
        channels: 1,
        ..target
    };
    let (mut items, mut families) = (Vec::new(), Vec::new());
    let mut family_names: Vec<String> = Vec::new();
    for path in font_files(dir)? {
        let data = read(&path)?;
        let font = FontRef::try_from_slice(&data)
            .map_err(|e| invalid(&path, format!("not a font file: {e}")))?;
        let face = ttf_parser::Face::parse(&data, 0)
            .map_err(|_| invalid(&path, "unreadable font tables"))?;
        let style = style_of(&face);
        let name = family_of(&face).unwrap_or_else(|| path.display().to_string());
        let family = (family_names.iter().position(|f| *f == name)).unwrap_or_else(|| {
            family_names.push(name);
            family_names.len() - 1
        });
        for (letter, &lower) in GLYPH_LETTERS.iter().enumerate() {
            for c in [lower, lower.to_ascii_uppercase()] {
                let pixels = render(&font, c, native)
                    .ok_or_else(|| invalid(&path, format!("the font has no outline for `{c}`")))?;
                items.push(ImageItem {
                    pixels: convert(&pixels, native, target),
                    label: label(style, letter),
                });
                families.push(family);
            }
        }
    }
    Ok((items, families))
}

/// The family the font's tables name: the typographic family (name 16, which groups the
/// weights and widths that name 1 lists as families of their own), else the family (name 1).
fn family_of(face: &ttf_parser::Face) -> Option<String> {
    let named = |id: u16| {
        (face.names().into_iter())
            .filter(|n| n.name_id == id)
            .find_map(|n| n.to_string())
    };
    named(ttf_parser::name_id::TYPOGRAPHIC_FAMILY).or_else(|| named(ttf_parser::name_id::FAMILY))
}

/// The index in [`GLYPH_STYLES`] of the font.
fn style_of(face: &ttf_parser::Face) -> usize {
    let bold = face.weight().to_number() >= 600;
    let italic = face.is_italic() || face.is_oblique() || face.italic_angle() != 0.0;
    usize::from(bold) + 2 * usize::from(italic)
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
