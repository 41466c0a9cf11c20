//! Near-copy images: two images of one shape are near copies when at most [`MAX_CHANGED`] of
//! their pixel values differ by more than [`TOLERANCE`], as for an image with a few pixels
//! edited, or saved again with a little noise. Candidates come from locality-sensitive hashing
//! by pixel sampling: each of [`TABLES`] tables keys an image by [`SAMPLES`] of its values,
//! quantised.
//!
//! Not a perceptual hash of a small thumbnail: on 28x28 grey digits and garments a 64-bit
//! difference hash (9x8 thumbnail) puts 4,262 pairs of distinct MNIST digits, and 259,904
//! Fashion-MNIST pairs, at distance 0 (measured on the fetched data), so any threshold that
//! caught an edited copy would flag thousands of different digits written alike.

use loramix_rng::Rng;

use crate::near::{candidates, mix, parallel_map};

/// A pixel value differing by more than this (about 26 of 255) counts as changed.
const TOLERANCE: f32 = 0.1;

/// The share of pixel values that may change in a near copy: 7 of a 28x28 image's 784. The
/// closest distinct images of the fetched data differ in more: 20 for MNIST digits, 14 for the
/// upsampled 8x8 digits.
const MAX_CHANGED: f64 = 0.01;

/// The rule in words, for messages.
pub(crate) const RULE: &str = "at most 1% of pixel values differ by more than 0.1";

/// Tables of [`SAMPLES`] values each: an image with 1% of its values changed keeps all of one
/// table's samples with probability 0.99^48 = 0.62, and shares at least one of 48 tables with
/// its original all but surely (1 - 0.38^48). Two images 10% apart share a table with
/// probability 0.0064 each.
const TABLES: usize = 48;
const SAMPLES: usize = 48;

/// The quantisation step of a sampled value: coarse enough that a value moved a little
/// (noise, re-encoding) mostly keeps its level, fine enough that garments of one outline but
/// different shading get different keys (thresholding to one bit gave 9 million candidate
/// pairs on Fashion-MNIST, these levels 34 thousand).
const STEP: f32 = 0.2;

/// What each table samples of images of `len` values: the positions (all of them for a
/// smaller image) and the offset of its quantisation grid. Fixed by the seed.
fn tables(len: usize) -> Vec<(Vec<usize>, f32)> {
    let mut rng = Rng::new(0x6E65_6172_2D69_6D67 ^ len as u64); // "near-img"
    (0..TABLES)
        .map(|_| {
            let mut positions: Vec<usize> = (0..len).collect();
            let take = SAMPLES.min(len);
            for at in 0..take {
                positions.swap(at, at + rng.below(len - at));
            }
            positions.truncate(take);
            (positions, rng.unit())
        })
        .collect()
}

/// The bucket of `image` in each table. (Values are not negative, so `as` floors them: a
/// call to `floor` cost more than the rest of the key on x86-64's baseline instructions.)
fn keys(image: &[f32], tables: &[(Vec<usize>, f32)]) -> Vec<u64> {
    (tables.iter().enumerate())
        .map(|(t, (positions, offset))| {
            let levels = positions.iter().map(|&p| {
                image
                    .get(p)
                    .map_or(u64::MAX, |v| (v * (1.0 / STEP) + offset) as u64)
            });
            mix(levels.fold(t as u64, |h, level| {
                (h ^ level).wrapping_mul(0x0000_0100_0000_01b3)
            }))
        })
        .collect()
}

/// Whether at most `most` values of `a` and `b` differ by more than [`TOLERANCE`] (stops at
/// the first value beyond: distinct images are told apart within a few dozen values).
fn near(a: &[f32], b: &[f32], most: usize) -> bool {
    let mut changed = 0;
    for (x, y) in a.iter().zip(b) {
        if (x - y).abs() > TOLERANCE {
            changed += 1;
            if changed > most {
                return false;
            }
        }
    }
    a.len() == b.len()
}

/// Whether `pixels` (`channels` planes) is a near copy of a plain canvas: at most
/// [`MAX_CHANGED`] of its values differ by more than [`TOLERANCE`] from their plane's median
/// (the background). Any two such images are near copies of each other, whatever they hold, so
/// one in a downstream task would be refused as a copy of one that an upstream task trains on.
pub(crate) fn is_blank(pixels: &[f32], channels: usize) -> bool {
    let plane = (pixels.len() / channels.max(1)).max(1);
    let canvas: Vec<f32> = (pixels.chunks(plane))
        .flat_map(|values| {
            let mut sorted = values.to_vec();
            sorted.sort_unstable_by(f32::total_cmp);
            std::iter::repeat_n(sorted[sorted.len() / 2], values.len())
        })
        .collect();
    near(
        pixels,
        &canvas,
        (MAX_CHANGED * pixels.len() as f64) as usize,
    )
}

/// Pairs `(i, j)`, `i < j`, of `images` (pixel values) that are near copies: only images of
/// one size can be (sources kept at different sizes are screened size by size, so the short
/// ones do not all share the buckets of positions they lack).
pub(crate) fn near_copies(images: &[&[f32]]) -> Vec<(usize, usize)> {
    let mut by_len: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, image) in images.iter().enumerate() {
        by_len.entry(image.len()).or_default().push(i);
    }
    let mut pairs: Vec<(usize, usize)> = (by_len.values())
        .flat_map(|at| {
            let group: Vec<&[f32]> = at.iter().map(|&i| images[i]).collect();
            let found = near_copies_of_one_size(&group);
            found
                .into_iter()
                .map(|(i, j)| (at[i], at[j]))
                .collect::<Vec<_>>()
        })
        .collect();
    pairs.sort_unstable();
    pairs
}

/// [`near_copies`] among images of one size.
fn near_copies_of_one_size(images: &[&[f32]]) -> Vec<(usize, usize)> {
    let len = images.iter().map(|i| i.len()).max().unwrap_or(0);
    let tables = tables(len);
    let keys = parallel_map(images.len(), |i| keys(images[i], &tables));
    let most = (MAX_CHANGED * len as f64) as usize;
    (candidates(images.len(), TABLES, |i, t| Some(keys[i][t])).into_iter())
        .map(|(i, j)| (i as usize, j as usize))
        .filter(|&(i, j)| near(images[i], images[j], most))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 28x28 stroke: ink on a slanted band whose slope and offset are given.
    fn stroke(slope: f32, offset: f32) -> Vec<f32> {
        (0..784)
            .map(|i| {
                let (y, x) = ((i / 28) as f32, (i % 28) as f32);
                let distance = (x - slope * y - offset).abs();
                (1.0 - distance / 2.0).clamp(0.0, 1.0)
            })
            .collect()
    }

    #[test]
    fn an_image_with_a_few_pixels_changed_is_a_near_copy() {
        let original = stroke(0.3, 6.0);
        let mut edited = original.clone();
        for at in [5, 300, 301, 777] {
            edited[at] = 1.0 - edited[at];
        }
        let noisy: Vec<f32> = (original.iter().enumerate())
            .map(|(i, p)| (p + 0.03 * ((i * 7 % 5) as f32 - 2.0)).clamp(0.0, 1.0))
            .collect();
        let images = [&original[..], &stroke(0.0, 20.0), &edited, &noisy];
        assert_eq!(near_copies(&images), [(0, 2), (0, 3), (2, 3)]);
    }

    #[test]
    fn images_of_two_sizes_are_screened_size_by_size() {
        let original = stroke(0.3, 6.0);
        let mut edited = original.clone();
        edited[300] = 1.0 - edited[300];
        // The same strokes at 14x14 (every other pixel of every other row).
        let small = |image: &[f32]| -> Vec<f32> {
            (0..196)
                .map(|i| image[(i / 14) * 56 + (i % 14) * 2])
                .collect()
        };
        let (small_original, small_edited) = (small(&original), small(&edited));
        let other = stroke(0.0, 20.0);
        let images = [
            &original[..],
            &small_original,
            &other,
            &edited,
            &small_edited,
        ];
        assert_eq!(near_copies(&images), [(0, 3), (1, 4)]);
    }

    #[test]
    fn a_canvas_with_a_few_marks_is_blank_on_any_background() {
        for background in [1.0, 0.0, 0.4] {
            let mut canvas = vec![background; 3 * 784];
            // 23 of 2352 values (1%) marked: still blank; one more is not.
            for at in (0..23).map(|i| i * 97) {
                canvas[at] = 1.0 - background;
            }
            assert!(is_blank(&canvas, 3), "background {background}");
            canvas[2351] = 1.0 - background;
            assert!(!is_blank(&canvas, 3), "background {background}");
        }
        assert!(!is_blank(&stroke(0.3, 6.0), 1));
    }

    #[test]
    fn the_rule_in_words_says_the_constants() {
        let words = format!(
            "{}% of pixel values differ by more than {TOLERANCE}",
            MAX_CHANGED * 100.0
        );
        assert!(RULE.contains(&words), "{words}");
    }

    #[test]
    fn strokes_a_pixel_apart_are_not() {
        let images = [stroke(0.3, 6.0), stroke(0.3, 7.0), stroke(0.35, 6.0)];
        let refs: Vec<&[f32]> = images.iter().map(|i| i.as_slice()).collect();
        assert_eq!(near_copies(&refs), []);
        // Not only unbucketed: told apart when compared.
        let most = (MAX_CHANGED * 784.0) as usize;
        assert!(!near(refs[0], refs[1], most) && !near(refs[0], refs[2], most));
    }
}
