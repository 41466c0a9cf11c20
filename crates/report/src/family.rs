//! The exploratory head-to-head tests: every pair of
//! [`ReportInputs::comparisons`](crate::ReportInputs::comparisons) at every k, over all shifts
//! and within each shift. With 60 to 100 of them, some would pass at 0.05 by chance alone, and
//! Holm over so many would leave no power, so none is corrected or called significant: only
//! the plan's primary tests ([`crate::primary`]) decide a claim. These show raw p-values.
//!
//! The test is a paired t over task means (each task's mean difference over its seeds; df =
//! tasks - 1): the tasks are the independent units, and the t quantiles are honest for the
//! 1 to 5 tasks a study has, where a bootstrap p-value is not (five tasks that agree in sign
//! give every resample that sign, so p hits its floor; a sign test would give 1/16). A scope
//! with one task falls back to a paired t over its seeds, and says so.

use crate::rows::{ResultRow, Shift, Shot};
use crate::stats::{Estimate, TTest, t_test};
use crate::{aggregate, resample};

/// The runs a test pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Every task, whatever its shift: the tasks are resampled as one population.
    All,
    Shift(Shift),
}

impl Scope {
    pub fn keeps(self, r: &ResultRow) -> bool {
        match self {
            Scope::All => true,
            Scope::Shift(s) => r.shift == s,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scope::All => "all shifts",
            Scope::Shift(s) => s.name(),
        }
    }
}

/// What a test's t is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Units {
    /// Each task's mean difference: the tasks are the independent units.
    TaskMeans(usize),
    /// The seeds of the scope's only task: says nothing about other tasks.
    Seeds(usize),
}

impl Units {
    pub fn text(self) -> String {
        match self {
            Units::TaskMeans(n) => format!("{n} task means"),
            Units::Seeds(n) => format!("{n} seeds of 1 task"),
        }
    }
}

/// One paired comparison `a - b` at one (scope, k).
pub(crate) struct Test {
    pub scope: Scope,
    pub a: String,
    pub b: String,
    pub k: Shot,
    /// Mean and two-stage bootstrap interval (see [`crate::resample`]): what the tables and
    /// plots show.
    pub estimate: Estimate,
    pub units: Units,
    /// The t test over `units`; `None` with a single unit, which cannot be tested.
    pub t: Option<TTest>,
}

/// Every test, in the order: scope (all shifts, then each shift), pair, k.
pub(crate) struct Family {
    pub scopes: Vec<Scope>,
    pub pairs: Vec<(String, String)>,
    pub ks: Vec<Shot>,
    pub tests: Vec<Test>,
}

impl Family {
    pub fn of(results: &[ResultRow], comparisons: &[(String, String)]) -> Family {
        let pairs: Vec<(String, String)> = aggregate::comparisons(results, comparisons)
            .into_iter()
            .cloned()
            .collect();
        let scopes: Vec<Scope> = std::iter::once(Scope::All)
            .chain(aggregate::shifts(results).into_iter().map(Scope::Shift))
            .collect();
        let ks = aggregate::ks(results, |_| true);
        let mut tests = Vec::new();
        for &scope in &scopes {
            for (a, b) in &pairs {
                let paired = aggregate::paired(results, a, b, |r| scope.keeps(r));
                for &k in &ks {
                    let Some(groups) = paired.get(&k) else {
                        continue;
                    };
                    let Some(estimate) = resample::two_stage(groups) else {
                        continue;
                    };
                    let (units, t) = match groups.as_slice() {
                        [seeds] => (Units::Seeds(seeds.len()), t_test(seeds)),
                        tasks => {
                            let means: Vec<f64> = tasks
                                .iter()
                                .map(|g| g.iter().sum::<f64>() / g.len() as f64)
                                .collect();
                            (Units::TaskMeans(means.len()), t_test(&means))
                        }
                    };
                    tests.push(Test {
                        scope,
                        a: a.clone(),
                        b: b.clone(),
                        k,
                        estimate,
                        units,
                        t,
                    });
                }
            }
        }
        Family {
            scopes,
            pairs,
            ks,
            tests,
        }
    }

    /// The number of tests with a p-value.
    pub fn size(&self) -> usize {
        self.tests.iter().filter(|t| t.t.is_some()).count()
    }

    pub fn get(&self, scope: Scope, a: &str, b: &str, k: Shot) -> Option<&Test> {
        self.tests
            .iter()
            .find(|t| t.scope == scope && t.a == a && t.b == b && t.k == k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::rows::one_shot as run;

    #[test]
    fn t_over_task_means_in_every_scope_and_pair() {
        let mut results = Vec::new();
        for (task, shift, gain) in [("a", Shift::Label, 0.09), ("b", Shift::Task, 0.11)] {
            for seed in 0..4 {
                let x = 0.5 + 0.01 * seed as f64;
                results.push(run(task, shift, "m", seed, x + gain));
                results.push(run(task, shift, "r", seed, x + 0.01 * (seed % 2) as f64));
            }
        }
        let pairs = [("m".into(), "r".into())];
        let family = Family::of(&results, &pairs);
        // (all, label, task) x one pair x one k.
        assert_eq!(family.size(), 3);
        // m - r: task a 9, 8, 9, 8; task b 11, 10, 11, 10.
        let all = family.get(Scope::All, "m", "r", Shot::K(1)).unwrap();
        assert_eq!(all.units, Units::TaskMeans(2));
        let t = all.t.unwrap();
        assert!((t.estimate.mean - 9.5).abs() < 1e-9);
        // Task means 8.5 and 10.5: t = 9.5 / 1 with 1 df, p = 2 * (1 - F(9.5)) = 0.0668.
        assert!((t.p - 0.0668).abs() < 5e-4, "{t:?}");
        let one = family
            .get(Scope::Shift(Shift::Task), "m", "r", Shot::K(1))
            .unwrap();
        assert_eq!(one.units, Units::Seeds(4));
    }
}
