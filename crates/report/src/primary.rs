//! The primary family: each test of the [`AnalysisPlan`] measured on the runs, Holm over these
//! tests alone, and the smallest effect each could have detected.
//!
//! A pair's tests rest on the random-intercept model of [`crate::mixed`] over every
//! (task, seed) cell of `a − b` (points), averaged over the test's shots within each
//! (task, seed), pooled over shifts: the estimate is the model's mean, its interval and p use
//! Student's t with tasks − 1 degrees of freedom (the tasks are the units). Superiority and
//! non-inferiority are one-sided; equivalence is TOST (two one-sided tests at ± the margin,
//! p the larger). The interaction asks whether the shifts' mean effects differ: the same model
//! with one mean per shift, a Wald F with (shifts − 1, tasks − shifts) degrees of freedom.
//! Similarity is the permutation test of learned weights against CKA.
//!
//! Detectable effects are at 80% power and at the level of Holm's first step, alpha / m over
//! the m testable primary tests: the level a test is sure to be judged at, so conservative.

use crate::inputs::ReportInputs;
use crate::mixed::{self, Group};
use crate::plan::{AnalysisPlan, PrimaryTest, TestKind};
use crate::power::{self, POWER};
use crate::resample::{RhoTest, rho_permutation};
use crate::rows::{ResultRow, Shift, Shot};
use crate::stats::{holm, t_975};
use crate::{aggregate, stats};
use statrs::distribution::{ContinuousCDF, FisherSnedecor, StudentsT};
use std::collections::{BTreeSet, HashMap};

/// The level a Holm-adjusted primary p-value must stay below.
pub(crate) const ALPHA: f64 = 0.05;

/// `a − b` from the random-intercept model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Difference {
    pub mean: f64,
    pub se: f64,
    /// tasks − 1.
    pub df: usize,
    pub tau2: f64,
    pub sigma2: f64,
    pub tasks: usize,
    pub runs: usize,
}

impl Difference {
    /// The 95% t interval (two-sided, not adjusted for the family).
    pub fn interval(&self) -> (f64, f64) {
        let h = t_975(self.df) * self.se;
        (self.mean - h, self.mean + h)
    }
}

/// What a test measured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Measured {
    Difference(Difference),
    Interaction {
        /// Each shift's mean `a − b`.
        means: Vec<(Shift, f64)>,
        f: f64,
        df: (usize, usize),
        tau2: f64,
        tasks: usize,
        /// Per shift, the Wald noncentrality per squared point when it alone is off.
        one_off: Vec<f64>,
    },
    Similarity(RhoTest),
}

/// A testable primary test before the family's correction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Evaluated {
    pub measured: Measured,
    pub p: f64,
    /// The true effect at which the test has 80% power at the family's first Holm level:
    /// superiority, the true `a − b`; non-inferiority, the true `a − b` (margin included);
    /// equivalence, the smallest margin TOST would establish at a true 0; interaction, one
    /// shift off from the others by this much, whichever shift. `None` for similarity.
    pub detectable: Option<f64>,
}

/// How a test bears on its claim, after Holm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Supports,
    /// Detected against the claim: an interaction (the effect differs across shifts), or
    /// weights that fall with similarity.
    Contradicts,
    NotDetected,
    Untestable,
}

pub(crate) struct Primary<'a> {
    pub test: &'a PrimaryTest,
    /// `Err`: why the runs cannot test it.
    pub result: Result<Evaluated, String>,
    pub holm: Option<f64>,
}

impl Primary<'_> {
    pub fn outcome(&self) -> Outcome {
        let (Ok(e), Some(holm)) = (&self.result, self.holm) else {
            return Outcome::Untestable;
        };
        let detected = holm < ALPHA;
        match (&e.measured, self.test.test, detected) {
            (_, _, false) => Outcome::NotDetected,
            (_, TestKind::Interaction, true) => Outcome::Contradicts,
            (Measured::Similarity(r), _, true) if r.mean < 0.0 => Outcome::Contradicts,
            _ => Outcome::Supports,
        }
    }
}

/// Measures every test of `plan` on `inputs`, then adjusts their p by Holm and sizes their
/// detectable effects at alpha / m.
pub(crate) fn evaluate<'a>(plan: &'a AnalysisPlan, inputs: &ReportInputs) -> Vec<Primary<'a>> {
    let measured: Vec<Result<(Measured, f64), String>> = plan
        .primary
        .iter()
        .map(|t| measure(t, plan.margin, inputs))
        .collect();
    let raw: Vec<f64> = measured.iter().flatten().map(|(_, p)| *p).collect();
    let mut adjusted = holm(&raw).into_iter();
    let level = ALPHA / raw.len().max(1) as f64;
    plan.primary
        .iter()
        .zip(measured)
        .map(|(test, m)| {
            let holm = m.is_ok().then(|| adjusted.next()).flatten();
            let result = m.map(|(measured, p)| Evaluated {
                detectable: detectable(&measured, test.test, plan.margin, level),
                measured,
                p,
            });
            Primary { test, result, holm }
        })
        .collect()
}

fn measure(
    test: &PrimaryTest,
    margin: f64,
    inputs: &ReportInputs,
) -> Result<(Measured, f64), String> {
    let b = match (test.test, &test.b) {
        (TestKind::Similarity, _) => {
            let rho = similarity_test(inputs, &test.a)
                .ok_or_else(|| format!("no learned weights of `{}` with CKA values", test.a))?;
            return Ok((Measured::Similarity(rho), rho.p));
        }
        (_, None) => return Err("no `b` to compare with".into()),
        (_, Some(b)) => b,
    };
    let tasks = cells(&inputs.results, &test.a, b, &test.shots);
    if tasks.is_empty() {
        return Err(format!(
            "no (task, seed) has both `{}` and `{b}` at every listed shot",
            test.a
        ));
    }
    match test.test {
        TestKind::Interaction => interaction(&tasks),
        kind => {
            let d = difference(&tasks)?;
            Ok((Measured::Difference(d), difference_p(&d, kind, margin)))
        }
    }
}

/// One task's paired differences: its shift and one value per seed.
struct TaskCells {
    shift: Shift,
    values: Vec<f64>,
}

/// `a − b` in points per (task, seed) that has both methods at every shot of `shots`,
/// averaged over those shots; tasks in order of first appearance.
fn cells(results: &[ResultRow], a: &str, b: &str, shots: &[Shot]) -> Vec<TaskCells> {
    let of = |method: &str| -> HashMap<(&str, Shot, u64), f64> {
        (results.iter())
            .filter(|r| r.method == method)
            .map(|r| ((r.task.as_str(), r.k, r.seed), r.accuracy))
            .collect()
    };
    let (a, b) = (of(a), of(b));
    let mut tasks: Vec<(&str, Shift, Vec<u64>)> = Vec::new();
    for r in results {
        match tasks.iter_mut().find(|(task, _, _)| *task == r.task) {
            None => tasks.push((&r.task, r.shift, vec![r.seed])),
            Some((_, _, seeds)) if !seeds.contains(&r.seed) => seeds.push(r.seed),
            Some(_) => {}
        }
    }
    let cell = |task: &str, seed: u64| {
        let diffs: Option<Vec<f64>> = (shots.iter())
            .map(|&k| Some(100.0 * (a.get(&(task, k, seed))? - b.get(&(task, k, seed))?)))
            .collect();
        stats::mean(&diffs?)
    };
    (tasks.into_iter())
        .filter_map(|(task, shift, seeds)| {
            let values: Vec<f64> = seeds.iter().filter_map(|&s| cell(task, s)).collect();
            (!values.is_empty()).then_some(TaskCells { shift, values })
        })
        .collect()
}

fn difference(tasks: &[TaskCells]) -> Result<Difference, String> {
    let groups: Vec<Group> = (tasks.iter())
        .map(|t| Group {
            x: vec![1.0],
            y: t.values.clone(),
        })
        .collect();
    let fit = mixed::reml(&groups).ok_or("1 task: nothing to test over tasks")?;
    Ok(Difference {
        mean: fit.beta[0],
        se: fit.cov[0][0].sqrt(),
        df: fit.tasks - 1,
        tau2: fit.tau2,
        sigma2: fit.sigma2,
        tasks: fit.tasks,
        runs: fit.runs,
    })
}

/// `P(T_df >= mean / se)`, with the limits of a zero standard error.
fn upper_p(mean: f64, se: f64, df: usize) -> f64 {
    if se == 0.0 {
        return if mean > 0.0 { 0.0 } else { 1.0 };
    }
    let t = StudentsT::new(0.0, 1.0, df as f64).expect("df >= 1");
    t.sf(mean / se)
}

/// One-sided p of superiority and non-inferiority; TOST's for equivalence.
pub(crate) fn difference_p(d: &Difference, kind: TestKind, margin: f64) -> f64 {
    let above = |shift: f64| upper_p(d.mean + shift, d.se, d.df);
    match kind {
        TestKind::Noninferiority => above(margin),
        TestKind::Equivalence => above(margin).max(upper_p(margin - d.mean, d.se, d.df)),
        _ => above(0.0),
    }
}

fn interaction(tasks: &[TaskCells]) -> Result<(Measured, f64), String> {
    let shifts: Vec<Shift> = (tasks.iter().map(|t| t.shift))
        .collect::<BTreeSet<Shift>>()
        .into_iter()
        .collect();
    let (s, n) = (shifts.len(), tasks.len());
    if s < 2 {
        return Err(format!(
            "the runs cover {s} shift; an interaction needs 2 or more"
        ));
    }
    if n <= s {
        return Err(format!(
            "{n} tasks in {s} shifts leave no degrees of freedom between tasks"
        ));
    }
    let groups: Vec<Group> = (tasks.iter())
        .map(|t| Group {
            x: shifts
                .iter()
                .map(|&sh| f64::from(u8::from(sh == t.shift)))
                .collect(),
            y: t.values.clone(),
        })
        .collect();
    let fit = mixed::reml(&groups).ok_or("the shift model cannot be fitted")?;
    let wald = mixed::wald_equal(&fit).ok_or("the shifts' means have no spread to test")?;
    let df = (s - 1, n - s);
    let f = wald.statistic / df.0 as f64;
    let p = FisherSnedecor::new(df.0 as f64, df.1 as f64)
        .expect("df >= 1")
        .sf(f);
    let measured = Measured::Interaction {
        means: shifts.into_iter().zip(fit.beta).collect(),
        f,
        df,
        tau2: fit.tau2,
        tasks: n,
        one_off: wald.one_off,
    };
    Ok((measured, p))
}

/// See [`Evaluated::detectable`]; `level` is alpha / m.
fn detectable(measured: &Measured, kind: TestKind, margin: f64, level: f64) -> Option<f64> {
    match measured {
        Measured::Difference(d) => {
            let df = d.df as f64;
            let one_sided = |power| power::t_detectable(df, level, power) * d.se;
            Some(match kind {
                TestKind::Noninferiority => one_sided(POWER) - margin,
                // Each side at 90% gives TOST at least 80% (the union bound).
                TestKind::Equivalence => one_sided(1.0 - (1.0 - POWER) / 2.0),
                _ => one_sided(POWER),
            })
        }
        Measured::Interaction { df, one_off, .. } => {
            let lambda = power::f_detectable(df.0 as f64, df.1 as f64, level, POWER);
            one_off
                .iter()
                .map(|per_point| (lambda / per_point).sqrt())
                .max_by(f64::total_cmp)
        }
        Measured::Similarity(_) => None,
    }
}

/// The permutation test of `method`'s mean learned weight per module against the modules'
/// CKA, over the tasks that have both; `None` without such a task.
pub(crate) fn similarity_test(inputs: &ReportInputs, method: &str) -> Option<RhoTest> {
    let tasks: Vec<(Vec<f64>, Vec<f64>)> = aggregate::first_appearance(
        (inputs.weights.iter())
            .filter(|w| w.method == method)
            .map(|w| w.task.as_str()),
    )
    .iter()
    .map(|task| {
        aggregate::similarity_pairs(&inputs.similarity, &inputs.weights, task, method)
            .iter()
            .map(|p| (p.cka, p.weight))
            .unzip()
    })
    .collect();
    rho_permutation(&tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Student's t CDF with 5 degrees of freedom in closed form (odd df): with
    /// `theta = atan(t / sqrt 5)`, `F = 1/2 + (theta + sin cos (1 + 2/3 cos^2)) / pi`.
    fn t5_sf(t: f64) -> f64 {
        let theta = (t / 5f64.sqrt()).atan();
        let (s, c) = theta.sin_cos();
        0.5 - (theta + s * c * (1.0 + 2.0 / 3.0 * c * c)) / std::f64::consts::PI
    }

    fn model(mean: f64, se: f64) -> Difference {
        Difference {
            mean,
            se,
            df: 5,
            tau2: 0.0,
            sigma2: 0.0,
            tasks: 6,
            runs: 6,
        }
    }

    #[test]
    fn tost_and_non_inferiority_on_a_constructed_case() {
        // a − b = 0.5 ± 0.8 on 5 df, margin 2: the lower test has t = (0.5 + 2) / 0.8 =
        // 3.125, the upper t = (2 - 0.5) / 0.8 = 1.875; TOST's p is the upper one's.
        let d = model(0.5, 0.8);
        let (low, high) = (t5_sf(3.125), t5_sf(1.875));
        // scipy.stats.t.sf gives 0.0130522 and 0.0598213: the closed form is right.
        assert!(
            (low - 0.013_052_2).abs() < 1e-7 && (high - 0.059_821_3).abs() < 1e-7,
            "{low} {high}"
        );
        let p = |kind| difference_p(&d, kind, 2.0);
        assert!((p(TestKind::Equivalence) - high).abs() < 1e-10);
        assert!((p(TestKind::Noninferiority) - low).abs() < 1e-10);
        assert!((p(TestKind::Superiority) - t5_sf(0.625)).abs() < 1e-10);
        // Mirrored: now the lower test is the binding one.
        let mirrored = difference_p(&model(-0.5, 0.8), TestKind::Equivalence, 2.0);
        assert!((mirrored - high).abs() < 1e-10);
        // Outside the margin: TOST cannot pass however small the error; p = P(T >= -2.5).
        let outside = difference_p(&model(2.5, 0.2), TestKind::Equivalence, 2.0);
        assert!((outside - (1.0 - t5_sf(2.5))).abs() < 1e-10 && outside > 0.97);
        // A zero standard error: decided by the sign alone.
        assert_eq!(
            difference_p(&model(0.1, 0.0), TestKind::Superiority, 2.0),
            0.0
        );
        assert_eq!(
            difference_p(&model(0.0, 0.0), TestKind::Superiority, 2.0),
            1.0
        );
    }

    #[test]
    fn detectable_effects_per_kind() {
        let d = Measured::Difference(model(0.0, 1.0));
        let level = 0.05 / 4.0;
        let one = power::t_detectable(5.0, level, 0.8);
        let at = |kind| detectable(&d, kind, 2.0, level).unwrap();
        assert!((at(TestKind::Superiority) - one).abs() < 1e-12);
        assert!((at(TestKind::Noninferiority) - (one - 2.0)).abs() < 1e-12);
        let tost = power::t_detectable(5.0, level, 0.9);
        assert!((at(TestKind::Equivalence) - tost).abs() < 1e-12 && tost > one);
        // Two shifts: F(1, d2) is t^2, so one shift off by x is a difference of x between
        // the two, detected at lambda = (x / SE)^2.
        let interaction = Measured::Interaction {
            means: vec![(Shift::Covariate, 1.0), (Shift::Label, 2.0)],
            f: 1.0,
            df: (1, 4),
            tau2: 1.0,
            tasks: 6,
            one_off: vec![1.0 / 2.25, 1.0 / 2.25],
        };
        let x = detectable(&interaction, TestKind::Interaction, 2.0, 0.05).unwrap();
        let lambda = power::f_detectable(1.0, 4.0, 0.05, 0.8);
        assert!((x - 1.5 * lambda.sqrt()).abs() < 1e-9, "{x}");
    }

    use crate::rows::one_shot as row;

    #[test]
    fn holm_and_the_power_level_count_the_testable_primary_tests_only() {
        let mut results = Vec::new();
        for (t, gain) in [0.02, 0.05, 0.03, 0.04].into_iter().enumerate() {
            let shift = [Shift::Covariate, Shift::Label][t % 2];
            for seed in 0..3 {
                let x = 0.5 + 0.01 * seed as f64;
                results.push(row(&format!("t{t}"), shift, "b", seed, x));
                results.push(row(
                    &format!("t{t}"),
                    shift,
                    "a",
                    seed,
                    x + gain + 0.002 * seed as f64,
                ));
            }
        }
        let test = |kind, a: &str, b: &str| PrimaryTest {
            claim: 1,
            test: kind,
            a: a.into(),
            b: Some(b.into()),
            shots: vec![Shot::K(1)],
        };
        let plan = AnalysisPlan {
            primary: vec![
                test(TestKind::Superiority, "a", "b"),
                test(TestKind::Interaction, "a", "b"),
                test(TestKind::Superiority, "a", "absent"),
            ],
            margin: 2.0,
        };
        let inputs = ReportInputs {
            results,
            ..ReportInputs::default()
        };
        let primary = evaluate(&plan, &inputs);
        let raw: Vec<f64> = primary
            .iter()
            .filter_map(|p| Some(p.result.as_ref().ok()?.p))
            .collect();
        assert_eq!(raw.len(), 2, "the third test is untestable");
        assert!(primary[2].holm.is_none() && primary[2].outcome() == Outcome::Untestable);
        let holm: Vec<f64> = primary.iter().filter_map(|p| p.holm).collect();
        assert_eq!(
            holm,
            crate::stats::holm(&raw),
            "Holm over these 2, nothing else"
        );
        // Power at 0.05 / 2 with the model's SE on 3 df.
        let Ok(Evaluated {
            measured: Measured::Difference(d),
            detectable: Some(x),
            ..
        }) = &primary[0].result
        else {
            panic!("a difference");
        };
        assert_eq!(d.tasks, 4);
        let expected = power::t_detectable(3.0, 0.025, 0.8) * d.se;
        assert!((x - expected).abs() < 1e-12, "{x} vs {expected}");
        assert!((d.mean - 3.7).abs() < 1e-9, "{d:?}");
    }

    #[test]
    fn an_interaction_without_enough_shifts_or_tasks_is_untestable() {
        let interaction = PrimaryTest {
            claim: 3,
            test: TestKind::Interaction,
            a: "a".into(),
            b: Some("b".into()),
            shots: vec![Shot::K(1)],
        };
        let plan = AnalysisPlan {
            primary: vec![interaction],
            margin: 2.0,
        };
        let why = |tasks: &[(&str, Shift)]| {
            let results: Vec<ResultRow> = (tasks.iter())
                .flat_map(|&(t, shift)| {
                    (0..2).flat_map(move |s| {
                        let x = 0.5 + 0.01 * s as f64;
                        [row(t, shift, "a", s, x + 0.03), row(t, shift, "b", s, x)]
                    })
                })
                .collect();
            let inputs = ReportInputs {
                results,
                ..ReportInputs::default()
            };
            let primary = evaluate(&plan, &inputs);
            assert_eq!(primary[0].outcome(), Outcome::Untestable);
            primary[0].result.as_ref().unwrap_err().clone()
        };
        let one_shift = [
            ("t0", Shift::Label),
            ("t1", Shift::Label),
            ("t2", Shift::Label),
        ];
        assert_eq!(
            why(&one_shift),
            "the runs cover 1 shift; an interaction needs 2 or more"
        );
        let one_each = [("t0", Shift::Label), ("t1", Shift::Task)];
        assert_eq!(
            why(&one_each),
            "2 tasks in 2 shifts leave no degrees of freedom between tasks"
        );
    }
}
