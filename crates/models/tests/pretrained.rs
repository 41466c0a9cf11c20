//! Pretrained checkpoints: tiny random Hugging Face checkpoints written here cover loading, its
//! errors and LoRA on every run; the real all-MiniLM-L6-v2 and DINOv2-S checkpoints (fetched by
//! `datasets/fetch.sh`) are compared with PyTorch / onnxruntime references by the `#[ignore]`d
//! tests, which CI runs after the fetch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Int, Tensor, TensorData, Tolerance};
use loramix_backend::Inference;
use loramix_lora::{LoraConfig, Target};
use loramix_models::{Bert, BertConfig, Classifier, Vit, WordPieceTokenizer, dinov2, named_params};
use safetensors::{Dtype, tensor::TensorView};
use serde_json::json;

/// A deterministic pseudo-random value in [-0.5, 0.5) for element `i` of tensor `salt`.
fn value(salt: usize, i: usize) -> f32 {
    let x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (salt as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5
}

type Tensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

fn put(tensors: &mut Tensors, name: &str, shape: &[usize]) {
    let n: usize = shape.iter().product();
    let salt = tensors.len() + 1;
    tensors.insert(
        name.to_string(),
        (shape.to_vec(), (0..n).map(|i| value(salt, i)).collect()),
    );
}

fn write_safetensors(path: &Path, tensors: &Tensors) {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(name, (shape, values))| {
            let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name.clone(), raw, shape.clone())
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(name, raw, shape)| {
            (
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), raw).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

const HIDDEN: usize = 8;
const LAYERS: usize = 2;
const FFN: usize = 16;
const VOCAB: usize = 20;
const POSITIONS: usize = 12;

/// A BertModel checkpoint of 2 layers, width 8, with every tensor named as Hugging Face names
/// them (written out here by hand, independently of the loader's mapping).
fn tiny_bert(dir: &Path) -> Tensors {
    std::fs::create_dir_all(dir).unwrap();
    let config = json!({
        "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
        "hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": 2,
        "intermediate_size": FFN, "max_position_embeddings": POSITIONS, "type_vocab_size": 2,
        "layer_norm_eps": 1e-12, "pad_token_id": 0, "vocab_size": VOCAB,
        "position_embedding_type": "absolute"
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let mut t = Tensors::new();
    put(
        &mut t,
        "embeddings.word_embeddings.weight",
        &[VOCAB, HIDDEN],
    );
    put(
        &mut t,
        "embeddings.position_embeddings.weight",
        &[POSITIONS, HIDDEN],
    );
    put(
        &mut t,
        "embeddings.token_type_embeddings.weight",
        &[2, HIDDEN],
    );
    put(&mut t, "embeddings.LayerNorm.weight", &[HIDDEN]);
    put(&mut t, "embeddings.LayerNorm.bias", &[HIDDEN]);
    for i in 0..LAYERS {
        let l = format!("encoder.layer.{i}");
        for (name, out, inp) in [
            ("attention.self.query", HIDDEN, HIDDEN),
            ("attention.self.key", HIDDEN, HIDDEN),
            ("attention.self.value", HIDDEN, HIDDEN),
            ("attention.output.dense", HIDDEN, HIDDEN),
            ("intermediate.dense", FFN, HIDDEN),
            ("output.dense", HIDDEN, FFN),
        ] {
            put(&mut t, &format!("{l}.{name}.weight"), &[out, inp]);
            put(&mut t, &format!("{l}.{name}.bias"), &[out]);
        }
        for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
            put(&mut t, &format!("{l}.{norm}.weight"), &[HIDDEN]);
            put(&mut t, &format!("{l}.{norm}.bias"), &[HIDDEN]);
        }
    }
    put(&mut t, "pooler.dense.weight", &[HIDDEN, HIDDEN]);
    put(&mut t, "pooler.dense.bias", &[HIDDEN]);
    write_safetensors(&dir.join("model.safetensors"), &t);
    t
}

fn device() -> loramix_backend::Device {
    loramix_backend::device()
}

fn values(data: &TensorData) -> Vec<f32> {
    data.clone().convert::<f32>().into_vec::<f32>().unwrap()
}

fn transposed(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

#[test]
fn a_bert_checkpoint_loads_every_tensor_into_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let written = tiny_bert(dir.path());
    let model = Bert::<Inference>::from_pretrained(dir.path(), 3, &device()).unwrap();
    let params = named_params(&model);
    let get = |path: &str| values(&params[path]);
    let hf = |name: &str| written[name].1.clone();

    assert_eq!(
        get("embeddings.word_embeddings.weight"),
        hf("embeddings.word_embeddings.weight")
    );
    assert_eq!(
        get("embeddings.layer_norm.gamma"),
        hf("embeddings.LayerNorm.weight")
    );
    // PyTorch Linear weights are [out, in]; burn's are [in, out].
    assert_eq!(
        get("encoder.blocks.1.attn.value.base.weight"),
        transposed(
            &hf("encoder.layer.1.attention.self.value.weight"),
            HIDDEN,
            HIDDEN
        )
    );
    assert_eq!(
        get("encoder.blocks.0.mlp_in.base.weight"),
        transposed(
            &hf("encoder.layer.0.intermediate.dense.weight"),
            FFN,
            HIDDEN
        )
    );
    assert_eq!(
        get("encoder.blocks.0.mlp_out.base.bias"),
        hf("encoder.layer.0.output.dense.bias")
    );
    assert_eq!(
        get("encoder.blocks.1.norm_mlp.beta"),
        hf("encoder.layer.1.output.LayerNorm.bias")
    );
    assert_eq!(model.head.weight.dims(), [HIDDEN, 3]);
    assert!(model.encoder.norm.is_none(), "BERT has no final norm");
}

#[test]
fn a_prefixed_task_model_checkpoint_loads_its_backbone() {
    let dir = tempfile::tempdir().unwrap();
    let written = tiny_bert(dir.path());
    let prefixed: Tensors = written
        .iter()
        .map(|(k, v)| (format!("bert.{k}"), v.clone()))
        .collect();
    write_safetensors(&dir.path().join("model.safetensors"), &prefixed);
    Bert::<Inference>::from_pretrained(dir.path(), 2, &device()).unwrap();
}

fn load_error(dir: &Path) -> String {
    match Bert::<Inference>::from_pretrained(dir, 2, &device()) {
        Ok(_) => panic!("a broken checkpoint loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_missing_misshaped_or_unknown_tensor_is_named_and_nothing_loads() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = tiny_bert(dir.path());
    t.remove("encoder.layer.1.attention.self.key.bias");
    t.insert(
        "encoder.layer.0.intermediate.dense.weight".into(),
        (vec![FFN, HIDDEN + 1], vec![0.0; FFN * (HIDDEN + 1)]),
    );
    t.insert(
        "encoder.layer.9.extra.weight".into(),
        (vec![2], vec![0.0; 2]),
    );
    write_safetensors(&dir.path().join("model.safetensors"), &t);
    let error = load_error(dir.path());
    let file = dir.path().join("model.safetensors");
    assert!(error.starts_with(&file.display().to_string()), "{error}");
    assert!(error.contains("3 problems"), "{error}");
    assert!(
        error.contains("missing tensor `encoder.layer.1.attention.self.key.bias`"),
        "{error}"
    );
    assert!(
        error.contains(
            "tensor `encoder.layer.0.intermediate.dense.weight` has shape [16, 9], expected [16, 8]"
        ),
        "{error}"
    );
    assert!(
        error.contains("unused tensor `encoder.layer.9.extra.weight`"),
        "{error}"
    );
}

#[test]
fn a_truncated_checkpoint_is_refused_with_its_file_named() {
    let dir = tempfile::tempdir().unwrap();
    tiny_bert(dir.path());
    let file = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 100]).unwrap();
    let error = load_error(dir.path());
    assert!(error.contains(&file.display().to_string()), "{error}");
    assert!(error.contains("truncated or corrupt"), "{error}");
}

#[test]
fn an_unsupported_config_is_refused_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    tiny_bert(dir.path());
    let path = dir.path().join("config.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"gelu\"", "\"relu\"")).unwrap();
    let error = BertConfig::from_file(&path).unwrap_err().to_string();
    assert!(
        error.contains("config.json") && error.contains("hidden_act `relu`"),
        "{error}"
    );
}

fn tokens(ids: &[&[i64]]) -> Tensor<Inference, 2, Int> {
    let len = ids.iter().map(|r| r.len()).max().unwrap();
    let flat: Vec<i64> = ids
        .iter()
        .flat_map(|r| r.iter().copied().chain(std::iter::repeat(0)).take(len))
        .collect();
    Tensor::from_data(TensorData::new(flat, [ids.len(), len]), &device())
}

#[test]
fn padding_does_not_change_a_bert_sentence_embedding() {
    let dir = tempfile::tempdir().unwrap();
    tiny_bert(dir.path());
    let model = Bert::<Inference>::from_pretrained(dir.path(), 2, &device()).unwrap();
    let alone = model.features(tokens(&[&[2, 5, 7, 3]]));
    let padded = model.features(tokens(&[&[2, 5, 7, 3], &[2, 9, 8, 11, 4, 6, 3]]));
    padded
        .narrow(0, 0, 1)
        .into_data()
        .assert_approx_eq::<f32>(&alone.into_data(), Tolerance::absolute(1e-5));
}

/// LoRA `config` on `model`: with `B = 0` the outputs on `input` are exactly the model's; with
/// every `B` set to 0.01 they change, and folding the updates into the weights keeps them
/// within `tolerance`.
fn assert_lora_starts_exact_and_folds<M: Classifier<Inference>>(
    model: M,
    input: M::Input,
    config: &LoraConfig,
    tolerance: f32,
) {
    let expected = model.features(input.clone()).into_data();
    let adapted = model.with_lora(config, &device());
    adapted
        .features(input.clone())
        .into_data()
        .assert_eq(&expected, true);
    let adapted = adapted.map_encoder(|e| {
        e.map_layers(|mut layer| {
            if let Some(lora) = layer.lora.as_mut() {
                lora.b = lora.b.clone().map(|b| b.ones_like() * 0.01);
            }
            layer
        })
    });
    let unfolded = adapted.features(input.clone()).into_data();
    assert_ne!(values(&unfolded), values(&expected), "B had no effect");
    adapted
        .fold_lora()
        .features(input)
        .into_data()
        .assert_approx_eq::<f32>(&unfolded, Tolerance::absolute(tolerance));
}

#[test]
fn lora_on_a_pretrained_bert_starts_exact_and_folds_exactly() {
    let dir = tempfile::tempdir().unwrap();
    tiny_bert(dir.path());
    let model = Bert::<Inference>::from_pretrained(dir.path(), 2, &device()).unwrap();
    let input = tokens(&[&[2, 5, 7, 3], &[2, 9, 8, 11, 4, 6, 3]]);
    let config = LoraConfig::new()
        .with_rank(2)
        .with_targets(Target::ALL.to_vec());
    assert_lora_starts_exact_and_folds(model, input, &config, 1e-5);
}

// ---- DINOv2 -------------------------------------------------------------------------------

/// A Dinov2Model checkpoint of 2 layers, width 8, patch 2, trained for 6x6 images (a 3x3
/// position grid), with Hugging Face's tensor names written out by hand.
fn tiny_dinov2(dir: &Path) -> Tensors {
    std::fs::create_dir_all(dir).unwrap();
    let config = json!({
        "model_type": "dinov2", "hidden_size": HIDDEN, "num_hidden_layers": LAYERS,
        "num_attention_heads": 2, "mlp_ratio": 2, "patch_size": 2, "image_size": 6,
        "num_channels": 3, "layer_norm_eps": 1e-6, "layerscale_value": 1.0,
        "hidden_act": "gelu", "use_swiglu_ffn": false, "qkv_bias": true
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let mut t = Tensors::new();
    put(&mut t, "embeddings.cls_token", &[1, 1, HIDDEN]);
    put(&mut t, "embeddings.mask_token", &[1, HIDDEN]);
    put(&mut t, "embeddings.position_embeddings", &[1, 10, HIDDEN]);
    put(
        &mut t,
        "embeddings.patch_embeddings.projection.weight",
        &[HIDDEN, 3, 2, 2],
    );
    put(
        &mut t,
        "embeddings.patch_embeddings.projection.bias",
        &[HIDDEN],
    );
    for i in 0..LAYERS {
        let l = format!("encoder.layer.{i}");
        for (name, out, inp) in [
            ("attention.attention.query", HIDDEN, HIDDEN),
            ("attention.attention.key", HIDDEN, HIDDEN),
            ("attention.attention.value", HIDDEN, HIDDEN),
            ("attention.output.dense", HIDDEN, HIDDEN),
            ("mlp.fc1", 2 * HIDDEN, HIDDEN),
            ("mlp.fc2", HIDDEN, 2 * HIDDEN),
        ] {
            put(&mut t, &format!("{l}.{name}.weight"), &[out, inp]);
            put(&mut t, &format!("{l}.{name}.bias"), &[out]);
        }
        for part in ["norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"] {
            put(&mut t, &format!("{l}.{part}"), &[HIDDEN]);
        }
        put(&mut t, &format!("{l}.layer_scale1.lambda1"), &[HIDDEN]);
        put(&mut t, &format!("{l}.layer_scale2.lambda1"), &[HIDDEN]);
    }
    put(&mut t, "layernorm.weight", &[HIDDEN]);
    put(&mut t, "layernorm.bias", &[HIDDEN]);
    write_safetensors(&dir.join("model.safetensors"), &t);
    t
}

#[test]
fn a_dinov2_checkpoint_loads_into_the_vit() {
    let dir = tempfile::tempdir().unwrap();
    let written = tiny_dinov2(dir.path());
    let vit: Vit<Inference> = Vit::from_pretrained(dir.path(), 6, 4, &device()).unwrap();
    let params = named_params(&vit);
    let get = |path: &str| values(&params[path]);
    let hf = |name: &str| written[name].1.clone();
    // The conv kernel [out, c, kh, kw] is the linear patch embedding [c*kh*kw, out].
    assert_eq!(
        get("patch_embed.weight"),
        transposed(
            &hf("embeddings.patch_embeddings.projection.weight"),
            HIDDEN,
            12
        )
    );
    assert_eq!(get("positions"), hf("embeddings.position_embeddings"));
    assert_eq!(
        get("encoder.blocks.1.scale_mlp"),
        hf("encoder.layer.1.layer_scale2.lambda1")
    );
    assert_eq!(
        get("encoder.blocks.0.norm_attn.gamma"),
        hf("encoder.layer.0.norm1.weight")
    );
    assert_eq!(get("encoder.norm.beta"), hf("layernorm.bias"));
    assert_eq!(
        get("encoder.blocks.0.attn.output.base.weight"),
        transposed(
            &hf("encoder.layer.0.attention.output.dense.weight"),
            HIDDEN,
            HIDDEN
        )
    );
}

#[test]
fn dinov2_positions_are_resized_once_to_the_input_grid() {
    let dir = tempfile::tempdir().unwrap();
    tiny_dinov2(dir.path());
    let vit: Vit<Inference> = Vit::from_pretrained(dir.path(), 10, 4, &device()).unwrap();
    assert_eq!(vit.positions.dims(), [1, 26, HIDDEN]);
    let images = Tensor::<Inference, 4>::ones([2, 3, 10, 10], &device());
    assert_eq!(vit.features(images).dims(), [2, HIDDEN]);
    let error = Vit::<Inference>::from_pretrained(dir.path(), 7, 4, &device()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("not a positive multiple of patch_size 2"),
        "{error}"
    );
}

#[test]
fn bicubic_resize_matches_pytorch_down_and_up() {
    // PyTorch 2.15: x = tensor([(i * 7) % 11 for i in range(n * n)]).reshape(1, 1, n, n), then
    // torch.nn.functional.interpolate(x, size=(m, m), mode="bicubic", align_corners=False).
    let grid = |n: usize| -> Vec<f32> { (0..n * n).map(|i| ((i * 7) % 11) as f32).collect() };
    let down = [
        1.737287f32,
        5.045176,
        8.552441,
        3.689237,
        6.362305,
        2.216871,
        5.64119,
        6.60283,
        5.716965,
    ];
    let up = [
        -1.733375f32,
        2.45373,
        7.096001,
        5.228031,
        2.712001,
        3.689731,
        5.300017,
        6.683999,
        4.432703,
        2.3,
        10.384001,
        8.735998,
        6.0,
        3.264001,
        1.616001,
        10.568031,
        8.536701,
        5.316001,
        2.522978,
        0.932001,
        9.288003,
        7.639998,
        4.904001,
        2.168002,
        0.52,
    ];
    assert_close(
        &dinov2::bicubic_resize(&grid(4), 4, 3, 1),
        &down,
        1e-5,
        "4x4 to 3x3",
    );
    assert_close(
        &dinov2::bicubic_resize(&grid(3), 3, 5, 1),
        &up,
        1e-5,
        "3x3 to 5x5",
    );
    // Each channel of a multi-channel grid is resized on its own.
    let two: Vec<f32> = grid(3).iter().flat_map(|&v| [v, -v]).collect();
    let out = dinov2::bicubic_resize(&two, 3, 5, 2);
    let second: Vec<f32> = out.iter().skip(1).step_by(2).map(|v| -v).collect();
    assert_close(&second, &up, 1e-5, "second channel");
}

// ---- tiny random checkpoints made by PyTorch (every run) -----------------------------------

fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn ids(value: &serde_json::Value) -> Vec<i64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

#[test]
fn tiny_bert_matches_pytorch_ids_and_embeddings() {
    let dir = fixture_dir("tiny-bert");
    let reference = fixture("tiny-bert/reference.json");
    let tokenizer = WordPieceTokenizer::from_file(&dir.join("tokenizer.json"), 64, 0).unwrap();
    let model = Bert::<Inference>::from_pretrained(&dir, 2, &device()).unwrap();
    let sentences = reference["sentences"].as_array().unwrap();
    let texts: Vec<&str> = sentences
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    for (text, sentence) in texts.iter().zip(sentences) {
        assert_eq!(
            tokenizer.encode(text).unwrap(),
            ids(&sentence["input_ids"]),
            "{text:?}"
        );
    }
    // All three in one padded batch, then padded further to a length bucket (what GPU
    // backends use; the longest text has 37 tokens): each as PyTorch computed it alone.
    let bucketed = tokenizer.clone().with_pad_to_multiple_of(16);
    for (tokenizer, len) in [(tokenizer, 37), (bucketed, 48)] {
        let batch = tokenizer.batch::<Inference, _>(&texts, &device()).unwrap();
        assert_eq!(batch.dims(), [texts.len(), len]);
        let pooled = values(&model.features(batch).into_data());
        for (i, sentence) in sentences.iter().enumerate() {
            assert_close(
                &pooled[i * 16..(i + 1) * 16],
                &floats(&sentence["mean_pooled"]),
                1e-5,
                texts[i],
            );
        }
    }
}

#[test]
fn length_buckets_round_up_to_the_multiple_and_stop_at_max_len() {
    let dir = fixture_dir("tiny-bert");
    let tokenizer = WordPieceTokenizer::from_file(&dir.join("tokenizer.json"), 12, 0)
        .unwrap()
        .with_pad_to_multiple_of(8);
    // The text's own length and the batch's.
    let lengths = |text: &str| {
        let batch = tokenizer.batch::<Inference, _>(&[text], &device()).unwrap();
        let [rows, len] = batch.dims();
        assert_eq!(rows, 1);
        let ids = batch.into_data().convert::<i64>().to_vec::<i64>().unwrap();
        let encoded = tokenizer.encode(text).unwrap();
        assert_eq!(ids[..encoded.len()], encoded[..], "the text comes first");
        assert!(
            ids[encoded.len()..].iter().all(|&id| id == 0),
            "then padding"
        );
        (encoded.len(), len)
    };
    // A short text pads to 8; one cut at max_len = 12 stays 12, not 16.
    let (short, padded) = lengths("hi");
    assert!(
        short < 8 && padded == 8,
        "{short} tokens padded to {padded}"
    );
    let long = "the quick brown fox jumps over the lazy dog again and again";
    assert_eq!(lengths(long), (12, 12));
}

#[test]
fn tiny_dinov2_matches_pytorch_at_sizes_it_was_not_trained_for() {
    let dir = fixture_dir("tiny-dinov2");
    let reference = fixture("tiny-dinov2/reference.json");
    for size in [24, 8] {
        let vit: Vit<Inference> = Vit::from_pretrained(&dir, size, 2, &device()).unwrap();
        for kind in ["gradient", "pattern"] {
            let expected = &reference["results"][format!("{kind}_{size}").as_str()];
            let mut pixels = vec![0.0f32; 3 * size * size];
            for y in 0..size {
                for x in 0..size {
                    let rgb = if kind == "gradient" {
                        [
                            x as f32 / (size - 1) as f32,
                            y as f32 / (size - 1) as f32,
                            ((x + y) % 5) as f32 / 4.0,
                        ]
                    } else {
                        [
                            ((x / 2 + y / 2) % 2) as f32,
                            ((3 * x + 5 * y) % 7) as f32 / 6.0,
                            ((x * y) % 3) as f32 / 2.0,
                        ]
                    };
                    for (c, v) in rgb.into_iter().enumerate() {
                        pixels[(c * size + y) * size + x] = v;
                    }
                }
            }
            let image = Tensor::from_data(TensorData::new(pixels, [1, 3, size, size]), &device());
            let states = vit.token_states(image);
            assert_eq!(
                states.dims()[1] as u64,
                expected["tokens"].as_u64().unwrap()
            );
            let states = values(&states.into_data());
            let what = format!("{kind} {size}px");
            assert_close(&states[..16], &floats(&expected["cls"]), 1e-5, &what);
        }
    }
}

// ---- the real checkpoints (fetched) -------------------------------------------------------

fn cache() -> PathBuf {
    std::env::var_os("LORAMIX_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/cache"))
}

fn fixture(name: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    match v {
        serde_json::Value::Array(items) => items.iter().flat_map(floats).collect(),
        other => vec![other.as_f64().unwrap() as f32],
    }
}

fn assert_close(found: &[f32], expected: &[f32], tolerance: f32, what: &str) {
    assert_eq!(found.len(), expected.len(), "{what}: length");
    let worst = found
        .iter()
        .zip(expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= tolerance,
        "{what}: max abs difference {worst} > {tolerance}"
    );
}

#[test]
#[ignore = "needs datasets/fetch.sh (all-MiniLM-L6-v2)"]
fn minilm_matches_pytorch_token_ids_states_and_embeddings() {
    let dir = cache().join("minilm-l6");
    let reference = fixture("minilm_reference.json");
    let tokenizer = WordPieceTokenizer::from_file(&dir.join("tokenizer.json"), 512, 0).unwrap();
    let model = Bert::<Inference>::from_pretrained(&dir, 2, &device()).unwrap();
    let mut texts = Vec::new();
    for sentence in reference["sentences"].as_array().unwrap() {
        let text = sentence["text"].as_str().unwrap();
        texts.push(text.to_string());
        let ids = tokenizer.encode(text).unwrap();
        let expected: Vec<i64> = sentence["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(ids, expected, "WordPiece ids of {text:?}");
        let input = tokenizer.batch::<Inference, _>(&[text], &device()).unwrap();
        let (states, _) = model.token_states(input.clone());
        let [_, len, dim] = states.dims();
        let states = values(&states.into_data());
        let first4: Vec<f32> = (0..4)
            .flat_map(|t| states[t * dim..t * dim + 8].to_vec())
            .collect();
        assert_close(
            &first4,
            &floats(&sentence["last_hidden_state_first4_tokens_first8_dims"]),
            1e-4,
            "token states",
        );
        assert_close(
            &states[(len - 1) * dim..(len - 1) * dim + 8],
            &floats(&sentence["last_hidden_state_last_token_first8_dims"]),
            1e-4,
            "last token state",
        );
        let pooled = values(&model.features(input).into_data());
        assert_close(
            &pooled,
            &floats(&sentence["mean_pooled"]),
            1e-4,
            "mean pooled",
        );
    }
    // The three as one padded batch: each embedding as when alone.
    let batch = tokenizer.batch::<Inference, _>(&texts, &device()).unwrap();
    let pooled = values(&model.features(batch).into_data());
    for (i, sentence) in reference["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        assert_close(
            &pooled[i * 384..(i + 1) * 384],
            &floats(&sentence["mean_pooled"]),
            1e-4,
            "mean pooled in a padded batch",
        );
    }
}

#[test]
#[ignore = "needs datasets/fetch.sh (all-MiniLM-L6-v2)"]
fn lora_on_minilm_starts_exact_and_folds_exactly() {
    let dir = cache().join("minilm-l6");
    let tokenizer = WordPieceTokenizer::from_file(&dir.join("tokenizer.json"), 64, 0).unwrap();
    let model = Bert::<Inference>::from_pretrained(&dir, 2, &device()).unwrap();
    let input = tokenizer
        .batch::<Inference, _>(
            &["a short one", "and a somewhat longer second sentence"],
            &device(),
        )
        .unwrap();
    assert_lora_starts_exact_and_folds(model, input, &LoraConfig::new(), 1e-4);
}

/// The reference images of `tools/reference/dinov2_onnx_reference.py`, ImageNet-normalised,
/// `[1, 3, size, size]`.
fn reference_image(kind: &str, size: usize) -> Tensor<Inference, 4> {
    let mean = [0.485f32, 0.456, 0.406];
    let std = [0.229f32, 0.224, 0.225];
    let mut pixels = vec![0.0f32; 3 * size * size];
    for c in 0..3 {
        for y in 0..size {
            for x in 0..size {
                let (num, den) = match (kind, c) {
                    ("gradient", 0) => (x, size - 1),
                    ("gradient", 1) => (y, size - 1),
                    ("gradient", _) => ((x + y) % 32, 31),
                    (_, 0) => ((x / 16 + y / 16) % 2, 1),
                    (_, 1) => ((7 * x + 13 * y) % 256, 255),
                    (_, _) => ((x * y) % 97, 96),
                };
                let p = num as f32 / den as f32;
                pixels[(c * size + y) * size + x] = (p - mean[c]) / std[c];
            }
        }
    }
    Tensor::from_data(TensorData::new(pixels, [1, 3, size, size]), &device())
}

/// The pinned DINOv2 ONNX file converted into a fresh directory (the experiment's route).
fn converted_dinov2() -> tempfile::TempDir {
    let onnx = cache().join("dinov2-s-onnx/vit_s_focus.onnx");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dinov2-s");
    let sha = loramix_onnx::dinov2::convert(&onnx, &out).unwrap();
    assert_eq!(sha, loramix_onnx::dinov2::PINNED_SAFETENSORS_SHA256);
    dir
}

#[test]
#[ignore = "needs datasets/fetch.sh (the DINOv2-S ONNX file)"]
fn dinov2_matches_onnxruntime_at_224_and_112_pixels() {
    let dir = converted_dinov2();
    let reference = fixture("dinov2_reference.json");
    let results = &reference["results"];
    for (size, kinds) in [
        (224, [&results["gradient_224"], &results["pattern_224"]]),
        (
            112,
            [
                &results["size_112"]["gradient_112"],
                &results["size_112"]["pattern_112"],
            ],
        ),
    ] {
        let vit: Vit<Inference> =
            Vit::from_pretrained(&dir.path().join("dinov2-s"), size, 2, &device()).unwrap();
        for (kind, expected) in ["gradient", "pattern"].into_iter().zip(kinds) {
            let states = vit.token_states(reference_image(kind, size));
            let [_, tokens, dim] = states.dims();
            assert_eq!(tokens as u64, expected["num_tokens"].as_u64().unwrap());
            let states = values(&states.into_data());
            let what = format!("{kind} {size}px");
            assert_close(
                &states[..dim],
                &floats(&expected["last_hidden_state_cls"]),
                1e-4,
                &format!("{what} CLS"),
            );
            for (token, key) in [(1, "patch1"), (2, "patch2"), (tokens - 1, "last_token")] {
                assert_close(
                    &states[token * dim..token * dim + 8],
                    &floats(&expected[format!("last_hidden_state_{key}_first8").as_str()]),
                    1e-4,
                    &format!("{what} {key}"),
                );
            }
        }
    }
}

#[test]
#[ignore = "needs datasets/fetch.sh (the DINOv2-S ONNX file)"]
fn lora_on_dinov2_starts_exact_and_folds_exactly() {
    let dir = converted_dinov2();
    let vit: Vit<Inference> =
        Vit::from_pretrained(&dir.path().join("dinov2-s"), 112, 2, &device()).unwrap();
    let images = Tensor::cat(
        vec![
            reference_image("gradient", 112),
            reference_image("pattern", 112),
        ],
        0,
    );
    assert_lora_starts_exact_and_folds(vit, images, &LoraConfig::new(), 1e-3);
}

/// Rewrites the `config.json` in `dir` with `edit` applied.
fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(&path, config.to_string()).unwrap();
}

#[test]
fn config_sizes_the_checkpoint_cannot_hold_are_refused_before_anything_is_built() {
    for (field, value, expected) in [
        (
            "intermediate_size",
            json!(0),
            "intermediate_size must be at least 1",
        ),
        ("hidden_size", json!(0), "hidden_size and intermediate_size"),
        (
            "layer_norm_eps",
            json!(-1.0),
            "layer_norm_eps must be a positive number, not -1",
        ),
        (
            "num_attention_heads",
            json!(3),
            "hidden_size 8 is not divisible by num_attention_heads 3",
        ),
        (
            "hidden_size",
            json!(1_000_000_000u64),
            "the sizes in config.json do not belong",
        ),
        (
            "num_hidden_layers",
            json!(1_000_000_000u64),
            "the sizes in config.json do not belong",
        ),
        (
            "vocab_size",
            json!(u64::MAX),
            "the sizes in config.json do not belong",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        tiny_bert(dir.path());
        edit_config(dir.path(), |config| {
            config[field] = value;
            if field == "hidden_size" && expected.contains("belong") {
                config["num_attention_heads"] = json!(1);
            }
        });
        let error = load_error(dir.path());
        assert!(
            error.contains("config.json") && error.contains(expected),
            "{field}: {error}"
        );
    }
}

#[test]
fn dinov2_configs_of_a_shape_the_encoder_cannot_take_are_refused() {
    for (field, value, expected) in [
        (
            "layer_norm_eps",
            json!(0.0),
            "layer_norm_eps must be a positive number, not 0",
        ),
        (
            "num_attention_heads",
            json!(0),
            "hidden_size 8 is not divisible by num_attention_heads 0",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        tiny_dinov2(dir.path());
        edit_config(dir.path(), |config| config[field] = value);
        let error = match Vit::<Inference>::from_pretrained(dir.path(), 6, 2, &device()) {
            Ok(_) => panic!("{field}: a broken config loaded"),
            Err(e) => e.to_string(),
        };
        assert!(
            error.contains("config.json") && error.contains(expected),
            "{field}: {error}"
        );
    }
}

#[test]
fn dinov2_inputs_of_too_many_patches_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    tiny_dinov2(dir.path());
    let load = |size| Vit::<Inference>::from_pretrained(dir.path(), size, 2, &device());
    // Patch 2: 74 pixels are 37x37 patches, DINOv2's own largest grid; 76 are more.
    load(74).unwrap();
    let error = load(76).unwrap_err().to_string();
    assert!(
        error.contains("input size 76") && error.contains("at most 1369 patches"),
        "{error}"
    );
}

#[test]
fn a_long_text_cut_before_tokenizing_keeps_its_first_tokens() {
    let dir = fixture_dir("tiny-bert");
    let path = dir.join("tokenizer.json");
    let tokenizer = WordPieceTokenizer::from_file(&path, 16, 0).unwrap();
    // The reference: the tokenizers library on the whole text, truncated after.
    let mut reference = tokenizers::Tokenizer::from_file(&path).unwrap();
    reference.with_padding(None);
    reference
        .with_truncation(Some(tokenizers::TruncationParams {
            max_length: 16,
            ..Default::default()
        }))
        .unwrap();
    let words = "Café, tables! x\u{7}y \t\n 3.14 über-long ";
    let text = words.repeat(5_000);
    let expected: Vec<i64> = reference
        .encode(text.as_str(), true)
        .unwrap()
        .get_ids()
        .iter()
        .map(|&id| id as i64)
        .collect();
    assert_eq!(tokenizer.encode(&text).unwrap(), expected);
    // A run of 10 000 spaces separates two words as one space does.
    let far = format!("hello{}world", " ".repeat(10_000));
    assert_eq!(
        tokenizer.encode(&far).unwrap(),
        tokenizer.encode("hello world").unwrap()
    );
    // The cost cap: at most 128 characters per token of max_len that are not whitespace are
    // read, so a word after a 3000-character word is never reached.
    let cut = format!("hello {} world", "x".repeat(3000));
    let ids = tokenizer.encode(&cut).unwrap();
    assert_eq!(
        ids,
        tokenizer
            .encode(&format!("hello {}", "x".repeat(3000)))
            .unwrap()
    );
    assert_ne!(
        ids,
        tokenizer
            .encode(&format!("hello {} world", "x".repeat(30)))
            .unwrap()
    );
}
