//! Adapters through a real model: save, load, apply, and the errors users meet.

use std::collections::BTreeMap;
use std::fs;

use burn::module::AutodiffModule;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use loramix::backend::{Inference, Train};
use loramix::lora::{Adapter, AdapterError, AdapterHost, LoraConfig, Target};
use loramix::models::{Classifier, Learner, TrainConfig, Trainable, Trainer, Vit, VitConfig};

fn config() -> VitConfig {
    VitConfig::new()
        .with_dim(32)
        .with_depth(2)
        .with_heads(2)
        .with_mlp_dim(64)
}

fn lora_config() -> LoraConfig {
    LoraConfig::new()
        .with_rank(4)
        .with_alpha(8.0)
        .with_targets(vec![Target::Query, Target::Value, Target::MlpOut])
}

fn images(n: usize) -> Tensor<Train, 4> {
    Tensor::random(
        [n, 1, 28, 28],
        Distribution::Uniform(0.0, 1.0),
        &loramix::backend::device(),
    )
}

/// A base model and a copy of it with a few steps of LoRA training.
fn trained() -> (Vit<Inference>, Vit<Inference>) {
    let device = loramix::backend::device();
    let base = config().init::<Train>(&device);
    let model = base
        .clone()
        .with_lora(&lora_config(), &device)
        .trainable(Trainable::AdaptersAndHead);
    let mut trainer = Trainer::new(model, &TrainConfig::new().with_lr(1e-2));
    let targets =
        Tensor::<Train, 1, Int>::from_data(TensorData::new(vec![1i64, 2, 3, 4], [4]), &device);
    let x = images(4);
    for _ in 0..3 {
        trainer.step(x.clone(), targets.clone()).unwrap();
    }
    (base.valid(), trainer.into_model().valid())
}

fn extract(model: &Vit<Inference>) -> Adapter {
    let metrics = BTreeMap::from([("accuracy".to_string(), 0.5)]);
    Adapter::extract(model, "digits-0-4", &lora_config(), metrics).unwrap()
}

#[test]
fn saved_and_loaded_adapter_gives_identical_outputs() {
    let device = loramix::backend::device();
    let (base, trained) = trained();
    let dir = tempfile::tempdir().unwrap();
    extract(&trained).save(dir.path()).unwrap();

    let loaded = Adapter::load(dir.path()).unwrap();
    assert_eq!(loaded.manifest.task, "digits-0-4");
    assert_eq!(loaded.manifest.layers.len(), 2 * 3);
    assert_eq!(loaded.manifest.metrics["accuracy"], 0.5);
    assert_eq!(loaded.manifest.base_fingerprint, base.fingerprint());

    let mut restored = base.with_head(10, &device);
    restored.head = trained.head.clone();
    loaded.apply(&mut restored, &device).unwrap();
    let x = images(5).inner();
    restored
        .logits(x.clone())
        .into_data()
        .assert_eq(&trained.logits(x).into_data(), true);
}

#[test]
fn fingerprint_ignores_lora_and_head_but_not_base_weights() {
    let device = loramix::backend::device();
    let (base, trained) = trained();
    assert_eq!(base.fingerprint(), trained.fingerprint());
    assert_eq!(
        base.fingerprint(),
        base.clone().with_head(3, &device).fingerprint()
    );
    let other = config().init::<Inference>(&device);
    assert_ne!(base.fingerprint(), other.fingerprint());
}

#[test]
fn adapter_for_another_base_is_refused_and_the_model_is_unchanged() {
    let device = loramix::backend::device();
    let (_, trained) = trained();
    let dir = tempfile::tempdir().unwrap();
    extract(&trained).save(dir.path()).unwrap();
    let adapter = Adapter::load(dir.path()).unwrap();

    let mut other = config().init::<Inference>(&device);
    let err = adapter.apply(&mut other, &device).unwrap_err();
    assert!(matches!(err, AdapterError::Fingerprint { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("trained on base model"), "{message}");
    assert!(
        other
            .adaptable_layers()
            .iter()
            .all(|(_, l)| l.lora.is_none())
    );
}

#[test]
fn adapter_for_another_shape_is_refused() {
    let device = loramix::backend::device();
    let (_, trained) = trained();
    let mut adapter = extract(&trained);
    let wide = config().with_dim(48).init::<Inference>(&device);
    // Same fingerprint forced, so the shape check is what fires.
    adapter.manifest.base_fingerprint = wide.fingerprint();
    let mut target = wide;
    let err = adapter.apply(&mut target, &device).unwrap_err();
    assert!(matches!(err, AdapterError::LayerShape { .. }), "{err}");
    assert!(
        err.to_string().contains("32x32 in the adapter but 48x48"),
        "{err}"
    );
}

#[test]
fn truncated_tensor_file_is_an_error_naming_the_file() {
    let (_, trained) = trained();
    let dir = tempfile::tempdir().unwrap();
    extract(&trained).save(dir.path()).unwrap();
    let file = dir.path().join("adapter.safetensors");
    let bytes = fs::read(&file).unwrap();
    fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();

    let err = Adapter::load(dir.path()).unwrap_err();
    assert!(matches!(err, AdapterError::Tensors { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(message.contains("truncated or corrupt"), "{message}");
}

#[test]
fn corrupt_manifest_and_missing_files_are_errors_naming_the_file() {
    let (_, trained) = trained();
    let dir = tempfile::tempdir().unwrap();
    extract(&trained).save(dir.path()).unwrap();
    let manifest = dir.path().join("manifest.json");

    fs::write(&manifest, b"{\"format\": \"loramix-adapter/1\", \"task\":").unwrap();
    let err = Adapter::load(dir.path()).unwrap_err();
    assert!(matches!(err, AdapterError::Manifest { .. }), "{err}");
    assert!(
        err.to_string().contains(&manifest.display().to_string()),
        "{err}"
    );

    fs::remove_file(&manifest).unwrap();
    let err = Adapter::load(dir.path()).unwrap_err();
    assert!(matches!(err, AdapterError::Io { .. }), "{err}");
    assert!(err.to_string().contains("manifest.json"), "{err}");
}

/// Save a trained adapter, rewrite the first layer's rank in its manifest, and load it back.
fn load_with_first_rank(rank: usize) -> AdapterError {
    let (_, trained) = trained();
    let dir = tempfile::tempdir().unwrap();
    let mut adapter = extract(&trained);
    adapter.save(dir.path()).unwrap();
    adapter.manifest.layers[0].rank = rank;
    let text = serde_json::to_string(&adapter.manifest).unwrap();
    fs::write(dir.path().join("manifest.json"), text).unwrap();
    Adapter::load(dir.path()).unwrap_err()
}

#[test]
fn manifest_that_disagrees_with_the_tensors_is_an_error() {
    // Rank 5 claimed while the file holds rank-4 factors.
    let err = load_with_first_rank(5);
    assert!(matches!(err, AdapterError::BadTensor { .. }), "{err}");
    assert!(
        err.to_string().contains("encoder.blocks.0.query.lora_A"),
        "{err}"
    );
}

#[test]
fn manifest_with_rank_zero_is_refused() {
    let err = load_with_first_rank(0);
    assert!(matches!(err, AdapterError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("rank >= 1"), "{err}");
}

#[test]
fn a_manifest_from_another_save_is_refused() {
    // Two saves of equal shapes: tensors of one with the manifest of the other is what a crash
    // between the two renames of a save would leave.
    let (_, trained) = trained();
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let adapter = extract(&trained);
    adapter.save(first.path()).unwrap();
    let mut other = adapter.clone();
    other.manifest.task = "another".into();
    other.save(second.path()).unwrap();
    fs::copy(
        second.path().join("manifest.json"),
        first.path().join("manifest.json"),
    )
    .unwrap();
    let err = Adapter::load(first.path()).unwrap_err().to_string();
    assert!(
        err.contains("does not belong to") && err.contains("adapter.safetensors"),
        "{err}"
    );
}

#[test]
fn a_layer_listed_twice_is_refused_on_save_and_apply() {
    let device = loramix::backend::device();
    let (base, trained) = trained();
    let mut adapter = extract(&trained);
    adapter
        .manifest
        .layers
        .push(adapter.manifest.layers[0].clone());
    adapter.layers.push(adapter.layers[0].clone());
    let dir = tempfile::tempdir().unwrap();
    let err = adapter.save(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("`encoder.blocks.0.query` is listed twice"),
        "{err}"
    );
    let mut model = base.clone();
    let err = adapter.apply(&mut model, &device).unwrap_err().to_string();
    assert!(err.contains("listed twice"), "{err}");
}

#[test]
fn save_refuses_factors_that_disagree_with_the_manifest_and_non_finite_metrics() {
    let (_, trained) = trained();
    let dir = tempfile::tempdir().unwrap();
    let mut missing = extract(&trained);
    missing.layers.pop();
    let n = missing.manifest.layers.len();
    let err = missing.save(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains(&format!("lists {n} layers but {} are given", n - 1)),
        "{err}"
    );
    let mut short = extract(&trained);
    short.layers[0].a.pop();
    let err = short.save(dir.path()).unwrap_err().to_string();
    assert!(err.contains("do not fit rank"), "{err}");
    let mut nan = extract(&trained);
    nan.manifest
        .metrics
        .insert("test_accuracy".into(), f64::NAN);
    let err = nan.save(dir.path()).unwrap_err().to_string();
    assert!(err.contains("metric `test_accuracy` is NaN"), "{err}");
    assert!(
        !dir.path().join("manifest.json").exists(),
        "nothing written"
    );
}
