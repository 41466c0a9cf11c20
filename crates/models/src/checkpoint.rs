//! Pretrained weights from a Hugging Face `model.safetensors` into a burn module.
//!
//! A model family says, for each of its parameter paths (`encoder.blocks.0.attn.query.base.weight`),
//! which checkpoint tensor fills it and how ([`Source`]). [`load`] walks the module, fills every
//! parameter it can, and refuses a partial load: every missing, mis-shaped or unused tensor is
//! named in one error, so a wrong checkpoint is never half-loaded.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use safetensors::tensor::{Metadata, TensorView};
use safetensors::{Dtype, SafeTensors};

/// What went wrong reading a checkpoint. Each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: not a readable safetensors file ({detail}); the file may be truncated or corrupt"
    )]
    Format { path: PathBuf, detail: String },
    #[error("{path}: invalid config: {detail}")]
    Config { path: PathBuf, detail: String },
    #[error("{path}: tensor `{name}` has dtype {dtype:?}; only F32, F16, BF16 and F64 load")]
    Dtype {
        path: PathBuf,
        name: String,
        dtype: Dtype,
    },
    #[error("{path}: does not fit the model ({} problems):\n{}", problems.len(), problems.join("\n"))]
    Mismatch {
        path: PathBuf,
        problems: Vec<String>,
    },
}

/// Reads a JSON `config.json` into `T`.
pub fn read_config<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, CheckpointError> {
    let text = loramix_lora::files::read_to_string(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| CheckpointError::Config {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

/// What every encoder `config.json` must hold whatever its family: a positive, finite
/// `layer_norm_eps` and attention heads that divide the hidden size. Returns the problem, for
/// the caller to name its file.
pub(crate) fn check_encoder_shape(
    hidden_size: usize,
    heads: usize,
    layer_norm_eps: f64,
) -> Result<(), String> {
    if !(layer_norm_eps.is_finite() && layer_norm_eps > 0.0) {
        return Err(format!(
            "layer_norm_eps must be a positive number, not {layer_norm_eps}"
        ));
    }
    if heads == 0 || !hidden_size.is_multiple_of(heads) {
        return Err(format!(
            "hidden_size {hidden_size} is not divisible by num_attention_heads {heads}"
        ));
    }
    Ok(())
}

/// The values of a safetensors tensor as f32, if its dtype is a float type loramix reads
/// (F32, F64, F16, BF16).
pub fn f32_values(view: &TensorView<'_>) -> Option<Vec<f32>> {
    let data = view.data();
    Some(match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}

/// How a checkpoint tensor becomes a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Same shape and order.
    AsIs,
    /// A PyTorch `Linear` weight `[out, in]` into burn's `[in, out]`.
    Transposed,
    /// A PyTorch `Conv2d` weight `[out, c, kh, kw]` into a burn `Linear` weight `[c*kh*kw, out]`
    /// over patches flattened channel first (what a stride = kernel convolution computes).
    ConvAsLinear,
}

/// The checkpoint tensor that fills a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub key: String,
    pub layout: Layout,
}

impl Source {
    pub fn new(key: impl Into<String>, layout: Layout) -> Self {
        Self {
            key: key.into(),
            layout,
        }
    }
}

/// A tensor's values as f32 and its shape.
pub type Values = (Vec<f32>, Vec<usize>);

/// A `model.safetensors` file read into memory, its header parsed once.
pub struct Checkpoint {
    path: PathBuf,
    bytes: Vec<u8>,
    /// Where each tensor lies, relative to `data_start`.
    metadata: Metadata,
    /// Offset of the tensor data in `bytes` (after the length prefix and the header).
    data_start: usize,
    /// Names that no parameter is expected to take (a pooler, a mask token), so not "unused".
    ignored: Vec<String>,
    /// A prefix stripped from every key (`bert.` of a `BertForSequenceClassification`).
    prefix: String,
}

impl Checkpoint {
    /// Reads and validates the file's header.
    pub fn open(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = loramix_lora::files::read(path).map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let format = |e: safetensors::SafeTensorError| CheckpointError::Format {
            path: path.to_path_buf(),
            detail: e.to_string(),
        };
        // `deserialize` also checks that every tensor's bytes lie inside the file.
        SafeTensors::deserialize(&bytes).map_err(format)?;
        let (header, metadata) = SafeTensors::read_metadata(&bytes).map_err(format)?;
        Ok(Self {
            path: path.to_path_buf(),
            bytes,
            metadata,
            data_start: 8 + header,
            ignored: Vec::new(),
            prefix: String::new(),
        })
    }

    /// Every tensor name, with the prefix stripped.
    pub fn names(&self) -> BTreeSet<String> {
        self.metadata
            .offset_keys()
            .into_iter()
            .filter_map(|n| n.strip_prefix(&self.prefix).map(str::to_string))
            .collect()
    }

    /// How many values all its tensors hold together.
    pub fn element_count(&self) -> u128 {
        self.metadata
            .tensors()
            .values()
            .map(|info| info.shape.iter().map(|&d| d as u128).product::<u128>())
            .sum()
    }

    /// Refuses a config that describes a model far larger than the checkpoint before the model
    /// is built: `at_least` is a lower bound of the values the config's model has (its largest
    /// weight matrices), so a huge size in `config` fails here instead of in an allocation.
    /// Up to twice the checkpoint passes, so that a checkpoint missing a few tensors still gets
    /// [`load`]'s list of every missing one.
    pub fn check_holds(&self, config: &Path, at_least: u128) -> Result<(), CheckpointError> {
        let held = self.element_count();
        if at_least > held.saturating_mul(2) {
            return Err(CheckpointError::Config {
                path: config.to_path_buf(),
                detail: format!(
                    "describes a model of more than {at_least} parameters, but {} holds {held} values: the sizes in config.json do not belong to this checkpoint",
                    self.path.display()
                ),
            });
        }
        Ok(())
    }

    /// Strip `prefix` from every key if every key that matters carries it (a task model's
    /// backbone, `bert.embeddings...`), else keep the keys as they are.
    pub fn strip_prefix_if_all(mut self, prefix: &str, marker: &str) -> Self {
        if self.names().contains(&format!("{prefix}{marker}")) {
            self.prefix = prefix.to_string();
        }
        self
    }

    /// Tensors whose name starts with any of `prefixes` are expected to stay unused.
    pub fn ignoring(mut self, prefixes: &[&str]) -> Self {
        self.ignored.extend(prefixes.iter().map(|p| p.to_string()));
        self
    }

    /// The values and shape of tensor `name` as f32, if it exists.
    pub fn read(&self, name: &str) -> Result<Option<Values>, CheckpointError> {
        let Some(info) = self.metadata.info(&format!("{}{name}", self.prefix)) else {
            return Ok(None);
        };
        let (start, end) = info.data_offsets;
        let data = &self.bytes[self.data_start + start..self.data_start + end];
        let view = TensorView::new(info.dtype, info.shape.clone(), data)
            .expect("tensor extents validated in `open`");
        let values = f32_values(&view).ok_or_else(|| CheckpointError::Dtype {
            path: self.path.clone(),
            name: name.to_string(),
            dtype: view.dtype(),
        })?;
        Ok(Some((values, view.shape().to_vec())))
    }
}

/// `module` with every parameter that `source_of` names filled from `checkpoint`.
///
/// Parameters `source_of` returns `None` for keep their values (a fresh head). Fails, changing
/// nothing, unless every named tensor exists with the right shape and every checkpoint tensor
/// is used or ignored.
pub fn load<B: Backend, M: Module<B>>(
    module: M,
    checkpoint: &Checkpoint,
    source_of: impl Fn(&str) -> Option<Source>,
) -> Result<M, CheckpointError> {
    let mut filler = Filler {
        checkpoint,
        source_of: &source_of,
        path: Vec::new(),
        used: BTreeSet::new(),
        problems: Vec::new(),
        error: None,
    };
    let loaded = module.map(&mut filler);
    if let Some(error) = filler.error {
        return Err(error);
    }
    let mut problems = filler.problems;
    for name in checkpoint.names() {
        let ignored = checkpoint.ignored.iter().any(|p| name.starts_with(p));
        if !filler.used.contains(&name) && !ignored {
            problems.push(format!("  unused tensor `{name}`"));
        }
    }
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(CheckpointError::Mismatch {
            path: checkpoint.path.clone(),
            problems,
        })
    }
}

struct Filler<'a, F> {
    checkpoint: &'a Checkpoint,
    source_of: &'a F,
    path: Vec<String>,
    used: BTreeSet<String>,
    problems: Vec<String>,
    error: Option<CheckpointError>,
}

impl<F: Fn(&str) -> Option<Source>> Filler<'_, F> {
    /// The values for a parameter of `shape` at the current path, or `None` (with the problem
    /// recorded) if the checkpoint cannot fill it.
    fn values(&mut self, shape: &[usize]) -> Option<Vec<f32>> {
        let path = self.path.join(".");
        let source = (self.source_of)(&path)?;
        let read = match self.checkpoint.read(&source.key) {
            Ok(read) => read,
            Err(e) => {
                self.error.get_or_insert(e);
                return None;
            }
        };
        let Some((values, found)) = read else {
            self.problems
                .push(format!("  missing tensor `{}` (for {path})", source.key));
            return None;
        };
        self.used.insert(source.key.clone());
        let (values, arranged) = arrange(values, &found, source.layout);
        if arranged != shape {
            self.problems.push(format!(
                "  tensor `{}` has shape {found:?}, expected {:?} (for {path})",
                source.key,
                expected_in_checkpoint(shape, source.layout)
            ));
            return None;
        }
        Some(values)
    }
}

/// The checkpoint's values in the parameter's layout, and the shape they then have.
fn arrange(values: Vec<f32>, shape: &[usize], layout: Layout) -> (Vec<f32>, Vec<usize>) {
    match (layout, shape) {
        (Layout::Transposed, &[rows, cols]) => (transpose(&values, rows, cols), vec![cols, rows]),
        (Layout::ConvAsLinear, &[out, c, kh, kw]) => {
            (transpose(&values, out, c * kh * kw), vec![c * kh * kw, out])
        }
        (Layout::AsIs, _) => (values, shape.to_vec()),
        // A rank the layout does not apply to: reported as a shape mismatch.
        _ => (values, shape.iter().rev().copied().chain([0]).collect()),
    }
}

/// How a parameter of `shape` is stored in a checkpoint with `layout`, for error messages.
fn expected_in_checkpoint(shape: &[usize], layout: Layout) -> Vec<usize> {
    match (layout, shape) {
        (Layout::Transposed, &[rows, cols]) => vec![cols, rows],
        (Layout::ConvAsLinear, &[patch, out]) => vec![out, patch],
        _ => shape.to_vec(),
    }
}

fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

impl<B: Backend, F: Fn(&str) -> Option<Source>> ModuleMapper<B> for Filler<'_, F> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let shape = param.shape().to_vec();
        let Some(values) = self.values(&shape) else {
            return param;
        };
        let (id, tensor, mapper) = param.consume();
        let require_grad = tensor.is_require_grad();
        let loaded = Tensor::<B, D>::from_data(TensorData::new(values, shape), &tensor.device())
            .set_require_grad(require_grad);
        Param::from_mapped_value(id, loaded, mapper)
    }
}
