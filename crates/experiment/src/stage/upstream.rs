//! The `upstream` stage: one LoRA module per upstream task, each trained on the base with its
//! own head (not kept), saved as an adapter.

use burn::module::AutodiffModule;
use std::collections::BTreeMap;

use loramix_backend::Train;
use loramix_lora::Adapter;
use loramix_models::{Classifier, Trainable};
use loramix_rng::derive_seed;

use crate::context::Context;
use crate::error::{ExperimentError, Result};
use crate::family::Family;
use crate::store::Shard;

/// Trains one LoRA per upstream task on the base (each with its own head, not saved), or loads
/// those this config already made. A `shard` other than [`Shard::ALL`] trains only its share
/// (module `i` is shard `i mod n`'s), so processes side by side build one library; each module
/// is seeded by its name, so its bits do not depend on the split. It returns the modules that
/// exist when it ends.
pub fn upstream<F: Family>(
    ctx: &Context<F>,
    base: &F::Frozen,
    shard: Shard,
) -> Result<Vec<Adapter>> {
    let dir = ctx.plan.run.upstream(&ctx.plan.upstream_hash());
    let spec = &ctx.plan.experiment.upstream;
    let config = ctx.plan.lora_config(None, None);
    let most = loramix_compose::max_rank(base);
    if config.rank > most {
        return Err(ExperimentError::Invalid(format!(
            "upstream.rank {} is above {most}, the smaller side of the base's widest layer (no update has a higher rank)",
            config.rank
        )));
    }
    let mut adapters = Vec::new();
    for (index, name) in ctx.plan.upstream.iter().enumerate() {
        let path = dir.join(name);
        if path.join("manifest.json").exists() {
            adapters.push(Adapter::load(&path)?);
            continue;
        }
        if !shard.contains(index) {
            continue;
        }
        let task = ctx.suite.task(name)?;
        loramix_lora::init::seed::<Train>(&ctx.device, derive_seed(0, &format!("upstream/{name}")));
        let model = F::Trained::from_inner(base.clone())
            .with_head(task.train.classes.len(), &ctx.device)
            .with_lora(&config, &ctx.device)
            .trainable(Trainable::AdaptersAndHead);
        let schedule = ctx
            .schedule(spec.steps, spec.batch, spec.lr)
            .with_head_lr(spec.head_lr);
        let batches = format!("upstream/{name}/batches");
        let converge = spec.converge.as_ref();
        let trained =
            ctx.train_on_task(model, &task, schedule, ("upstream", &batches), converge)?;
        let mut metrics = BTreeMap::from([
            ("test_accuracy".to_string(), trained.accuracy),
            ("train_seconds".to_string(), trained.seconds),
            ("train_examples".to_string(), task.train.items.len() as f64),
            ("steps_trained".to_string(), trained.steps as f64),
            ("classes".to_string(), task.train.classes.len() as f64),
        ]);
        if let Some(val) = trained.val_accuracy {
            metrics.insert("val_accuracy".into(), val);
            metrics.insert("converged".into(), f64::from(u8::from(trained.converged)));
        }
        let model = trained.model;
        let adapter = Adapter::extract(&model, name, &config, metrics)?;
        adapter.save(&path)?;
        adapters.push(Adapter::load(&path)?);
    }
    if adapters.len() < ctx.plan.upstream.len() {
        eprintln!(
            "upstream: shard {}/{} built its share; {} of the {} modules exist, the others are other shards'",
            shard.index,
            shard.count,
            adapters.len(),
            ctx.plan.upstream.len()
        );
    }
    check_above_chance(ctx, &adapters)?;
    Ok(adapters)
}

/// With `upstream.min_above_chance`, stops the run before the sweep when a module is less than
/// that many points above chance (100 / classes) on its own test split.
fn check_above_chance<F: Family>(ctx: &Context<F>, adapters: &[Adapter]) -> Result<()> {
    let Some(bar) = ctx.plan.experiment.upstream.min_above_chance else {
        return Ok(());
    };
    let mut below = Vec::new();
    for adapter in adapters {
        let name = &adapter.manifest.task;
        let Some(accuracy) = adapter.manifest.metrics.get("test_accuracy") else {
            continue;
        };
        let chance = 100.0 / ctx.suite.task(name)?.train.classes.len().max(1) as f64;
        if 100.0 * accuracy - chance < bar {
            below.push(format!(
                "`{name}` {:.1}% (chance {chance:.1}%)",
                100.0 * accuracy
            ));
        }
    }
    match below.is_empty() {
        true => {
            let which = match adapters.len() == ctx.plan.upstream.len() {
                true => "every module is".to_string(),
                false => format!("the {} modules built so far are", adapters.len()),
            };
            eprintln!("upstream: {which} at least {bar} points above chance on its own test split");
            Ok(())
        }
        false => Err(ExperimentError::Invalid(format!(
            "upstream modules less than {bar} points above chance on their own test split: {}; \
             train them longer or at another rate (`upstream.steps`, `lr`, `head_lr`, \
             `converge`), or lower `upstream.min_above_chance`",
            below.join(", ")
        ))),
    }
}
