//! The `similarity` stage (claim 4): linear CKA between each downstream task's representation
//! and each upstream module's.

use std::path::PathBuf;

use burn::module::AutodiffModule;
use burn::tensor::Tensor;
use indicatif::ProgressBar;
use loramix_backend::{Inference, Train};
use loramix_data::{Draw, Task};
use loramix_design::Shot;
use loramix_lora::Adapter;
use loramix_models::{Classifier, Trainable};
use loramix_report::BASE_MODULE;
use loramix_rng::derive_seed;

use crate::cka::linear_cka;
use crate::context::Context;
use crate::error::{ExperimentError, Result, io};
use crate::family::Family;
use crate::fit::{accuracy, features};
use crate::progress;
use crate::rows::{ReferenceRow, SimilarityRow};
use crate::store::write_csv;

/// Linear CKA (claim 4) between each downstream task's representation and each upstream
/// module's, on the same downstream test inputs: the final encoder features (after the last
/// norm, pooled as the head sees them) of the base with a LoRA trained on the downstream task's
/// full-shot set, against the base with upstream module i applied. High CKA: module i moves the
/// representation the way the downstream task wants. The base alone gets a row too
/// ([`BASE_MODULE`]): a module helps only where its CKA is above the base's.
pub fn similarity<F: Family>(
    ctx: &Context<F>,
    base: &F::Frozen,
    adapters: &[Adapter],
) -> Result<Option<PathBuf>> {
    let spec = &ctx.plan.experiment.similarity;
    if !spec.enabled {
        return Ok(None);
    }
    let hash = ctx.plan.similarity_hash();
    let path = ctx.plan.run.similarity(&hash);
    if path.exists() {
        eprintln!("similarity: reusing {}", path.display());
        return Ok(Some(path));
    }
    let bar = progress::bar(ctx.downstream.len() * spec.steps, "similarity");
    let mut rows = Vec::new();
    let mut references = Vec::new();
    for task in &ctx.downstream {
        let (reference, trained) = reference_features(ctx, base, task, &bar)?;
        references.push(trained);
        let probe = &task.test.items[..reference.len()];
        let eval_batch = ctx.plan.experiment.transfer.eval_batch;
        // The baseline a module is judged against: the base itself, with no module.
        let x = to_rows(features(&ctx.family, base, probe, eval_batch, ctx.parts));
        rows.push(SimilarityRow {
            task: task.name.clone(),
            module: BASE_MODULE.to_string(),
            cka: linear_cka(&x, &reference),
        });
        for adapter in adapters {
            let mut with_module = base.clone();
            adapter.apply(&mut with_module, &ctx.device)?;
            let x = to_rows(features(
                &ctx.family,
                &with_module.fold_lora(),
                probe,
                ctx.plan.experiment.transfer.eval_batch,
                ctx.parts,
            ));
            rows.push(SimilarityRow {
                task: task.name.clone(),
                module: adapter.manifest.task.clone(),
                cka: linear_cka(&x, &reference),
            });
        }
    }
    bar.finish_and_clear();
    std::fs::create_dir_all(&ctx.plan.run.root).map_err(io(&ctx.plan.run.root))?;
    write_csv(&ReferenceRow::path(&path), &references)?;
    write_csv(&path, &rows)?;
    eprintln!("similarity: wrote {}", path.display());
    Ok(Some(path))
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
