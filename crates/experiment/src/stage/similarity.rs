//! The `similarity` stage (claim 4): linear CKA between each downstream task's representation
//! and each upstream module's.

use std::fs;
use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use burn::tensor::Tensor;
use indicatif::ProgressBar;
use loramix_backend::{Inference, Train};
use loramix_data::{Draw, Task};
use loramix_design::Shot;
use loramix_lora::Adapter;
use loramix_models::{Classifier, Trainable};
use loramix_report::{BASE_MODULE, SimilarityRow};
use loramix_rng::derive_seed;

use crate::cka::{debiased_linear_cka, linear_cka};
use crate::context::Context;
use crate::error::{ExperimentError, Result, io};
use crate::family::Family;
use crate::fit::{accuracy, features};
use crate::progress;
use crate::rows::ReferenceRow;
use crate::store::{Shard, read_json, write_csv, write_json};
use serde::{Deserialize, Serialize};

/// Linear CKA (claim 4) between each downstream task's representation and each upstream
/// module's, on the same downstream test inputs: the final encoder features (after the last
/// norm, pooled as the head sees them) of the base with a LoRA trained on the downstream task's
/// full-shot set, against the base with upstream module i applied. High CKA: module i moves the
/// representation the way the downstream task wants. The base alone gets a row too
/// ([`BASE_MODULE`]): a module helps only where its CKA is above the base's.
///
/// `shard` computes tasks `i`, `i + n`, ... Each task is saved in `similarity-<hash>.parts/`
/// as it finishes (hours on a big suite), so a stopped run resumes and shards run side by
/// side; whichever process finds every task in writes the stage's files. `None` until then.
pub fn similarity<F: Family>(
    ctx: &Context<F>,
    base: &F::Frozen,
    adapters: &[Adapter],
    shard: Shard,
) -> Result<Option<PathBuf>> {
    let spec = &ctx.plan.experiment.similarity;
    if !spec.enabled {
        return Ok(None);
    }
    let path = ctx.plan.run.similarity(&ctx.plan.similarity_hash());
    if path.exists() {
        eprintln!("similarity: reusing {}", path.display());
        return Ok(Some(path));
    }
    let parts = path.with_extension("parts");
    let mut todo = Vec::new();
    for (i, task) in ctx.downstream.iter().enumerate() {
        if shard.contains(i) && read_part(&parts, task)?.is_none() {
            todo.push(task);
        }
    }
    let bar = progress::bar(todo.len() * spec.steps, "similarity");
    for task in todo {
        let part = task_part(ctx, base, adapters, task, &bar)?;
        fs::create_dir_all(&parts).map_err(io(&parts))?;
        write_json(&part_path(&parts, task), &part)?;
    }
    bar.finish_and_clear();
    merge_parts(ctx, &parts, &path)
}

/// One downstream task's share of the similarity stage.
#[derive(Serialize, Deserialize)]
struct TaskPart {
    reference: ReferenceRow,
    rows: Vec<SimilarityRow>,
}

fn part_path<I>(parts: &Path, task: &Task<I>) -> PathBuf {
    parts.join(format!("{}.json", task.name))
}

fn read_part<I>(parts: &Path, task: &Task<I>) -> Result<Option<TaskPart>> {
    let path = part_path(parts, task);
    match path.exists() {
        true => read_json(&path).map(Some),
        false => Ok(None),
    }
}

/// The task's CKA rows: the base's, then each module's, against the task's reference.
fn task_part<F: Family>(
    ctx: &Context<F>,
    base: &F::Frozen,
    adapters: &[Adapter],
    task: &Task<F::Item>,
    bar: &ProgressBar,
) -> Result<TaskPart> {
    let (features_of_reference, reference) = reference_features(ctx, base, task, bar)?;
    let probe = &task.test.items[..features_of_reference.len()];
    let eval_batch = ctx.plan.experiment.transfer.eval_batch;
    let cka = |model: &F::Frozen, module: &str| {
        let features = to_rows(features(&ctx.family, model, probe, eval_batch, ctx.parts));
        SimilarityRow {
            task: task.name.clone(),
            module: module.to_string(),
            cka: linear_cka(&features, &features_of_reference),
            cka_debiased: debiased_linear_cka(&features, &features_of_reference),
        }
    };
    // The baseline a module is judged against: the base itself, with no module.
    let mut rows = vec![cka(base, BASE_MODULE)];
    for adapter in adapters {
        let mut with_module = base.clone();
        adapter.apply(&mut with_module, &ctx.device)?;
        rows.push(cka(&with_module.fold_lora(), &adapter.manifest.task));
    }
    Ok(TaskPart { reference, rows })
}

/// Writes the stage's files from the parts once every task is in, and removes the parts.
fn merge_parts<F: Family>(ctx: &Context<F>, parts: &Path, path: &Path) -> Result<Option<PathBuf>> {
    let (mut rows, mut references, mut missing) = (Vec::new(), Vec::new(), 0);
    for task in &ctx.downstream {
        match read_part(parts, task)? {
            Some(part) => {
                references.push(part.reference);
                rows.extend(part.rows);
            }
            None => missing += 1,
        }
    }
    if missing > 0 {
        eprintln!(
            "similarity: {missing} of {} tasks still to run (other shards); run `loramix \
             similarity` again once they finish to write {}",
            ctx.downstream.len(),
            path.display()
        );
        return Ok(None);
    }
    write_csv(&ReferenceRow::path(path), &references)?;
    write_csv(path, &rows)?;
    // Two shards ending at once both merge the same rows; the later finds the parts gone.
    match fs::remove_dir_all(parts) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(parts)(e)),
        _ => {}
    }
    eprintln!("similarity: wrote {}", path.display());
    Ok(Some(path.to_path_buf()))
}

/// The downstream task's representation: features, on the first `similarity.examples` test
/// inputs, of the base with a LoRA (the upstream modules' settings) trained on the task's
/// full-shot set: with `similarity.converge`, until validation examples held out of that set
/// stop improving. Returns how the reference trained beside them.
fn reference_features<F: Family>(
    ctx: &Context<F>,
    base: &F::Frozen,
    task: &Task<F::Item>,
    bar: &ProgressBar,
) -> Result<(Vec<Vec<f64>>, ReferenceRow)> {
    let (spec, t) = (
        &ctx.plan.experiment.similarity,
        &ctx.plan.experiment.transfer,
    );
    let up = &ctx.plan.experiment.upstream;
    let n_classes = task.train.classes.len();
    let draw = Draw::of(Shot::Full, t.full_per_class, n_classes);
    let (items, validation) = match &spec.converge {
        None => (task.shots(draw, 0)?, Vec::new()),
        Some(c) => task.shots_and_validation(draw, c.validation_per_class, 0)?,
    };
    let seed = derive_seed(0, &format!("similarity/{}", task.name));
    loramix_lora::init::seed::<Train>(&ctx.device, seed);
    let model = F::Trained::from_inner(base.clone())
        .with_head(n_classes, &ctx.device)
        .with_lora(&ctx.plan.lora_config(None, None), &ctx.device)
        .trainable(Trainable::AdaptersAndHead);
    let schedule = ctx.schedule(spec.steps, up.batch, up.lr);
    let stopped = ctx
        .fit_converging(
            model,
            &items,
            (&validation, spec.converge.as_ref()),
            schedule,
            seed,
            bar,
        )
        .map_err(|source| ExperimentError::Train {
            context: format!("similarity reference LoRA for `{}`", task.name),
            source,
        })?;
    let probe = &task.test.items[..spec.examples.min(task.test.items.len())];
    let model = stopped.model.valid().fold_lora();
    let (eval_batch, parts) = (t.eval_batch, ctx.parts);
    let reference = ReferenceRow {
        task: task.name.clone(),
        steps: stopped.steps,
        max_steps: spec.steps,
        val_accuracy: stopped.score.map(|s| s.accuracy),
        converged: stopped.converged,
        test_accuracy: accuracy(&ctx.family, &model, &task.test.items, eval_batch, parts),
    };
    let features = features(&ctx.family, &model, probe, eval_batch, parts);
    Ok((to_rows(features), reference))
}

fn to_rows(features: Tensor<Inference, 2>) -> Vec<Vec<f64>> {
    let [n, d] = features.dims();
    let values = features
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("f32");
    (0..n)
        .map(|i| {
            values[i * d..(i + 1) * d]
                .iter()
                .map(|&v| v as f64)
                .collect()
        })
        .collect()
}
