//! DINOv2 checkpoints (Hugging Face `Dinov2Model`: `config.json` + `model.safetensors`) loaded
//! into loramix's [`Vit`]: the same computation (conv patch embedding, class token, learned
//! positions, pre-norm blocks with LayerScale, final norm, a head on the class token), so every
//! method that works on the ViT works on DINOv2.
//!
//! The checkpoint's position grid (37x37 for 518 px) is resized once, at load, to the grid of
//! the input size the experiment uses, by the bicubic interpolation Hugging Face applies on
//! every forward pass.
//!
//! Reproduces `transformers`' `Dinov2Model` (src/transformers/models/dinov2/modeling_dinov2.py,
//! <https://github.com/huggingface/transformers/blob/main/src/transformers/models/dinov2/modeling_dinov2.py>),
//! with its blocks under loramix's names ([`crate::hf::DINOV2`] maps them).

use std::path::Path;

use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, Checkpoint, CheckpointError, Layout, Source};
use crate::hf::{DINOV2, norm_source};
use crate::{Vit, VitConfig};

/// The fields of a Hugging Face DINOv2 `config.json` that define the computation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dinov2Config {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub mlp_ratio: usize,
    pub patch_size: usize,
    /// Side of the image the position grid was trained for.
    pub image_size: usize,
    #[serde(default = "three")]
    pub num_channels: usize,
    pub layer_norm_eps: f64,
    #[serde(default = "one")]
    pub layerscale_value: f32,
    #[serde(default = "gelu")]
    pub hidden_act: String,
    #[serde(default)]
    pub use_swiglu_ffn: bool,
    #[serde(default = "yes")]
    pub qkv_bias: bool,
}

fn three() -> usize {
    3
}
fn one() -> f32 {
    1.0
}
fn gelu() -> String {
    "gelu".into()
}
fn yes() -> bool {
    true
}

impl Dinov2Config {
    /// Reads `config.json`, refusing settings this implementation does not compute.
    pub fn from_file(path: &Path) -> Result<Self, CheckpointError> {
        let invalid = |detail: String| CheckpointError::Config {
            path: path.to_path_buf(),
            detail,
        };
        let config: Self = checkpoint::read_config(path)?;
        if config.hidden_act != "gelu" || config.use_swiglu_ffn || !config.qkv_bias {
            return Err(invalid(
                "only the GELU MLP with biased query/key/value is supported (not SwiGLU)".into(),
            ));
        }
        checkpoint::check_encoder_shape(
            config.hidden_size,
            config.num_attention_heads,
            config.layer_norm_eps,
        )
        .map_err(invalid)?;
        if config.hidden_size == 0 || config.mlp_ratio == 0 || config.num_channels == 0 {
            return Err(invalid(
                "hidden_size, mlp_ratio and num_channels must be at least 1".into(),
            ));
        }
        if config.patch_size == 0 || !config.image_size.is_multiple_of(config.patch_size) {
            return Err(invalid(format!(
                "image_size {} is not a multiple of patch_size {}",
                config.image_size, config.patch_size
            )));
        }
        Ok(config)
    }

    /// A lower bound of the model's parameter count: the patch embedding, the position grid
    /// and the weight matrices of its blocks (what [`Checkpoint::check_holds`] compares before
    /// building it).
    pub fn weights_at_least(&self) -> u128 {
        let [d, l, r, p, c, side] = [
            self.hidden_size,
            self.num_hidden_layers,
            self.mlp_ratio,
            self.patch_size,
            self.num_channels,
            self.image_size,
        ]
        .map(|x| x as u128);
        let grid = (side / p.max(1)).saturating_pow(2);
        let patch = c.saturating_mul(p).saturating_mul(p).saturating_mul(d);
        let positions = (grid + 1).saturating_mul(d);
        let dd = d.saturating_mul(d);
        let block = dd.saturating_mul(4) + dd.saturating_mul(r).saturating_mul(2);
        patch
            .saturating_add(positions)
            .saturating_add(l.saturating_mul(block))
    }

    /// The [`VitConfig`] of this checkpoint at its own image size.
    pub fn vit(&self, n_classes: usize) -> VitConfig {
        VitConfig::new()
            .with_image_size(self.image_size)
            .with_patch_size(self.patch_size)
            .with_channels(self.num_channels)
            .with_dim(self.hidden_size)
            .with_depth(self.num_hidden_layers)
            .with_heads(self.num_attention_heads)
            .with_mlp_dim(self.hidden_size * self.mlp_ratio)
            .with_n_classes(n_classes)
            .with_norm_eps(self.layer_norm_eps)
            .with_layer_scale(Some(self.layerscale_value))
    }
}

/// The most patches an input image may be cut into: DINOv2's own largest training grid
/// (518 pixels in patches of 14, 37 x 37). Attention memory grows with the square of the count.
pub const MAX_PATCHES: usize = 37 * 37;

impl<B: Backend> Vit<B> {
    /// Loads the DINOv2 checkpoint in `dir` for square images of `image_size` pixels (a
    /// multiple of the patch size), with a fresh head of `n_classes`: the one way a pretrained
    /// ViT loads, as [`crate::Bert::from_pretrained`] is for BERT.
    pub fn from_pretrained(
        dir: &Path,
        image_size: usize,
        n_classes: usize,
        device: &B::Device,
    ) -> Result<Self, CheckpointError> {
        let config = Dinov2Config::from_file(&dir.join("config.json"))?;
        if image_size == 0 || !image_size.is_multiple_of(config.patch_size) {
            return Err(CheckpointError::Config {
                path: dir.join("config.json"),
                detail: format!(
                    "input size {image_size} is not a positive multiple of patch_size {}",
                    config.patch_size
                ),
            });
        }
        let checkpoint = Checkpoint::open(&dir.join("model.safetensors"))?
            .strip_prefix_if_all("dinov2.", "embeddings.cls_token")
            .ignoring(&["embeddings.mask_token", "classifier."]);
        checkpoint.check_holds(&dir.join("config.json"), config.weights_at_least())?;
        let grid = image_size / config.patch_size;
        if grid * grid > MAX_PATCHES {
            return Err(CheckpointError::Config {
                path: dir.join("config.json"),
                detail: format!(
                    "input size {image_size} cuts images into {grid}x{grid} patches of {} pixels; at most {MAX_PATCHES} patches are allowed (attention grows with their square): use a smaller image size",
                    config.patch_size
                ),
            });
        }
        let vit = checkpoint::load(
            config.vit(n_classes).init(device),
            &checkpoint,
            dinov2_source,
        )?;
        Ok(resize_positions(vit, grid))
    }
}

/// The checkpoint tensor of each [`Vit`] parameter (the head stays fresh).
fn dinov2_source(path: &str) -> Option<Source> {
    if let Some(rest) = path.strip_prefix("encoder.") {
        if let Some(param) = rest.strip_prefix("norm.") {
            return norm_source("layernorm", param);
        }
        return DINOV2.source(rest);
    }
    let key = |k: &str, layout| Some(Source::new(k, layout));
    match path {
        "patch_embed.weight" => key(
            "embeddings.patch_embeddings.projection.weight",
            Layout::ConvAsLinear,
        ),
        "patch_embed.bias" => key("embeddings.patch_embeddings.projection.bias", Layout::AsIs),
        "cls_token" => key("embeddings.cls_token", Layout::AsIs),
        "positions" => key("embeddings.position_embeddings", Layout::AsIs),
        _ => None,
    }
}

/// `vit` with its patch positions resized to a `grid` x `grid` grid (the class token's position
/// is kept).
pub fn resize_positions<B: Backend>(vit: Vit<B>, grid: usize) -> Vit<B> {
    let positions = vit.positions.val();
    let [_, tokens, dim] = positions.dims();
    let from = ((tokens - 1) as f64).sqrt() as usize;
    if from == grid {
        return vit;
    }
    let device = positions.device();
    let values = positions
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("f32 positions");
    let (cls, patches) = values.split_at(dim);
    let resized = bicubic_resize(patches, from, grid, dim);
    let all: Vec<f32> = cls.iter().copied().chain(resized).collect();
    let positions = Tensor::from_data(TensorData::new(all, [1, grid * grid + 1, dim]), &device);
    Vit {
        positions: Param::from_tensor(positions),
        ..vit
    }
}

/// PyTorch's `interpolate(mode="bicubic", align_corners=False)` (cubic coefficient -0.75,
/// borders replicated) of a `from` x `from` grid of `dim`-vectors (row-major, channels last)
/// to `to` x `to`.
pub fn bicubic_resize(grid: &[f32], from: usize, to: usize, dim: usize) -> Vec<f32> {
    let scale = from as f64 / to as f64;
    let taps = |out: usize| -> [(usize, f64); 4] {
        let real = scale * (out as f64 + 0.5) - 0.5;
        let floor = real.floor();
        let t = real - floor;
        let weights = cubic_weights(t);
        std::array::from_fn(|k| {
            let index = (floor as i64 - 1 + k as i64).clamp(0, from as i64 - 1) as usize;
            (index, weights[k])
        })
    };
    let mut out = vec![0.0f32; to * to * dim];
    for y in 0..to {
        let rows = taps(y);
        for x in 0..to {
            let cols = taps(x);
            let cell = &mut out[(y * to + x) * dim..][..dim];
            for (c, value) in cell.iter_mut().enumerate() {
                let mut sum = 0.0f64;
                for &(r, wr) in &rows {
                    for &(q, wq) in &cols {
                        sum += wr * wq * grid[(r * from + q) * dim + c] as f64;
                    }
                }
                *value = sum as f32;
            }
        }
    }
    out
}

/// Keys' cubic convolution weights for the four taps around a point `t` in `[0, 1)` past the
/// second tap, with `a = -0.75` as PyTorch uses.
fn cubic_weights(t: f64) -> [f64; 4] {
    const A: f64 = -0.75;
    let near = |x: f64| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let far = |x: f64| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}
