//! Near-copy texts: the Jaccard similarity of normalised character shingles, found through
//! MinHash signatures bucketed by LSH bands and confirmed exactly on the candidates.
//!
//! Character 5-shingles rather than word 3-shingles: most texts here are short (WordNet glosses
//! and tweets have a median of 11 and 16 words), and a word shingle set of a short text loses
//! three of its few shingles to one changed word, so two glosses that differ by one typo would
//! fall far below any threshold; character shingles degrade by the changed characters only,
//! and need no separate rule for texts of fewer than three words.

use std::collections::BTreeMap;

use crate::near::{candidates, mix, parallel_map};

/// Jaccard similarity of the shingle sets from which two texts are near copies.
const THRESHOLD: f64 = 0.8;

/// Characters per shingle.
const SHINGLE: usize = 5;

/// The rule in words, for messages.
pub(crate) const RULE: &str = "Jaccard similarity of normalised character 5-shingles at least 0.8";

/// Bands of [`ROWS`] MinHash values: a pair at Jaccard 0.8 shares a band with probability
/// 1 - (1 - 0.8^6)^21 = 0.998, one at 0.3 with probability 0.015.
const BANDS: usize = 21;
const ROWS: usize = 6;
const HASHES: usize = BANDS * ROWS;

/// Candidates whose signatures agree on fewer than this share of the bins are not compared
/// exactly: at the threshold the share is this far below it with probability under 1e-6 (126
/// bins, standard deviation 0.036).
const ESTIMATE_FLOOR: f64 = THRESHOLD - 0.2;

/// Lower case, every run of characters that are not letters or digits one space, trimmed:
/// copies that differ in case, punctuation, spacing or line breaks normalise alike.
fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut push = |c: char, keep: bool| match keep {
        true => out.push(c),
        false if !out.is_empty() && !out.ends_with(' ') => out.push(' '),
        false => {}
    };
    for c in text.chars() {
        // ASCII first: most of the corpora, and ten times faster than the Unicode tables.
        if c.is_ascii() {
            push(c.to_ascii_lowercase(), c.is_ascii_alphanumeric());
        } else {
            c.to_lowercase().for_each(|l| push(l, l.is_alphanumeric()));
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// Hashes of the character [`SHINGLE`]-grams of a normalised text (one, of the whole text,
/// when it is shorter); repeats included.
fn shingles(normal: &str) -> impl Iterator<Item = u64> + '_ {
    let span = SHINGLE.min(normal.chars().count());
    let starts = normal.char_indices().map(|(i, _)| i);
    let ends = (normal.char_indices().map(|(i, _)| i))
        .chain([normal.len()])
        .skip(span);
    (starts.zip(ends)).map(move |(from, to)| hash(&normal.as_bytes()[from..to]))
}

/// The shingle set of a text, sorted: what the Jaccard similarity is measured on.
fn shingle_set(text: &str) -> Vec<u64> {
    let mut set: Vec<u64> = shingles(&normalise(text)).collect();
    set.sort_unstable();
    set.dedup();
    set
}

/// FNV-1a, spread: fixed on every machine, unlike std's hasher.
fn hash(bytes: &[u8]) -> u64 {
    mix(bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    }))
}

/// `x`'s high 32 bits scaled into `0..HASHES`.
fn bin_of(x: u64) -> usize {
    (((x >> 32) * HASHES as u64) >> 32) as usize
}

/// A one-permutation MinHash signature (Li, Owen & Zhang 2012): each shingle falls in one of
/// [`HASHES`] bins by its hash's high bits, and each bin keeps the smallest low bits. One hash
/// per shingle rather than one per shingle and bin: the spam corpus alone has 21 M shingles.
/// Empty bins borrow from the first filled bin of a fixed probe sequence ("optimal
/// densification", Shrivastava 2017), so two texts still agree on a bin with probability equal
/// to their Jaccard similarity. `None` for a text without shingles.
fn signature(text: &str) -> Option<[u32; HASHES]> {
    let mut bins = [u32::MAX; HASHES];
    let mut filled = [false; HASHES];
    for x in shingles(&normalise(text)) {
        let bin = bin_of(x);
        bins[bin] = bins[bin].min(x as u32);
        filled[bin] = true;
    }
    if !filled.contains(&true) {
        return None;
    }
    let own = bins;
    for (bin, value) in bins.iter_mut().enumerate() {
        if !filled[bin] {
            let mut probes = (1u64..).map(|probe| bin_of(mix(((bin as u64) << 32) | probe)));
            *value = own[probes.find(|&b| filled[b]).unwrap_or(bin)];
        }
    }
    Some(bins)
}

/// Pairs `(i, j)`, `i < j`, of `texts` whose shingle sets have a Jaccard similarity of at
/// least [`THRESHOLD`].
pub(crate) fn near_copies(texts: &[&str]) -> Vec<(usize, usize)> {
    let signatures = parallel_map(texts.len(), |i| signature(texts[i]));
    let band_key = |i: usize, band: usize| {
        let rows = &signatures[i].as_ref()?[band * ROWS..(band + 1) * ROWS];
        Some(rows.iter().fold(band as u64, |h, &r| mix(h ^ u64::from(r))))
    };
    let agreeing = |i: usize, j: usize| match (&signatures[i], &signatures[j]) {
        (Some(a), Some(b)) => a.iter().zip(b).filter(|(x, y)| x == y).count(),
        _ => 0,
    };
    let likely: Vec<(usize, usize)> = (candidates(texts.len(), BANDS, band_key).into_iter())
        .map(|(i, j)| (i as usize, j as usize))
        .filter(|&(i, j)| agreeing(i, j) as f64 >= ESTIMATE_FLOOR * HASHES as f64)
        .collect();
    // Each text's set once, however many candidates it is in (a spam campaign can be hundreds).
    let members: Vec<usize> = (likely.iter().flat_map(|&(i, j)| [i, j]))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let sets: BTreeMap<usize, Vec<u64>> = members
        .iter()
        .copied()
        .zip(parallel_map(members.len(), |m| {
            shingle_set(texts[members[m]])
        }))
        .collect();
    (likely.into_iter())
        .filter(|(i, j)| jaccard(&sets[i], &sets[j]) >= THRESHOLD)
        .collect()
}

/// |a ∩ b| / |a ∪ b| of two sorted, deduplicated sets.
fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    let (mut i, mut j, mut both) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                both += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - both;
    if union == 0 {
        1.0
    } else {
        both as f64 / union as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTICE: &str = "The committee met on Tuesday to discuss the budget for the coming \
        year, and after a long debate agreed that the library would stay open on Sundays while \
        the swimming pool closes for repairs in March.";

    #[test]
    fn a_copy_with_one_word_changed_is_a_near_copy() {
        let changed = NOTICE.replace("Tuesday", "Wednesday");
        let reformatted = NOTICE.to_uppercase().replace(", ", " -- ");
        let texts = [NOTICE, "an unrelated line", &changed, &reformatted];
        assert_eq!(near_copies(&texts), [(0, 2), (0, 3), (2, 3)]);
        let similarity = jaccard(&shingle_set(NOTICE), &shingle_set(&changed));
        assert!((THRESHOLD..0.95).contains(&similarity), "{similarity}");
    }

    #[test]
    fn texts_on_one_subject_in_other_words_or_a_few_words_apart_are_not() {
        let other = "On Tuesday the committee debated next year's budget at length; the \
            library will now open on Sundays, and the pool shuts in March for repairs.";
        let half = NOTICE.split(", and").next().unwrap_or_default();
        // Three words of forty changed: another notice on the same template.
        let three = (NOTICE.replace("Tuesday", "Monday").replace("long", "short"))
            .replace("library", "museum");
        assert_eq!(near_copies(&[NOTICE, other, half, &three]), []);
        let similarity = |text: &str| jaccard(&shingle_set(NOTICE), &shingle_set(text));
        assert!(
            (0.7..THRESHOLD).contains(&similarity(&three)),
            "{}",
            similarity(&three)
        );
        assert!(similarity(half) < 0.4 && similarity(other) < 0.3);
    }

    #[test]
    fn a_short_text_with_a_typo_is_a_near_copy() {
        // A word shingle set would lose 3 of the gloss's 11 shingles to one typo (Jaccard 0.57).
        let gloss = "a game in which a pitcher allows the opposing team only one hit";
        let typo = gloss.replace("pitcher", "pitchre");
        assert_eq!(near_copies(&[gloss, &typo, "a game"]), [(0, 1)]);
    }

    #[test]
    fn the_rule_in_words_says_the_constants() {
        assert!(RULE.contains(&format!("{SHINGLE}-shingles at least {THRESHOLD}")));
    }

    #[test]
    fn normalising_ignores_case_punctuation_and_spacing() {
        assert_eq!(normalise("  Hello,\n\tWORLD!! ok "), "hello world ok");
        assert_eq!(normalise("?!"), "");
        assert!(shingle_set("?!").is_empty());
        assert_eq!(shingle_set("Hi!"), shingle_set("hi"));
    }
}
