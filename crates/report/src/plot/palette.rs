//! Colours and markers. Okabe & Ito's palette stays distinguishable under the common colour
//! blindnesses; past eight series the marker shape still tells them apart.

use plotters::style::RGBColor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
    Cross,
}

const OKABE_ITO: [RGBColor; 8] = [
    RGBColor(0, 0, 0),       // black
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(240, 228, 66),  // yellow, last: faint on white
];

pub(crate) const MARKERS: [Marker; 5] = [
    Marker::Circle,
    Marker::Square,
    Marker::Triangle,
    Marker::Diamond,
    Marker::Cross,
];

/// Text, axes and the zero line.
pub(crate) const INK: RGBColor = RGBColor(0, 0, 0);
/// Captions and reference lines: present but quieter than the data.
pub(crate) const MUTED: RGBColor = RGBColor(110, 110, 110);
/// Grid lines and heat-map cells without a value.
pub(crate) const GRID: RGBColor = RGBColor(225, 225, 225);

/// The colour and marker of series `i`; callers index by a method's place in the global method
/// order so a method looks the same in every plot.
pub(crate) fn style(i: usize) -> (RGBColor, Marker) {
    (
        OKABE_ITO[i % OKABE_ITO.len()],
        MARKERS[(i / OKABE_ITO.len() + i) % MARKERS.len()],
    )
}

/// Viridis, sampled at five stops and interpolated: perceptually ordered and colour-blind safe.
pub(crate) fn viridis(t: f64) -> RGBColor {
    const STOPS: [[u8; 3]; 5] = [
        [68, 1, 84],
        [59, 82, 139],
        [33, 145, 140],
        [94, 201, 98],
        [253, 231, 37],
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let mix =
        |c: usize| (STOPS[i][c] as f64 * (1.0 - f) + STOPS[i + 1][c] as f64 * f).round() as u8;
    RGBColor(mix(0), mix(1), mix(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_eight_styles_differ_in_colour_and_later_ones_in_marker() {
        let styles: Vec<_> = (0..16).map(style).collect();
        for i in 0..16 {
            for j in 0..i {
                assert_ne!(styles[i], styles[j], "series {i} and {j} look the same");
            }
        }
    }

    #[test]
    fn viridis_ends() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
    }
}
