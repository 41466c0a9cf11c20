//! PEFT adapters made by Python PEFT (`tools/reference/make_peft_fixtures.py`) read into
//! loramix reproduce PEFT's outputs; loramix's writes read back bit for bit; what loramix does
//! not compute is refused by name.

use std::path::{Path, PathBuf};

use loramix_backend::Inference;
use loramix_lora::AdapterHost;
use loramix_models::hf::BERT;
use loramix_models::{Bert, Classifier, WordPieceTokenizer};
use loramix_peft::{PeftError, read, write};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn tiny_bert() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tests/fixtures/tiny-bert")
}

fn reference(adapter: &str) -> serde_json::Value {
    let path = fixtures().join(adapter).join("reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
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

/// Applies the PEFT adapter `name` to the base in `base_dir` and compares the pooled outputs
/// with PEFT's for each reference text (run alone, as PEFT ran them).
fn assert_matches_peft(base_dir: &Path, name: &str, tolerance: f32) {
    let device = loramix_backend::device();
    let tokenizer =
        WordPieceTokenizer::from_file(&base_dir.join("tokenizer.json"), 128, 0).unwrap();
    let base = Bert::<Inference>::from_pretrained(base_dir, 2, &device).unwrap();
    let adapter = read(&fixtures().join(name), &BERT, &base.fingerprint()).unwrap();
    let mut model = base.clone();
    adapter.apply(&mut model, &device).unwrap();
    for text in reference(name)["texts"].as_array().unwrap() {
        let input = tokenizer
            .batch::<Inference, _>(&[text["text"].as_str().unwrap()], &device)
            .unwrap();
        let pooled: Vec<f32> = model.features(input.clone()).into_data().to_vec().unwrap();
        let expected = floats(&text["peft_pooled"]);
        let diff = max_difference(&pooled, &expected);
        assert!(diff <= tolerance, "{name} {}: {diff}", text["text"]);
        // The adapter changes the output (so the comparison means something).
        let plain: Vec<f32> = base.features(input).into_data().to_vec().unwrap();
        assert!(
            max_difference(&plain, &expected) > 100.0 * tolerance,
            "{name}: no effect"
        );
    }
}

#[test]
fn a_peft_lora_on_query_and_value_reproduces_peft() {
    assert_matches_peft(&tiny_bert(), "tiny-bert-lora-qv", 1e-5);
}

#[test]
fn rank_and_alpha_patterns_regex_targets_and_rslora_reproduce_peft() {
    assert_matches_peft(&tiny_bert(), "tiny-bert-lora-patterns", 1e-5);
    let base =
        Bert::<Inference>::from_pretrained(&tiny_bert(), 2, &loramix_backend::device()).unwrap();
    let adapter = read(
        &fixtures().join("tiny-bert-lora-patterns"),
        &BERT,
        &base.fingerprint(),
    )
    .unwrap();
    let rank = |layer: &str| {
        adapter
            .manifest
            .layers
            .iter()
            .find(|l| l.name == layer)
            .unwrap()
            .rank
    };
    assert_eq!(
        rank("encoder.blocks.0.mlp_out"),
        6,
        "rank_pattern by suffix"
    );
    assert_eq!(rank("encoder.blocks.1.key"), 2, "rank_pattern by full path");
    assert_eq!(rank("encoder.blocks.0.query"), 4);
}

#[test]
#[ignore = "needs datasets/fetch.sh (all-MiniLM-L6-v2)"]
fn a_peft_lora_trained_on_minilm_reproduces_peft() {
    let minilm = std::env::var_os("LORAMIX_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/cache"))
        .join("minilm-l6");
    assert_matches_peft(&minilm, "minilm-lora-qv", 1e-4);
}

/// PEFT -> loramix -> PEFT: the MiniLM fixture written again by loramix, into
/// `LORAMIX_PEFT_EXPORT` if set, for `tools/reference/peft_load_check.py` (run by hand; the
/// test itself checks the export reads back unchanged).
#[test]
#[ignore = "writes an export for the PEFT load check"]
fn export_the_minilm_fixture_again_for_the_peft_check() {
    let scratch = tempfile::tempdir().unwrap();
    let out = std::env::var_os("LORAMIX_PEFT_EXPORT")
        .map_or_else(|| scratch.path().join("export"), PathBuf::from);
    let adapter = read(&fixtures().join("minilm-lora-qv"), &BERT, "unknown").unwrap();
    write(
        &adapter,
        &out,
        &BERT,
        "sentence-transformers/all-MiniLM-L6-v2",
    )
    .unwrap();
    assert_eq!(read(&out, &BERT, "unknown").unwrap().layers, adapter.layers);
}

#[test]
fn a_written_adapter_reads_back_bit_for_bit_and_keeps_its_scale() {
    let device = loramix_backend::device();
    let base = Bert::<Inference>::from_pretrained(&tiny_bert(), 2, &device).unwrap();
    let fingerprint = base.fingerprint();
    let original = read(
        &fixtures().join("tiny-bert-lora-patterns"),
        &BERT,
        &fingerprint,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(&original, dir.path(), &BERT, "tiny-bert").unwrap();
    let back = read(dir.path(), &BERT, "another base").unwrap();
    assert_eq!(back.layers, original.layers, "factors bit for bit");
    assert_eq!(back.manifest.layers, original.manifest.layers);
    assert_eq!(back.manifest.alpha, original.manifest.alpha);
    assert_eq!(
        back.manifest.base_fingerprint, fingerprint,
        "the loramix manifest beside it keeps the base it was made on"
    );
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    // r is the largest rank; the other layers keep theirs through rank_pattern.
    assert_eq!(config["r"], 6);
    assert_eq!(
        config["rank_pattern"]["encoder.layer.0.attention.self.query"],
        4
    );
    assert_eq!(
        config["rank_pattern"]["encoder.layer.1.attention.self.key"],
        2
    );
    assert!(
        config["rank_pattern"]
            .get("encoder.layer.0.output.dense")
            .is_none()
    );
    assert_eq!(config["peft_type"], "LORA");
}

fn refusal(dir: &Path) -> String {
    match read(dir, &BERT, "fingerprint") {
        Ok(_) => panic!("{} was read", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn dora_is_refused_with_the_file_and_field_named() {
    let error = refusal(&fixtures().join("tiny-bert-dora"));
    assert!(
        error.contains("tiny-bert-dora/adapter_config.json")
            && error.contains("`use_dora`: DoRA (weight-decomposed LoRA) is not supported"),
        "{error}"
    );
}

/// A copy of the query/value fixture with `edit` applied to its config.
fn edited(edit: impl Fn(&mut serde_json::Value)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let source = fixtures().join("tiny-bert-lora-qv");
    std::fs::copy(
        source.join("adapter_model.safetensors"),
        dir.path().join("adapter_model.safetensors"),
    )
    .unwrap();
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(source.join("adapter_config.json")).unwrap())
            .unwrap();
    edit(&mut config);
    std::fs::write(dir.path().join("adapter_config.json"), config.to_string()).unwrap();
    dir
}

#[test]
fn unsupported_settings_are_refused_by_field() {
    for (field, value, expected) in [
        (
            "bias",
            serde_json::json!("all"),
            "`bias`: training biases (`all`)",
        ),
        (
            "modules_to_save",
            serde_json::json!(["classifier"]),
            "`modules_to_save`: saved task heads",
        ),
        (
            "fan_in_fan_out",
            serde_json::json!(true),
            "`fan_in_fan_out`",
        ),
        (
            "peft_type",
            serde_json::json!("IA3"),
            "`peft_type`: `IA3` is not LoRA",
        ),
        ("r", serde_json::json!(2), "the config gives rank 2"),
    ] {
        let dir = edited(|c| c[field] = value.clone());
        let error = refusal(dir.path());
        assert!(error.contains(expected), "{field}: {error}");
        assert!(
            error.contains(&dir.path().display().to_string()),
            "{field}: {error}"
        );
    }
}

#[test]
fn a_pickle_is_refused_without_being_opened() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("adapter_model.bin"),
        b"\x80\x04 not unpickled",
    )
    .unwrap();
    std::fs::copy(
        fixtures().join("tiny-bert-lora-qv/adapter_config.json"),
        dir.path().join("adapter_config.json"),
    )
    .unwrap();
    let error = read(dir.path(), &BERT, "f").unwrap_err();
    assert!(matches!(error, PeftError::Pickle(_)), "{error}");
    assert!(error.to_string().contains("does not unpickle"), "{error}");
}

/// An adapter holding one `lora_A` on `module`, with the q/v fixture's config.
fn one_factor_on(module: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let data = vec![0u8; 4 * 4 * 16];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4, 16], &data).unwrap();
    safetensors::serialize_to_file(
        [(format!("base_model.model.{module}.lora_A.weight"), view)],
        None,
        &dir.path().join("adapter_model.safetensors"),
    )
    .unwrap();
    std::fs::copy(
        fixtures().join("tiny-bert-lora-qv/adapter_config.json"),
        dir.path().join("adapter_config.json"),
    )
    .unwrap();
    dir
}

#[test]
fn an_adapter_on_a_layer_loramix_cannot_adapt_is_refused_by_tensor() {
    let error = refusal(one_factor_on("embeddings.word_embeddings").path());
    assert!(
        error.contains("adapter_model.safetensors")
            && error.contains("`embeddings.word_embeddings` is not an attention or MLP linear"),
        "{error}"
    );
    // A pooler is never read, so an adapter with nothing else would change nothing.
    let error = refusal(one_factor_on("pooler.dense").path());
    assert!(
        error.contains("its only LoRA tensors are on modules loramix never reads")
            && error.contains("pooler.dense.lora_A.weight"),
        "{error}"
    );
}

/// PEFT's `target_modules=["query","value","dense"]` also catches BertModel's pooler, which mean
/// pooling never reads: the adapter is read without it, with a note saying why, and reproduces
/// PEFT's pooled outputs.
#[test]
fn a_lora_that_also_targets_the_unread_pooler_reproduces_peft_with_a_note() {
    assert_matches_peft(&tiny_bert(), "tiny-bert-lora-dense", 1e-5);
    let dir = fixtures().join("tiny-bert-lora-dense");
    let (adapter, notes) = loramix_peft::read_noting(&dir, &BERT, "f").unwrap();
    let modules = reference("tiny-bert-lora-dense")["modules"].clone();
    let peft_modules = modules.as_object().unwrap();
    assert!(peft_modules.contains_key("pooler.dense"), "{modules}");
    // Every module PEFT adapted but the pooler: 2 blocks x (query, value, attention output,
    // MLP in, MLP out).
    assert_eq!(peft_modules.len(), 11);
    assert_eq!(adapter.layers.len(), 10);
    assert_eq!(notes.len(), 2, "{notes:?}");
    for (note, factor) in notes.iter().zip(["lora_A", "lora_B"]) {
        assert!(
            note.contains(&format!(
                "`base_model.model.pooler.dense.{factor}.weight` left out"
            )) && note.contains("never reaches a prediction"),
            "{note}"
        );
    }
}

#[test]
fn keys_that_kept_the_adapter_name_read_the_same() {
    let source = fixtures().join("tiny-bert-lora-qv");
    let bytes = std::fs::read(source.join("adapter_model.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let renamed: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .tensors()
        .into_iter()
        .map(|(key, view)| (key.replace(".weight", ".default.weight"), view))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    safetensors::serialize_to_file(renamed, None, &dir.path().join("adapter_model.safetensors"))
        .unwrap();
    std::fs::copy(
        source.join("adapter_config.json"),
        dir.path().join("adapter_config.json"),
    )
    .unwrap();
    let original = read(&source, &BERT, "f").unwrap();
    let renamed = read(dir.path(), &BERT, "f").unwrap();
    assert_eq!(renamed.layers, original.layers);
    assert_eq!(renamed.manifest.layers, original.manifest.layers);
}

/// The query/value fixture's tensors by key: shape and values.
type Tensors = std::collections::BTreeMap<String, (Vec<usize>, Vec<f32>)>;

fn qv_tensors() -> Tensors {
    let bytes =
        std::fs::read(fixtures().join("tiny-bert-lora-qv/adapter_model.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    tensors
        .tensors()
        .into_iter()
        .map(|(key, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (key, (view.shape().to_vec(), values))
        })
        .collect()
}

/// The query/value fixture with `edit` applied to its config and `tensors` as its tensors.
fn crafted(edit: impl Fn(&mut serde_json::Value), tensors: &Tensors) -> tempfile::TempDir {
    let dir = edited(edit);
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(key, (shape, values))| {
            let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (key.clone(), data, shape.clone())
        })
        .collect();
    let views = bytes.iter().map(|(key, data, shape)| {
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                .unwrap();
        (key.clone(), view)
    });
    safetensors::serialize_to_file(views, None, &dir.path().join("adapter_model.safetensors"))
        .unwrap();
    dir
}

const Q0_A: &str = "base_model.model.encoder.layer.0.attention.self.query.lora_A.weight";

#[test]
fn a_factor_given_twice_under_both_peft_spellings_is_refused_naming_both() {
    let mut tensors = qv_tensors();
    let (shape, values) = tensors[Q0_A].clone();
    let scaled = values.iter().map(|v| v * 100.0).collect();
    tensors.insert(Q0_A.replace(".weight", ".default.weight"), (shape, scaled));
    let dir = crafted(|_| {}, &tensors);
    let error = refusal(dir.path());
    assert!(
        error.contains(&format!("`{Q0_A}`"))
            && error.contains(&format!("`{}`", Q0_A.replace(".weight", ".default.weight")))
            && error.contains("same factor"),
        "{error}"
    );
}

/// The layer names of an adapter read from `dir`.
fn layer_names(dir: &Path) -> Vec<String> {
    let (adapter, _) = loramix_peft::read_noting(dir, &BERT, "f").unwrap();
    adapter
        .manifest
        .layers
        .into_iter()
        .map(|l| l.name)
        .collect()
}

#[test]
fn only_the_modules_the_config_targets_are_read_as_peft_loads_them() {
    let all = qv_tensors();
    let names = |edit: fn(&mut serde_json::Value)| layer_names(crafted(edit, &all).path());
    assert_eq!(
        names(|c| c["target_modules"] = serde_json::json!(["query"])),
        ["encoder.blocks.0.query", "encoder.blocks.1.query"]
    );
    assert_eq!(
        names(|c| {
            c["layers_to_transform"] = serde_json::json!([0]);
            c["layers_pattern"] = serde_json::json!("layer");
        }),
        ["encoder.blocks.0.query", "encoder.blocks.0.value"]
    );
    assert_eq!(
        names(|c| c["layers_to_transform"] = serde_json::json!(1)),
        ["encoder.blocks.1.query", "encoder.blocks.1.value"],
        "an index alone, any layer pattern"
    );
    assert_eq!(
        names(
            |c| c["exclude_modules"] = serde_json::json!(["encoder.layer.1.attention.self.value"])
        ),
        [
            "encoder.blocks.0.query",
            "encoder.blocks.0.value",
            "encoder.blocks.1.query"
        ]
    );
    assert_eq!(
        names(|c| c["target_modules"] = serde_json::json!(r".*\.0\.attention\.self\.value")),
        ["encoder.blocks.0.value"],
        "a regex matches the whole path"
    );
    // A full path in the list is taken as it is, whatever layers_to_transform says (PEFT's rule).
    assert_eq!(
        names(|c| {
            c["target_modules"] = serde_json::json!(["encoder.layer.1.attention.self.query"]);
            c["layers_to_transform"] = serde_json::json!([0]);
        }),
        ["encoder.blocks.1.query"]
    );
    // The factors read are the file's, untouched.
    let (only_query, notes) = loramix_peft::read_noting(
        crafted(|c| c["target_modules"] = serde_json::json!(["query"]), &all).path(),
        &BERT,
        "f",
    )
    .unwrap();
    let full = read(&fixtures().join("tiny-bert-lora-qv"), &BERT, "f").unwrap();
    assert_eq!(only_query.layers[0], full.layers[0]);
    assert_eq!(notes.len(), 4, "{notes:?}");
    assert!(
        notes[0].contains("value.lora_A.weight` left out"),
        "{notes:?}"
    );
    let none = refusal(crafted(|c| c["target_modules"] = serde_json::json!(["key"]), &all).path());
    assert!(none.contains("none of its 8 LoRA tensors"), "{none}");
}

#[test]
fn settings_that_change_what_peft_computes_are_refused_by_field() {
    for (field, value) in [
        ("layer_replication", serde_json::json!([[0, 2]])),
        ("target_parameters", serde_json::json!(["weight"])),
        ("alora_invocation_tokens", serde_json::json!([1, 2])),
        ("use_qalora", serde_json::json!(true)),
        ("trainable_token_indices", serde_json::json!([5])),
        ("arrow_config", serde_json::json!({"top_k": 2})),
        ("alpha_pattern", serde_json::json!({"query": 1e39})),
        ("target_modules", serde_json::json!("query(")),
        ("exclude_modules", serde_json::json!("query(")),
        ("layers_pattern", serde_json::json!("layer")),
    ] {
        let dir = edited(|c| c[field] = value.clone());
        let error = refusal(dir.path());
        assert!(
            error.contains(&format!("`{field}`")) && error.contains("adapter_config.json"),
            "{field}: {error}"
        );
    }
    // Their defaults, as PEFT writes them, are read.
    let dir = edited(|c| {
        c["layer_replication"] = serde_json::Value::Null;
        c["target_parameters"] = serde_json::json!([]);
        c["use_qalora"] = serde_json::json!(false);
    });
    read(dir.path(), &BERT, "f").unwrap();
}

#[test]
fn non_finite_factors_are_refused_naming_the_tensor() {
    for bad in [f32::NAN, f32::INFINITY] {
        let mut tensors = qv_tensors();
        tensors.get_mut(Q0_A).unwrap().1[3] = bad;
        let error = refusal(crafted(|_| {}, &tensors).path());
        assert!(
            error.contains(&format!("`{Q0_A}` holds {bad}")) && error.contains("must be finite"),
            "{error}"
        );
    }
    // Finite factors whose scaled product overflows.
    let mut tensors = qv_tensors();
    let b = Q0_A.replace("lora_A", "lora_B");
    tensors.get_mut(&b).unwrap().1[0] = 3e38;
    let error = refusal(crafted(|_| {}, &tensors).path());
    assert!(
        error.contains("layer `encoder.blocks.0.query`") && error.contains("beyond 32-bit floats"),
        "{error}"
    );
    // And factors that overflow once PEFT's own scale is folded into B (an alpha_pattern's 16/4
    // against loramix's alpha/r, 8/4: a factor of 2 here).
    let mut tensors = qv_tensors();
    tensors.get_mut(&b).unwrap().1[0] = 3e38;
    let pattern = |c: &mut serde_json::Value| c["alpha_pattern"] = serde_json::json!({"query": 16});
    let error = refusal(crafted(pattern, &tensors).path());
    assert!(error.contains("after PEFT's scale 4"), "{error}");
}

#[test]
fn a_zero_lora_alpha_is_a_zero_update_as_in_peft() {
    let device = loramix_backend::device();
    let base = Bert::<Inference>::from_pretrained(&tiny_bert(), 2, &device).unwrap();
    let dir = edited(|c| c["lora_alpha"] = serde_json::json!(0));
    let adapter = read(dir.path(), &BERT, &base.fingerprint()).unwrap();
    assert!(adapter.layers.iter().all(|l| l.b.iter().all(|&v| v == 0.0)));
    // A zero lora_alpha with a per-layer alpha keeps that layer's scale alpha / r.
    let dir = edited(|c| {
        c["lora_alpha"] = serde_json::json!(0);
        c["alpha_pattern"] = serde_json::json!({"encoder.layer.0.attention.self.query": 8});
    });
    let patterned = read(dir.path(), &BERT, &base.fingerprint()).unwrap();
    let full = read(&fixtures().join("tiny-bert-lora-qv"), &BERT, "f").unwrap();
    let i = patterned
        .manifest
        .layers
        .iter()
        .position(|l| l.name == "encoder.blocks.0.query")
        .unwrap();
    let scale = |a: &loramix_lora::Adapter| a.layer_scale(&a.manifest.layers[i]);
    for (p, f) in patterned.layers[i].b.iter().zip(&full.layers[i].b) {
        assert!((p * scale(&patterned) - f * scale(&full)).abs() < 1e-6);
    }
}
