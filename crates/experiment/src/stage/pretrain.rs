//! The `pretrain` stage: the base model, trained on the suite's pretraining task (or the
//! pretrained backbone, which is used as it is).

use std::path::Path;

use burn::module::{AutodiffModule, Module};
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use loramix_backend::{Inference, Train};
use loramix_models::{Classifier, Trainable};
use loramix_rng::derive_seed;
use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::error::{ExperimentError, Result, io};
use crate::family::Family;
use crate::store::{read_json, write_json};

/// Summary of a trained model, next to its weights.
#[derive(Debug, Serialize, Deserialize)]
struct BaseInfo {
    task: String,
    classes: Vec<String>,
    test_accuracy: f64,
    train_seconds: f64,
}

const MODEL_FILE: &str = "model";

fn recorder() -> NamedMpkFileRecorder<FullPrecisionSettings> {
    NamedMpkFileRecorder::new()
}

/// Pretrains the base model on the suite's pretraining task, or loads it if this config made one.
pub fn pretrain<F: Family>(ctx: &Context<F>) -> Result<F::Frozen> {
    if let Some(base) = ctx.family.pretrained() {
        let fingerprint = ctx.plan.base_identity.as_deref().unwrap_or("unknown");
        eprintln!("pretrain: skipped, the backbone is pretrained ({fingerprint})");
        return Ok(base.clone());
    }
    let dir = ctx.plan.run.base(&ctx.plan.base_hash());
    if dir.join("base.json").exists() {
        return load(ctx, &dir);
    }
    let name = ctx.suite.suite().pretrain.name.clone();
    let task = ctx.suite.task(&name)?;
    let spec = ctx
        .plan
        .experiment
        .pretrain
        .as_ref()
        .expect("an own backbone has [pretrain] (checked when read)");
    loramix_lora::init::seed::<Train>(&ctx.device, derive_seed(0, "pretrain"));
    let model = ctx
        .family
        .init(task.train.classes.len(), &ctx.device)
        .trainable(Trainable::All);
    let schedule = ctx.schedule(spec.steps, spec.batch, spec.lr);
    let batches = ("pretrain", "pretrain/batches");
    let trained = ctx.train_on_task(model, &task, schedule, batches, None)?;
    let info = BaseInfo {
        task: name,
        classes: task.train.classes.clone(),
        test_accuracy: trained.accuracy,
        train_seconds: trained.seconds,
    };
    save(&dir, &trained.model, &info)?;
    Ok(trained.model)
}

/// The base this config pretrained earlier.
fn load<F: Family>(ctx: &Context<F>, dir: &Path) -> Result<F::Frozen> {
    let info: BaseInfo = read_json(&dir.join("base.json"))?;
    let skeleton = ctx.family.init(info.classes.len(), &ctx.device).valid();
    let model = skeleton
        .load_file(dir.join(MODEL_FILE), &recorder(), &ctx.device)
        .map_err(|e| ExperimentError::Artifact {
            path: dir.join(format!("{MODEL_FILE}.mpk")),
            message: format!("{e}; delete {} to pretrain again", dir.display()),
        })?;
    eprintln!(
        "pretrain: reusing {} (test accuracy {:.1}%)",
        dir.display(),
        100.0 * info.test_accuracy
    );
    Ok(model)
}

/// Saves the base into `dir`, staged under a per-process name and renamed whole: a reader never
/// sees half a base, and shards pretraining at once do not collide (the first rename wins, the
/// others are dropped).
fn save<M: Module<Inference>>(dir: &Path, model: &M, info: &BaseInfo) -> Result<()> {
    let staging = dir.with_extension(format!("partial.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    model
        .clone()
        .save_file(staging.join(MODEL_FILE), &recorder())
        .map_err(|e| ExperimentError::Artifact {
            path: staging.clone(),
            message: e.to_string(),
        })?;
    write_json(&staging.join("base.json"), info)?;
    if let Err(e) = std::fs::rename(&staging, dir) {
        if !dir.join("base.json").exists() {
            return Err(ExperimentError::Io {
                path: dir.to_path_buf(),
                source: e,
            });
        }
        let _ = std::fs::remove_dir_all(&staging);
    }
    Ok(())
}
