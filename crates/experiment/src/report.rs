//! The `report` stage: merge the shards' rows of the current config, then hand them to
//! `loramix-report` for `summary.md` and the plots, and write `manifest.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use loramix_report::{
    Location, ReportInputs, ResultRow, Shift, Shots, SimilarityRow, WeightRow, write_report,
    write_results,
};
use serde::Serialize;

use crate::config::{Experiment, MethodKind};
use crate::error::{ExperimentError, Result};
use crate::pipeline::{self, CellRow, Plan, read_json, write_json};
use crate::runner::Timings;
use crate::store::{read_rows, write_csv};

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
    let current: BTreeMap<(&str, String), String> = plan
        .downstream
        .iter()
        .flat_map(|task| {
            plan.experiment
                .methods
                .iter()
                .map(move |m| ((task.as_str(), m.name()), plan.cell_hash(m, task)))
        })
        .collect();
    // Rows of this config's methods and tasks; others are left from earlier configs.
    let is_current = |task: &String, method: &str, config: &str| {
        current
            .get(&(task.as_str(), method.to_string()))
            .is_some_and(|h| h == config)
    };
    let order: Vec<String> = plan.experiment.methods.iter().map(|m| m.name()).collect();

    // Every shard's rows of this config, merged by the report crate's one rule: a repeated
    // cell must repeat its measurement, else the report stops and names both rows.
    let mut stale = 0;
    let mut located = Vec::new();
    for file in run.shard_files(false)? {
        for (line, row) in numbered(read_rows::<CellRow>(&file)?, &file) {
            if is_current(&row.task, &row.method, &row.config) {
                located.push((convert_row(row)?, line));
            } else {
                stale += 1;
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
    let rank = |method: &str| order.iter().position(|m| m == method).unwrap_or(usize::MAX);
    results.sort_by_key(|r| rank(&r.method));
    write_results(&run.root.join("results.csv"), &results)?;

    // Weight rows of finished cells only: a cell interrupted after its weights and before its
    // result has no result row, and its weights are not part of any result.
    let finished: BTreeSet<(&str, &str, Shots, u64)> = results
        .iter()
        .map(|r| (r.task.as_str(), r.method.as_str(), r.k, r.seed))
        .collect();
    let mut located = Vec::new();
    for file in run.shard_files(true)? {
        for (line, row) in numbered(read_rows::<pipeline::WeightRow>(&file)?, &file) {
            if !is_current(&row.task, &row.method, &row.config) {
                continue;
            }
            let row = convert_weight(row)?;
            if finished.contains(&(row.task.as_str(), row.method.as_str(), row.k, row.seed)) {
                located.push((row, line));
            }
        }
    }
    let weights: Vec<WeightRow> = loramix_report::merge(located)?;
    write_csv(&run.root.join("learned_weights.csv"), &weights)?;

    let similarity_path = run.similarity(&plan.similarity_hash());
    let similarity: Vec<SimilarityRow> = read_rows::<pipeline::SimilarityRow>(&similarity_path)?
        .into_iter()
        .map(|r| SimilarityRow {
            task: r.task,
            module: r.module,
            cka: r.cka,
        })
        .collect();

    let timings_path = run.root.join("timings.json");
    let timings: Timings = if timings_path.exists() {
        read_json(&timings_path)?
    } else {
        Timings::default()
    };
    let manifest = Manifest {
        experiment: &plan.experiment,
        loramix_version: env!("CARGO_PKG_VERSION"),
        loramix_revision: env!("LORAMIX_REVISION"),
        backend: loramix_backend::NAME,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        stage_seconds: timings.seconds,
        cells: results.len(),
        stale_rows_ignored: stale,
    };
    write_json(&run.root.join("manifest.json"), &manifest)?;

    let inputs = ReportInputs {
        title: format!("loramix: {}", plan.experiment.name),
        reference_method: "head-only".into(),
        results,
        weights,
        similarity,
        preamble: preamble(plan, &manifest),
        comparisons: claim_comparisons(&plan.experiment),
    };
    let files = write_report(&inputs, &run.root)?;
    eprintln!(
        "report: wrote {} files; read {}",
        files.len() + 3,
        run.root.join("summary.md").display()
    );
    Ok(files)
}

/// The comparisons behind DESIGN.md's claims 1 and 2: each composition against full
/// fine-tuning and LoRA, and learned against uniform (first method of each kind).
fn claim_comparisons(experiment: &Experiment) -> Vec<(String, String)> {
    let name = |kind: MethodKind| {
        experiment
            .methods
            .iter()
            .find(|m| m.kind == kind)
            .map(|m| m.name())
    };
    let pairs = [
        (MethodKind::Uniform, MethodKind::Full),
        (MethodKind::Uniform, MethodKind::Lora),
        (MethodKind::Learned, MethodKind::Full),
        (MethodKind::Learned, MethodKind::Lora),
        (MethodKind::Learned, MethodKind::Uniform),
    ];
    pairs
        .into_iter()
        .filter_map(|(a, b)| Some((name(a)?, name(b)?)))
        .collect()
}

fn convert_row(row: CellRow) -> Result<ResultRow> {
    let bad = |what: &str, value: &str| {
        ExperimentError::Invalid(format!(
            "sweep row for `{}`: bad {what} `{value}`",
            row.task
        ))
    };
    Ok(ResultRow {
        shift: match row.shift.as_str() {
            "covariate" => Shift::Covariate,
            "label" => Shift::Label,
            "task" => Shift::Task,
            other => return Err(bad("shift", other)),
        },
        k: row.k.parse().map_err(|_| bad("k", &row.k))?,
        task: row.task.clone(),
        method: row.method.clone(),
        seed: row.seed as u64,
        accuracy: row.accuracy,
        trainable_params: row.trainable_params as u64,
        train_seconds: row.train_seconds,
        samples_per_sec: row.samples_per_sec,
    })
}

fn convert_weight(row: pipeline::WeightRow) -> Result<WeightRow> {
    Ok(WeightRow {
        k: row
            .k
            .parse()
            .map_err(|_| ExperimentError::Invalid(format!("weight row: bad k `{}`", row.k)))?,
        task: row.task,
        method: row.method,
        seed: row.seed as u64,
        layer: row.layer,
        module: row.module,
        weight: row.weight,
    })
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
        plan.upstream.join(", "),
        plan.downstream.join(", ")
    ));
    let base = match (&e.model.pretrained, e.model.own_size(), &e.pretrain) {
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
    };
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
    for m in &e.methods {
        text.push_str(&format!(
            "  - `{}` ({:?}): {} steps, lr {}\n",
            m.name(),
            m.kind,
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
        "- Backend `{}`, {} threads, revision `{}`. Time: {} (total {:.1} min).\n",
        manifest.backend,
        manifest.threads,
        manifest.loramix_revision,
        stages.join(", "),
        total / 60.0
    ));
    text
}
