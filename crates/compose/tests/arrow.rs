//! Arrow routing against Hugging Face PEFT's own `create_arrow_model`: the fixture
//! (`tools/reference/arrow/make_fixture.py`) holds four tiny-bert adapters made by PEFT and
//! PEFT's pooled outputs, prototypes and torch's start vectors, which loramix reproduces.

use std::path::{Path, PathBuf};

use loramix_backend::Inference;
use loramix_compose::{ArrowConfig, ComposeError, route};
use loramix_lora::{Adapter, AdapterHost};
use loramix_models::hf::BERT;
use loramix_models::{Bert, Classifier, WordPieceTokenizer};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn reference() -> Value {
    let path = root().join("crates/compose/tests/fixtures/arrow/reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    (v.as_array().unwrap().iter())
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn base() -> Bert<Inference> {
    let dir = root().join("crates/models/tests/fixtures/tiny-bert");
    Bert::from_pretrained(&dir, 2, &loramix_backend::device()).unwrap()
}

fn adapters(base: &Bert<Inference>, key: &str) -> Vec<Adapter> {
    (reference()[key].as_array().unwrap().iter())
        .map(|p| {
            let dir = root().join(p.as_str().unwrap());
            loramix_peft::read(&dir, &BERT, &base.fingerprint()).unwrap()
        })
        .collect()
}

fn config(run: &Value) -> ArrowConfig {
    ArrowConfig {
        top_k: run["top_k"].as_u64().unwrap() as usize,
        temperature: run["router_temperature"].as_f64().unwrap() as f32,
        seed: run["rng_seed"].as_u64().unwrap(),
    }
}

#[test]
fn torchs_randn_is_reproduced_at_every_length_the_fixture_holds() {
    for case in reference()["randn"].as_array().unwrap() {
        let n = case["n"].as_u64().unwrap() as usize;
        let seed = case["seed"].as_u64().unwrap();
        let ours = loramix_rng::torch::randn(n, seed);
        let diff = max_difference(&ours, &floats(&case["values"]));
        assert!(diff < 1e-6, "n {n} seed {seed}: {diff}");
    }
}

#[test]
fn routed_tiny_bert_reproduces_peft_with_and_without_genknowsub() {
    let reference = reference();
    let device = loramix_backend::device();
    let base = base();
    let experts = adapters(&base, "task_adapters");
    let general = adapters(&base, "general_adapters");
    let dir = root().join("crates/models/tests/fixtures/tiny-bert");
    let tokenizer = WordPieceTokenizer::from_file(&dir.join("tokenizer.json"), 128, 0).unwrap();
    let texts: Vec<&str> = (reference["texts"].as_array().unwrap().iter())
        .map(|t| t.as_str().unwrap())
        .collect();
    for run in reference["runs"].as_array().unwrap() {
        let gks = run["use_gks"].as_bool().unwrap();
        let mut model = base.clone();
        let general = if gks { &general[..] } else { &[] };
        route(&mut model, &experts, general, &config(run), &device).unwrap();
        let model = model.fold_lora();
        for (text, expected) in texts.iter().zip(run["pooled"].as_array().unwrap()) {
            let input = tokenizer.batch::<Inference, _>(&[*text], &device).unwrap();
            let pooled: Vec<f32> = model.features(input.clone()).into_data().to_vec().unwrap();
            let diff = max_difference(&pooled, &floats(expected));
            assert!(diff < 1e-5, "{run:?} {text:?}: {diff}");
            let plain: Vec<f32> = base.features(input).into_data().to_vec().unwrap();
            assert!(
                max_difference(&plain, &floats(expected)) > 1e-2,
                "no effect"
            );
        }
    }
}

#[test]
fn prototypes_after_genknowsub_are_peft_s() {
    let reference = reference();
    let run = (reference["runs"].as_array().unwrap().iter())
        .find(|r| r.get("prototypes").is_some())
        .unwrap();
    let base = base();
    let experts = adapters(&base, "task_adapters");
    let general = adapters(&base, "general_adapters");
    let mut model = base.clone();
    route(
        &mut model,
        &experts,
        &general,
        &config(run),
        &Default::default(),
    )
    .unwrap();
    let layers = model.adaptable_layers();
    for (peft_name, expected) in run["prototypes"].as_object().unwrap() {
        // PEFT's `encoder.layer.0.attention.self.query` is loramix's block 0 query.
        let block = peft_name.split('.').nth(2).unwrap();
        let target = peft_name.rsplit('.').next().unwrap();
        let (_, layer) = (layers.iter())
            .find(|(name, _)| {
                name.contains(&format!(".{block}.")) && name.ends_with(&format!(".{target}"))
            })
            .unwrap_or_else(|| panic!("no layer for {peft_name}"));
        let ours: Vec<f32> = (layer.routing.as_ref().unwrap().prototypes.clone())
            .into_data()
            .to_vec()
            .unwrap();
        let expected: Vec<f32> = (expected.as_array().unwrap().iter())
            .flat_map(floats)
            .collect();
        assert!(max_difference(&ours, &expected) < 1e-5, "{peft_name}");
    }
}

#[test]
fn adapters_of_another_layout_and_settings_out_of_range_are_refused() {
    let base = base();
    let experts = adapters(&base, "task_adapters");
    let fixtures = root().join("crates/peft/tests/fixtures");
    let patterns = loramix_peft::read(
        &fixtures.join("tiny-bert-lora-patterns"),
        &BERT,
        &base.fingerprint(),
    )
    .unwrap();
    let device = loramix_backend::device();
    let mut model = base.clone();
    let mixed = [experts[0].clone(), patterns];
    let error = route(
        &mut model,
        &mixed,
        &[],
        &ArrowConfig::default().with_top_k(1),
        &device,
    )
    .unwrap_err();
    assert!(matches!(error, ComposeError::Unroutable { .. }), "{error}");
    assert!(
        error.to_string().contains("tiny-bert-lora-patterns"),
        "{error}"
    );
    for config in [
        ArrowConfig::default().with_top_k(4),
        ArrowConfig::default().with_top_k(0),
        ArrowConfig {
            temperature: 0.0,
            ..ArrowConfig::default()
        },
    ] {
        let error = route(&mut model, &experts, &[], &config, &device).unwrap_err();
        assert!(matches!(error, ComposeError::OutOfRange { .. }), "{error}");
    }
    // A general adapter made for another base is refused as an expert would be.
    let mut foreign = experts[1].clone();
    foreign.manifest.base_fingerprint = "sha256:another".into();
    let config = ArrowConfig::default().with_top_k(1);
    let error = route(&mut model, &experts, &[foreign], &config, &device).unwrap_err();
    assert!(
        error.to_string().contains("trained on base model"),
        "{error}"
    );
    assert!(
        (model.adaptable_layers().iter()).all(|(_, l)| l.routing.is_none()),
        "a refused routing changed the model"
    );
}
