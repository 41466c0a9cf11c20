//! Line, point and scatter charts with error bars, a dashed guide line (chance) and a legend
//! that wraps below the plot, so it never covers data however many methods there are.

use super::figure::{DrawResult, FAMILY, Figure, font, px, text_width};
use super::palette::{GRID, INK, MUTED, Marker};
use plotters::coord::ranged1d::{
    KeyPointHint, KeyPointWeight, NoDefaultFormatting, Ranged, ValueFormatter,
};
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;

/// One point: `(x, y)` and an optional `(low, high)` error bar.
pub(crate) struct Point {
    pub x: f64,
    pub y: f64,
    pub bar: Option<(f64, f64)>,
}

pub(crate) struct Series {
    pub label: String,
    pub color: RGBColor,
    pub marker: Marker,
    pub points: Vec<Point>,
    /// Joins consecutive points with a line (trends over k); off for scatter and paired deltas.
    pub connect: bool,
}

pub(crate) enum XAxis {
    /// Evenly spaced categories; point `x` is the category's index. Series are dodged sideways
    /// so their error bars do not hide each other.
    Categories(Vec<String>),
    Numeric,
}

/// A dashed horizontal reference line, named in the legend.
pub(crate) struct Guide {
    pub y: f64,
    pub label: String,
}

pub(crate) struct Chart {
    pub title: String,
    /// One line under the title: what a point and its bar are.
    pub caption: String,
    pub x_label: String,
    pub y_label: String,
    pub x_axis: XAxis,
    pub series: Vec<Series>,
    /// Draws a solid line at y = 0 and keeps 0 in range (for differences).
    pub zero_line: bool,
    pub guide: Option<Guide>,
}

const WIDTH: u32 = 900;
const HEIGHT: u32 = 600;
const MARGIN: f64 = 20.0;
/// Room for the title and caption above the plot.
pub(crate) const HEADER: f64 = 62.0;
pub(crate) const TITLE_SIZE: f64 = 24.0;
pub(crate) const CAPTION_SIZE: f64 = 16.0;
/// Tick labels, axis names and legend entries (plotters' size: about 1.24 em).
const LABEL_SIZE: f64 = 17.0;
const LEGEND_ROW: f64 = 24.0;
/// Width of a legend entry's line and marker sample.
const SAMPLE: f64 = 32.0;
/// Space between legend entries on one row.
const ENTRY_GAP: f64 = 22.0;
const MARKER_RADIUS: f64 = 5.0;

/// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `target` intervals.
fn tick_step(span: f64, target: f64) -> f64 {
    let raw = span / target;
    let power = 10f64.powf(raw.log10().floor());
    let f = raw / power;
    let nice = if f < 1.5 {
        1.0
    } else if f < 3.5 {
        2.0
    } else if f < 7.5 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// Ticks covering `[lo, hi]` in about `target` intervals, rounded outward to the step.
fn ticks(lo: f64, hi: f64, target: f64) -> (f64, f64, f64) {
    let (lo, hi) = if hi - lo < 1e-9 {
        (lo - 1.0, hi + 1.0)
    } else {
        (lo, hi)
    };
    let step = tick_step(hi - lo, target);
    ((lo / step).floor() * step, (hi / step).ceil() * step, step)
}

fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    let v = if v.abs() < step * 1e-6 { 0.0 } else { v };
    format!("{v:.decimals$}")
}

/// One axis: its range and the labelled ticks. Plotters' own f64 axis picks tick values by
/// itself; categories need a tick at every index with the category's name as its label.
#[derive(Clone)]
struct Axis {
    range: Range<f64>,
    ticks: Vec<(f64, String)>,
}

impl Axis {
    fn categories(names: &[String]) -> Axis {
        Axis {
            range: -0.5..names.len().max(1) as f64 - 0.5,
            ticks: names
                .iter()
                .enumerate()
                .map(|(i, n)| (i as f64, n.clone()))
                .collect(),
        }
    }

    /// Round ticks covering `[lo, hi]` padded by 4% on each side.
    fn numeric(lo: f64, hi: f64) -> Axis {
        let pad = 0.04 * (hi - lo);
        let (lo, hi, step) = ticks(lo - pad, hi + pad, 6.0);
        let n = ((hi - lo) / step).round() as usize;
        Axis {
            range: lo..hi,
            ticks: (0..=n)
                .map(|i| lo + i as f64 * step)
                .map(|v| (v, tick_label(v, step)))
                .collect(),
        }
    }
}

impl Ranged for Axis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let f = (value - self.range.start) / (self.range.end - self.range.start);
        limit.0 + (f * f64::from(limit.1 - limit.0)).round() as i32
    }

    /// The ticks as bold grid lines; no light lines between them.
    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        match hint.weight() {
            KeyPointWeight::Bold => self.ticks.iter().map(|(v, _)| *v).collect(),
            KeyPointWeight::Any => Vec::new(),
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

impl ValueFormatter<f64> for Axis {
    fn format_ext(&self, value: &f64) -> String {
        self.ticks
            .iter()
            .find(|(v, _)| (v - value).abs() < 1e-9)
            .map(|(_, label)| label.clone())
            .unwrap_or_default()
    }
}

/// Draws a marker centred on `at`, `radius` in drawing pixels.
fn draw_marker<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    at: CT::From,
    kind: Marker,
    radius: i32,
    color: RGBColor,
) -> DrawResult<DB> {
    let fill = color.filled();
    let r = radius;
    let shape = EmptyElement::at(at);
    match kind {
        Marker::Circle => area.draw(&(shape + Circle::new((0, 0), r, fill))),
        Marker::Square => area.draw(&(shape + Rectangle::new([(-r, -r), (r, r)], fill))),
        Marker::Triangle => {
            let d = r + 1;
            area.draw(&(shape + Polygon::new(vec![(0, -d), (d, r), (-d, r)], fill)))
        }
        Marker::Diamond => {
            let d = r + 1;
            area.draw(&(shape + Polygon::new(vec![(0, -d), (d, 0), (0, d), (-d, 0)], fill)))
        }
        Marker::Cross => {
            let style = color.stroke_width((r as u32 / 2).max(2));
            area.draw(
                &(shape
                    + PathElement::new(vec![(-r, -r), (r, r)], style)
                    + PathElement::new(vec![(-r, r), (r, -r)], style)),
            )
        }
    }
}

/// What a legend entry's sample shows.
#[derive(Clone, Copy)]
enum Key {
    Series {
        color: RGBColor,
        marker: Marker,
        line: bool,
    },
    Dashed,
}

struct Entry {
    key: Key,
    label: String,
}

/// Packs entries of the given widths into rows no wider than `width`, left to right; every
/// row holds at least one entry. Returns the entries' indices per row.
fn wrap(widths: &[f64], width: f64) -> Vec<Vec<usize>> {
    let mut rows: Vec<Vec<usize>> = Vec::new();
    let mut used = f64::INFINITY;
    for (i, &w) in widths.iter().enumerate() {
        match rows.last_mut() {
            Some(row) if used + ENTRY_GAP + w <= width => {
                row.push(i);
                used += ENTRY_GAP + w;
            }
            _ => {
                rows.push(vec![i]);
                used = w;
            }
        }
    }
    rows
}

impl Chart {
    fn legend(&self) -> Vec<Entry> {
        let mut entries: Vec<Entry> = self
            .series
            .iter()
            .map(|s| Entry {
                key: Key::Series {
                    color: s.color,
                    marker: s.marker,
                    line: s.connect,
                },
                label: s.label.clone(),
            })
            .collect();
        entries.extend(self.guide.iter().map(|g| Entry {
            key: Key::Dashed,
            label: g.label.clone(),
        }));
        entries
    }

    fn y_axis(&self) -> Axis {
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for p in self.series.iter().flat_map(|s| &s.points) {
            let (a, b) = p.bar.unwrap_or((p.y, p.y));
            lo = lo.min(a.min(p.y));
            hi = hi.max(b.max(p.y));
        }
        let fixed = self.zero_line.then_some(0.0).into_iter();
        for y in fixed.chain(self.guide.iter().map(|g| g.y)) {
            lo = lo.min(y);
            hi = hi.max(y);
        }
        match lo.is_finite() {
            true => Axis::numeric(lo, hi),
            false => Axis::numeric(0.0, 1.0),
        }
    }

    fn x_axis(&self) -> Axis {
        match &self.x_axis {
            XAxis::Categories(names) => Axis::categories(names),
            XAxis::Numeric => {
                let xs = self.series.iter().flat_map(|s| &s.points).map(|p| p.x);
                let lo = xs.clone().fold(f64::INFINITY, f64::min);
                let hi = xs.fold(f64::NEG_INFINITY, f64::max);
                match lo.is_finite() {
                    true => Axis::numeric(lo, hi),
                    false => Axis::numeric(0.0, 1.0),
                }
            }
        }
    }

    /// Sideways offset of series `i` in category units: all series of a category stay within
    /// about half its slot.
    fn dodge(&self, i: usize) -> f64 {
        let n = self.series.len() as f64;
        match self.x_axis {
            XAxis::Categories(_) => (0.5 / n).min(0.08) * (i as f64 - (n - 1.0) / 2.0),
            XAxis::Numeric => 0.0,
        }
    }
}

/// Draws the title (bold, centred) and a muted caption line below it.
pub(crate) fn header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    caption: &str,
    scale: f64,
) -> DrawResult<DB> {
    let centre = root.dim_in_pixel().0 as i32 / 2;
    let top = Pos::new(HPos::Center, VPos::Top);
    // Loaded bold from the start: plotters' `FontDesc::style` keeps the regular glyphs.
    let title_style = FontDesc::new(
        FontFamily::Name(FAMILY),
        TITLE_SIZE * scale,
        FontStyle::Bold,
    )
    .color(&INK)
    .pos(top);
    root.draw(&Text::new(title, (centre, px(10.0, scale)), title_style))?;
    let caption_style = font(CAPTION_SIZE, scale).color(&MUTED).pos(top);
    root.draw(&Text::new(
        caption,
        (centre, px(38.0, scale)),
        caption_style,
    ))
}

impl Figure for Chart {
    fn size(&self) -> (u32, u32) {
        (WIDTH, HEIGHT)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        scale: f64,
    ) -> DrawResult<DB> {
        let s = |v: f64| px(v, scale);
        let thin = s(1.0).max(1) as u32;
        header(root, &self.title, &self.caption, scale)?;

        let entries = self.legend();
        let widths: Vec<f64> = entries
            .iter()
            .map(|e| SAMPLE + 8.0 + text_width(&e.label, LABEL_SIZE))
            .collect();
        let rows = wrap(&widths, f64::from(WIDTH) - 2.0 * MARGIN);
        let legend_h = rows.len() as f64 * LEGEND_ROW + 10.0;
        let height = root.dim_in_pixel().1 as i32;
        let (body, legend) = root.split_vertically(height - s(legend_h));

        let body = body.margin(s(HEADER), 0, s(10.0), s(MARGIN));
        let (x_axis, y_axis) = (self.x_axis(), self.y_axis());
        let (x_lo, x_hi) = (x_axis.range.start, x_axis.range.end);
        let mut chart = ChartBuilder::on(&body)
            .x_label_area_size(s(56.0))
            .y_label_area_size(s(78.0))
            .build_cartesian_2d(x_axis, y_axis)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .label_style(font(LABEL_SIZE, scale).color(&INK))
            .axis_desc_style(font(LABEL_SIZE, scale).color(&INK))
            .bold_line_style(GRID.stroke_width(thin))
            .axis_style(INK.stroke_width(thin))
            .set_all_tick_mark_size(s(5.0))
            .draw()?;

        if self.zero_line {
            let style = MUTED.stroke_width(s(2.0) as u32);
            chart.draw_series(LineSeries::new([(x_lo, 0.0), (x_hi, 0.0)], style))?;
        }
        if let Some(g) = &self.guide {
            chart.draw_series(DashedLineSeries::new(
                [(x_lo, g.y), (x_hi, g.y)],
                s(10.0),
                s(6.0),
                MUTED.stroke_width(s(2.0) as u32),
            ))?;
        }
        let radius = s(MARKER_RADIUS);
        for (i, series) in self.series.iter().enumerate() {
            let shift = self.dodge(i);
            let at = |p: &Point| (p.x + shift, p.y);
            let line = series.color.stroke_width(s(2.0) as u32);
            if series.connect {
                chart.draw_series(LineSeries::new(series.points.iter().map(at), line))?;
            }
            let area = chart.plotting_area();
            let cap = s(4.0);
            for p in &series.points {
                if let Some((lo, hi)) = p.bar {
                    let x = p.x + shift;
                    area.draw(&PathElement::new(vec![(x, lo), (x, hi)], line))?;
                    for end in [lo, hi] {
                        let tick = PathElement::new([(-cap, 0), (cap, 0)], line);
                        area.draw(&(EmptyElement::at((x, end)) + tick))?;
                    }
                }
            }
            for p in &series.points {
                draw_marker(area, at(p), series.marker, radius, series.color)?;
            }
        }

        let style = font(LABEL_SIZE, scale)
            .color(&INK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        for (r, row) in rows.iter().enumerate() {
            let y = s(LEGEND_ROW * (r as f64 + 0.5));
            let mut x = MARGIN;
            for &i in row {
                let (left, right) = (s(x), s(x + SAMPLE));
                match entries[i].key {
                    Key::Series {
                        color,
                        marker: kind,
                        line,
                    } => {
                        if line {
                            let stroke = color.stroke_width(s(2.0) as u32);
                            legend.draw(&PathElement::new([(left, y), (right, y)], stroke))?;
                        }
                        draw_marker(&legend, ((left + right) / 2, y), kind, radius, color)?;
                    }
                    Key::Dashed => {
                        let stroke = MUTED.stroke_width(s(2.0) as u32);
                        let dash = (right - left) / 3;
                        legend.draw(&PathElement::new([(left, y), (left + dash, y)], stroke))?;
                        legend.draw(&PathElement::new([(right - dash, y), (right, y)], stroke))?;
                    }
                }
                legend.draw(&Text::new(
                    entries[i].label.as_str(),
                    (s(x + SAMPLE + 8.0), y),
                    style.clone(),
                ))?;
                x += widths[i] + ENTRY_GAP;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::coord::ranged1d::{BoldPoints, LightPoints};

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let (lo, hi, step) = ticks(43.2, 91.7, 6.0);
        assert_eq!(step, 10.0);
        assert_eq!((lo, hi), (40.0, 100.0));
        let (lo, hi, step) = ticks(-0.013, 0.42, 6.0);
        assert_eq!(step, 0.05);
        assert!(lo <= -0.013 && hi >= 0.42);
        assert_eq!(tick_label(0.30000000000000004, 0.1), "0.3");
        assert_eq!(tick_label(-1e-17, 0.1), "0.0");
    }

    #[test]
    fn flat_data_still_gets_a_range() {
        let (lo, hi, _) = ticks(5.0, 5.0, 6.0);
        assert!(lo < 5.0 && hi > 5.0);
    }

    #[test]
    fn category_axis_labels_every_index() {
        let names = ["1".to_string(), "5".into(), "full (≈600/class)".into()];
        let axis = Axis::categories(&names);
        assert_eq!(axis.key_points(BoldPoints(2)), [0.0, 1.0, 2.0]);
        assert!(axis.key_points(LightPoints::new(2, 20)).is_empty());
        assert_eq!(axis.format_ext(&2.0), "full (≈600/class)");
        assert_eq!(axis.map(&-0.5, (100, 400)), 100);
        assert_eq!(axis.map(&2.5, (100, 400)), 400);
    }

    #[test]
    fn legend_wraps_into_rows_that_fit() {
        assert_eq!(wrap(&[100.0, 100.0, 100.0], 1000.0), [vec![0, 1, 2]]);
        // 100 + 22 + 100 fits in 230; a third entry does not.
        assert_eq!(wrap(&[100.0, 100.0, 100.0], 230.0), [vec![0, 1], vec![2]]);
        // An entry wider than the row still gets a row of its own.
        assert_eq!(wrap(&[500.0, 50.0], 230.0), [vec![0], vec![1]]);
        assert!(wrap(&[], 230.0).is_empty());
    }
}
