//! Tests for candidates scored on one shared set of examples (what `loramix compose` compares):
//! an interval for each accuracy, and an exact paired test of two candidates.

use statrs::distribution::{Binomial, ContinuousCDF, DiscreteCDF, Normal};

/// The Wilson score 95% interval of an accuracy of `correct` out of `n` (`n > 0`): unlike the
/// normal ("Wald") interval it stays inside [0, 1] and keeps its coverage near 0 and 1, where
/// few-shot candidates often are.
pub fn wilson_interval(correct: usize, n: usize) -> (f64, f64) {
    assert!(n > 0 && correct <= n, "{correct} correct out of {n}");
    let z = Normal::standard().inverse_cdf(0.975);
    let (n, p) = (n as f64, correct as f64 / n as f64);
    let centre = p + z * z / (2.0 * n);
    let spread = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    let scale = 1.0 + z * z / n;
    (
        ((centre - spread) / scale).max(0.0),
        ((centre + spread) / scale).min(1.0),
    )
}

/// The two-sided p-value of McNemar's exact test: of the examples exactly one of two candidates
/// gets right, `only_a` are A's and `only_b` are B's; under "equally accurate" each is A's with
/// probability 1/2. Examples both get right (or wrong) say nothing about the difference.
pub fn mcnemar_exact(only_a: usize, only_b: usize) -> f64 {
    let n = only_a + only_b;
    if n == 0 {
        return 1.0;
    }
    let tail = Binomial::new(0.5, n as u64)
        .expect("p = 0.5 is a probability")
        .cdf(only_a.min(only_b) as u64);
    (2.0 * tail).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values from statsmodels 0.14 (`proportion_confint(c, n, method="wilson")` and
    /// `mcnemar([[0, b], [c, 0]], exact=True).pvalue`), computed apart from this code.
    #[test]
    fn intervals_and_p_values_match_statsmodels() {
        let wilson = [
            ((0, 10), (0.0, 0.2775327999)),
            ((10, 10), (0.7224672001, 1.0)),
            ((41, 90), (0.3565961691, 0.5581536643)),
            ((54, 90), (0.4967030736, 0.6951098012)),
            ((730, 1000), (0.7016420587, 0.7565976324)),
            ((1, 3), (0.0614919447, 0.7923403992)),
        ];
        for ((correct, n), (low, high)) in wilson {
            let (l, h) = wilson_interval(correct, n);
            assert!(
                (l - low).abs() < 1e-9 && (h - high).abs() < 1e-9,
                "{correct}/{n}: ({l}, {h}), statsmodels ({low}, {high})"
            );
        }
        let mcnemar = [
            ((14, 1), 0.0009765625),
            ((5, 3), 0.7265625),
            ((0, 0), 1.0),
            ((0, 7), 0.015625),
            ((120, 90), 0.045114087865),
            ((1, 0), 1.0),
        ];
        for ((a, b), p) in mcnemar {
            let got = mcnemar_exact(a, b);
            assert!((got - p).abs() < 1e-9, "{a} vs {b}: {got}, statsmodels {p}");
            assert_eq!(got, mcnemar_exact(b, a), "the test is symmetric");
        }
    }
}
