//! The GPU path end to end: built only with `--features wgpu`, and skipped, saying so, when no
//! Vulkan (or Metal/DX12) adapter is present. Mesa's lavapipe counts:
//! `apt-get install -y mesa-vulkan-drivers` and `XDG_RUNTIME_DIR=/tmp cargo test --features wgpu --test wgpu`.
#![cfg(feature = "wgpu")]

use std::panic::{AssertUnwindSafe, catch_unwind};

use burn::tensor::{Distribution, Int, Tensor, TensorData, Tolerance};
use loramix::backend::{Inference, Train};
use loramix::lora::LoraConfig;
use loramix::models::{Classifier, Learner, TrainConfig, Trainable, Trainer, VitConfig};

/// True when the backend can run a kernel; burn panics when it finds no adapter.
fn adapter_present() -> bool {
    let probe = catch_unwind(AssertUnwindSafe(|| {
        Tensor::<Inference, 1>::ones([4], &loramix::backend::device()).into_data()
    }));
    probe.is_ok()
}

#[test]
fn lora_trains_and_folds_on_the_gpu_backend() {
    assert_eq!(loramix::backend::NAME, "wgpu");
    if !adapter_present() {
        eprintln!(
            "SKIPPED lora_trains_and_folds_on_the_gpu_backend: no wgpu adapter (install mesa-vulkan-drivers for lavapipe)"
        );
        return;
    }
    let device = loramix::backend::device();
    let config = VitConfig::new()
        .with_dim(32)
        .with_depth(2)
        .with_heads(2)
        .with_mlp_dim(64);
    let base = config.init::<Train>(&device);
    let x = Tensor::<Train, 4>::random([8, 1, 28, 28], Distribution::Uniform(0.0, 1.0), &device);
    let targets = Tensor::<Train, 1, Int>::from_data(
        TensorData::new((0..8i64).collect::<Vec<_>>(), [8]),
        &device,
    );
    let expected = base.logits(x.clone()).into_data();

    let model = base
        .with_lora(&LoraConfig::new().with_rank(4), &device)
        .trainable(Trainable::AdaptersAndHead);
    model
        .logits(x.clone())
        .into_data()
        .assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-6));

    let mut trainer = Trainer::new(model, &TrainConfig::new().with_lr(1e-2));
    let first = trainer.step(x.clone(), targets.clone()).unwrap();
    let mut last = first;
    for _ in 0..30 {
        last = trainer.step(x.clone(), targets.clone()).unwrap();
    }
    assert!(last < first, "loss did not fall: {first} -> {last}");

    let trained = trainer.into_model();
    let unfolded = trained.logits(x.clone()).into_data();
    trained
        .fold_lora()
        .logits(x)
        .into_data()
        .assert_approx_eq::<f32>(&unfolded, Tolerance::absolute(1e-4));
}
