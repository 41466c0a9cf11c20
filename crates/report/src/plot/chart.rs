//! Line, point and scatter charts with error bars, axes, grid and a legend on the right.

use super::canvas::{BLACK, Canvas, GLYPH, GRID, MUTED, Marker, Rgb};

/// One point: `(x, y)` and an optional `(low, high)` error bar.
pub(crate) struct Point {
    pub x: f64,
    pub y: f64,
    pub bar: Option<(f64, f64)>,
}

pub(crate) struct Series {
    pub label: String,
    pub color: Rgb,
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

pub(crate) struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_axis: XAxis,
    pub series: Vec<Series>,
    /// Draws a horizontal line at y = 0 and keeps 0 in range (for differences).
    pub zero_line: bool,
}

pub(crate) const WIDTH: u32 = 900;
pub(crate) const HEIGHT: u32 = 600;
const TEXT: u32 = 2;
const TOP: i64 = 50;
const BOTTOM: i64 = 75;

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

/// Maps data values onto pixels along one axis.
struct Scale {
    lo: f64,
    hi: f64,
    from: f64,
    to: f64,
}

impl Scale {
    fn at(&self, v: f64) -> f64 {
        self.from + (v - self.lo) / (self.hi - self.lo) * (self.to - self.from)
    }
}

impl Chart {
    fn y_extent(&self) -> (f64, f64) {
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for p in self.series.iter().flat_map(|s| &s.points) {
            let (a, b) = p.bar.unwrap_or((p.y, p.y));
            lo = lo.min(a.min(p.y));
            hi = hi.max(b.max(p.y));
        }
        if self.zero_line {
            lo = lo.min(0.0);
            hi = hi.max(0.0);
        }
        if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) }
    }

    pub fn draw(&self) -> Canvas {
        let mut c = Canvas::new(WIDTH, HEIGHT);
        let longest = self
            .series
            .iter()
            .map(|s| s.label.chars().count())
            .max()
            .unwrap_or(0);
        // Long legend labels drop to 8 px text so the plot keeps most of the width.
        let legend_scale = if longest > 12 { 1 } else { TEXT };
        let legend_w = 50 + i64::from(GLYPH * legend_scale) * longest as i64;
        let right = i64::from(WIDTH) - legend_w - 20;
        let bottom = i64::from(HEIGHT) - BOTTOM;

        let (y_lo, y_hi) = self.y_extent();
        let pad = 0.04 * (y_hi - y_lo);
        let (y_lo, y_hi, y_step) = ticks(y_lo - pad, y_hi + pad, 6.0);
        let y_ticks: Vec<(f64, String)> = (0..=((y_hi - y_lo) / y_step).round() as i64)
            .map(|i| y_lo + i as f64 * y_step)
            .map(|v| (v, tick_label(v, y_step)))
            .collect();
        // The plot starts right of the widest tick label and the turned axis label.
        let widest = y_ticks
            .iter()
            .map(|(_, l)| Canvas::text_width(l, TEXT))
            .max()
            .unwrap_or(0);
        let left = 12 + i64::from(GLYPH * TEXT) + 16 + i64::from(widest);

        c.text_centred(i64::from(WIDTH) / 2, 15, &self.title, TEXT, BLACK);
        c.text_centred((left + right) / 2, bottom + 45, &self.x_label, TEXT, BLACK);
        let y_label_w = i64::from(Canvas::text_width(&self.y_label, TEXT));
        c.text_up(
            12,
            (TOP + bottom) / 2 + y_label_w / 2,
            &self.y_label,
            TEXT,
            BLACK,
        );
        let y = Scale {
            lo: y_lo,
            hi: y_hi,
            from: bottom as f64,
            to: TOP as f64,
        };
        for (v, label) in &y_ticks {
            let py = y.at(*v).round() as i64;
            c.rect(left, py, right, py + 1, GRID);
            let w = i64::from(Canvas::text_width(label, TEXT));
            c.text(left - 8 - w, py - 8, label, TEXT, BLACK);
        }

        let (x, dodge) = self.x_scale(&mut c, left, right, bottom);
        if self.zero_line {
            let py = y.at(0.0);
            c.line((left as f64, py), (right as f64, py), 2, MUTED);
        }
        c.rect(left, TOP, left + 2, bottom, BLACK);
        c.rect(left, bottom - 1, right, bottom + 1, BLACK);

        for (si, s) in self.series.iter().enumerate() {
            let shift = dodge * (si as f64 - (self.series.len() as f64 - 1.0) / 2.0);
            let at = |p: &Point| (x.at(p.x) + shift, y.at(p.y));
            if s.connect {
                for pair in s.points.windows(2) {
                    c.line(at(&pair[0]), at(&pair[1]), 3, s.color);
                }
            }
            for p in &s.points {
                let (px, py) = at(p);
                if let Some((lo, hi)) = p.bar {
                    let (top, bot) = (y.at(hi), y.at(lo));
                    c.line((px, top), (px, bot), 2, s.color);
                    c.line((px - 5.0, top), (px + 5.0, top), 2, s.color);
                    c.line((px - 5.0, bot), (px + 5.0, bot), 2, s.color);
                }
                c.marker((px, py), 5.0, s.marker, s.color);
            }
        }
        self.legend(&mut c, right + 20, legend_scale);
        c
    }

    /// Draws the x ticks and grid; returns the x scale and the per-series dodge in pixels.
    fn x_scale(&self, c: &mut Canvas, left: i64, right: i64, bottom: i64) -> (Scale, f64) {
        match &self.x_axis {
            XAxis::Categories(names) => {
                let n = names.len().max(1) as f64;
                let slot = (right - left) as f64 / n;
                let x = Scale {
                    lo: -0.5,
                    hi: n - 0.5,
                    from: left as f64,
                    to: right as f64,
                };
                for (i, name) in names.iter().enumerate() {
                    let px = x.at(i as f64).round() as i64;
                    c.rect(px, TOP, px + 1, bottom, GRID);
                    c.text_centred(px, bottom + 10, name, TEXT, BLACK);
                }
                // All series of a category stay within 40% of its slot.
                let dodge = (0.4 * slot / self.series.len() as f64).min(8.0);
                (x, dodge)
            }
            XAxis::Numeric => {
                let points = self.series.iter().flat_map(|s| &s.points);
                let lo = points.clone().map(|p| p.x).fold(f64::INFINITY, f64::min);
                let hi = points.map(|p| p.x).fold(f64::NEG_INFINITY, f64::max);
                let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
                let pad = 0.04 * (hi - lo);
                // Fewer ticks until their labels fit side by side.
                let mut target = 6.0;
                let (lo, hi, step) = loop {
                    let (a, b, step) = ticks(lo - pad, hi + pad, target);
                    let n = ((b - a) / step).round() as i64 + 1;
                    let widest = (0..n)
                        .map(|i| Canvas::text_width(&tick_label(a + i as f64 * step, step), TEXT))
                        .max()
                        .unwrap_or(0);
                    if n * (i64::from(widest) + 16) <= right - left || target <= 2.0 {
                        break (a, b, step);
                    }
                    target -= 1.0;
                };
                let x = Scale {
                    lo,
                    hi,
                    from: left as f64,
                    to: right as f64,
                };
                for i in 0..=((hi - lo) / step).round() as i64 {
                    let v = lo + i as f64 * step;
                    let px = x.at(v).round() as i64;
                    c.rect(px, TOP, px + 1, bottom, GRID);
                    c.text_centred(px, bottom + 10, &tick_label(v, step), TEXT, BLACK);
                }
                (x, 0.0)
            }
        }
    }

    fn legend(&self, c: &mut Canvas, left: i64, scale: u32) {
        let row = i64::from(GLYPH * scale) + 10;
        for (i, s) in self.series.iter().enumerate() {
            let cy = TOP + 10 + i as i64 * row;
            if s.connect {
                c.line(
                    (left as f64, cy as f64),
                    (left as f64 + 30.0, cy as f64),
                    3,
                    s.color,
                );
            }
            c.marker((left as f64 + 15.0, cy as f64), 5.0, s.marker, s.color);
            let h = i64::from(GLYPH * scale);
            c.text(left + 40, cy - h / 2, &s.label, scale, BLACK);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
