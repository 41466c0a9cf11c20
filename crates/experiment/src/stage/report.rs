//! The `report` stage: merge the shards' rows of the current config, then hand them to
//! `loramix-report` for `summary.md` and the plots, and write `manifest.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use loramix_design::Shot;
use loramix_lora::AdapterManifest;
use loramix_report::{
    AnalysisPlan, Left, Location, ModuleFacts, Planned, ReportInputs, ResultRow, SimilarityRow,
    WeightRow, write_report, write_results,
};
use serde::Serialize;

use crate::backbone::ModelSpec;
use crate::config::{Experiment, Selection};
use crate::error::{ExperimentError, Result};
use crate::method::claim_roles;
use crate::plan::Plan;
use crate::rows::{self, CellRow, ReferenceRow};
use crate::store::{Timings, read_all, read_rows, read_task_facts, write_csv, write_json};
use crate::tuning::Tuned;

/// What a finished run was made with.
#[derive(Debug, Serialize)]
struct Manifest<'a> {
    experiment: &'a Experiment,
    /// loramix's version and the revision it was built from.
    loramix_version: &'static str,
    loramix_revision: &'static str,
    backend: &'static str,
    threads: usize,
    /// Seconds per stage, summed over every invocation that worked on this run.
    stage_seconds: BTreeMap<String, f64>,
    cells: usize,
    /// The cells the sweep plans, and how many of them are done.
    planned: Planned,
    stale_rows_ignored: usize,
    /// The primary tests this report judged the claims by, and their hash.
    analysis_plan: AnalysisPlan,
    analysis_plan_hash: String,
    /// The hash registered with the sweep before its first cell (`sweep/plan.json`); another
    /// value than `analysis_plan_hash`, or none, makes the report a re-analysis.
    registered_plan_hash: Option<String>,
    /// The tasks the rates were chosen on (none when each cell chose its own).
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    tuning_tasks: &'a [String],
}

/// Rows of a CSV file with where each was read (the header is line 1).
fn numbered<T>(rows: Vec<T>, file: &Path) -> Vec<(Location, T)> {
    rows.into_iter()
        .enumerate()
        .map(|(i, row)| {
            let at = Location {
                path: file.to_path_buf(),
                line: i as u64 + 2,
            };
            (at, row)
        })
        .collect()
}

/// The evaluation cells the sweep plans (every downstream task, method, shot and seed), how
/// many of them `results` holds (rows outside the plan count for nothing), and the compute the
/// missing ones, and the missing tuning cells, will take: in all, and of those the primary
/// tests wait for.
fn planned(plan: &Plan, results: &[ResultRow], tuning_rows: &[CellRow]) -> Result<Planned> {
    let t = &plan.experiment.transfer;
    let cells = |tasks: &[String], seeds: usize| -> Vec<CellId> {
        let mut cells = Vec::new();
        for task in tasks {
            for method in &plan.experiment.methods {
                for &shot in &t.shots {
                    let ids =
                        (0..seeds as u64).map(|s| (task.clone(), method.name.clone(), shot, s));
                    cells.extend(ids);
                }
            }
        }
        cells
    };
    let primary = plan.experiment.analysis_plan().primary;
    let id = |r: &ResultRow| (r.task.clone(), r.method.clone(), r.k, r.seed);
    let done: BTreeMap<CellId, f64> = results.iter().map(|r| (id(r), r.train_seconds)).collect();
    let evaluation = cells(&plan.downstream, t.seeds);
    let all_rows: Vec<CellRow> = read_all(&plan.run.shard_files(false)?)?;
    let read = |c: &CellId| primary.iter().any(|test| test.reads(&c.1, c.2));
    let mut left = time_left(&evaluation, &done, &mean_times(&all_rows), read);
    if !plan.tuning.is_empty() {
        let seeds = (t.tuning.as_ref()).map_or(t.seeds, |s| s.seeds_on_tuning_tasks(t.seeds));
        let tuned: BTreeMap<CellId, f64> = (tuning_rows.iter())
            .filter(|r| is_current_tuning_cell(plan, r))
            .map(|r| (id(&r.result), r.result.train_seconds))
            .collect();
        let tuning = cells(&plan.tuning, seeds);
        let compared = |c: &CellId| primary.iter().any(|test| test.compares(&c.1));
        let more = time_left(&tuning, &tuned, &mean_times(tuning_rows), compared);
        left.thread_hours += more.thread_hours;
        left.primary_thread_hours += more.primary_thread_hours;
        left.untimed += more.untimed;
    }
    Ok(Planned {
        runs: evaluation.len(),
        done: (evaluation.iter())
            .filter(|c| done.contains_key(*c))
            .count(),
        left: Some(left),
    })
}

/// [`seconds_left`] of `planned` as thread-hours, in all and of the cells `primary` picks.
fn time_left(
    planned: &[CellId],
    done: &BTreeMap<CellId, f64>,
    earlier: &BTreeMap<(String, Shot), f64>,
    primary: impl Fn(&CellId) -> bool,
) -> Left {
    let (seconds, untimed) = seconds_left(planned, done, earlier);
    let picked: Vec<CellId> = planned.iter().filter(|c| primary(c)).cloned().collect();
    Left {
        thread_hours: seconds / 3600.0,
        primary_thread_hours: seconds_left(&picked, done, earlier).0 / 3600.0,
        untimed,
    }
}

/// A cell by task, method, shot and seed.
type CellId = (String, String, Shot, u64);

/// Mean training seconds per method and shot of `rows`, whatever their config.
fn mean_times(rows: &[CellRow]) -> BTreeMap<(String, Shot), f64> {
    group_means((rows.iter()).map(|r| {
        (
            (r.result.method.clone(), r.result.k),
            r.result.train_seconds,
        )
    }))
}

/// The mean of the seconds of each method and shot.
fn group_means(
    times: impl Iterator<Item = ((String, Shot), f64)>,
) -> BTreeMap<(String, Shot), f64> {
    let mut sums: BTreeMap<(String, Shot), (f64, usize)> = BTreeMap::new();
    for (group, seconds) in times {
        let entry = sums.entry(group).or_default();
        *entry = (entry.0 + seconds, entry.1 + 1);
    }
    (sums.into_iter())
        .map(|(group, (sum, n))| (group, sum / n as f64))
        .collect()
}

/// Seconds the cells of `planned` missing from `done` will take, each at the mean of the done
/// cells of its method and shot, or, where none is done, of `earlier` (rows of other configs:
/// a replaced module set's, say); and how many missing cells have neither to go by.
fn seconds_left(
    planned: &[CellId],
    done: &BTreeMap<CellId, f64>,
    earlier: &BTreeMap<(String, Shot), f64>,
) -> (f64, usize) {
    let in_plan = (planned.iter()).filter_map(|c| done.get(c).map(|s| ((c.1.clone(), c.2), *s)));
    let means = group_means(in_plan);
    let mut left = (0.0, 0);
    for cell in planned.iter().filter(|c| !done.contains_key(*c)) {
        let group = (cell.1.clone(), cell.2);
        match means.get(&group).or(earlier.get(&group)) {
            Some(seconds) => left.0 += seconds,
            None => left.1 += 1,
        }
    }
    left
}

/// Writes `results.csv`, `learned_weights.csv`, `summary.md`, `plots/` and `manifest.json`
/// into the run folder; returns the files written.
pub fn write(plan: &Plan) -> Result<Vec<PathBuf>> {
    let run = &plan.run;
    let tuned = crate::tuning::read(plan)?;
    let current = Current::of(plan, tuned.as_ref());
    let (results, stale) = current.results()?;
    let tuning_rows: Vec<CellRow> = read_all(&run.tuning_files(false)?)?;
    let tuning_section = match &tuned {
        Some(tuned) => tuning_section(plan, tuned, &current, &tuning_rows)?,
        None => String::new(),
    };
    write_results(&run.root.join("results.csv"), &results)?;
    let weights = current.weights(&results)?;
    write_csv(&run.root.join("learned_weights.csv"), &weights)?;
    let similarity = read_rows::<SimilarityRow>(&run.similarity(&plan.similarity_hash()))?;
    let analysis = plan.experiment.analysis_plan();
    let registered = crate::registration::registered(run)?.map(|r| r.hash);
    let manifest = Manifest {
        experiment: &plan.experiment,
        loramix_version: env!("CARGO_PKG_VERSION"),
        loramix_revision: env!("LORAMIX_REVISION"),
        backend: loramix_backend::NAME,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        stage_seconds: Timings::read(run)?.seconds,
        cells: results.len(),
        planned: planned(plan, &results, &tuning_rows)?,
        stale_rows_ignored: stale,
        analysis_plan_hash: analysis.hash(),
        analysis_plan: analysis.clone(),
        registered_plan_hash: registered.clone(),
        tuning_tasks: &plan.tuning,
    };
    write_json(&run.root.join("manifest.json"), &manifest)?;
    let metrics = module_metrics(plan);
    let methods = plan.experiment.methods.iter();
    let roles = claim_roles(methods.map(|m| (m.name.as_str(), m.kind.label())));
    let inputs = ReportInputs {
        title: format!("loramix: {}", plan.experiment.name),
        reference_method: "head-only".into(),
        results,
        weights,
        similarity,
        modules: module_facts(&metrics),
        preamble: preamble(plan, &manifest, &metrics) + &tuning_section,
        comparisons: roles.comparisons(),
        roles,
        tasks: read_task_facts(run)?,
        plan_status: crate::registration::status(&analysis, registered.as_deref()),
        plan: analysis,
        planned: Some(manifest.planned),
    };
    let files = write_report(&inputs, &run.root)?;
    eprint!("{}", loramix_report::in_brief(&inputs));
    eprintln!(
        "report: wrote {} files; read {}",
        files.len() + 3,
        run.root.join("summary.md").display()
    );
    Ok(files)
}

/// The rows of this config: its methods on its tasks, with the hash the config gives them.
/// Rows of other methods, tasks or settings are left from earlier configs.
struct Current<'a> {
    plan: &'a Plan,
    hashes: BTreeMap<(String, String), String>,
}

impl<'a> Current<'a> {
    /// The evaluation cells' hashes: with the factors `tuned` chose, when the run tunes on tasks.
    fn of(plan: &'a Plan, tuned: Option<&Tuned>) -> Self {
        let mut hashes = BTreeMap::new();
        for task in &plan.downstream {
            for m in &plan.experiment.methods {
                let hash = match tuned {
                    Some(tuned) => tuned.cell_hash(plan, m, task),
                    None => Some(plan.cell_hash(m, task)),
                };
                // A method still waiting for tuning cells has no rows of this config yet.
                if let Some(hash) = hash {
                    hashes.insert((task.clone(), m.name.clone()), hash);
                }
            }
        }
        Self { plan, hashes }
    }

    /// Every shard's rows of this config, as written.
    fn cell_rows(&self) -> Result<Vec<CellRow>> {
        let mut rows = Vec::new();
        for file in self.plan.run.shard_files(false)? {
            let read = read_rows::<CellRow>(&file)?.into_iter();
            rows.extend(read.filter(|r| self.holds_cell(r)));
        }
        Ok(rows)
    }

    fn holds(&self, task: &str, method: &str, config: &str) -> bool {
        let key = (task.to_string(), method.to_string());
        self.hashes.get(&key).is_some_and(|h| h == config)
    }

    fn holds_cell(&self, row: &CellRow) -> bool {
        self.holds(&row.result.task, &row.result.method, &row.facts.config)
    }

    /// Every shard's result rows of this config, merged by the report crate's one rule (a
    /// repeated cell must repeat its measurement, else the report stops and names both rows),
    /// in the config's method order; and how many rows were left out as stale.
    fn results(&self) -> Result<(Vec<ResultRow>, usize)> {
        let run = &self.plan.run;
        let mut stale = 0;
        let mut located = Vec::new();
        for file in run.shard_files(false)? {
            for (line, row) in numbered(read_rows::<CellRow>(&file)?, &file) {
                match self.holds_cell(&row) {
                    true => located.push((row.result, line)),
                    false => stale += 1,
                }
            }
        }
        let mut results = loramix_report::merge(located)?;
        if results.is_empty() {
            return Err(ExperimentError::Invalid(format!(
                "no finished cells of this config in {}: run `loramix transfer` first",
                run.sweep().display()
            )));
        }
        if stale > 0 {
            eprintln!(
                "report: ignoring {stale} rows made by an earlier config or for tasks no longer in it"
            );
        }
        let methods = &self.plan.experiment.methods;
        let rank = |method: &str| methods.iter().position(|m| m.name == method);
        results.sort_by_key(|r| rank(&r.method).unwrap_or(usize::MAX));
        Ok((results, stale))
    }

    /// Weight rows of finished cells only: a cell interrupted after its weights and before its
    /// result has no result row, and its weights are not part of any result.
    fn weights(&self, results: &[ResultRow]) -> Result<Vec<WeightRow>> {
        let finished: BTreeSet<(&str, &str, Shot, u64)> = results
            .iter()
            .map(|r| (r.task.as_str(), r.method.as_str(), r.k, r.seed))
            .collect();
        let mut located = Vec::new();
        for file in self.plan.run.shard_files(true)? {
            for (line, row) in numbered(read_rows::<rows::WeightRow>(&file)?, &file) {
                let w = &row.weight;
                let key = (w.task.as_str(), w.method.as_str(), w.k, w.seed);
                if self.holds(&w.task, &w.method, &row.config) && finished.contains(&key) {
                    located.push((row.weight, line));
                }
            }
        }
        Ok(loramix_report::merge(located)?)
    }
}

/// Whether a row of `sweep/tuning/` is a tuning cell of this config.
fn is_current_tuning_cell(plan: &Plan, r: &CellRow) -> bool {
    plan.tuning.contains(&r.result.task)
        && (plan.experiment.method(&r.result.method))
            .is_some_and(|m| plan.cell_hash(m, &r.result.task) == r.facts.config)
}

/// The summary's tuning section, also written to `tuning.csv` for `render`: per method and
/// shot, the factor the tuning tasks chose and the validation - test gap before and after.
fn tuning_section(
    plan: &Plan,
    tuned: &Tuned,
    current: &Current,
    tuning_rows: &[CellRow],
) -> Result<String> {
    let tuning_cells: Vec<CellRow> = (tuning_rows.iter())
        .filter(|r| is_current_tuning_cell(plan, r))
        .cloned()
        .collect();
    let lines = crate::tuning::lines(tuned, &tuning_cells, &current.cell_rows()?);
    write_csv(&plan.run.root.join("tuning.csv"), &lines)?;
    let mut md = crate::tuning::markdown(&plan.tuning, &lines);
    if let Some(methods) = tuned.waiting_methods() {
        md.push_str(&format!(
            "\nStill tuning, so no evaluation cells yet: {methods}.\n"
        ));
    }
    Ok(md)
}

/// The metrics each upstream module's manifest records (none where it cannot be read).
fn module_metrics(plan: &Plan) -> Vec<(String, BTreeMap<String, f64>)> {
    let dir = plan.run.upstream(&plan.upstream_hash());
    let metrics = |task: &str| -> Option<BTreeMap<String, f64>> {
        let path = dir.join(task).join("manifest.json");
        let manifest: AdapterManifest = crate::store::read_json(&path).ok()?;
        Some(manifest.metrics)
    };
    (plan.upstream.iter())
        .map(|task| (task.clone(), metrics(task).unwrap_or_default()))
        .collect()
}

/// Each upstream module's own test accuracy and classes, where its manifest records them.
fn module_facts(metrics: &[(String, BTreeMap<String, f64>)]) -> Vec<ModuleFacts> {
    (metrics.iter())
        .filter_map(|(task, m)| {
            Some(ModuleFacts {
                test_accuracy: *m.get("test_accuracy")?,
                classes: m.get("classes").map(|c| *c as usize),
                task: task.clone(),
            })
        })
        .collect()
}

/// The upstream modules, each with its test accuracy on its own task where its manifest
/// records one: how strong the modules being composed are.
fn upstream_modules(metrics: &[(String, BTreeMap<String, f64>)]) -> Vec<String> {
    (metrics.iter())
        .map(|(task, m)| {
            let mut text = match m.get("test_accuracy") {
                Some(a) => format!("{task} {:.1}%", 100.0 * a),
                None => task.clone(),
            };
            if let (Some(steps), Some(converged)) = (m.get("steps_trained"), m.get("converged")) {
                let how = if *converged > 0.0 { "converged" } else { "cap" };
                text.push_str(&format!(" ({steps} steps, {how})"));
            }
            text
        })
        .collect()
}

/// One line on how the similarity stage's reference LoRAs trained, when it ran.
fn references_line(plan: &Plan) -> Option<String> {
    let path = ReferenceRow::path(&plan.run.similarity(&plan.similarity_hash()));
    let rows: Vec<ReferenceRow> = read_rows(&path).ok().filter(|r| !r.is_empty())?;
    let spec = &plan.experiment.similarity;
    let range = |values: Vec<f64>| {
        let low = values.iter().copied().fold(f64::INFINITY, f64::min);
        let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{:.1}-{:.1}%", 100.0 * low, 100.0 * high)
    };
    let test = range(rows.iter().map(|r| r.test_accuracy).collect());
    let fewest = rows.iter().map(|r| r.steps).min().unwrap_or(0);
    let most = rows.iter().map(|r| r.steps).max().unwrap_or(0);
    Some(match spec.converge {
        Some(c) => format!(
            "- CKA references (claim 4): a LoRA per downstream task on its full-shot set, \
             checked on {} held-out examples per class every {} steps; {} of {} stopped when \
             {} checks in a row did not improve (the rest at the {}-step cap), after \
             {fewest}-{most} steps; validation {}, test {}.\n",
            c.validation_per_class,
            c.every,
            rows.iter().filter(|r| r.converged).count(),
            rows.len(),
            c.patience,
            spec.steps,
            range(rows.iter().filter_map(|r| r.val_accuracy).collect()),
            test
        ),
        None => format!(
            "- CKA references (claim 4): a LoRA per downstream task on its full-shot set, {} \
             steps with no validation check (convergence not verified); test {test}.\n",
            spec.steps
        ),
    })
}

/// The protocol lines of the preamble: how rates were chosen, unequal budgets if any, and
/// each method's steps and rate.
fn protocol(plan: &Plan) -> String {
    let e = &plan.experiment;
    let t = &e.transfer;
    let mut text = String::new();
    match &t.tuning {
        Some(tuning) if tuning.select == Selection::TuningTasks => text.push_str(&format!(
            "- Rates chosen on {} tuning tasks ({}), kept apart from the evaluation: each tuning \
             cell tried the rates times {:?} and one factor past each edge; per method and shot \
             the factor of the best mean validation accuracy is fixed for every evaluation \
             cell, which keeps the best of {} checks on its own validation examples (k per \
             class, {} for `full`).\n",
            plan.tuning.len(),
            plan.tuning.join(", "),
            tuning.rate_factors,
            tuning.checks,
            tuning.validation_full
        )),
        Some(tuning) => text.push_str(&format!(
            "- Tuned on validation (k per class, {} for `full`): rates times {:?} (one factor \
             further when the best lies on an edge), the best of {} checks kept; each cell's \
             choice and every candidate's validation score are in the sweep's rows.\n",
            tuning.validation_full, tuning.rate_factors, tuning.checks
        )),
        None => {}
    }
    if let Some(reason) = &t.unequal_steps {
        text.push_str(&format!(
            "- **Unequal budgets**: the methods train for different numbers of steps, by choice \
             ({reason}); their comparisons carry that difference.\n"
        ));
    }
    let most = if t.tuning.is_some() { "at most " } else { "" };
    for m in &e.methods {
        text.push_str(&format!(
            "  - `{}` ({}): {most}{} steps, lr {}\n",
            m.name,
            m.kind.label(),
            m.steps,
            m.lr
        ));
    }
    text
}

fn preamble(
    plan: &Plan,
    manifest: &Manifest,
    metrics: &[(String, BTreeMap<String, f64>)],
) -> String {
    let e = &plan.experiment;
    let t = &e.transfer;
    let shots: Vec<String> = t.shots.iter().map(ToString::to_string).collect();
    let mut text = String::new();
    if !e.description.is_empty() {
        text.push_str(&format!("{}\n\n", e.description));
    }
    text.push_str(&format!(
        "- Suite `{}`: {} upstream modules ({}); downstream tasks: {}.\n",
        e.suite
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        plan.upstream.len(),
        upstream_modules(metrics).join(", "),
        plan.downstream.join(", ")
    ));
    let base = describe_base(plan);
    text.push_str(&format!(
        "- Model: {base}; upstream LoRA rank {} alpha {} on {:?}, {} steps (batch {}, lr {}).\n",
        e.upstream.rank,
        e.upstream.alpha,
        e.upstream.targets,
        e.upstream.steps,
        e.upstream.batch,
        e.upstream.lr
    ));
    text.push_str(&format!(
        "- Shots {} per class (`full` = up to {} per class), seeds 0..{}, batch {}.\n",
        shots.join(", "),
        t.full_per_class,
        t.seeds,
        t.batch
    ));
    text.push_str(&protocol(plan));
    text.push_str(&references_line(plan).unwrap_or_default());
    let total: f64 = manifest.stage_seconds.values().sum();
    let stages: Vec<String> = manifest
        .stage_seconds
        .iter()
        .map(|(s, v)| format!("{s} {:.1} min", v / 60.0))
        .collect();
    text.push_str(&format!(
        "- Backend `{}`, {} threads, {}. Time: {} (total {:.1} min).\n",
        manifest.backend,
        manifest.threads,
        revision_text(manifest.loramix_revision),
        stages.join(", "),
        total / 60.0
    ));
    text
}

/// `revision `abc`` for a clean build; for a build with uncommitted changes (build.rs's
/// `<commit>-dirty-<digest>`), a warning that the code is not the commit's.
pub(super) fn revision_text(revision: &str) -> String {
    match revision.split_once("-dirty") {
        None => format!("revision `{revision}`"),
        Some((commit, digest)) => {
            let digest = match digest.trim_start_matches('-') {
                "" => "no digest recorded".to_string(),
                digest => format!("digest `{digest}`"),
            };
            format!(
                "revision `{commit}` **with uncommitted changes** ({digest}): the code that made \
                 these numbers is not in the repository's history"
            )
        }
    }
}

/// The backbone in a line: a pretrained checkpoint, or an own size and its pretraining.
fn describe_base(plan: &Plan) -> String {
    let e = &plan.experiment;
    match &e.model {
        ModelSpec::Pretrained(p) => format!(
            "pretrained `{}` ({}){}",
            p.name,
            plan.base_identity
                .as_deref()
                .unwrap_or("fingerprint unknown"),
            p.image_size
                .map_or_else(String::new, |s| format!(", images at {s} px"))
        ),
        ModelSpec::Own(own) => format!(
            "dim {}, depth {}, heads {}, MLP {}{}{}",
            own.size.dim,
            own.size.depth,
            own.size.heads,
            own.size.mlp_dim,
            own.patch_size
                .map_or_else(String::new, |p| format!(", patch {p}")),
            e.pretrain.as_ref().map_or_else(String::new, |p| format!(
                ". Pretraining {} steps (batch {}, lr {})",
                p.steps, p.batch, p.lr
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_cell_takes_the_mean_time_of_its_method_and_shot() {
        let cell = |task: &str, method: &str, k: usize| -> CellId {
            (task.into(), method.into(), Shot::K(k), 0)
        };
        let planned = [
            cell("a", "lora", 1),
            cell("b", "lora", 1),
            cell("c", "lora", 1),
            cell("a", "lora", 5),
            cell("a", "search", 1),
        ];
        let done = BTreeMap::from([
            (cell("a", "lora", 1), 10.0),
            (cell("b", "lora", 1), 20.0),
            (cell("a", "lora", 5), 99.0),
            // Outside the plan: times nothing.
            (cell("z", "search", 1), 7.0),
        ]);
        let none = BTreeMap::new();
        assert_eq!(seconds_left(&planned, &done, &none), (15.0, 1));
        // An earlier config's time stands in for a method and shot none of whose cells is done.
        let earlier = BTreeMap::from([
            (("search".to_string(), Shot::K(1)), 40.0),
            (("lora".to_string(), Shot::K(1)), 1000.0),
        ]);
        assert_eq!(seconds_left(&planned, &done, &earlier), (55.0, 0));
    }

    #[test]
    fn a_build_with_uncommitted_changes_is_named_so_with_its_digest() {
        assert_eq!(revision_text("0123abcd"), "revision `0123abcd`");
        let dirty = revision_text("0123abcd-dirty-fedcba987654");
        assert!(dirty.starts_with("revision `0123abcd` **with uncommitted changes**"));
        assert!(dirty.contains("digest `fedcba987654`"), "{dirty}");
        // Manifests written before build.rs recorded a digest.
        assert!(revision_text("0123abcd-dirty").contains("no digest recorded"));
    }
}
