//! Heat map of learned weights: rows are layers, columns upstream modules, with a colour bar.

use super::canvas::{BLACK, Canvas, GLYPH, GRID, MUTED};
use super::palette::viridis;

pub(crate) struct Heatmap {
    pub title: String,
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    /// `values[row][column]`; `None` cells are drawn grey.
    pub values: Vec<Vec<Option<f64>>>,
}

const MARGIN: i64 = 20;
const TOP: i64 = 50;
const BAR_W: i64 = 24;

impl Heatmap {
    pub fn draw(&self) -> Canvas {
        let (rows, cols) = (self.rows.len() as i64, self.columns.len() as i64);
        // Big cells and 16 px labels for a few layers; dense rows fall back to 8 px labels.
        let (cell_h, label) = if rows <= 16 { (28, 2) } else { (14, 1) };
        let glyph = i64::from(GLYPH * label);
        let longest = |names: &[String]| names.iter().map(|n| n.len()).max().unwrap_or(0) as i64;
        let row_label_w = longest(&self.rows) * glyph + 10;
        let col_label_h = longest(&self.columns) * glyph + 10;
        let cell_w = (560 / cols.max(1)).clamp(40, 90);

        let grid_left = MARGIN + row_label_w;
        let grid_right = grid_left + cols * cell_w;
        let grid_bottom = TOP + rows * cell_h;
        let bar_left = grid_right + 30;
        let min_max = |f: fn(f64, f64) -> f64, start| {
            self.values
                .iter()
                .flatten()
                .flatten()
                .copied()
                .fold(start, f)
        };
        let (lo, hi) = (
            min_max(f64::min, f64::INFINITY),
            min_max(f64::max, f64::NEG_INFINITY),
        );
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 0.0) };
        let (lo_text, hi_text) = (format!("{lo:.3}"), format!("{hi:.3}"));
        let bar_label_w =
            i64::from(Canvas::text_width(&lo_text, 2).max(Canvas::text_width(&hi_text, 2)));
        let title_w = i64::from(Canvas::text_width(&self.title, 2)) + 2 * MARGIN;
        let width = (bar_left + BAR_W + 10 + bar_label_w + MARGIN).max(title_w);
        let height = (grid_bottom + col_label_h + MARGIN).max(TOP + 200 + MARGIN);
        let mut c = Canvas::new(width as u32, height as u32);
        c.text_centred(width / 2, 15, &self.title, 2, BLACK);

        let unit = |v: f64| if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
        for (r, name) in self.rows.iter().enumerate() {
            let y = TOP + r as i64 * cell_h;
            let w = name.len() as i64 * glyph;
            c.text(
                grid_left - 8 - w,
                y + (cell_h - glyph) / 2,
                name,
                label,
                BLACK,
            );
            for (k, v) in self.values[r].iter().enumerate() {
                let x = grid_left + k as i64 * cell_w;
                let fill = v.map_or(GRID, |v| viridis(unit(v)));
                c.rect(x, y, x + cell_w - 1, y + cell_h - 1, fill);
                if let Some(v) = v {
                    // Values printed in the cell, dark on the light end of the scale.
                    let ink = if unit(*v) > 0.6 {
                        BLACK
                    } else {
                        [255, 255, 255]
                    };
                    let text = format!("{v:.2}");
                    c.text_centred(x + cell_w / 2, y + (cell_h - 8) / 2, &text, 1, ink);
                }
            }
        }
        for (k, name) in self.columns.iter().enumerate() {
            let x = grid_left + k as i64 * cell_w + (cell_w - glyph) / 2;
            let w = name.len() as i64 * glyph;
            c.text_up(x, grid_bottom + 8 + w, name, label, BLACK);
        }

        let bar_h = (grid_bottom - TOP).max(200);
        for i in 0..bar_h {
            c.rect(
                bar_left,
                TOP + i,
                bar_left + BAR_W,
                TOP + i + 1,
                viridis(1.0 - i as f64 / (bar_h - 1) as f64),
            );
        }
        c.text(bar_left + BAR_W + 8, TOP, &hi_text, 2, BLACK);
        c.text(bar_left + BAR_W + 8, TOP + bar_h - 16, &lo_text, 2, BLACK);
        c.rect(bar_left - 1, TOP - 1, bar_left + BAR_W + 1, TOP, MUTED);
        c.rect(
            bar_left - 1,
            TOP + bar_h,
            bar_left + BAR_W + 1,
            TOP + bar_h + 1,
            MUTED,
        );
        c
    }
}
