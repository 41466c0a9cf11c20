//! Rates chosen on tuning tasks (`transfer.tuning.select = "tuning-tasks"`): every tuning cell
//! tries the whole bracketed grid ([`crate::method::bracketed`]) and writes each factor's
//! validation score; per method and shot, the factor with the best mean validation accuracy
//! over every tuning task and seed is chosen and fixed for the evaluation tasks. What was chosen
//! is part of an evaluation cell's config hash, so a changed choice reruns the cells it changes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use loramix_design::Shot;
use serde::{Deserialize, Serialize};

use crate::config::{Selection, hash_of};
use crate::error::{ExperimentError, Result};
use crate::method::MethodSpec;
use crate::plan::Plan;
use crate::rows::{CandidateRow, CellKey, CellRow};
use crate::store::read_all;

/// Mean validation score of one rate factor over the tuning cells of a method and shot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FactorScore {
    pub factor: f64,
    /// Mean validation accuracy in [0, 1].
    pub accuracy: f64,
    /// Mean validation cross-entropy: breaks ties of accuracy.
    pub loss: f64,
}

/// The factor chosen for a method and shot, and the curve it was chosen from.
#[derive(Debug, Clone, PartialEq)]
pub struct Chosen {
    pub factor: f64,
    /// Every factor tried, ascending.
    pub curve: Vec<FactorScore>,
    /// Tuning cells averaged (tasks x seeds).
    pub cells: usize,
}

/// The factors chosen on the tuning tasks, per method and shot, for the methods whose tuning
/// cells are all in; the others wait.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tuned {
    pub chosen: BTreeMap<(String, Shot), Chosen>,
    /// Methods with tuning cells still to come, and how many of how many are in: their
    /// evaluation cells wait for the rest, so a method's choice never depends on which shard
    /// ran first.
    pub waiting: BTreeMap<String, (usize, usize)>,
}

impl Tuned {
    /// Chooses per method and shot from the candidate rows of the plan's tuning cells (rows of
    /// other configs are ignored), for every method whose tuning cells are all there, at every
    /// shot; the others are `waiting`.
    pub fn choose(plan: &Plan, rows: &[CandidateRow]) -> Result<Self> {
        let t = &plan.experiment.transfer;
        let seeds = (t.tuning.as_ref()).map_or(t.seeds, |s| s.seeds_on_tuning_tasks(t.seeds));
        let expected = plan.tuning.len() * seeds;
        let mut tuned = Self::default();
        for method in &plan.experiment.methods {
            let configs: BTreeMap<&str, String> = (plan.tuning.iter())
                .map(|task| (task.as_str(), plan.cell_hash(method, task)))
                .collect();
            let at_shot = |shot: Shot| -> Vec<&CandidateRow> {
                (rows.iter())
                    .filter(|r| r.method == method.name && r.k == shot)
                    .filter(|r| configs.get(r.task.as_str()) == Some(&r.config))
                    .collect()
            };
            let per_shot: Vec<(Shot, Vec<&CandidateRow>)> =
                t.shots.iter().map(|&shot| (shot, at_shot(shot))).collect();
            let cells = |rows: &[&CandidateRow]| -> usize {
                let keys: BTreeSet<(&str, u64)> =
                    rows.iter().map(|r| (r.task.as_str(), r.seed)).collect();
                keys.len()
            };
            let done: usize = (per_shot.iter()).map(|(_, r)| cells(r).min(expected)).sum();
            let all = expected * t.shots.len();
            if done < all {
                tuned.waiting.insert(method.name.clone(), (done, all));
                continue;
            }
            for (shot, mine) in per_shot {
                let curve = curve(&mine, cells(&mine));
                let factor = best(&curve).ok_or_else(|| {
                    ExperimentError::Invalid(format!(
                        "method `{}` at k={shot}: the tuning cells tried no common factor",
                        method.name
                    ))
                })?;
                let entry = Chosen {
                    factor,
                    curve,
                    cells: cells(&mine),
                };
                tuned.chosen.insert((method.name.clone(), shot), entry);
            }
        }
        Ok(tuned)
    }

    /// The methods still waiting for tuning cells, as one line (`` `m` (3 of 8 tuning cells)``,
    /// ...); `None` when every method is tuned.
    pub fn waiting_methods(&self) -> Option<String> {
        let methods: Vec<String> = (self.waiting.iter())
            .map(|(m, (done, all))| format!("`{m}` ({done} of {all} tuning cells)"))
            .collect();
        (!methods.is_empty()).then(|| methods.join(", "))
    }

    /// The factor chosen for `method` at `shot`.
    pub fn factor(&self, method: &str, shot: Shot) -> Option<f64> {
        (self.chosen.get(&(method.to_string(), shot))).map(|c| c.factor)
    }

    /// The config hash of an evaluation cell: the plan's, and the factors chosen for the
    /// method; `None` while the method waits for tuning cells.
    pub fn cell_hash(&self, plan: &Plan, method: &MethodSpec, task: &str) -> Option<String> {
        if self.waiting.contains_key(&method.name) {
            return None;
        }
        let factors: Vec<(String, f64)> = (self.chosen.iter())
            .filter(|((m, _), _)| *m == method.name)
            .map(|((_, shot), c)| (shot.to_string(), c.factor))
            .collect();
        Some(hash_of(&[
            &plan.cell_hash(method, task),
            &"tuned/1",
            &factors,
        ]))
    }
}

/// Mean accuracy and loss per factor, over the candidate rows of one method and shot; only
/// factors every one of the `cells` tried are compared.
fn curve(rows: &[&CandidateRow], cells: usize) -> Vec<FactorScore> {
    let mut sums: BTreeMap<u64, (f64, f64, usize)> = BTreeMap::new();
    for r in rows {
        let entry = sums.entry(r.factor.to_bits()).or_default();
        entry.0 += r.val_accuracy.unwrap_or(0.0);
        entry.1 += r.val_loss.unwrap_or(f64::INFINITY);
        entry.2 += 1;
    }
    let mut curve: Vec<FactorScore> = (sums.into_iter())
        .filter(|(_, (_, _, n))| *n == cells)
        .map(|(bits, (acc, loss, n))| FactorScore {
            factor: f64::from_bits(bits),
            accuracy: acc / n as f64,
            loss: loss / n as f64,
        })
        .collect();
    curve.sort_by(|a, b| a.factor.total_cmp(&b.factor));
    curve
}

/// The factor of the best mean accuracy; ties go to the lower mean loss, then the smaller factor.
fn best(curve: &[FactorScore]) -> Option<f64> {
    let beats = |a: &FactorScore, b: &FactorScore| {
        a.accuracy > b.accuracy || (a.accuracy == b.accuracy && a.loss < b.loss)
    };
    let mut best: Option<&FactorScore> = None;
    for score in curve {
        if best.is_none_or(|b| beats(score, b)) {
            best = Some(score);
        }
    }
    best.map(|b| b.factor)
}

/// The choices of a run that tunes on tasks, read from its tuning files; `None` for a run
/// that chooses per cell.
pub fn read(plan: &Plan) -> Result<Option<Tuned>> {
    let on_tasks = (plan.experiment.transfer.tuning.as_ref())
        .is_some_and(|t| t.select == Selection::TuningTasks);
    if !on_tasks {
        return Ok(None);
    }
    // A cell's candidates count once its own row is written after them: a cell stopped
    // between the two, or still writing, has not finished.
    let finished: BTreeSet<CellKey> = (read_all::<CellRow>(&plan.run.tuning_files(false)?)?)
        .iter()
        .map(CellRow::key)
        .collect();
    let mut rows = read_all::<CandidateRow>(&plan.run.tuning_files(true)?)?;
    rows.retain(|r| finished.contains(&r.key()));
    Tuned::choose(plan, &rows).map(Some)
}

/// One line of the summary's tuning table (`tuning.csv`): what was chosen for a method and
/// shot, the curve, and the validation - test gap of each way of choosing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuningLine {
    pub method: String,
    pub k: Shot,
    pub factor: f64,
    /// `factor=mean validation accuracy` per factor, ascending.
    pub curve: String,
    /// Tuning cells, each choosing its own factor on its own validation examples.
    pub tuning_cells: usize,
    /// Their mean validation - test accuracy, in points: the optimism of choosing per cell.
    pub gap_per_cell: Option<f64>,
    /// Evaluation cells, each training the factor chosen on the tuning tasks.
    pub eval_cells: usize,
    /// Their mean validation - test accuracy, in points (validation still picks the check).
    pub gap_fixed: Option<f64>,
}

/// The rows of `method` at `shot`.
fn of<'a>(rows: &'a [CellRow], method: &str, shot: Shot) -> Vec<&'a CellRow> {
    (rows
        .iter()
        .filter(|r| r.result.method == method && r.result.k == shot))
    .collect()
}

/// The table's lines: per method and shot, from the tuning cells (each chose per cell among
/// the bracketed grid) and the evaluation cells of this config.
pub fn lines(tuned: &Tuned, tuning_cells: &[CellRow], eval_cells: &[CellRow]) -> Vec<TuningLine> {
    let gap = |rows: Vec<&CellRow>| -> (usize, Option<f64>) {
        let gaps: Vec<f64> = (rows.iter())
            .filter_map(|r| (r.facts.val_accuracy).map(|v| 100.0 * (v - r.result.accuracy)))
            .collect();
        let mean = (!gaps.is_empty()).then(|| gaps.iter().sum::<f64>() / gaps.len() as f64);
        (rows.len(), mean)
    };
    let mut lines = Vec::new();
    for ((method, shot), chosen) in &tuned.chosen {
        let (tuning_n, gap_per_cell) = gap(of(tuning_cells, method, *shot));
        let (eval_n, gap_fixed) = gap(of(eval_cells, method, *shot));
        let curve: Vec<String> = (chosen.curve.iter())
            .map(|s| format!("{}={:.3}", short(s.factor), s.accuracy))
            .collect();
        lines.push(TuningLine {
            method: method.clone(),
            k: *shot,
            factor: chosen.factor,
            curve: curve.join(" "),
            tuning_cells: tuning_n,
            gap_per_cell,
            eval_cells: eval_n,
            gap_fixed,
        });
    }
    lines
}

/// A factor as the table prints it: `0.0333`, `33.33`, `1`.
fn short(factor: f64) -> String {
    let decimals = if factor >= 1.0 { 2 } else { 4 };
    let text = format!("{factor:.decimals$}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The summary's section on the tuning tasks: the factor each method and shot kept, the curve
/// it came from, and the validation - test gap per cell (before) and with the factor fixed
/// (after).
pub fn markdown(tuning_tasks: &[String], lines: &[TuningLine]) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "\n### Rates chosen on tuning tasks\n\nEach method's rate factor is chosen per shot on \
         the tuning tasks ({}) by mean validation accuracy over their tasks and seeds, then \
         fixed for every evaluation task; each cell still keeps its best validation check. \
         The gap is mean validation minus test accuracy in points: per cell, each tuning cell \
         chose its own factor on its own validation examples (the old protocol); fixed, the \
         evaluation cells trained the chosen one.\n",
        tuning_tasks
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    md.push_str(
        "| method | k | factor | mean validation accuracy per factor | gap per cell | gap fixed |\n\
         |---|---:|---:|---|---:|---:|\n",
    );
    let points = |gap: Option<f64>, n: usize| match gap {
        Some(g) => format!("{g:+.1} (n={n})"),
        None => "–".into(),
    };
    for l in lines {
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} | {} |",
            l.method,
            l.k,
            short(l.factor),
            l.curve,
            points(l.gap_per_cell, l.tuning_cells),
            points(l.gap_fixed, l.eval_cells)
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(task: &str, seed: u64, factor: f64, accuracy: f64, loss: f64) -> CandidateRow {
        CandidateRow {
            task: task.into(),
            method: "lora".into(),
            k: Shot::K(1),
            seed,
            factor,
            val_accuracy: Some(accuracy),
            val_loss: Some(loss),
            config: "c".into(),
        }
    }

    #[test]
    fn the_best_mean_accuracy_wins_and_ties_go_to_the_lower_loss() {
        // Task a prefers factor 1, task b factor 3; the mean decides (0.75 vs 0.7).
        let rows = [
            row("a", 0, 1.0, 1.0, 0.5),
            row("a", 0, 3.0, 0.6, 0.9),
            row("b", 0, 1.0, 0.5, 0.8),
            row("b", 0, 3.0, 0.8, 0.4),
        ];
        let refs: Vec<&CandidateRow> = rows.iter().collect();
        let both = curve(&refs, 2);
        assert_eq!(both.len(), 2);
        assert_eq!(best(&both), Some(1.0));
        // Equal mean accuracy: the lower mean loss.
        let rows = [row("a", 0, 1.0, 0.5, 0.9), row("a", 0, 3.0, 0.5, 0.4)];
        let refs: Vec<&CandidateRow> = rows.iter().collect();
        assert_eq!(best(&curve(&refs, 1)), Some(3.0));
    }

    #[test]
    fn a_factor_not_every_cell_tried_is_not_compared() {
        let rows = [
            row("a", 0, 1.0, 0.5, 0.5),
            row("a", 1, 1.0, 0.5, 0.5),
            row("a", 0, 10.0, 1.0, 0.1),
        ];
        let refs: Vec<&CandidateRow> = rows.iter().collect();
        let curve = curve(&refs, 2);
        assert_eq!(curve.iter().map(|s| s.factor).collect::<Vec<_>>(), [1.0]);
    }

    #[test]
    fn factors_print_short() {
        assert_eq!(short(0.1 / 3.0), "0.0333");
        assert_eq!(short(100.0 / 3.0), "33.33");
        assert_eq!(short(1.0), "1");
        assert_eq!(short(0.3), "0.3");
    }
}
