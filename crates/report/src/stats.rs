//! Means with intervals, Holm's correction, medians and Spearman's rank correlation.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// The 0.975 quantile of Student's t with `df >= 1` degrees of freedom, computed exactly (by
/// statrs' inverse regularised incomplete beta): a table with a normal fallback past 30 df
/// understates it (1.96 against 2.04 at 31 df).
pub(crate) fn t_975(df: usize) -> f64 {
    StudentsT::new(0.0, 1.0, df as f64)
        .expect("df >= 1")
        .inverse_cdf(0.975)
}

/// The mean of a cell and its 95% interval (`None` for a single value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Estimate {
    pub mean: f64,
    /// `(low, high)`; symmetric for a t interval, not in general for a bootstrap one.
    pub interval: Option<(f64, f64)>,
    pub n: usize,
}

impl Estimate {
    /// Mean and Student-t interval over `values` with n - 1 degrees of freedom; `None` if
    /// empty. Right for independent runs (the seeds of one task), not for pooled tasks.
    pub fn t(values: &[f64]) -> Option<Estimate> {
        let n = values.len();
        let mean = mean(values)?;
        let interval = (n > 1).then(|| {
            let h = t_975(n - 1) * (sample_variance(values, mean) / n as f64).sqrt();
            (mean - h, mean + h)
        });
        Some(Estimate { mean, interval, n })
    }

    /// [`Estimate::t`] widened by the sampling of the one fixed test split of
    /// `test_examples` that every run was scored on: its binomial variance p(1 - p)/n at the
    /// mean accuracy p, an upper bound on what it adds to a mean over seeds (runs that err on
    /// the same examples add less), summed with the seeds' variance of the mean. The quantile
    /// is t's with n - 1 degrees of freedom (the normal one for a single run). `values` are
    /// accuracies in percent.
    pub fn t_with_test(values: &[f64], test_examples: usize) -> Option<Estimate> {
        let n = values.len();
        let mean = mean(values)?;
        let p = (mean / 100.0).clamp(0.0, 1.0);
        let test_var = 100.0 * 100.0 * p * (1.0 - p) / test_examples as f64;
        let (seeds_var, quantile) = match n {
            1 => (0.0, normal_975()),
            _ => (sample_variance(values, mean) / n as f64, t_975(n - 1)),
        };
        let h = quantile * (seeds_var + test_var).sqrt();
        Some(Estimate {
            mean,
            interval: Some((mean - h, mean + h)),
            n,
        })
    }
}

/// The unbiased variance of `values` (at least two) around their `mean`.
fn sample_variance(values: &[f64], mean: f64) -> f64 {
    values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (values.len() - 1) as f64
}

/// The 0.975 quantile of the standard normal.
fn normal_975() -> f64 {
    statrs::distribution::Normal::standard().inverse_cdf(0.975)
}

/// A one-sample t test of "the mean is 0": the estimate with its t interval, and the two-sided
/// p-value with n - 1 degrees of freedom.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TTest {
    pub estimate: Estimate,
    pub p: f64,
}

/// `None` with fewer than two values. Values without spread give p = 0 (1 if all are 0).
pub(crate) fn t_test(values: &[f64]) -> Option<TTest> {
    let estimate = Estimate::t(values)?;
    let (low, high) = estimate.interval?;
    let se = (high - low) / 2.0 / t_975(estimate.n - 1);
    let p = match (se > 0.0, estimate.mean == 0.0) {
        (true, _) => {
            let t = StudentsT::new(0.0, 1.0, (estimate.n - 1) as f64).expect("n >= 2");
            2.0 * t.cdf(-(estimate.mean / se).abs())
        }
        (false, true) => 1.0,
        (false, false) => 0.0,
    };
    Some(TTest { estimate, p })
}

/// Holm's step-down adjustment of `p` (same order out as in): the i-th smallest of m p-values
/// is multiplied by m - i + 1, made monotone, and capped at 1. Controls the chance of any
/// false "significant" among all m at the level used, whatever their dependence.
pub(crate) fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// A p-value as the summary prints it: three decimals, `<0.001` below that.
pub(crate) fn p_value(p: f64) -> String {
    match p < 0.001 {
        true => "<0.001".into(),
        false => format!("{p:.3}"),
    }
}

pub(crate) fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// Ranks from 1, ties sharing the average of the ranks they span.
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let average = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = average;
        }
        start = end;
    }
    ranks
}

/// Spearman's rho: Pearson's correlation of the (tie-averaged) ranks. `None` with fewer than
/// two points or when either side is constant, where the correlation is undefined.
pub(crate) fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    assert_eq!(x.len(), y.len(), "spearman needs paired values");
    if x.len() < 2 {
        return None;
    }
    let (rx, ry) = (ranks(x), ranks(y));
    let (mx, my) = (mean(&rx)?, mean(&ry)?);
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    (vx > 0.0 && vy > 0.0).then(|| cov / (vx * vy).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resample::rho_permutation;

    #[test]
    fn test_split_sampling_widens_the_seeds_interval() {
        // Seeds' variance of the mean 100/3, binomial 100^2 * 0.7 * 0.3 / 100 = 21;
        // t(2, 0.975) = 4.302653 (tables).
        let e = Estimate::t_with_test(&[60.0, 70.0, 80.0], 100).unwrap();
        let (low, high) = e.interval.unwrap();
        let expected = 4.302_653 * (100.0f64 / 3.0 + 21.0).sqrt();
        assert!((high - 70.0 - expected).abs() < 1e-4 && (70.0 - low - expected).abs() < 1e-4);
        // One run: the binomial part alone, at the normal quantile 1.959964.
        let one = Estimate::t_with_test(&[70.0], 50).unwrap();
        let (_, high) = one.interval.unwrap();
        assert!(
            (high - 70.0 - 1.959_964 * 42.0f64.sqrt()).abs() < 1e-4,
            "{one:?}"
        );
    }

    #[test]
    fn t_interval_on_known_values() {
        let e = Estimate::t(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(e.n, 5);
        assert!((e.mean - 3.0).abs() < 1e-12);
        let (low, high) = e.interval.unwrap();
        let expected = 2.776 * 2.5f64.sqrt() / 5f64.sqrt();
        assert!((high - 3.0 - expected).abs() < 1e-3, "{e:?}");
        assert!((3.0 - low - expected).abs() < 1e-3, "{e:?}");
    }

    #[test]
    fn t_quantiles_match_published_values() {
        // Published two-sided 95% critical values (NIST/SEMATECH e-Handbook, table 1.3.6.7.2;
        // df = 31 and 1000 from R's qt(0.975, df)).
        for (df, published) in [
            (1, 12.706),
            (2, 4.303),
            (4, 2.776),
            (30, 2.042),
            (31, 2.0395),
            (100, 1.984),
            (1000, 1.9623),
        ] {
            let t = t_975(df);
            assert!(
                (t - published).abs() < 5e-4,
                "t(0.975; {df}) = {t}, published {published}"
            );
        }
        let e = Estimate::t(&[0.0, 2.0]).unwrap();
        // s = sqrt(2), half-width = t(1) * sqrt(2) / sqrt(2).
        assert!(
            (e.interval.unwrap().1 - 1.0 - 12.7062).abs() < 1e-4,
            "{e:?}"
        );
    }

    #[test]
    fn single_value_has_no_interval() {
        let e = Estimate::t(&[0.7]).unwrap();
        assert_eq!(e.interval, None);
        assert_eq!(Estimate::t(&[]), None);
    }

    #[test]
    fn t_test_p_values_match_closed_forms() {
        // R: t.test(1:5) gives t = 4.2426, df = 4, p-value = 0.01324 (also the closed form
        // of t's CDF with 4 df).
        let t = t_test(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert!((t.p - 0.013236).abs() < 1e-5, "{t:?}");
        // t = 0.5 / (1.5 / sqrt 3) with 2 df, where p = 1 - t / sqrt(2 + t^2) = 0.62204.
        let t = t_test(&[-1.0, 2.0, 0.5]).unwrap();
        assert!((t.p - 0.622036).abs() < 1e-5, "{t:?}");
        assert_eq!(t_test(&[5.0, 5.0]).unwrap().p, 0.0);
        assert_eq!(t_test(&[0.0, 0.0]).unwrap().p, 1.0);
        assert_eq!(t_test(&[5.0]), None);
    }

    #[test]
    fn holm_matches_the_textbook_example() {
        // Sorted: 0.005 * 4, 0.01 * 3, 0.03 * 2, 0.04 * 1 -> 0.02, 0.03, 0.06, max(0.04, 0.06).
        let adjusted = holm(&[0.01, 0.04, 0.03, 0.005]);
        for (got, want) in adjusted.iter().zip([0.03, 0.06, 0.06, 0.02]) {
            assert!((got - want).abs() < 1e-12, "{adjusted:?}");
        }
        assert_eq!(holm(&[0.5, 0.9]), [1.0, 1.0], "capped at 1");
        assert!(holm(&[]).is_empty());
    }

    #[test]
    fn ranks_average_ties() {
        assert_eq!(ranks(&[10.0, 20.0, 10.0, 30.0]), vec![1.5, 3.0, 1.5, 4.0]);
    }

    #[test]
    fn spearman_with_ties_matches_hand_computation() {
        // x ranks: [1.5, 1.5, 3, 4, 5]; y ranks: [1, 3, 2, 4.5, 4.5].
        // Deviations from the mean rank 3: cross products sum to 7.5, squares to 9.5 each.
        let x = [1.0, 1.0, 2.0, 3.0, 4.0];
        let y = [5.0, 7.0, 6.0, 9.0, 9.0];
        let rho = spearman(&x, &y).unwrap();
        let expected = 7.5 / 9.5;
        assert!((rho - expected).abs() < 1e-12, "{rho} vs {expected}");
    }

    #[test]
    fn spearman_is_one_for_monotone_and_undefined_for_constant() {
        assert_eq!(
            spearman(&[1.0, 2.0, 3.0], &[10.0, 100.0, 1000.0]),
            Some(1.0)
        );
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[5.0, 5.0, 5.0]), None);
        assert_eq!(spearman(&[1.0], &[5.0]), None);
    }

    #[test]
    fn permutation_p_is_small_only_for_a_consistent_rank_order() {
        let rising: Vec<f64> = (0..8).map(f64::from).collect();
        let task = |y: Vec<f64>| (rising.clone(), y);
        // Three tasks, each weight rising with similarity: 1 in (8!)^3 shuffles matches.
        let aligned = vec![task(rising.clone()); 3];
        let t = rho_permutation(&aligned).unwrap();
        assert_eq!((t.mean, t.tasks), (1.0, 3));
        assert!(t.p < 0.001, "{t:?}");
        // Rising in one task, falling in another, flat (undefined, left out) in a third.
        let falling: Vec<f64> = rising.iter().rev().copied().collect();
        let mixed = vec![task(rising.clone()), task(falling), task(vec![1.0; 8])];
        let t = rho_permutation(&mixed).unwrap();
        assert_eq!((t.mean, t.tasks), (0.0, 2));
        assert!(t.p > 0.9, "{t:?}");
        // Three points: 2 of the 6 orders are as extreme as a perfect one.
        let t = rho_permutation(&[(vec![1.0, 2.0, 3.0], vec![1.0, 2.0, 3.0])]).unwrap();
        assert!((t.p - 1.0 / 3.0).abs() < 0.02, "{t:?}");
        assert_eq!(rho_permutation(&[(vec![1.0, 2.0], vec![3.0, 3.0])]), None);
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
