//! Heat map of learned weights: rows are layers, columns upstream modules, with a colour bar.
//! The caller passes one colour scale for all heat maps of a report, so a colour means the same
//! weight in every task's and method's map.

use super::chart::{CAPTION_SIZE, HEADER, TITLE_SIZE, header};
use super::figure::{DrawResult, Figure, font, px, text_width};
use super::palette::{GRID, INK, MUTED, viridis};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub(crate) struct Heatmap {
    pub title: String,
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    /// `values[row][column]`; `None` cells are drawn grey.
    pub values: Vec<Vec<Option<f64>>>,
    /// The colour scale's `(min, max)`.
    pub scale: (f64, f64),
}

const MARGIN: f64 = 20.0;
const TOP: f64 = HEADER + 10.0;
const BAR_W: f64 = 22.0;
/// Space above the colour bar for its name.
const BAR_TITLE: f64 = 26.0;
const MIN_BAR_H: f64 = 140.0;
const TICK_SIZE: f64 = 16.0;
const BAR_TICKS: usize = 5;

/// The caption of every heat map; states the shared scale so a reader comparing two maps can
/// check it is the same.
fn scale_caption((lo, hi): (f64, f64)) -> String {
    format!("mean over seeds and k; colour scale shared by all heat maps: {lo:.3} to {hi:.3}")
}

/// Positions (layout pixels) of the parts, computed once for both renderings.
struct Layout {
    width: f64,
    height: f64,
    label_size: f64,
    value_size: f64,
    cell_w: f64,
    cell_h: f64,
    grid_left: f64,
    bar_left: f64,
    bar_h: f64,
}

impl Heatmap {
    fn layout(&self) -> Layout {
        let (rows, cols) = (self.rows.len() as f64, self.columns.len().max(1) as f64);
        // Big cells for a few layers; dense rows get smaller cells and labels.
        let (cell_h, label_size, value_size) = match rows <= 16.0 {
            true => (30.0, 16.0, 13.0),
            false => (18.0, 13.0, 10.0),
        };
        let longest = |names: &[String]| {
            names
                .iter()
                .map(|n| text_width(n, label_size))
                .fold(0.0, f64::max)
        };
        let row_label_w = longest(&self.rows) + 12.0;
        let col_label_h = longest(&self.columns) + 12.0;
        let cell_w = (600.0 / cols).clamp(52.0, 90.0);
        let grid_left = MARGIN + row_label_w;
        let bar_left = grid_left + cols * cell_w + 30.0;
        let bar_h = (rows * cell_h).max(MIN_BAR_H);
        let tick_w = self
            .bar_ticks()
            .iter()
            .map(|(_, t)| text_width(t, TICK_SIZE))
            .fold(0.0, f64::max);
        let caption = scale_caption(self.scale);
        let width = (bar_left + BAR_W + 12.0 + tick_w + MARGIN)
            .max(text_width(&self.title, TITLE_SIZE) + 2.0 * MARGIN)
            .max(text_width(&caption, CAPTION_SIZE) + 2.0 * MARGIN);
        let height = TOP + (rows * cell_h + col_label_h).max(BAR_TITLE + bar_h + 10.0) + MARGIN;
        Layout {
            width,
            height,
            label_size,
            value_size,
            cell_w,
            cell_h,
            grid_left,
            bar_left,
            bar_h,
        }
    }

    /// Where 0..=1 of the scale lies for `v`; the middle when the scale is a single value.
    fn unit(&self, v: f64) -> f64 {
        let (lo, hi) = self.scale;
        if hi > lo { (v - lo) / (hi - lo) } else { 0.5 }
    }

    /// Evenly spaced labelled values on the colour bar, low to high; one for a one-value scale.
    fn bar_ticks(&self) -> Vec<(f64, String)> {
        let (lo, hi) = self.scale;
        let n = if hi > lo { BAR_TICKS } else { 1 };
        (0..n)
            .map(|i| lo + (hi - lo) * i as f64 / (n - 1).max(1) as f64)
            .map(|v| (v, format!("{v:.3}")))
            .collect()
    }
}

impl Figure for Heatmap {
    fn size(&self) -> (u32, u32) {
        let l = self.layout();
        (l.width.ceil() as u32, l.height.ceil() as u32)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        scale: f64,
    ) -> DrawResult<DB> {
        let s = |v: f64| px(v, scale);
        let l = self.layout();
        header(root, &self.title, &scale_caption(self.scale), scale)?;

        let label = font(l.label_size, scale).color(&INK);
        let row_style = label.clone().pos(Pos::new(HPos::Right, VPos::Center));
        for (r, name) in self.rows.iter().enumerate() {
            let y = TOP + r as f64 * l.cell_h;
            root.draw(&Text::new(
                name.as_str(),
                (s(l.grid_left - 8.0), s(y + l.cell_h / 2.0)),
                row_style.clone(),
            ))?;
            for (k, v) in self.values[r].iter().enumerate() {
                let x = l.grid_left + k as f64 * l.cell_w;
                let fill = v.map_or(GRID, |v| viridis(self.unit(v)));
                root.draw(&Rectangle::new(
                    [(s(x), s(y)), (s(x + l.cell_w) - 1, s(y + l.cell_h) - 1)],
                    fill.filled(),
                ))?;
                if let Some(v) = v {
                    // Values printed in the cell, dark on the light end of the scale.
                    let ink = if self.unit(*v) > 0.6 { INK } else { WHITE };
                    let style = font(l.value_size, scale)
                        .color(&ink)
                        .pos(Pos::new(HPos::Center, VPos::Center));
                    let centre = (s(x + l.cell_w / 2.0), s(y + l.cell_h / 2.0));
                    root.draw(&Text::new(format!("{v:.2}"), centre, style))?;
                }
            }
        }
        // Column names run upwards and end just under the grid.
        let grid_bottom = TOP + self.rows.len() as f64 * l.cell_h;
        let column_style = label
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Right, VPos::Center));
        for (k, name) in self.columns.iter().enumerate() {
            let x = l.grid_left + (k as f64 + 0.5) * l.cell_w;
            root.draw(&Text::new(
                name.as_str(),
                (s(x), s(grid_bottom + 8.0)),
                column_style.clone(),
            ))?;
        }

        let (left, right) = (l.bar_left, l.bar_left + BAR_W);
        let top = TOP + BAR_TITLE;
        let bottom = top + l.bar_h;
        root.draw(&Text::new(
            "weight",
            (s(left), s(TOP)),
            font(TICK_SIZE, scale).color(&INK),
        ))?;
        // One band per drawing pixel, high values at the top.
        let bands = s(l.bar_h).max(1);
        for i in 0..bands {
            let colour = viridis(1.0 - f64::from(i) / f64::from((bands - 1).max(1)));
            let y = s(top) + i;
            root.draw(&Rectangle::new(
                [(s(left), y), (s(right), y + 1)],
                colour.filled(),
            ))?;
        }
        root.draw(&Rectangle::new(
            [(s(left), s(top)), (s(right), s(bottom))],
            MUTED.stroke_width(s(1.0).max(1) as u32),
        ))?;
        let tick_style = font(TICK_SIZE, scale)
            .color(&INK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        for (v, text) in self.bar_ticks() {
            let y = s(bottom - self.unit(v).clamp(0.0, 1.0) * l.bar_h);
            root.draw(&PathElement::new(
                [(s(right), y), (s(right + 5.0), y)],
                INK.stroke_width(s(1.0).max(1) as u32),
            ))?;
            root.draw(&Text::new(text, (s(right + 9.0), y), tick_style.clone()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(scale: (f64, f64)) -> Heatmap {
        Heatmap {
            title: "Learned weights: t (learned)".into(),
            rows: vec!["b0.query".into(), "b0.value".into()],
            columns: vec!["up-a".into(), "up-b".into()],
            values: vec![vec![Some(0.2), None], vec![Some(0.3), Some(0.4)]],
            scale,
        }
    }

    #[test]
    fn colours_follow_the_shared_scale_not_the_map() {
        // The map's own values span 0.2..0.4; the report's scale is 0..1.
        let m = map((0.0, 1.0));
        assert!((m.unit(0.4) - 0.4).abs() < 1e-12);
        assert_eq!(m.unit(0.0), 0.0);
        let flat = map((0.3, 0.3));
        assert_eq!(flat.unit(0.3), 0.5, "a one-value scale");
        assert_eq!(flat.bar_ticks(), [(0.3, "0.300".to_string())]);
        let ticks = m.bar_ticks();
        assert_eq!(ticks.first().unwrap().1, "0.000");
        assert_eq!(ticks.last().unwrap().1, "1.000");
    }
}
