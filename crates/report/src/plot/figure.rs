//! Renders a figure twice: SVG, whose text the viewer sets (no font files needed), and PNG,
//! whose text plotters draws from DejaVu Sans embedded in the binary, so a machine without
//! system fonts renders every Unicode name the font covers.

use crate::error::{ReportError, Result};
use image::RgbImage;
use image::imageops::{self, FilterType};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The name the embedded font is registered under. The SVG's `font-family` carries it verbatim:
/// a viewer with DejaVu Sans sets the text with the metrics the layout was measured with, any
/// other falls back to its own sans-serif.
pub(crate) const FAMILY: &str = "DejaVu Sans, sans-serif";

/// PNGs are drawn at this multiple of their size and scaled down: plotters' bitmap backend does
/// not anti-alias lines and markers, the downscale does.
const SUPERSAMPLE: u32 = 2;

pub(crate) type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A plot laid out in SVG pixels; the PNG has the same size.
pub(crate) trait Figure {
    fn size(&self) -> (u32, u32);

    /// Draws onto `root`, which is `size()` times `scale` pixels; every length is multiplied
    /// by `scale` (see [`px`]).
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, scale: f64)
    -> DrawResult<DB>;
}

/// A length of `v` layout pixels at drawing scale `scale`.
pub(crate) fn px(v: f64, scale: f64) -> i32 {
    (v * scale).round() as i32
}

/// The embedded font at `size` layout pixels (plotters' size: about 1.24 em), drawn at `scale`.
pub(crate) fn font(size: f64, scale: f64) -> FontDesc<'static> {
    (FAMILY, size * scale).into_font()
}

/// The width in layout pixels of `text` set in the embedded font at `size`.
pub(crate) fn text_width(text: &str, size: f64) -> f64 {
    register_font();
    font(size, 1.0)
        .box_size(text)
        .map_or(0.6 * size * text.chars().count() as f64, |(w, _)| {
            f64::from(w)
        })
}

/// Registers DejaVu Sans (regular and bold) with plotters once per process; `false` if plotters
/// rejected the bytes.
fn register_font() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        let regular = register_font_bytes(FontStyle::Normal, dejavu::sans::regular());
        let bold = register_font_bytes(FontStyle::Bold, dejavu::sans::bold());
        regular && bold
    })
}

fn register_font_bytes(style: FontStyle, bytes: &'static [u8]) -> bool {
    plotters::style::register_font(FAMILY, style, bytes).is_ok()
}

fn plot_error(path: &Path, message: impl ToString) -> ReportError {
    ReportError::Plot {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Writes `dir/<base>.svg` and `dir/<base>.png`; returns both paths, the SVG first.
pub(crate) fn save(figure: &impl Figure, dir: &Path, base: &str) -> Result<Vec<PathBuf>> {
    let svg_path = dir.join(format!("{base}.svg"));
    let png_path = dir.join(format!("{base}.png"));
    if !register_font() {
        return Err(plot_error(&png_path, "plotters rejected the embedded font"));
    }
    let (width, height) = figure.size();

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        render(figure, &root, 1.0).map_err(|e| plot_error(&svg_path, e))?;
    }
    std::fs::write(&svg_path, svg).map_err(|source| ReportError::Io {
        path: svg_path.clone(),
        source,
    })?;

    png(figure)
        .map_err(|message| plot_error(&png_path, message))?
        .save(&png_path)
        .map_err(|source| ReportError::Image {
            path: png_path.clone(),
            source,
        })?;
    Ok(vec![svg_path, png_path])
}

/// The figure as a bitmap of `size()`, drawn at [`SUPERSAMPLE`] times that and scaled down.
fn png(figure: &impl Figure) -> std::result::Result<RgbImage, String> {
    let (width, height) = figure.size();
    let (big_w, big_h) = (width * SUPERSAMPLE, height * SUPERSAMPLE);
    let mut pixels = vec![0u8; 3 * big_w as usize * big_h as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (big_w, big_h)).into_drawing_area();
        render(figure, &root, f64::from(SUPERSAMPLE)).map_err(|e| e.to_string())?;
    }
    let big = RgbImage::from_raw(big_w, big_h, pixels).ok_or("bitmap buffer has the wrong size")?;
    Ok(imageops::resize(&big, width, height, FilterType::Triangle))
}

fn render<DB: DrawingBackend>(
    figure: &impl Figure,
    root: &DrawingArea<DB, Shift>,
    scale: f64,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    figure.draw(root, scale)?;
    root.present()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::palette::INK;

    /// One line of text at 40 px.
    struct Label(&'static str);

    impl Figure for Label {
        fn size(&self) -> (u32, u32) {
            (120, 60)
        }

        fn draw<DB: DrawingBackend>(
            &self,
            root: &DrawingArea<DB, Shift>,
            scale: f64,
        ) -> DrawResult<DB> {
            let style = font(40.0, scale).color(&INK);
            root.draw(&Text::new(
                self.0,
                (px(10.0, scale), px(10.0, scale)),
                style,
            ))
        }
    }

    fn pixels(text: &'static str) -> Vec<u8> {
        assert!(register_font());
        png(&Label(text)).unwrap().into_raw()
    }

    #[test]
    fn png_text_draws_non_ascii_glyphs() {
        // A code point DejaVu has no glyph for draws the font's "missing" box; each of these
        // must draw a glyph of its own, and not the `?` a bitmap font fell back to. (`assert!`,
        // not `assert_eq!`: a failure would print every pixel.)
        let missing = pixels("\u{10FFFD}");
        assert!(
            missing == pixels("\u{10FFFC}"),
            "two missing glyphs look alike"
        );
        let question = pixels("?");
        for c in ["é", "ü", "Ü", "–", "≈", "−", "β"] {
            let drawn = pixels(c);
            assert!(drawn != missing, "{c} has no glyph");
            assert!(drawn != question, "{c} drawn as ?");
            assert!(drawn.iter().any(|&v| v < 128), "{c} left no ink");
        }
    }

    #[test]
    fn png_has_the_figure_size_and_svg_keeps_text_verbatim() {
        let dir = tempfile::tempdir().unwrap();
        let files = save(&Label("café–Ü"), dir.path(), "label").unwrap();
        assert_eq!(
            files,
            [dir.path().join("label.svg"), dir.path().join("label.png")]
        );
        let image = image::open(&files[1]).unwrap();
        assert_eq!((image.width(), image.height()), (120, 60));
        let svg = std::fs::read_to_string(&files[0]).unwrap();
        assert!(svg.contains("café–Ü"), "{svg}");
        assert!(svg.contains(FAMILY), "{svg}");
    }
}
