//! Colours and markers. Okabe & Ito's palette stays distinguishable under the common colour
//! blindnesses; past eight series the marker shape still tells them apart.

use super::canvas::{Marker, Rgb};

const OKABE_ITO: [Rgb; 8] = [
    [0, 0, 0],       // black
    [230, 159, 0],   // orange
    [86, 180, 233],  // sky blue
    [0, 158, 115],   // bluish green
    [0, 114, 178],   // blue
    [213, 94, 0],    // vermillion
    [204, 121, 167], // reddish purple
    [240, 228, 66],  // yellow, last: faint on white
];

const MARKERS: [Marker; 5] = [
    Marker::Circle,
    Marker::Square,
    Marker::Triangle,
    Marker::Diamond,
    Marker::Cross,
];

/// The colour and marker of series `i`; callers index by a method's place in the global method
/// order so a method looks the same in every plot.
pub(crate) fn style(i: usize) -> (Rgb, Marker) {
    (
        OKABE_ITO[i % OKABE_ITO.len()],
        MARKERS[(i / OKABE_ITO.len() + i) % MARKERS.len()],
    )
}

/// Viridis, sampled at five stops and interpolated: perceptually ordered and colour-blind safe.
pub(crate) fn viridis(t: f64) -> Rgb {
    const STOPS: [Rgb; 5] = [
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
    [mix(0), mix(1), mix(2)]
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
        assert_eq!(viridis(0.0), [68, 1, 84]);
        assert_eq!(viridis(1.0), [253, 231, 37]);
    }
}
