//! The two-stage (hierarchical) bootstrap behind every pooled number: runs of one task share
//! its difficulty, so the tasks, not the runs, are the independent units. A t interval over all
//! (task, seed) runs would treat 2 tasks x 5 seeds as 10 independent draws and come out too
//! narrow whenever tasks differ.

use crate::stats::{Estimate, spearman};
use loramix_rng::Rng;

/// Resamples per estimate (and shuffles per permutation test): enough that the 2.5% and 97.5%
/// points barely move with the seed (see `the_interval_barely_depends_on_the_seed`).
pub(crate) const RESAMPLES: usize = 10_000;

/// Every estimate restarts the stream from this seed, so an interval depends only on its own
/// runs: the same in the table and the plot, and unchanged when other cells come or go.
pub(crate) const SEED: u64 = 0x5EED_B007;

/// Mean and 95% percentile interval of the mean over tasks of each task's mean over seeds.
/// `groups` holds one task's values each (for a paired difference: one value per shared seed).
/// A resample draws as many tasks as there are, with replacement, then within each drawn task
/// as many of its values, with replacement. With one task only seeds are resampled. `p` is the
/// two-sided bootstrap p-value of "the mean is 0": 2 min(#{m* <= 0} + 1, #{m* >= 0} + 1) /
/// (B + 1), capped at 1, so never 0. `None` if there is no value; no interval for a single run.
pub(crate) fn two_stage(groups: &[Vec<f64>]) -> Option<Estimate> {
    two_stage_from(groups, SEED)
}

fn two_stage_from(groups: &[Vec<f64>], seed: u64) -> Option<Estimate> {
    let groups: Vec<&[f64]> = groups
        .iter()
        .filter(|g| !g.is_empty())
        .map(Vec::as_slice)
        .collect();
    let n = groups.iter().map(|g| g.len()).sum();
    if n == 0 {
        return None;
    }
    let means: Vec<f64> = groups.iter().map(|g| mean(g)).collect();
    let estimate = mean(&means);
    if n == 1 {
        return Some(Estimate {
            mean: estimate,
            interval: None,
            n,
        });
    }
    let mut rng = Rng::new(seed);
    let mut stats: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let total: f64 = (0..groups.len())
                .map(|_| {
                    let g = groups[rng.below(groups.len())];
                    (0..g.len()).map(|_| g[rng.below(g.len())]).sum::<f64>() / g.len() as f64
                })
                .sum();
            total / groups.len() as f64
        })
        .collect();
    stats.sort_by(f64::total_cmp);
    Some(Estimate {
        mean: estimate,
        interval: Some((quantile(&stats, 0.025), quantile(&stats, 0.975))),
        n,
    })
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Linear interpolation between order statistics (Hyndman and Fan's type 7, R's default) of
/// sorted, non-empty `sorted`.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let (low, high) = (h.floor() as usize, h.ceil() as usize);
    sorted[low] + (h - low as f64) * (sorted[high] - sorted[low])
}

/// Mean over tasks of Spearman's rho between x and y, with a two-sided permutation p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RhoTest {
    pub mean: f64,
    /// Tasks with a defined rho, the only ones counted.
    pub tasks: usize,
    pub p: f64,
}

/// Tests "y ignores x" over tasks of paired `(x, y)` values. Under that hypothesis every
/// assignment of a task's x values to its points is equally likely, so x is shuffled within
/// each task [`RESAMPLES`] times (stream seeded by [`SEED`]) and p = (1 + #{|mean rho*| >=
/// |mean rho|}) / (B + 1). Exact in design, unlike a t over a handful of rhos; `None` when no
/// task has a rho.
pub(crate) fn rho_permutation(tasks: &[(Vec<f64>, Vec<f64>)]) -> Option<RhoTest> {
    let tasks: Vec<&(Vec<f64>, Vec<f64>)> = tasks
        .iter()
        .filter(|(x, y)| spearman(x, y).is_some())
        .collect();
    let mean_rho = |tasks: &[(Vec<f64>, &Vec<f64>)]| {
        tasks
            .iter()
            .filter_map(|(x, y)| spearman(x, y))
            .sum::<f64>()
            / tasks.len() as f64
    };
    if tasks.is_empty() {
        return None;
    }
    let mut shuffled: Vec<(Vec<f64>, &Vec<f64>)> =
        tasks.iter().map(|(x, y)| (x.clone(), y)).collect();
    let observed = mean_rho(&shuffled);
    let mut rng = Rng::new(SEED);
    let extreme = (0..RESAMPLES)
        .filter(|_| {
            for (x, _) in &mut shuffled {
                rng.shuffle(x);
            }
            mean_rho(&shuffled).abs() >= observed.abs() - 1e-12
        })
        .count();
    Some(RhoTest {
        mean: observed,
        tasks: tasks.len(),
        p: (extreme + 1) as f64 / (RESAMPLES + 1) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three tasks far apart, five seeds each with little spread: the pooled runs look like 15
    /// precise values, but a new task could land anywhere near 50, 60 or 80.
    fn clustered() -> Vec<Vec<f64>> {
        [50.0, 60.0, 80.0]
            .iter()
            .map(|&c| [-1.0, -0.5, 0.0, 0.5, 1.0].iter().map(|d| c + d).collect())
            .collect()
    }

    #[test]
    fn tasks_that_differ_widen_the_interval_beyond_the_pooled_t() {
        let groups = clustered();
        let pooled: Vec<f64> = groups.iter().flatten().copied().collect();
        let naive = Estimate::t(&pooled).unwrap().interval.unwrap();
        let boot = two_stage(&groups).unwrap();
        let (low, high) = boot.interval.unwrap();
        assert!((boot.mean - 63.333_333).abs() < 1e-4, "{boot:?}");
        // Naive: t(14) * sd / sqrt(15), about ±7.1; resampling three tasks spans about 51-77.
        assert!(
            high - low > 1.5 * (naive.1 - naive.0),
            "bootstrap {low}..{high} vs naive {naive:?}"
        );
        assert!(low < 56.0 && high > 72.0, "{low}..{high}");
    }

    #[test]
    fn a_fixed_seed_gives_the_same_interval_every_time() {
        let groups = clustered();
        assert_eq!(two_stage(&groups), two_stage(&groups));
        // Another seed gives another interval: the seed, not luck, is what fixes it.
        let other = two_stage_from(&groups, SEED + 1).unwrap();
        assert_ne!(two_stage(&groups).unwrap().interval, other.interval);
    }

    #[test]
    fn one_task_resamples_seeds_only() {
        let one = vec![vec![1.0, 2.0, 3.0, 4.0, 5.0]];
        let e = two_stage(&one).unwrap();
        let (low, high) = e.interval.unwrap();
        // The seed-only bootstrap of 5 values: narrower than t(4)'s ±1.96, still around 3.
        assert!(low > 1.0 && low < 3.0 && high > 3.0 && high < 5.0, "{e:?}");
        assert!(high - low < 2.0 * 1.9632, "{e:?}");
    }

    #[test]
    fn the_interval_barely_depends_on_the_seed() {
        let groups = clustered();
        let (a, b) = (
            two_stage(&groups).unwrap(),
            two_stage_from(&groups, 1).unwrap(),
        );
        let (a, b) = (a.interval.unwrap(), b.interval.unwrap());
        assert!(
            (a.0 - b.0).abs() < 0.5 && (a.1 - b.1).abs() < 0.5,
            "{a:?} vs {b:?}"
        );
    }

    #[test]
    fn single_run_and_empty_cells() {
        let single = two_stage(&[vec![7.0], vec![]]).unwrap();
        assert_eq!((single.mean, single.interval, single.n), (7.0, None, 1));
        assert_eq!(two_stage(&[]), None);
        // Unbalanced tasks weigh equally: (1 + 2) / 2 and 10, not the mean of all four runs.
        let e = two_stage(&[vec![1.0, 2.0], vec![10.0]]).unwrap();
        assert_eq!((e.mean, e.n), (5.75, 3));
    }
}
