//! The exact properties of every composition strategy, on a small ViT.

use loramix_models::Learner;
use std::collections::BTreeMap;

use burn::module::{AutodiffModule, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData, Tolerance};
use loramix_backend::{Inference, Train};
use loramix_compose::{
    ComposeError, DenseMerge, LearnedComposition, LearnedConfig, Normalisation, Penalty,
    SearchConfig, Sharing, attach, compress, compress_dense, export_exact, merge_into_base,
    merged_deltas, search_weights, set_weights, uniform_weights,
};
use loramix_lora::{Adapter, AdapterHost, CompositionRecord, LoraConfig, Target};
use loramix_models::{Classifier, TrainConfig, Trainable, Trainer, Vit, VitConfig, named_params};

type Model = Vit<Inference>;

fn base<B: Backend<Device = loramix_backend::Device>>() -> Vit<B> {
    VitConfig::new()
        .with_dim(32)
        .with_depth(2)
        .with_heads(2)
        .with_mlp_dim(64)
        .init(&loramix_backend::device())
}

/// An upstream adapter of `rank` on query, value and mlp_out with random (non-zero) factors.
fn upstream(base: &Model, task: &str, rank: usize) -> Adapter {
    upstream_on(
        base,
        task,
        rank,
        &[Target::Query, Target::Value, Target::MlpOut],
    )
}

/// The same on `targets`.
fn upstream_on(base: &Model, task: &str, rank: usize, targets: &[Target]) -> Adapter {
    let device = loramix_backend::device();
    let config = LoraConfig::new()
        .with_rank(rank)
        .with_alpha(2.0 * rank as f32)
        .with_targets(targets.to_vec());
    let mut model = base.clone().with_lora(&config, &device);
    for (_, layer) in model.adaptable_layers_mut() {
        if let Some(lora) = layer.lora.as_mut() {
            let shape = lora.b.dims();
            lora.b = Param::from_tensor(Tensor::random(
                shape,
                Distribution::Normal(0.0, 0.2),
                &device,
            ));
        }
    }
    Adapter::extract(&model, task, &config, BTreeMap::new()).unwrap()
}

fn modules(base: &Model, ranks: &[usize]) -> Vec<Adapter> {
    ranks
        .iter()
        .enumerate()
        .map(|(i, &r)| upstream(base, &format!("task-{i}"), r))
        .collect()
}

fn images<B: Backend<Device = loramix_backend::Device>>(n: usize) -> Tensor<B, 4> {
    Tensor::random(
        [n, 1, 28, 28],
        Distribution::Uniform(0.0, 1.0),
        &loramix_backend::device(),
    )
}

fn composed(base: &Model, adapters: &[Adapter], weights: &[f32]) -> Model {
    let mut model = base.clone();
    attach(&mut model, adapters, weights, &loramix_backend::device()).unwrap();
    model
}

fn close(a: Tensor<Inference, 2>, b: Tensor<Inference, 2>, tolerance: f32) {
    a.into_data()
        .assert_approx_eq::<f32>(&b.into_data(), Tolerance::absolute(tolerance));
}

#[test]
fn one_module_with_weight_one_reproduces_the_module() {
    let device = loramix_backend::device();
    let base = base::<Inference>();
    let adapter = upstream(&base, "solo", 4);
    let mut single = base.clone();
    adapter.apply(&mut single, &device).unwrap();
    let x = images(4);
    close(
        composed(&base, &[adapter], &[1.0]).logits(x.clone()),
        single.logits(x),
        1e-6,
    );
}

#[test]
fn uniform_equals_the_mean_of_the_folded_deltas() {
    let base = base::<Inference>();
    let adapters = modules(&base, &[4, 4, 4]);
    let model = composed(&base, &adapters, &uniform_weights(3));
    let singles: Vec<Model> = adapters
        .iter()
        .map(|a| composed(&base, std::slice::from_ref(a), &[1.0]))
        .collect();
    for (i, (name, layer)) in model.adaptable_layers().into_iter().enumerate() {
        let Some(delta) = layer.delta_weight() else {
            continue;
        };
        let mean = singles
            .iter()
            .map(|m| m.adaptable_layers()[i].1.delta_weight().unwrap())
            .reduce(|a, b| a + b)
            .unwrap()
            / 3.0;
        assert!(name.ends_with("query") || name.ends_with("value") || name.ends_with("mlp_out"));
        close(delta, mean, 1e-6);
    }
}

#[test]
fn permuting_modules_with_their_weights_changes_nothing() {
    let base = base::<Inference>();
    let adapters = modules(&base, &[2, 4, 3]);
    let permuted = [
        adapters[2].clone(),
        adapters[0].clone(),
        adapters[1].clone(),
    ];
    let x = images(3);
    close(
        composed(&base, &adapters, &[0.2, 0.5, 0.3]).logits(x.clone()),
        composed(&base, &permuted, &[0.3, 0.2, 0.5]).logits(x),
        1e-5,
    );
}

#[test]
fn modules_of_different_ranks_compose_exactly() {
    let base = base::<Inference>();
    let adapters = modules(&base, &[1, 3, 8]);
    let weights = [0.5, 0.25, 0.25];
    let model = composed(&base, &adapters, &weights);
    let (name, layer) = &model.adaptable_layers()[0];
    assert_eq!(name, "encoder.blocks.0.query");
    assert_eq!(layer.composition.as_ref().unwrap().rank(), 1 + 3 + 8);
    let expected = adapters
        .iter()
        .zip(weights)
        .map(|(a, w)| {
            composed(&base, std::slice::from_ref(a), &[w]).adaptable_layers()[0]
                .1
                .delta_weight()
                .unwrap()
        })
        .reduce(|a, b| a + b)
        .unwrap();
    close(layer.delta_weight().unwrap(), expected, 1e-6);
}

#[test]
fn negative_weights_are_exact_with_no_cross_terms() {
    let base = base::<Inference>();
    let adapter = upstream(&base, "same", 4);
    let x = images(3);
    // w - w cancels exactly: (sum B)(sum A) would leave cross terms here.
    let cancelled = composed(&base, &[adapter.clone(), adapter.clone()], &[1.0, -1.0]);
    for (_, layer) in cancelled.adaptable_layers() {
        if let Some(delta) = layer.delta_weight() {
            // Zero up to float rounding; a cross term would be the size of the delta itself.
            assert!(delta.abs().max().into_scalar() < 1e-6);
        }
    }
    close(cancelled.logits(x.clone()), base.logits(x), 1e-6);

    let adapters = modules(&base, &[4, 4]);
    let arithmetic = composed(&base, &adapters, &[2.0, -0.5]);
    let first = composed(&base, &adapters[..1], &[1.0]);
    let second = composed(&base, &adapters[1..], &[1.0]);
    // Layer 2 is encoder.blocks.0.value, adapted by both modules.
    let (_, layer) = &arithmetic.adaptable_layers()[2];
    let expected = first.adaptable_layers()[2].1.delta_weight().unwrap() * 2.0
        - second.adaptable_layers()[2].1.delta_weight().unwrap() * 0.5;
    close(layer.delta_weight().unwrap(), expected, 1e-5);
}

#[test]
fn folded_composition_equals_unfolded() {
    let base = base::<Inference>();
    let model = composed(&base, &modules(&base, &[4, 2, 6]), &[0.6, -0.3, 0.7]);
    let x = images(4);
    let unfolded = model.logits(x.clone());
    let folded = model.fold_lora();
    assert!(
        folded
            .adaptable_layers()
            .iter()
            .all(|(_, l)| l.composition.is_none())
    );
    close(folded.logits(x), unfolded, 1e-5);
}

#[test]
fn set_weights_rewrites_every_composed_layer_and_checks_the_count() {
    let device = loramix_backend::device();
    let base = base::<Inference>();
    let adapters = modules(&base, &[2, 2]);
    let mut model = composed(&base, &adapters, &[1.0, 0.0]);
    set_weights(&mut model, &[0.0, 1.0], &device).unwrap();
    let x = images(2);
    close(
        model.logits(x.clone()),
        composed(&base, &adapters[1..], &[1.0]).logits(x),
        1e-6,
    );
    let err = set_weights(&mut model, &[1.0], &device).unwrap_err();
    assert!(
        matches!(
            err,
            ComposeError::WeightCount {
                given: 1,
                modules: 2
            }
        ),
        "{err}"
    );
    let err = set_weights(&mut base.clone(), &[1.0], &device).unwrap_err();
    assert!(matches!(err, ComposeError::NothingComposed { .. }), "{err}");
}

#[test]
fn adapters_for_another_base_or_shape_are_refused_and_the_model_is_unchanged() {
    let device = loramix_backend::device();
    let base = base::<Inference>();
    let foreign_base = VitConfig::new()
        .with_dim(32)
        .with_depth(2)
        .with_heads(2)
        .with_mlp_dim(64)
        .init::<Inference>(&device);
    let adapters = vec![
        upstream(&base, "ours", 2),
        upstream(&foreign_base, "theirs", 2),
    ];
    let mut model = base.clone();
    let err = attach(&mut model, &adapters, &[0.5, 0.5], &device).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("adapter `theirs`") && message.contains("trained on base model"),
        "{message}"
    );
    assert!(
        model
            .adaptable_layers()
            .iter()
            .all(|(_, l)| l.composition.is_none())
    );

    let mut wide_adapter = upstream(&base, "wide", 2);
    let wide = VitConfig::new()
        .with_dim(48)
        .with_depth(2)
        .with_heads(2)
        .with_mlp_dim(64)
        .init::<Inference>(&device);
    wide_adapter.manifest.base_fingerprint = wide.fingerprint();
    let err = attach(&mut wide.clone(), &[wide_adapter], &[1.0], &device).unwrap_err();
    assert!(
        err.to_string().contains("32x32 in the adapter but 48x48"),
        "{err}"
    );

    assert!(matches!(
        attach(&mut model, &[], &[], &device),
        Err(ComposeError::NoAdapters)
    ));
    let err = attach(&mut model, &adapters[..1], &[0.5, 0.5], &device).unwrap_err();
    assert!(
        matches!(
            err,
            ComposeError::WeightCount {
                given: 2,
                modules: 1
            }
        ),
        "{err}"
    );
}

fn wrap<B: Backend<Device = loramix_backend::Device>>(
    mut model: Vit<B>,
    adapters: &[Adapter],
    config: LearnedConfig,
) -> LearnedComposition<B, Vit<B>> {
    let device = loramix_backend::device();
    attach(
        &mut model,
        adapters,
        &uniform_weights(adapters.len()),
        &device,
    )
    .unwrap();
    LearnedComposition::new(model, config, &device).unwrap()
}

/// A learned composition of three modules, with its base and modules.
fn learned(config: LearnedConfig) -> (Model, Vec<Adapter>, LearnedComposition<Inference, Model>) {
    let base = base::<Inference>();
    let adapters = modules(&base, &[4, 2, 3]);
    let model = wrap(base.clone(), &adapters, config);
    (base, adapters, model)
}

#[test]
fn learned_composition_at_step_zero_equals_uniform() {
    let x = images::<Inference>(3);
    for normalisation in [Normalisation::Softmax, Normalisation::Unconstrained] {
        for sharing in [Sharing::PerLayer, Sharing::Shared] {
            let config = LearnedConfig {
                sharing,
                normalisation,
                penalty: Penalty::None,
            };
            let (base, adapters, model) = learned(config);
            let rows = if sharing == Sharing::Shared { 1 } else { 2 * 3 };
            assert_eq!(model.values.dims(), [rows, 3]);
            let uniform = composed(&base, &adapters, &uniform_weights(3));
            close(model.logits(x.clone()), uniform.logits(x.clone()), 1e-6);
        }
    }
}

#[test]
fn learned_training_changes_only_the_weights_and_the_head() {
    let device = loramix_backend::device();
    let base = base::<Train>();
    let adapters = modules(&base.valid(), &[4, 2, 3]);
    let model =
        wrap(base, &adapters, LearnedConfig::default()).trainable(Trainable::AdaptersAndHead);
    let before = named_params(&model);
    let targets =
        Tensor::<Train, 1, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 3], [4]), &device);
    let x = images::<Train>(4);
    let mut trainer = Trainer::new(model, &TrainConfig::new().with_lr(5e-2));
    for _ in 0..3 {
        trainer.step(x.clone(), targets.clone()).unwrap();
    }
    let after = named_params(trainer.model());
    let changed: Vec<&String> = before.keys().filter(|k| before[*k] != after[*k]).collect();
    assert_eq!(changed, ["model.head.bias", "model.head.weight", "values"]);

    // The learned weights still form a distribution per layer, and fold exactly.
    let trained = trainer.into_model().valid();
    let weights = trained.weights().sum_dim(1).into_data();
    weights.assert_approx_eq::<f32>(
        &TensorData::new(vec![1.0f32; 6], [6, 1]),
        Tolerance::absolute(1e-5),
    );
    let x = x.inner();
    let unfolded = trained.logits(x.clone());
    close(trained.fold_lora().logits(x), unfolded, 1e-5);
}

/// The penalty is added once per step, not once per part of the batch: training in 3 parts of 8
/// follows training on the whole batch.
#[test]
fn a_penalised_learned_composition_trains_the_same_in_parts() {
    let device = loramix_backend::device();
    let base = base::<Train>();
    let adapters = modules(&base.valid(), &[4, 2, 3]);
    let config = LearnedConfig {
        penalty: Penalty::Entropy(2.0),
        ..LearnedConfig::default()
    };
    let model = wrap(base, &adapters, config).trainable(Trainable::AdaptersAndHead);
    let labels: Vec<i64> = (0..24).map(|i| i % 4).collect();
    let targets = Tensor::<Train, 1, Int>::from_data(TensorData::new(labels, [24]), &device);
    let x = images::<Train>(24);
    let train = |parts: usize| {
        let config = TrainConfig::new().with_lr(5e-2).with_parts(parts);
        let mut trainer = Trainer::new(model.clone(), &config);
        let losses: Vec<f32> = (0..3)
            .map(|_| trainer.step(x.clone(), targets.clone()).unwrap())
            .collect();
        (losses, named_params(trainer.model()))
    };
    let ((whole, after_whole), (parts, after_parts)) = (train(1), train(3));
    for (a, b) in whole.iter().zip(&parts) {
        assert!((a - b).abs() < 1e-4, "{whole:?} vs {parts:?}");
    }
    after_whole["values"]
        .assert_approx_eq::<f32>(&after_parts["values"], Tolerance::absolute(1e-4));
}

#[test]
fn penalties_are_what_they_say() {
    let (_, _, plain) = learned(LearnedConfig::default());
    assert!(plain.penalty().is_none());
    let entropy = LearnedConfig {
        penalty: Penalty::Entropy(2.0),
        ..LearnedConfig::default()
    };
    let (_, _, model) = learned(entropy);
    // Equal weights over 3 modules: entropy ln 3 in every row.
    let value = model.penalty().unwrap().into_scalar();
    assert!((value - 2.0 * 3f32.ln()).abs() < 1e-5, "{value}");
    let l1 = LearnedConfig {
        normalisation: Normalisation::Unconstrained,
        penalty: Penalty::L1(0.5),
        ..LearnedConfig::default()
    };
    let (_, _, model) = learned(l1);
    assert!((model.penalty().unwrap().into_scalar() - 0.5).abs() < 1e-6);
}

#[test]
fn learned_weights_export_as_layer_by_module_csv() {
    let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    let (_, _, model) = learned(LearnedConfig::default());
    let csv = model.weights_csv(&names);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "layer,a,b,c");
    assert_eq!(lines.len(), 1 + 6);
    assert!(
        lines[1].starts_with("encoder.blocks.0.query,0.333"),
        "{}",
        lines[1]
    );
    let shared = LearnedConfig {
        sharing: Sharing::Shared,
        ..LearnedConfig::default()
    };
    let (_, _, model) = learned(shared);
    assert_eq!(
        model
            .weights_csv(&names)
            .lines()
            .nth(1)
            .unwrap()
            .split(',')
            .next(),
        Some("all")
    );
}

#[test]
fn ties_of_one_dense_module_is_the_module_and_dare_without_drops_is_task_arithmetic() {
    let device = loramix_backend::device();
    let base = base::<Inference>();
    let adapters = modules(&base, &[4, 2]);
    let x = images(3);

    let mut ties = base.clone();
    let keep_all = DenseMerge::Ties {
        density: 1.0,
        lambda: 1.0,
    };
    merge_into_base(&mut ties, &adapters[..1], &keep_all, &device).unwrap();
    close(
        ties.logits(x.clone()),
        composed(&base, &adapters[..1], &[1.0]).logits(x.clone()),
        1e-5,
    );

    let mut dare = base.clone();
    let no_drop = DenseMerge::Dare {
        drop: 0.0,
        weights: vec![0.7, -0.2],
        seed: 3,
    };
    merge_into_base(&mut dare, &adapters, &no_drop, &device).unwrap();
    close(
        dare.logits(x.clone()),
        composed(&base, &adapters, &[0.7, -0.2]).logits(x),
        1e-5,
    );
}

#[test]
fn ties_trims_and_elects_signs_and_dare_drops_the_requested_fraction() {
    let device = loramix_backend::device();
    let base = base::<Inference>();
    let adapters = modules(&base, &[4, 4, 4]);
    let delta_of = |merge: &DenseMerge| {
        let mut model = base.clone();
        merge_into_base(&mut model, &adapters, merge, &device).unwrap();
        model.adaptable_layers()[0].1.base.weight.val()
            - base.adaptable_layers()[0].1.base.weight.val()
    };
    let sparse = delta_of(&DenseMerge::Ties {
        density: 0.2,
        lambda: 1.0,
    });
    let zeros = sparse.clone().equal_elem(0.0).int().sum().into_scalar() as f32 / (32.0 * 32.0);
    // Each module keeps 20%; the union of three is at most 60% non-zero.
    assert!(zeros >= 0.4, "only {zeros} of entries are zero");

    let dropped = DenseMerge::Dare {
        drop: 0.9,
        weights: vec![1.0; 3],
        seed: 5,
    };
    let first = delta_of(&dropped);
    assert_eq!(
        first.clone().into_data(),
        delta_of(&dropped).into_data(),
        "DARE is seeded"
    );
    let zeros = first.equal_elem(0.0).int().sum().into_scalar() as f32 / (32.0 * 32.0);
    assert!(
        (zeros - 0.9f32.powi(3)).abs() < 0.06,
        "{zeros} zero, expected about 0.73"
    );

    let bad = DenseMerge::Dare {
        drop: 1.0,
        weights: vec![1.0; 3],
        seed: 0,
    };
    let err = merge_into_base(&mut base.clone(), &adapters, &bad, &device).unwrap_err();
    assert!(
        err.to_string().contains("DARE drop rate must be in [0, 1)"),
        "{err}"
    );
}

fn record(adapters: &[Adapter], weights: &[f32]) -> CompositionRecord {
    CompositionRecord {
        method: "fixed".into(),
        parents: adapters
            .iter()
            .zip(weights)
            .map(|(a, &w)| loramix_lora::ParentModule {
                task: a.manifest.task.clone(),
                base_fingerprint: a.manifest.base_fingerprint.clone(),
                weights: vec![w],
            })
            .collect(),
        approximation_error: 0.0,
    }
}

#[test]
fn compression_to_the_full_rank_is_exact_and_saves_as_an_ordinary_adapter() {
    let device = loramix_backend::device();
    let base = base::<Inference>();
    let adapters = modules(&base, &[2, 3, 1]);
    let weights = [0.5, -0.25, 1.0];
    let model = composed(&base, &adapters, &weights);
    let compressed = compress(&model, 6, "merged", record(&adapters, &weights)).unwrap();
    let manifest = &compressed.adapter.manifest;
    assert!(manifest.composition.as_ref().unwrap().approximation_error < 1e-5);
    assert_eq!(
        manifest.composition.as_ref().unwrap().parents[1].task,
        "task-1"
    );
    assert_eq!(
        manifest.targets,
        [Target::Query, Target::Value, Target::MlpOut]
    );

    let dir = tempfile::tempdir().unwrap();
    compressed.adapter.save(dir.path()).unwrap();
    let loaded = Adapter::load(dir.path()).unwrap();
    assert_eq!(loaded.manifest, *manifest);
    let mut restored = base.clone();
    loaded.apply(&mut restored, &device).unwrap();
    let x = images(3);
    close(restored.logits(x.clone()), model.logits(x), 1e-4);
}

/// More modules than a layer has room for (total rank past its smaller side), compressed to
/// that side: exact up to rounding, however the factors are decomposed.
#[test]
fn modules_stacked_wider_than_the_layer_compress_exactly_to_its_side() {
    let device = loramix_backend::device();
    let base = base::<Inference>();
    let side = loramix_compose::max_rank(&base);
    let ranks = vec![4; side / 4 + 3];
    let adapters = modules(&base, &ranks);
    let weights: Vec<f32> = (0..ranks.len()).map(|i| 0.1 + 0.05 * i as f32).collect();
    let model = composed(&base, &adapters, &weights);
    for (name, layer) in model.adaptable_layers() {
        // The rank read from the shapes is the inner size of the factors built.
        let built = layer.update_factors().map_or(0, |(left, _)| left.dims()[1]);
        assert_eq!(layer.update_rank(), built, "{name}");
        assert!(built == 0 || built > side, "{name}: {built}");
    }
    let compressed = compress(&model, side, "wide", record(&adapters, &weights)).unwrap();
    assert!(
        (compressed.layer_errors.iter()).all(|(_, e)| *e < 1e-5),
        "{:?}",
        compressed.layer_errors
    );
    assert!(
        compressed
            .adapter
            .manifest
            .layers
            .iter()
            .all(|l| l.rank <= side)
    );
    let mut restored = base.clone();
    compressed.adapter.apply(&mut restored, &device).unwrap();
    let x = images(3);
    close(restored.logits(x.clone()), model.logits(x), 1e-4);
}

#[test]
fn truncation_error_matches_the_dense_residual() {
    let base = base::<Inference>();
    let adapters = modules(&base, &[4, 4, 4]);
    let model = composed(&base, &adapters, &uniform_weights(3));
    let compressed = compress(&model, 3, "small", record(&adapters, &uniform_weights(3))).unwrap();
    let (name, error) = &compressed.layer_errors[0];
    assert!(
        *error > 0.01,
        "rank 3 of a rank-12 sum should lose something: {error}"
    );

    let mut approx = base.clone();
    compressed
        .adapter
        .apply(&mut approx, &loramix_backend::device())
        .unwrap();
    let exact = model.adaptable_layers()[0].1.delta_weight().unwrap();
    let truncated = approx.adaptable_layers()[0].1.delta_weight().unwrap();
    let norm = |t: Tensor<Inference, 2>| t.powf_scalar(2.0).sum().sqrt().into_scalar() as f64;
    let measured = norm(exact.clone() - truncated) / norm(exact);
    assert!(
        (measured - error).abs() < 1e-3,
        "{name}: reported {error}, measured {measured}"
    );

    let err = compress(&base, 2, "none", record(&[], &[])).unwrap_err();
    assert!(matches!(err, ComposeError::NothingComposed { .. }), "{err}");
}

#[test]
fn exact_export_stacks_the_modules_and_reproduces_the_composition() {
    let device = loramix_backend::device();
    let base = base::<Inference>();
    let adapters = vec![
        upstream(&base, "wide", 2),
        upstream_on(&base, "narrow", 3, &[Target::Query]),
    ];
    let weights = [0.75, -0.5];
    let model = composed(&base, &adapters, &weights);
    let exported = export_exact(&model, "both", record(&adapters, &weights)).unwrap();
    let manifest = &exported.adapter.manifest;
    assert_eq!(
        manifest.composition.as_ref().unwrap().approximation_error,
        0.0
    );
    // Query layers carry both modules (rank 5), value and mlp_out only the first (rank 2).
    let ranks: Vec<(String, usize)> = manifest
        .layers
        .iter()
        .map(|l| (l.name.clone(), l.rank))
        .collect();
    assert_eq!(ranks[0], ("encoder.blocks.0.query".to_string(), 5));
    assert_eq!(ranks[1], ("encoder.blocks.0.value".to_string(), 2));
    assert_eq!((manifest.rank, manifest.alpha), (5, 5.0));

    // A is the parents' A rows stacked, bit for bit; B is w_i s_i / s times the parents' B.
    let (wide, narrow) = (&adapters[0], &adapters[1]);
    let query = &exported.adapter.layers[0];
    let a_rows: Vec<f32> = [wide.layers[0].a.clone(), narrow.layers[0].a.clone()].concat();
    assert_eq!(query.a, a_rows);
    let scale = |a: &Adapter| a.layer_scale(&a.manifest.layers[0]);
    let exported_scale = 5.0 / 5.0;
    let d_out = manifest.layers[0].d_out;
    for row in 0..d_out {
        for col in 0..5 {
            let (parent, w, r, c) = if col < 2 {
                (wide, weights[0], 2, col)
            } else {
                (narrow, weights[1], 3, col - 2)
            };
            let expected = w * scale(parent) / exported_scale * parent.layers[0].b[row * r + c];
            let got = query.b[row * 5 + col];
            assert!(
                (got - expected).abs() <= 1e-6 * expected.abs().max(1.0),
                "B[{row},{col}]: {got} vs {expected}"
            );
        }
    }

    let mut restored = base.clone();
    exported.adapter.apply(&mut restored, &device).unwrap();
    let x = images(3);
    close(restored.logits(x.clone()), model.logits(x), 1e-5);
}

#[test]
fn a_dense_merge_exports_through_a_truncated_svd_with_its_error() {
    let device = loramix_backend::device();
    let base = base::<Inference>();
    let adapters = modules(&base, &[2, 3]);
    let merge = DenseMerge::Ties {
        density: 0.3,
        lambda: 1.0,
    };
    let mut merged = base.clone();
    merge_into_base(&mut merged, &adapters, &merge, &device).unwrap();
    let deltas = merged_deltas(&base, &adapters, &merge, &device).unwrap();
    // Rank 32 is every singular value of a 32-wide layer: exact.
    let full = compress_dense(
        &base,
        deltas.clone(),
        32,
        "ties",
        record(&adapters, &[1.0, 1.0]),
    )
    .unwrap();
    assert!(full.layer_errors.iter().all(|(_, e)| *e < 1e-6));
    let mut restored = base.clone();
    full.adapter.apply(&mut restored, &device).unwrap();
    let x = images(3);
    close(restored.logits(x.clone()), merged.logits(x), 1e-4);

    // TIES is not low-rank: rank 4 loses something, and the reported error is the residual's.
    let small = compress_dense(
        &base,
        deltas.clone(),
        4,
        "ties",
        record(&adapters, &[1.0, 1.0]),
    )
    .unwrap();
    let (name, error) = &small.layer_errors[0];
    assert!(*error > 0.05, "{name}: {error}");
    let mut approx = base.clone();
    small.adapter.apply(&mut approx, &device).unwrap();
    let exact = deltas[0].clone().unwrap();
    let truncated = approx.adaptable_layers()[0].1.delta_weight().unwrap();
    let norm = |t: Tensor<Inference, 2>| t.powf_scalar(2.0).sum().sqrt().into_scalar() as f64;
    let measured = norm(exact.clone() - truncated) / norm(exact);
    assert!(
        (measured - error).abs() < 1e-3,
        "reported {error}, measured {measured}"
    );
    assert_eq!(
        small
            .adapter
            .manifest
            .composition
            .as_ref()
            .unwrap()
            .approximation_error,
        small
            .layer_errors
            .iter()
            .map(|(_, e)| *e)
            .fold(0.0, f64::max)
    );
}

#[test]
fn weight_search_improves_on_uniform_and_is_seeded() {
    // A known optimum at (1.0, -0.5, 0.0): the search must move far towards it.
    let target = [1.0f32, -0.5, 0.0];
    let loss = |w: &[f32]| {
        w.iter()
            .zip(target)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f32>()
    };
    let config = SearchConfig {
        budget: 200,
        l1: 0.0,
        seed: 9,
        ..SearchConfig::default()
    };
    let result = search_weights(3, &config, loss);
    assert!(result.evaluations <= 200);
    let uniform = loss(&uniform_weights(3));
    assert!(
        result.objective < 0.05 * uniform,
        "{} vs uniform {uniform}",
        result.objective
    );
    assert!(
        result.history.windows(2).all(|w| w[1] <= w[0]),
        "best never gets worse"
    );
    assert_eq!(
        search_weights(3, &config, loss),
        result,
        "same seed, same search"
    );

    let nan = search_weights(
        2,
        &SearchConfig {
            budget: 10,
            ..SearchConfig::default()
        },
        |_| f32::NAN,
    );
    assert_eq!(nan.objective, f32::INFINITY);
}

#[test]
fn weight_search_leaves_uniform_on_a_flat_objective() {
    // Every candidate ties with uniform: a search that kept only strict improvements would
    // report uniform, by construction rather than as a finding.
    let config = SearchConfig {
        budget: 20,
        l1: 0.0,
        seed: 4,
        ..SearchConfig::default()
    };
    let result = search_weights(4, &config, |_| 1.0);
    assert_eq!(result.objective, 1.0);
    assert_ne!(result.weights, uniform_weights(4));
}

#[test]
fn weight_search_on_a_real_model_composition() {
    let device = loramix_backend::device();
    let base = base::<Inference>();
    let adapters = modules(&base, &[2, 2, 2]);
    let mut model = composed(&base, &adapters, &uniform_weights(3));
    let x = images::<Inference>(8);
    let targets = Tensor::<Inference, 1, Int>::from_data(
        TensorData::new((0..8i64).collect::<Vec<_>>(), [8]),
        &device,
    );
    let mut loss = |w: &[f32]| {
        set_weights(&mut model, w, &device).unwrap();
        burn::nn::loss::CrossEntropyLoss::new(None, &device)
            .forward(model.logits(x.clone()), targets.clone())
            .into_scalar()
    };
    let uniform = loss(&uniform_weights(3)) + 0.05;
    let result = search_weights(
        3,
        &SearchConfig {
            budget: 24,
            ..SearchConfig::default()
        },
        &mut loss,
    );
    assert!(
        result.objective <= uniform,
        "{} > uniform {uniform}",
        result.objective
    );
    assert_eq!(result.evaluations, 24);
}

#[test]
fn non_finite_or_overflowing_compositions_are_refused_before_any_svd() {
    let device = loramix_backend::device();
    let base = base::<Inference>();
    let mut adapters = modules(&base, &[2, 2]);
    // Factors of B well above 1 in size, so that weight times scale times B overflows f32 in
    // most entries whatever the random draw (at N(0, 0.2) a draw could stay finite).
    for layer in adapters.iter_mut().flat_map(|a| a.layers.iter_mut()) {
        layer.b.iter_mut().for_each(|v| *v = 10.0 + v.abs());
    }
    // Finite weights whose products overflow f32: export and compression stop with the layer.
    let huge = [3e38, 3e38];
    let model = composed(&base, &adapters, &huge);
    for result in [
        compress(&model, 2, "huge", record(&adapters, &huge)),
        export_exact(&model, "huge", record(&adapters, &huge)),
    ] {
        let err = result.unwrap_err();
        assert!(
            matches!(&err, ComposeError::NotFinite { layer, .. } if layer.starts_with("encoder.blocks.")),
            "{err}"
        );
    }
    // DARE's rescale 1 / (1 - drop) doubles them past f32's largest value.
    let dare = DenseMerge::Dare {
        drop: 0.5,
        weights: huge.to_vec(),
        seed: 0,
    };
    let err = merged_deltas(&base, &adapters, &dare, &device).unwrap_err();
    assert!(matches!(err, ComposeError::NotFinite { .. }), "{err}");
    for lambda in [f32::NAN, f32::INFINITY] {
        let ties = DenseMerge::Ties {
            density: 0.5,
            lambda,
        };
        let err = merged_deltas(&base, &adapters, &ties, &device).unwrap_err();
        assert!(err.to_string().contains("TIES lambda"), "{err}");
    }
    // A NaN dense delta handed straight to the SVD.
    let layers = base.adaptable_layers().len();
    let mut deltas: Vec<Option<Tensor<Inference, 2>>> = vec![None; layers];
    deltas[0] = Some(Tensor::full([32, 32], f32::NAN, &device));
    let err = compress_dense(&base, deltas, 2, "nan", record(&[], &[])).unwrap_err();
    assert!(matches!(err, ComposeError::NotFinite { .. }), "{err}");
    // A rank above every layer's smaller side would only pad with zeros.
    let fine = composed(&base, &adapters, &[0.5, 0.5]);
    let err = compress(&fine, 33, "wide", record(&adapters, &[0.5, 0.5])).unwrap_err();
    assert!(
        matches!(err, ComposeError::RankOutOfRange { rank: 33, most: 32 }),
        "{err}"
    );
}
