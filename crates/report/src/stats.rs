//! Means with Student-t intervals, medians and Spearman's rank correlation.

/// Two-sided 95% quantiles of Student's t (the 0.975 quantile) for 1..=30 degrees of freedom.
/// Cells hold 3 to 5 seeds, where the normal 1.96 would understate the interval by 40% or more.
const T_975: [f64; 30] = [
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010,
    2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687,
    2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
];

/// The 0.975 quantile of t with `df` degrees of freedom (`df >= 1`); the normal 1.96 past 30.
fn t_975(df: usize) -> f64 {
    T_975.get(df.wrapping_sub(1)).copied().unwrap_or(1.96)
}

/// The mean of a cell and its 95% interval half-width (`None` for a single value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Estimate {
    pub mean: f64,
    pub half_width: Option<f64>,
    pub n: usize,
}

impl Estimate {
    /// Mean and Student-t interval over `values` with n - 1 degrees of freedom; `None` if empty.
    pub fn of(values: &[f64]) -> Option<Estimate> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let half_width = (n > 1).then(|| {
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            t_975(n - 1) * (var / n as f64).sqrt()
        });
        Some(Estimate {
            mean,
            half_width,
            n,
        })
    }

    /// Whether the interval excludes 0, i.e. the difference is significant at the 5% level.
    pub fn excludes_zero(&self) -> bool {
        self.half_width.is_some_and(|h| self.mean.abs() > h)
    }

    /// `(low, high)` of the interval, or the mean twice when there is none.
    pub fn range(&self) -> (f64, f64) {
        let h = self.half_width.unwrap_or(0.0);
        (self.mean - h, self.mean + h)
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

    #[test]
    fn t_interval_on_known_values() {
        let e = Estimate::of(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(e.n, 5);
        assert!((e.mean - 3.0).abs() < 1e-12);
        let expected = 2.776 * 2.5f64.sqrt() / 5f64.sqrt();
        assert!((e.half_width.unwrap() - expected).abs() < 1e-3, "{e:?}");
    }

    #[test]
    fn t_quantiles_fall_back_to_normal_past_thirty() {
        assert_eq!(t_975(1), 12.7062);
        assert_eq!(t_975(30), 2.0423);
        assert_eq!(t_975(31), 1.96);
        let e = Estimate::of(&[0.0, 2.0]).unwrap();
        // s = sqrt(2), half-width = 12.7062 * sqrt(2) / sqrt(2).
        assert!((e.half_width.unwrap() - 12.7062).abs() < 1e-9);
    }

    #[test]
    fn single_value_has_no_interval() {
        let e = Estimate::of(&[0.7]).unwrap();
        assert_eq!(e.half_width, None);
        assert!(!e.excludes_zero());
        assert_eq!(Estimate::of(&[]), None);
    }

    #[test]
    fn excludes_zero_only_when_the_interval_does() {
        assert!(Estimate::of(&[1.0, 1.1, 0.9]).unwrap().excludes_zero());
        assert!(!Estimate::of(&[1.0, -1.0, 0.5]).unwrap().excludes_zero());
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
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
