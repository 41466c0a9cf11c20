//! Perturbations of text: case, typos, truncation. Deterministic per seed; a probability of
//! zero leaves the text unchanged.

use serde::{Deserialize, Serialize};

use loramix_rng::{Rng, example_seed};

/// One text transform, written in suite TOML as `"lowercase"`, `{ typos = 0.05 }`, ...
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TextTransform {
    Lowercase,
    Uppercase,
    /// Flip the case of each letter with this probability.
    RandomCase(f32),
    /// With this probability per letter: swap it with the next character, drop it, double it,
    /// or replace it by a random lowercase letter (one of the four, equally likely).
    Typos(f32),
    /// Keep at most this many characters.
    Truncate(usize),
}

impl TextTransform {
    pub fn apply(&self, text: &str, seed: u64) -> String {
        let mut rng = Rng::new(seed);
        match *self {
            TextTransform::Lowercase => text.to_lowercase(),
            TextTransform::Uppercase => text.to_uppercase(),
            TextTransform::Truncate(n) => text.chars().take(n).collect(),
            TextTransform::RandomCase(p) => text
                .chars()
                .flat_map(|c| {
                    let flip = c.is_alphabetic() && rng.unit() < p;
                    let flipped: Vec<char> = match (flip, c.is_uppercase()) {
                        (false, _) => vec![c],
                        (true, true) => c.to_lowercase().collect(),
                        (true, false) => c.to_uppercase().collect(),
                    };
                    flipped
                })
                .collect(),
            TextTransform::Typos(p) => typos(text, p, &mut rng),
        }
    }
}

/// Applies `transforms` in order; transform `i` draws from its own stream of `seed`.
pub fn apply_text_transforms(transforms: &[TextTransform], text: &str, seed: u64) -> String {
    transforms
        .iter()
        .enumerate()
        .fold(text.to_owned(), |t, (i, tr)| {
            tr.apply(&t, example_seed(seed, i))
        })
}

fn typos(text: &str, p: f32, rng: &mut Rng) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !c.is_alphabetic() || rng.unit() >= p {
            out.push(c);
            i += 1;
            continue;
        }
        match rng.below(4) {
            0 if i + 1 < chars.len() => {
                out.push(chars[i + 1]);
                out.push(c);
                i += 1;
            }
            1 => {}
            2 => {
                out.push(c);
                out.push(c);
            }
            _ => out.push(char::from(b'a' + rng.below(26) as u8)),
        }
        i += 1;
    }
    out
}
