//! How far the score table can be trusted: each candidate's accuracy with its 95% interval, and
//! an exact paired test of the composition against the base and against the best single
//! adapter, all on the same examples, ending in one plain sentence.

use loramix_report::paired::{mcnemar_exact, wilson_interval};
use serde::Serialize;

/// The level the verdict's tests are read at.
const LEVEL: f64 = 0.05;

/// Interval half-widths (points) above which a difference the tests cannot see is blamed on the
/// size of the scored set rather than on the candidates being alike.
const TOO_WIDE: f64 = 2.5;

/// One scored candidate.
#[derive(Debug, Clone, Serialize)]
pub struct Score {
    pub candidate: String,
    pub accuracy: f64,
    pub correct: usize,
    /// Wilson 95% interval of the accuracy.
    pub interval: (f64, f64),
    /// Per scored example, whether the candidate got it right (what the paired tests compare).
    #[serde(skip)]
    pub hits: Vec<bool>,
}

impl Score {
    /// The score of a candidate that got `hits` right (one per scored example, at least one).
    pub fn new(candidate: String, hits: Vec<bool>) -> Self {
        let correct = hits.iter().filter(|&&hit| hit).count();
        Self {
            candidate,
            accuracy: correct as f64 / hits.len() as f64,
            correct,
            interval: wilson_interval(correct, hits.len()),
            hits,
        }
    }
}

/// McNemar's exact test of the composition against one other candidate.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub against: String,
    /// Examples only the composition gets right.
    pub only_composition: usize,
    /// Examples only the other candidate gets right.
    pub only_other: usize,
    /// Two-sided.
    pub p: f64,
}

impl Comparison {
    fn of(composition: &Score, other: &Score) -> Self {
        let pairs = composition.hits.iter().zip(&other.hits);
        let only_composition = pairs.clone().filter(|&(&c, &o)| c && !o).count();
        let only_other = pairs.filter(|&(&c, &o)| !c && o).count();
        Self {
            against: other.candidate.clone(),
            only_composition,
            only_other,
            p: mcnemar_exact(only_composition, only_other),
        }
    }

    /// "beats", "does not beat" or "is worse than", at the verdict's level.
    fn outcome(&self) -> &'static str {
        match (self.p < LEVEL, self.only_composition > self.only_other) {
            (true, true) => "beats",
            (true, false) => "is worse than",
            (false, _) => "does not beat",
        }
    }
}

/// The composition judged against the base and the best single adapter.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub against_base: Comparison,
    /// Against the adapter alone that scored best on these same examples (picked on them, which
    /// favours it).
    pub against_best_adapter: Comparison,
    /// The one plain sentence the table ends with.
    pub line: String,
    /// When the scored set is too small to separate what the tests compared.
    pub warnings: Vec<String>,
}

impl Verdict {
    /// `composition` against `base` and the best of `adapters` (the first on a tie); `scored_on`
    /// names the examples ("validation" or "training").
    pub fn judge(base: &Score, adapters: &[Score], composition: &Score, scored_on: &str) -> Self {
        let best = adapters
            .iter()
            .reduce(|best, a| if a.correct > best.correct { a } else { best })
            .expect("compose has at least one adapter");
        let against_base = Comparison::of(composition, base);
        let against_best_adapter = Comparison::of(composition, best);
        let n = composition.hits.len();
        let optimistic = match scored_on {
            "training" => " (the heads were fitted on them: optimistic)",
            _ => "",
        };
        let line = format!(
            "the composition {} the base (p = {}) and {} the best single adapter, {} (p = {}), on {n} {scored_on} examples{optimistic}",
            against_base.outcome(),
            p_value(against_base.p),
            against_best_adapter.outcome(),
            best.candidate,
            p_value(against_best_adapter.p),
        );
        let half_width = 50.0 * (composition.interval.1 - composition.interval.0);
        let warnings = [&against_base, &against_best_adapter]
            .into_iter()
            // No discordant example: the two agree everywhere, nothing to separate.
            .filter(|c| {
                c.p >= LEVEL && half_width > TOO_WIDE && c.only_composition + c.only_other > 0
            })
            .map(|c| too_small(c, n, half_width, scored_on))
            .collect();
        Self {
            against_base,
            against_best_adapter,
            line,
            warnings,
        }
    }
}

fn too_small(c: &Comparison, n: usize, half_width: f64, scored_on: &str) -> String {
    format!(
        "{n} {scored_on} examples cannot separate the composition from {}: they differ on only {} examples ({} vs {}), and a 95% interval is about ±{half_width:.0} points wide; more {scored_on} examples would tell them apart",
        c.against,
        c.only_composition + c.only_other,
        c.only_composition,
        c.only_other,
    )
}

fn p_value(p: f64) -> String {
    match p < 0.001 {
        true => "<0.001".into(),
        false => format!("{p:.3}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(name: &str, hits: &[u8]) -> Score {
        Score::new(name.into(), hits.iter().map(|&h| h == 1).collect())
    }

    #[test]
    fn the_verdict_counts_discordant_pairs_and_picks_the_best_adapter() {
        // 20 examples: the composition gets 18, the base 6, adapter b 17, adapter a 10.
        let composition = score(
            "c",
            &[1; 18].iter().chain(&[0; 2]).copied().collect::<Vec<_>>(),
        );
        let base = score("base", &[[1; 6].as_slice(), &[0; 14]].concat());
        let a = score("a alone", &[[0; 10].as_slice(), &[1; 10]].concat());
        let b = score(
            "b alone",
            &[[1; 16].as_slice(), &[0; 2], &[1; 1], &[0; 1]].concat(),
        );
        let verdict = Verdict::judge(&base, &[a, b], &composition, "validation");
        let base_vs = &verdict.against_base;
        assert_eq!((base_vs.only_composition, base_vs.only_other), (12, 0));
        assert_eq!(base_vs.p, mcnemar_exact(12, 0));
        let best = &verdict.against_best_adapter;
        assert_eq!(best.against, "b alone");
        assert_eq!((best.only_composition, best.only_other), (2, 1));
        assert!(verdict.line.starts_with(
            "the composition beats the base (p = <0.001) and does not beat the best single adapter, b alone (p = 1.000), on 20 validation examples"
        ), "{}", verdict.line);
        assert_eq!(verdict.warnings.len(), 1, "{:?}", verdict.warnings);
        assert!(verdict.warnings[0].contains("cannot separate the composition from b alone"));
    }

    #[test]
    fn candidates_that_agree_on_every_example_get_no_warning() {
        let hits = [[1; 9].as_slice(), &[0; 11]].concat();
        let verdict = Verdict::judge(
            &score("base", &hits),
            &[score("a alone", &hits)],
            &score("c", &hits),
            "validation",
        );
        assert!(verdict.warnings.is_empty(), "{:?}", verdict.warnings);
        assert!(verdict.line.contains("does not beat the base (p = 1.000)"));
    }

    #[test]
    fn a_significantly_worse_composition_is_called_so() {
        let composition = score("c", &[[0; 12].as_slice(), &[1; 8]].concat());
        let base = score("base", &[1; 20]);
        let verdict = Verdict::judge(&base, std::slice::from_ref(&base), &composition, "training");
        assert!(
            verdict.line.contains("is worse than the base"),
            "{}",
            verdict.line
        );
        assert!(verdict.line.ends_with("optimistic)"), "{}", verdict.line);
    }
}
