//! The `report` stage: merge the shards' rows of the current config, then hand them to
//! `loramix-report` for `summary.md` and the plots, and write `manifest.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use loramix_design::Shot;
use loramix_lora::AdapterManifest;
use loramix_report::{
    AnalysisPlan, ClaimRoles, Location, ReportInputs, ResultRow, SimilarityRow, WeightRow,
    write_report, write_results,
};
use serde::Serialize;

use crate::config::Experiment;
use crate::error::{ExperimentError, Result};
use crate::method::{Full, Learned, Lora, SweepMethod, Uniform};
use crate::plan::Plan;
use crate::rows::{self, CellRow};
use crate::store::{Timings, read_rows, read_task_facts, write_csv, write_json};

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
    stale_rows_ignored: usize,
    /// The primary tests this report judged the claims by, and their hash.
    analysis_plan: AnalysisPlan,
    analysis_plan_hash: String,
    /// The hash registered with the sweep before its first cell (`sweep/plan.json`); another
    /// value than `analysis_plan_hash`, or none, makes the report a re-analysis.
    registered_plan_hash: Option<String>,
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

/// Writes `results.csv`, `learned_weights.csv`, `summary.md`, `plots/` and `manifest.json`
/// into the run folder; returns the files written.
pub fn write(plan: &Plan) -> Result<Vec<PathBuf>> {
    let run = &plan.run;
    let current = Current::of(plan);
    let (results, stale) = current.results()?;
    write_results(&run.root.join("results.csv"), &results)?;
    let weights = current.weights(&results)?;
    write_csv(&run.root.join("learned_weights.csv"), &weights)?;
    let similarity: Vec<SimilarityRow> =
        read_rows::<rows::SimilarityRow>(&run.similarity(&plan.similarity_hash()))?
            .into_iter()
            .map(|r| SimilarityRow {
                task: r.task,
                module: r.module,
                cka: r.cka,
            })
            .collect();
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
        stale_rows_ignored: stale,
        analysis_plan_hash: analysis.hash(),
        analysis_plan: analysis.clone(),
        registered_plan_hash: registered.clone(),
    };
    write_json(&run.root.join("manifest.json"), &manifest)?;
    let methods = plan.experiment.methods.iter();
    let roles = claim_roles(methods.map(|m| (m.name.as_str(), m.kind.label())));
    let inputs = ReportInputs {
        title: format!("loramix: {}", plan.experiment.name),
        reference_method: "head-only".into(),
        results,
        weights,
        similarity,
        preamble: preamble(plan, &manifest),
        comparisons: roles.comparisons(),
        roles,
        tasks: read_task_facts(run)?,
        plan_status: crate::registration::status(&analysis, registered.as_deref()),
        plan: analysis,
    };
    let files = write_report(&inputs, &run.root)?;
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
    fn of(plan: &'a Plan) -> Self {
        let mut hashes = BTreeMap::new();
        for task in &plan.downstream {
            for m in &plan.experiment.methods {
                hashes.insert((task.clone(), m.name.clone()), plan.cell_hash(m, task));
            }
        }
        Self { plan, hashes }
    }

    fn holds(&self, task: &str, method: &str, config: &str) -> bool {
        let key = (task.to_string(), method.to_string());
        self.hashes.get(&key).is_some_and(|h| h == config)
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
                match self.holds(&row.task, &row.method, &row.config) {
                    true => located.push((result_row(row), line)),
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
                let key = (
                    row.task.as_str(),
                    row.method.as_str(),
                    row.k,
                    row.seed as u64,
                );
                if self.holds(&row.task, &row.method, &row.config) && finished.contains(&key) {
                    located.push((weight_row(row), line));
                }
            }
        }
        Ok(loramix_report::merge(located)?)
    }
}

/// Rewrites `summary.md` and `plots/` of a results folder from its CSV files alone
/// (`results.csv`; `learned_weights.csv`, `similarity.csv` and `tasks.json` when present), with
/// this build's statistics and plots: how committed results are brought up to date without
/// their runs.
///
/// The claims are judged by `plan` when given (an analysis chosen now), else by the plan the
/// manifest recorded, else by the default family of the manifest's methods; the summary says
/// whether that plan is the one registered with the run or a new analysis of old data.
pub fn render(dir: &Path, plan: Option<AnalysisPlan>) -> Result<Vec<PathBuf>> {
    let optional = |name: &str| {
        let path = dir.join(name);
        path.exists().then_some(path)
    };
    let mut results = loramix_report::read_results(&[dir.join("results.csv")])?;
    let weights = loramix_report::read_weights(optional("learned_weights.csv").as_slice())?;
    let similarity = loramix_report::read_similarity(optional("similarity.csv").as_slice())?;
    let tasks = match optional("tasks.json") {
        Some(path) => crate::store::read_json(&path)?,
        None => BTreeMap::new(),
    };
    let made_by: Option<MadeBy> = optional("manifest.json")
        .map(|path| crate::store::read_json(&path))
        .transpose()?;
    // Runs made before manifests named their methods' kinds: the default names.
    let methods: Vec<(&str, &str)> = (made_by.iter())
        .flat_map(|m| &m.experiment.method)
        .map(|m| (m.name.as_deref().unwrap_or(&m.kind), m.kind.as_str()))
        .collect();
    let roles = match made_by {
        Some(_) => claim_roles(methods.iter().copied()),
        None => ClaimRoles::default(),
    };
    // Tables and colours follow the config's method order, as in the run's own report
    // (results.csv is sorted by name); methods the manifest does not list go last.
    let rank = |method: &str| methods.iter().position(|(name, _)| *name == method);
    results.sort_by_key(|r| rank(&r.method).unwrap_or(usize::MAX));
    let registered = made_by
        .as_ref()
        .and_then(|m| m.registered_plan_hash.clone());
    let recorded = made_by.as_ref().and_then(|m| m.analysis_plan.clone());
    let shots: Vec<Shot> = (results.iter().map(|r| r.k))
        .collect::<BTreeSet<Shot>>()
        .into_iter()
        .collect();
    let plan = (plan.or(recorded)).unwrap_or_else(|| AnalysisPlan::default_for(&roles, &shots));
    let made_by = (made_by.and_then(|m| m.loramix_revision))
        .map(|revision| format!(" The runs were made by {}.", revision_text(&revision)))
        .unwrap_or_default();
    let name = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let inputs = ReportInputs {
        title: format!("loramix: {name}"),
        reference_method: "head-only".into(),
        results,
        weights,
        similarity,
        preamble: format!(
            "Re-rendered from this folder's CSV files by loramix revision `{}`; `manifest.json` \
             says how the runs were made.{made_by}\n",
            env!("LORAMIX_REVISION")
        ),
        comparisons: roles.comparisons(),
        roles,
        tasks,
        plan_status: crate::registration::status(&plan, registered.as_deref()),
        plan,
    };
    let plots = dir.join("plots");
    if plots.is_dir() {
        std::fs::remove_dir_all(&plots).map_err(crate::error::io(&plots))?;
    }
    Ok(write_report(&inputs, dir)?)
}

/// Which method plays each part of DESIGN.md's claims: the first method of each kind, by
/// the name the config gives it.
pub(crate) fn claim_roles<'a>(
    methods: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
) -> ClaimRoles {
    let named = |kind: &str| {
        (methods.clone().into_iter())
            .find(|(_, k)| *k == kind)
            .map(|(name, _)| name.to_string())
    };
    ClaimRoles {
        uniform: named(Uniform::KIND),
        learned: named(Learned::KIND),
        full: named(Full::KIND),
        lora: named(Lora::KIND),
    }
}

/// What `render` reads from a results folder's `manifest.json`: the revision that made the
/// runs, the methods' names and kinds, and the analysis plan (manifests before plans have none).
#[derive(serde::Deserialize)]
struct MadeBy {
    experiment: MadeByExperiment,
    #[serde(alias = "git_revision")]
    loramix_revision: Option<String>,
    #[serde(default)]
    analysis_plan: Option<AnalysisPlan>,
    #[serde(default)]
    registered_plan_hash: Option<String>,
}

#[derive(serde::Deserialize)]
struct MadeByExperiment {
    method: Vec<NamedKind>,
}

/// A method as a manifest records it; manifests before names were resolved have `null` for a
/// name that defaults to the kind.
#[derive(serde::Deserialize)]
struct NamedKind {
    name: Option<String>,
    kind: String,
}

fn result_row(row: CellRow) -> ResultRow {
    ResultRow {
        task: row.task,
        shift: row.shift,
        method: row.method,
        k: row.k,
        seed: row.seed as u64,
        accuracy: row.accuracy,
        trainable_params: row.trainable_params as u64,
        train_seconds: row.train_seconds,
        samples_per_sec: row.samples_per_sec,
    }
}

fn weight_row(row: rows::WeightRow) -> WeightRow {
    WeightRow {
        task: row.task,
        method: row.method,
        k: row.k,
        seed: row.seed as u64,
        layer: row.layer,
        module: row.module,
        weight: row.weight,
    }
}

/// The upstream modules, each with its test accuracy on its own task where its manifest
/// records one: how strong the modules being composed are.
fn upstream_modules(plan: &Plan) -> Vec<String> {
    let dir = plan.run.upstream(&plan.upstream_hash());
    let accuracy = |task: &str| -> Option<f64> {
        let path = dir.join(task).join("manifest.json");
        let manifest: AdapterManifest = crate::store::read_json(&path).ok()?;
        manifest.metrics.get("test_accuracy").copied()
    };
    (plan.upstream.iter())
        .map(|task| match accuracy(task) {
            Some(a) => format!("{task} {:.1}%", 100.0 * a),
            None => task.clone(),
        })
        .collect()
}

fn preamble(plan: &Plan, manifest: &Manifest) -> String {
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
        upstream_modules(plan).join(", "),
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
    if let Some(tuning) = &t.tuning {
        text.push_str(&format!(
            "- Tuned on validation (k per class, {} for `full`): rates times {:?} (one factor \
             further when the best lies on an edge), the best of {} checks kept; each cell's \
             choice and every candidate's validation score are in the sweep's rows.\n",
            tuning.validation_full, tuning.rate_factors, tuning.checks
        ));
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
fn revision_text(revision: &str) -> String {
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
    match (&e.model.pretrained, e.model.own_size(), &e.pretrain) {
        (Some(name), _, _) => format!(
            "pretrained `{name}` ({}){}",
            plan.base_identity
                .as_deref()
                .unwrap_or("fingerprint unknown"),
            e.model
                .image_size
                .map_or_else(String::new, |s| format!(", images at {s} px"))
        ),
        (None, Some(size), Some(pretrain)) => format!(
            "dim {}, depth {}, heads {}, MLP {}{}. Pretraining {} steps (batch {}, lr {})",
            size.dim,
            size.depth,
            size.heads,
            size.mlp_dim,
            e.model
                .patch_size
                .map_or_else(String::new, |p| format!(", patch {p}")),
            pretrain.steps,
            pretrain.batch,
            pretrain.lr,
        ),
        _ => unreachable!(
            "an experiment names a checkpoint or a size and [pretrain] (checked when read)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_with_uncommitted_changes_is_named_so_with_its_digest() {
        assert_eq!(revision_text("0123abcd"), "revision `0123abcd`");
        let dirty = revision_text("0123abcd-dirty-fedcba987654");
        assert!(dirty.starts_with("revision `0123abcd` **with uncommitted changes**"));
        assert!(dirty.contains("digest `fedcba987654`"), "{dirty}");
        // Manifests written before build.rs recorded a digest.
        assert!(revision_text("0123abcd-dirty").contains("no digest recorded"));
    }

    /// A results folder whose manifest renames learned composition `mix` and records LoRA's
    /// name as `null` (manifests before names were resolved).
    #[test]
    fn render_judges_the_methods_the_manifest_names() {
        let dir = std::env::temp_dir().join(format!("loramix-render-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let row = |method: &str, seed: u64, accuracy: f64| ResultRow {
            task: "t".into(),
            shift: loramix_report::Shift::Label,
            method: method.into(),
            k: Shot::K(1),
            seed,
            accuracy,
            trainable_params: 10,
            train_seconds: 1.0,
            samples_per_sec: 1.0,
        };
        let rows: Vec<ResultRow> = (0..3)
            .flat_map(|s| [row("mix", s, 0.6 + 0.01 * s as f64), row("lora", s, 0.5)])
            .collect();
        write_results(&dir.join("results.csv"), &rows).unwrap();
        let manifest = r#"{"experiment": {"method": [
            {"name": "mix", "kind": "learned"}, {"name": null, "kind": "lora"}]},
            "loramix_revision": "abc"}"#;
        std::fs::write(dir.join("manifest.json"), manifest).unwrap();
        render(&dir, None).unwrap();
        let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(md.contains("learned composition `mix`"), "{md}");
        assert!(md.contains("LoRA `lora`"), "{md}");
        assert!(md.contains("`mix − lora`"), "{md}");
        assert!(md.contains("made by revision `abc`"), "{md}");
        // The manifest's order (mix, then lora), not results.csv's alphabetical one.
        let first = |name: &str| md.find(&format!("| {name} |")).unwrap();
        assert!(first("mix") < first("lora"), "{md}");
    }
}
