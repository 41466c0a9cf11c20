//! Model shapes, the training step, and what each [`Trainable`] setting lets the optimiser change.

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData, Tolerance};
use loramix_backend::{Inference, Train};
use loramix_lora::LoraConfig;
use loramix_models::Learner;
use loramix_models::{
    Batch, ByteTokenizer, Classifier, TextTransformerConfig, TrainConfig, TrainError, Trainable,
    Trainer, VitConfig, batch_gradients, forward_in_parts, named_params, parts_for,
    trainable_params,
};

fn small_vit() -> VitConfig {
    VitConfig::new()
        .with_dim(32)
        .with_depth(2)
        .with_heads(2)
        .with_mlp_dim(64)
}

fn small_text() -> TextTransformerConfig {
    TextTransformerConfig::new()
        .with_max_len(24)
        .with_dim(32)
        .with_depth(2)
        .with_heads(2)
        .with_mlp_dim(64)
        .with_n_classes(4)
}

fn images<B: Backend>(n: usize, device: &B::Device) -> Tensor<B, 4> {
    Tensor::random([n, 1, 28, 28], Distribution::Uniform(0.0, 1.0), device)
}

fn labels<B: Backend>(n: usize, classes: usize, device: &B::Device) -> Tensor<B, 1, Int> {
    let ids: Vec<i64> = (0..n).map(|i| ((i * 7 + 3) % classes) as i64).collect();
    Tensor::from_data(TensorData::new(ids, [n]), device)
}

/// `adaptable_layers` and `adaptable_layers_mut` must name the same layers in the same order:
/// adapters are matched by the first and attached through the second.
fn same_layer_names<M: loramix_lora::AdapterHost<Inference>>(mut model: M) {
    let names: Vec<String> = model
        .adaptable_layers()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let names_mut: Vec<String> = model
        .adaptable_layers_mut()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, names_mut);
    assert_eq!(names[0], "encoder.blocks.0.query");
}

#[test]
fn layers_and_layers_mut_agree() {
    let device = loramix_backend::device();
    same_layer_names(small_vit().init::<Inference>(&device));
    same_layer_names(small_text().init::<Inference>(&device));
}

#[test]
fn vit_forward_shapes() {
    let device = loramix_backend::device();
    let model = VitConfig::new().init::<Inference>(&device);
    assert_eq!(model.features(images(3, &device)).dims(), [3, 64]);
    assert_eq!(model.logits(images(3, &device)).dims(), [3, 10]);
    let model = model.with_head(7, &device);
    assert_eq!(model.logits(images(2, &device)).dims(), [2, 7]);
}

#[test]
fn text_forward_shapes_on_empty_multibyte_and_overlong_inputs() {
    let device = loramix_backend::device();
    let config = small_text();
    let model = config.init::<Inference>(&device);
    let long = "ü".repeat(100);
    let texts = ["", "héllo wörld 🦀", long.as_str()];
    let tokens = config.tokenizer().batch::<Inference, _>(&texts, &device);
    assert_eq!(tokens.dims(), [3, 24]);
    let logits = model.logits(tokens);
    assert_eq!(logits.dims(), [3, 4]);
    let values = logits.into_data().to_vec::<f32>().unwrap();
    assert!(values.iter().all(|v| v.is_finite()), "{values:?}");
}

#[test]
fn tokenizer_round_trips_utf8_and_truncates_on_char_boundaries() {
    let tok = ByteTokenizer { max_len: 16 };
    for text in ["", "plain ascii", "héllo 🦀", "日本語"] {
        assert_eq!(tok.decode(&tok.encode(text)), text);
        assert_eq!(tok.encode(text).len(), 16);
    }
    // 7 two-byte characters do not fit 16 - 3 bytes: cut after 6, never inside one.
    let cut = ByteTokenizer { max_len: 13 }.encode("ééééééé");
    assert_eq!(tok.decode(&cut), "éééééé");
}

/// Trains on 32 random examples with random labels until memorised; returns (first, last) loss.
fn overfit<M: Classifier<Train> + AutodiffModule<Train>>(
    model: M,
    input: M::Input,
    classes: usize,
) -> (f32, f32) {
    let device = loramix_backend::device();
    let targets = labels::<Train>(32, classes, &device);
    let mut trainer = Trainer::new(
        model,
        &TrainConfig::new().with_lr(3e-3).with_weight_decay(0.0),
    );
    let first = trainer.step(input.clone(), targets.clone()).unwrap();
    let mut last = first;
    for _ in 0..300 {
        last = trainer.step(input.clone(), targets.clone()).unwrap();
        if last < 0.05 * first {
            break;
        }
    }
    (first, last)
}

#[test]
fn vit_overfits_32_random_examples() {
    let device = loramix_backend::device();
    let (first, last) = overfit(small_vit().init::<Train>(&device), images(32, &device), 10);
    assert!(last < 0.1 * first, "loss only fell from {first} to {last}");
}

#[test]
fn text_transformer_overfits_32_random_examples() {
    let device = loramix_backend::device();
    let config = small_text();
    let texts: Vec<String> = (0..32)
        .map(|i| format!("sample {i} {}", "xyz".repeat(i % 5)))
        .collect();
    let tokens = config.tokenizer().batch::<Train, _>(&texts, &device);
    let (first, last) = overfit(config.init::<Train>(&device), tokens, 4);
    assert!(last < 0.1 * first, "loss only fell from {first} to {last}");
}

/// Paths of the parameters whose values differ between `before` and `after`.
fn changed<M: burn::module::Module<Train>>(before: &M, after: &M) -> Vec<String> {
    let (before, after) = (named_params(before), named_params(after));
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    before
        .iter()
        .filter(|(path, value)| after[*path] != **value)
        .map(|(path, _)| path.clone())
        .collect()
}

/// Runs three steps with `which` trainable; returns the changed parameter paths and the number of
/// gradients the optimiser received.
fn train_three_steps(which: Trainable, lora: bool) -> (Vec<String>, usize, usize) {
    let device = loramix_backend::device();
    let mut model = small_vit().init::<Train>(&device);
    if lora {
        model = model.with_lora(&LoraConfig::new().with_rank(4), &device);
    }
    let model = model.trainable(which);
    let input = images::<Train>(8, &device);
    let targets = labels::<Train>(8, 10, &device);
    let loss = burn::nn::loss::CrossEntropyLoss::new(None, &device)
        .forward(model.logits(input.clone()), targets.clone());
    let n_grads = GradientsParams::from_grads(loss.backward(), &model).len();
    let n_trainable = trainable_params(&model);

    let before = model.clone();
    let mut trainer = Trainer::new(model, &TrainConfig::new());
    for _ in 0..3 {
        trainer.step(input.clone(), targets.clone()).unwrap();
    }
    (changed(&before, trainer.model()), n_grads, n_trainable)
}

#[test]
fn head_only_training_changes_only_the_head() {
    let (changed, grads, trainable) = train_three_steps(Trainable::HeadOnly, false);
    assert_eq!(changed, ["head.bias", "head.weight"]);
    assert_eq!(grads, 2, "frozen parameters must get no gradient at all");
    assert_eq!(trainable, 32 * 10 + 10);
}

#[test]
fn lora_training_changes_only_factors_and_head_and_leaves_the_base_bit_identical() {
    let (changed, grads, trainable) = train_three_steps(Trainable::AdaptersAndHead, true);
    let mut expected = vec!["head.bias".to_string(), "head.weight".to_string()];
    for block in 0..2 {
        for target in ["query", "value"] {
            for factor in ["a", "b"] {
                expected.push(format!(
                    "encoder.blocks.{block}.attn.{target}.lora.{factor}"
                ));
            }
        }
    }
    expected.sort();
    assert_eq!(changed, expected);
    assert_eq!(grads, expected.len());
    assert_eq!(trainable, 2 * 2 * (32 * 4 + 4 * 32) + 32 * 10 + 10);
}

#[test]
fn full_fine_tuning_changes_every_weight() {
    let (changed, grads, _) = train_three_steps(Trainable::All, false);
    let device = loramix_backend::device();
    let all = named_params(&small_vit().init::<Train>(&device));
    assert_eq!(changed.len(), all.len());
    assert_eq!(grads, all.len());
}

/// `trainable` gives the same trainable set whatever the module's history: fresh, frozen, or
/// trained, moved to the inference backend and back (as the pipeline does with its base model).
fn trainable_depends_only_on_what_is_asked<M>(model: M, input: M::Input, n_classes: usize)
where
    M: Classifier<Train> + AutodiffModule<Train>,
{
    let device = loramix_backend::device();
    let every = burn::module::Module::num_params(&model);
    let targets = labels::<Train>(input_len(&model, &input), n_classes, &device);
    let mut trainer = Trainer::new(model.clone().trainable(Trainable::All), &TrainConfig::new());
    trainer.step(input, targets).unwrap();
    let round_trip = M::from_inner(trainer.into_model().valid());
    for start in [
        model.clone(),
        round_trip,
        model.trainable(Trainable::HeadOnly),
    ] {
        assert_eq!(trainable_params(&start.trainable(Trainable::All)), every);
    }
}

fn input_len<M: Classifier<Train>>(model: &M, input: &M::Input) -> usize {
    model.logits(input.clone()).dims()[0]
}

#[test]
fn trainable_all_after_the_inference_backend_trains_every_weight() {
    let device = loramix_backend::device();
    let vit = small_vit().init::<Train>(&device);
    trainable_depends_only_on_what_is_asked(vit, images::<Train>(4, &device), 10);
    let text = small_text();
    let tokens = text
        .tokenizer()
        .batch::<Train, _>(&["a", "bc", "déf"], &device);
    trainable_depends_only_on_what_is_asked(text.init::<Train>(&device), tokens, 4);
}

#[test]
fn head_learning_rate_applies_to_the_head_only() {
    let device = loramix_backend::device();
    let model = small_vit().init::<Train>(&device).trainable(Trainable::All);
    let before = model.clone();
    // Backbone at lr 0 (so weight decay is 0 too): only the head may move.
    let config = TrainConfig::new().with_lr(0.0).with_head_lr(Some(1e-2));
    let mut trainer = Trainer::new(model, &config);
    trainer
        .step(images::<Train>(8, &device), labels::<Train>(8, 10, &device))
        .unwrap();
    assert_eq!(
        changed(&before, trainer.model()),
        ["head.bias", "head.weight"]
    );
}

#[test]
fn non_finite_loss_is_an_error_and_keeps_the_model() {
    let device = loramix_backend::device();
    let model = small_vit().init::<Train>(&device);
    let before = model.clone();
    let mut trainer = Trainer::new(model, &TrainConfig::new());
    let poisoned = images::<Train>(4, &device) * f32::NAN;
    let err = trainer.step(poisoned, labels(4, 10, &device)).unwrap_err();
    assert!(
        matches!(err, TrainError::NonFiniteLoss { step: 0, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("model kept"), "{err}");
    assert!(changed(&before, trainer.model()).is_empty());
    assert_eq!(trainer.steps(), 0);
}

#[test]
fn batch_with_wrong_number_of_targets_is_an_error() {
    let device = loramix_backend::device();
    let mut trainer = Trainer::new(small_vit().init::<Train>(&device), &TrainConfig::new());
    let err = trainer
        .step(images(4, &device), labels(3, 10, &device))
        .unwrap_err();
    assert_eq!(
        err,
        TrainError::BatchMismatch {
            inputs: 4,
            targets: 3
        }
    );
}

#[test]
fn zero_initialised_lora_model_equals_its_base_and_folding_keeps_outputs() {
    let device = loramix_backend::device();
    let base = small_vit().init::<Train>(&device);
    let x = images::<Train>(4, &device);
    let expected = base.logits(x.clone()).into_data();
    let lora = base
        .with_lora(
            &LoraConfig::new()
                .with_rank(4)
                .with_targets(loramix_lora::Target::ALL.to_vec()),
            &device,
        )
        .trainable(Trainable::AdaptersAndHead);
    lora.logits(x.clone())
        .into_data()
        .assert_eq(&expected, true);

    let mut trainer = Trainer::new(lora, &TrainConfig::new().with_lr(1e-2));
    for _ in 0..3 {
        trainer.step(x.clone(), labels(4, 10, &device)).unwrap();
    }
    let trained = trainer.into_model().valid();
    let x = x.inner();
    let unfolded = trained.logits(x.clone()).into_data();
    assert_ne!(unfolded, expected, "training changed nothing");
    trained
        .fold_lora()
        .logits(x)
        .into_data()
        .assert_approx_eq::<f32>(&unfolded, Tolerance::absolute(1e-5));
}

#[test]
fn a_fresh_model_and_its_clone_are_the_same_model() {
    let device = loramix_backend::device();
    let model = small_vit().init::<Inference>(&device);
    let copy = model.clone();
    assert_eq!(named_params(&model), named_params(&copy));
    let text = small_text().init::<Inference>(&device);
    assert_eq!(named_params(&text), named_params(&text.clone()));
}

/// Compares, parameter by parameter of `model`, the gradients of `a` and `b`; returns how many
/// parameters had one.
fn assert_same_gradients<M: AutodiffModule<Train>>(
    model: &M,
    a: &GradientsParams,
    b: &GradientsParams,
) -> usize {
    struct Compare<'a>(&'a GradientsParams, &'a GradientsParams, usize);
    impl burn::module::ModuleVisitor<Train> for Compare<'_> {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<Train, D>>) {
            let (a, b) = (
                self.0.get::<Inference, D>(param.id),
                self.1.get::<Inference, D>(param.id),
            );
            assert_eq!(
                a.is_some(),
                b.is_some(),
                "{} has a gradient in one only",
                param.id
            );
            if let (Some(a), Some(b)) = (a, b) {
                a.into_data()
                    .assert_approx_eq::<f32>(&b.into_data(), Tolerance::rel_abs(1e-4, 1e-6));
                self.2 += 1;
            }
        }
    }
    let mut compare = Compare(a, b, 0);
    model.visit(&mut compare);
    compare.2
}

/// Loss and gradients in 1 part and in 2 (uneven: 9 + 8 rows of 17) agree.
fn parts_agree<M: Classifier<Train> + AutodiffModule<Train>>(
    model: M,
    input: M::Input,
    classes: usize,
) {
    let device = loramix_backend::device();
    let rows = input.batch_len();
    assert_eq!(
        parts_for(rows, model.tokens(), 2),
        2,
        "the batch must be split"
    );
    let targets = labels::<Train>(input.batch_len(), classes, &device);
    for split_head in [false, true] {
        let whole = batch_gradients(&model, input.clone(), targets.clone(), 1, split_head);
        let parts = batch_gradients(&model, input.clone(), targets.clone(), 2, split_head);
        assert!(
            (whole.loss - parts.loss).abs() < 1e-5,
            "{} vs {}",
            whole.loss,
            parts.loss
        );
        let compared = assert_same_gradients(&model, &whole.body, &parts.body);
        assert_eq!(compared, whole.body.len());
        match (whole.head, parts.head) {
            (Some(a), Some(b)) => assert_eq!(assert_same_gradients(&model, &a, &b), 2),
            (None, None) => assert!(!split_head),
            _ => panic!("the head's gradients were split off in one run only"),
        }
    }
}

#[test]
fn gradients_in_parts_equal_the_gradients_of_the_whole_batch() {
    let device = loramix_backend::device();
    let vit = small_vit().init::<Train>(&device).trainable(Trainable::All);
    parts_agree(vit, images::<Train>(17, &device), 10);
    let lora = small_vit()
        .init::<Train>(&device)
        .with_lora(&LoraConfig::new().with_rank(4), &device)
        .trainable(Trainable::AdaptersAndHead);
    parts_agree(lora, images::<Train>(17, &device), 10);
    let text = small_text();
    let texts: Vec<String> = (0..17).map(|i| "déf ".repeat(i % 5)).collect();
    let tokens = text.tokenizer().batch::<Train, _>(&texts, &device);
    parts_agree(
        text.init::<Train>(&device).trainable(Trainable::All),
        tokens,
        4,
    );
}

#[test]
fn training_in_parts_follows_training_on_the_whole_batch() {
    let device = loramix_backend::device();
    let model = small_vit().init::<Train>(&device).trainable(Trainable::All);
    let (input, targets) = (
        images::<Train>(32, &device),
        labels::<Train>(32, 10, &device),
    );
    let losses = |parts: usize| {
        let mut trainer = Trainer::new(model.clone(), &TrainConfig::new().with_parts(parts));
        let losses: Vec<f32> = (0..5)
            .map(|_| trainer.step(input.clone(), targets.clone()).unwrap())
            .collect();
        (losses, trainer.into_model())
    };
    let (whole, trained_whole) = losses(1);
    let (parts, trained_parts) = losses(4);
    for (a, b) in whole.iter().zip(&parts) {
        assert!((a - b).abs() < 1e-4, "{whole:?} vs {parts:?}");
    }
    assert!(whole[4] < whole[0], "the loss fell: {whole:?}");
    let (a, b) = (named_params(&trained_whole), named_params(&trained_parts));
    for (path, value) in &a {
        value.assert_approx_eq::<f32>(&b[path], Tolerance::absolute(1e-4));
    }
}

#[test]
fn a_non_finite_loss_in_one_part_is_an_error_and_keeps_the_model() {
    let device = loramix_backend::device();
    let model = small_vit().init::<Train>(&device);
    let before = model.clone();
    let mut trainer = Trainer::new(model, &TrainConfig::new().with_parts(2));
    let clean = images::<Train>(8, &device);
    let poisoned = Tensor::cat(vec![clean.clone(), clean * f32::NAN], 0);
    let err = trainer.step(poisoned, labels(16, 10, &device)).unwrap_err();
    assert!(
        matches!(err, TrainError::NonFiniteLoss { step: 0, .. }),
        "{err}"
    );
    assert!(changed(&before, trainer.model()).is_empty());
}

#[test]
fn features_in_parts_equal_features_of_the_whole_batch() {
    let device = loramix_backend::device();
    let model = small_vit().init::<Inference>(&device);
    let input = images::<Inference>(27, &device);
    let whole = model.features(input.clone());
    for parts in [2, 3, 20] {
        forward_in_parts(&model, &input, parts, |m, x| m.features(x))
            .into_data()
            .assert_approx_eq::<f32>(&whole.clone().into_data(), Tolerance::absolute(1e-5));
    }
}
