//! Groups runs into the cells that the tables and plots show. Both read from here, so a table
//! and its plot always agree.

use crate::resample;
use crate::rows::{ResultRow, Shift, Shot, SimilarityRow, WeightRow};
use crate::stats::{Estimate, mean};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Distinct values in order of first appearance (the order the config listed them in).
pub(crate) fn first_appearance<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if !out.iter().any(|o| o == v) {
            out.push(v.to_string());
        }
    }
    out
}

/// Shifts present, in report order.
pub(crate) fn shifts(results: &[ResultRow]) -> Vec<Shift> {
    let set: BTreeSet<Shift> = results.iter().map(|r| r.shift).collect();
    set.into_iter().collect()
}

/// How a grid's cells get their 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interval {
    /// Student-t over the runs: for the seeds of one task, which are independent draws.
    T,
    /// Student-t over the seeds of one task, widened by the sampling of its fixed test split
    /// of this many examples ([`Estimate::t_with_test`]).
    TWithTest(usize),
    /// Two-stage bootstrap, tasks then seeds (see [`bootstrap`]): for runs pooled over tasks.
    Bootstrap,
}

/// The values of one cell, grouped by task.
type Samples = HashMap<(String, Shot), BTreeMap<String, Vec<f64>>>;

/// Estimates laid out as a table: rows are methods, columns are k values.
pub(crate) struct Grid {
    /// Methods with at least one cell, in the caller's order.
    pub methods: Vec<String>,
    /// k values with at least one cell, numeric ascending with `full` last.
    pub ks: Vec<Shot>,
    pub interval: Interval,
    cells: HashMap<(String, Shot), Estimate>,
}

impl Grid {
    fn from_samples(order: &[String], samples: Samples, interval: Interval) -> Grid {
        let methods: Vec<String> = order
            .iter()
            .filter(|m| samples.keys().any(|(sm, _)| sm == *m))
            .cloned()
            .collect();
        let ks: BTreeSet<Shot> = samples.keys().map(|(_, k)| *k).collect();
        let cells = samples
            .into_iter()
            .filter(|((m, _), _)| methods.contains(m))
            .filter_map(|(key, tasks)| {
                let groups: Vec<Vec<f64>> = tasks.into_values().collect();
                let estimate = match interval {
                    Interval::T => Estimate::t(&groups.concat()),
                    Interval::TWithTest(n) => Estimate::t_with_test(&groups.concat(), n),
                    Interval::Bootstrap => resample::two_stage(&groups),
                };
                estimate.map(|e| (key, e))
            })
            .collect();
        Grid {
            methods,
            ks: ks.into_iter().collect(),
            interval,
            cells,
        }
    }

    pub fn get(&self, method: &str, k: Shot) -> Option<&Estimate> {
        self.cells.get(&(method.to_string(), k))
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }
}

/// The k values of the runs `keep` selects, numeric ascending with `full` last.
pub(crate) fn ks(results: &[ResultRow], keep: impl Fn(&ResultRow) -> bool) -> Vec<Shot> {
    let ks: BTreeSet<Shot> = results.iter().filter(|r| keep(r)).map(|r| r.k).collect();
    ks.into_iter().collect()
}

/// Accuracy in percent per (method, k) over the (task, seed) runs that `keep` selects.
pub(crate) fn accuracy(
    results: &[ResultRow],
    order: &[String],
    keep: impl Fn(&ResultRow) -> bool,
    interval: Interval,
) -> Grid {
    let mut samples = Samples::new();
    for r in results.iter().filter(|r| keep(r)) {
        samples
            .entry((r.method.clone(), r.k))
            .or_default()
            .entry(r.task.clone())
            .or_default()
            .push(100.0 * r.accuracy);
    }
    Grid::from_samples(order, samples, interval)
}

/// Accuracy minus the reference method's, in percentage points, paired on (task, k, seed) so
/// task difficulty and the seed's k-shot sample cancel out; grouped by task per (method, k).
fn differences(
    results: &[ResultRow],
    reference: &str,
    keep: impl Fn(&ResultRow) -> bool,
) -> Samples {
    let base: HashMap<(&str, Shot, u64), f64> = results
        .iter()
        .filter(|r| r.method == reference && keep(r))
        .map(|r| ((r.task.as_str(), r.k, r.seed), r.accuracy))
        .collect();
    let mut samples = Samples::new();
    for r in results.iter().filter(|r| r.method != reference && keep(r)) {
        if let Some(b) = base.get(&(r.task.as_str(), r.k, r.seed)) {
            samples
                .entry((r.method.clone(), r.k))
                .or_default()
                .entry(r.task.clone())
                .or_default()
                .push(100.0 * (r.accuracy - b));
        }
    }
    samples
}

/// [`differences`] to the reference with two-stage bootstrap intervals over the shared
/// (task, seed) units. The reference itself is left out.
pub(crate) fn relative(
    results: &[ResultRow],
    order: &[String],
    reference: &str,
    keep: impl Fn(&ResultRow) -> bool,
) -> Grid {
    Grid::from_samples(
        order,
        differences(results, reference, keep),
        Interval::Bootstrap,
    )
}

/// The paired differences `a - b` of each k, one list per task (in the order the bootstrap
/// cells of [`head_to_head`] use): what the tests of [`crate::family`] run on.
pub(crate) fn paired(
    results: &[ResultRow],
    a: &str,
    b: &str,
    keep: impl Fn(&ResultRow) -> bool,
) -> BTreeMap<Shot, Vec<Vec<f64>>> {
    let both = |r: &ResultRow| (r.method == a || r.method == b) && keep(r);
    differences(results, b, both)
        .into_iter()
        .map(|((_, k), tasks)| (k, tasks.into_values().collect()))
        .collect()
}

/// The pairs of `comparisons` whose two methods both have results, in the given order.
pub(crate) fn comparisons<'a>(
    results: &[ResultRow],
    comparisons: &'a [(String, String)],
) -> Vec<&'a (String, String)> {
    let present = |m: &String| results.iter().any(|r| &r.method == m);
    comparisons
        .iter()
        .filter(|(a, b)| present(a) && present(b))
        .collect()
}

/// Accuracy of `a` minus that of `b` in percentage points, paired on (task, k, seed): the
/// head-to-head table and the difference plot both read it, one row `a`.
pub(crate) fn head_to_head(
    results: &[ResultRow],
    a: &str,
    b: &str,
    keep: impl Fn(&ResultRow) -> bool,
) -> Grid {
    relative(results, &[a.to_string()], b, keep)
}

/// Mean learned weights of one (task, method): rows are layers, columns upstream modules, each
/// cell averaged over seeds and k.
pub(crate) struct WeightMatrix {
    pub layers: Vec<String>,
    pub modules: Vec<String>,
    /// `values[layer][module]`; `None` where no weight was recorded.
    pub values: Vec<Vec<Option<f64>>>,
}

fn select<'a>(weights: &'a [WeightRow], task: &'a str, method: &'a str) -> Vec<&'a WeightRow> {
    weights
        .iter()
        .filter(|w| w.task == task && w.method == method)
        .collect()
}

pub(crate) fn weight_matrix(weights: &[WeightRow], task: &str, method: &str) -> WeightMatrix {
    let rows = select(weights, task, method);
    let layers = first_appearance(rows.iter().map(|w| w.layer.as_str()));
    let modules = first_appearance(rows.iter().map(|w| w.module.as_str()));
    let values = layers
        .iter()
        .map(|layer| {
            modules
                .iter()
                .map(|module| {
                    let v: Vec<f64> = rows
                        .iter()
                        .filter(|w| &w.layer == layer && &w.module == module)
                        .map(|w| w.weight)
                        .collect();
                    mean(&v)
                })
                .collect()
        })
        .collect();
    WeightMatrix {
        layers,
        modules,
        values,
    }
}

/// Mean weight per upstream module of one (task, method), over layers, seeds and k, in order
/// of first appearance.
pub(crate) fn module_means(weights: &[WeightRow], task: &str, method: &str) -> Vec<(String, f64)> {
    let rows = select(weights, task, method);
    first_appearance(rows.iter().map(|w| w.module.as_str()))
        .into_iter()
        .filter_map(|module| {
            let v: Vec<f64> = rows
                .iter()
                .filter(|w| w.module == module)
                .map(|w| w.weight)
                .collect();
            mean(&v).map(|m| (module, m))
        })
        .collect()
}

/// One upstream module of a downstream task: its CKA and mean learned weight.
pub(crate) struct SimilarityPair {
    pub module: String,
    pub cka: f64,
    pub cka_debiased: Option<f64>,
    pub weight: f64,
}

/// Modules of one (task, method) that have both a CKA and learned weights, in weight order.
pub(crate) fn similarity_pairs(
    similarity: &[SimilarityRow],
    weights: &[WeightRow],
    task: &str,
    method: &str,
) -> Vec<SimilarityPair> {
    module_means(weights, task, method)
        .into_iter()
        .filter_map(|(module, weight)| {
            similarity
                .iter()
                .find(|s| s.task == task && s.module == module)
                .map(|s| SimilarityPair {
                    module,
                    cka: s.cka,
                    cka_debiased: s.cka_debiased,
                    weight,
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(task: &str, method: &str, k: Shot, seed: u64, accuracy: f64) -> ResultRow {
        ResultRow {
            task: task.into(),
            shift: Shift::Label,
            method: method.into(),
            k,
            seed,
            accuracy,
            trainable_params: 10,
            train_seconds: 1.0,
            samples_per_sec: 1.0,
        }
    }

    #[test]
    fn k_columns_put_full_last() {
        let results = [
            run("a", "m", Shot::Full, 0, 0.9),
            run("a", "m", Shot::K(10), 0, 0.8),
            run("a", "m", Shot::K(2), 0, 0.6),
            run("a", "m", Shot::K(1), 0, 0.5),
        ];
        let grid = accuracy(&results, &["m".into()], |_| true, Interval::T);
        assert_eq!(grid.ks, [Shot::K(1), Shot::K(2), Shot::K(10), Shot::Full]);
        assert_eq!(ks(&results, |_| true), grid.ks);
    }

    #[test]
    fn relative_pairs_on_task_k_and_seed() {
        let results = [
            run("a", "ref", Shot::K(1), 0, 0.50),
            run("a", "ref", Shot::K(1), 1, 0.60),
            run("a", "m", Shot::K(1), 0, 0.55),
            run("a", "m", Shot::K(1), 1, 0.70),
            // No reference for seed 2: left out of the pairs.
            run("a", "m", Shot::K(1), 2, 0.99),
        ];
        let order = ["ref".to_string(), "m".to_string()];
        let grid = relative(&results, &order, "ref", |_| true);
        assert_eq!(grid.methods, ["m"]);
        let e = grid.get("m", Shot::K(1)).unwrap();
        assert_eq!(e.n, 2);
        assert!((e.mean - 7.5).abs() < 1e-9, "{e:?}");
    }

    #[test]
    fn methods_keep_first_appearance_order() {
        assert_eq!(first_appearance(["b", "a", "b", "c"]), ["b", "a", "c"]);
    }
}
