//! The `warm-up` stage of a GPU run. A GPU backend compiles each kernel the first time it runs
//! (16 s for the first train step of the reference ViT on an H200 with an empty cache,
//! BENCHMARKS.md); the warm-up runs a few throwaway steps first, so that kernel compilation is
//! timed and reported on its own and the stages' times measure training. The kernels it
//! compiles are cached on disk ([`loramix_backend::kernels`]), so a second run's warm-up is
//! short.

use std::time::Instant;

use burn::module::AutodiffModule;
use indicatif::ProgressBar;
use loramix_models::{Classifier, Trainable};

use crate::context::Context;
use crate::error::{ExperimentError, Result};
use crate::family::Family;
use crate::fit::{TrainSet, accuracy, fit};

/// Steps at each batch size: the first compiles, the next ones run what fusion builds once it
/// has seen a step repeat.
const STEPS: usize = 3;

/// Trains one throwaway copy of the model (every parameter) for [`STEPS`] steps at each batch
/// size the plan trains at, on the first downstream task, and one with a fresh LoRA at the
/// upstream batch when the plan trains modules; then evaluates one batch; prints what it did
/// and its time. Returns the batch sizes of the full copy. `loramix run` calls it on the GPU
/// backends only; the sweep warms up its own cells ([`transfer::warm_up`](super::transfer::warm_up)).
pub fn warm_up<F: Family>(ctx: &Context<F>) -> Result<Vec<usize>> {
    let started = Instant::now();
    let Some(task) = ctx.downstream.first() else {
        return Ok(Vec::new());
    };
    let items = &task.train.items;
    let experiment = &ctx.plan.experiment;
    // Training LoRA (upstream) runs kernels of its own: the low-rank matmuls and their gradients.
    let lora_batch =
        (experiment.needs_modules()).then(|| experiment.upstream.batch.min(items.len()));
    let mut batches = Vec::new();
    if ctx.family.pretrained().is_none()
        && let Some(pretrain) = &experiment.pretrain
    {
        batches.push(pretrain.batch);
    }
    batches.extend(lora_batch);
    batches.push(experiment.transfer.batch);
    let mut batches: Vec<usize> = batches.into_iter().map(|b| b.min(items.len())).collect();
    batches.sort_unstable_by(|a, b| b.cmp(a));
    batches.dedup();
    let set = TrainSet::new(&ctx.family, items, &ctx.device);
    let train = |model: F::Trained, batch: usize| {
        let schedule = ctx.schedule(STEPS, batch, 1e-4);
        fit::<F, _>(model, &set, schedule, 0, &ProgressBar::hidden()).map_err(|source| {
            ExperimentError::Train {
                context: format!("warm-up on task `{}`", task.name),
                source,
            }
        })
    };
    let classes = task.train.classes.len();
    let mut model = ctx
        .family
        .init(classes, &ctx.device)
        .trainable(Trainable::All);
    for &batch in &batches {
        model = train(model, batch)?;
    }
    if let Some(batch) = lora_batch {
        let lora = (ctx.family.init(classes, &ctx.device))
            .with_lora(&ctx.plan.lora_config(None, None), &ctx.device)
            .trainable(Trainable::AdaptersAndHead);
        train(lora, batch)?;
    }
    // At the sweep's evaluation batch size, the one shape GPU backends evaluate at.
    let eval_batch = experiment.transfer.eval_batch;
    let eval = &items[..eval_batch.min(items.len())];
    accuracy(&ctx.family, &model.valid(), eval, eval_batch, ctx.parts);
    let sizes: Vec<String> = batches.iter().map(usize::to_string).collect();
    eprintln!(
        "warm-up: {STEPS} steps at batch {}{} and one evaluation batch in {:.1}s (kernel compilation, cached for later runs)",
        sizes.join(", "),
        lora_batch.map_or(String::new(), |b| format!(" (with LoRA at {b})")),
        started.elapsed().as_secs_f64()
    );
    Ok(batches)
}
