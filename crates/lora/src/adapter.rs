//! Adapters on disk: a directory with `adapter.safetensors` (the factors, PEFT layout) and
//! `manifest.json` (what they are and which base they belong to).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::{AdaptedLinear, LoraConfig, LoraDelta, Target};

/// Format tag written in every manifest; bumped on incompatible changes.
pub const ADAPTER_FORMAT: &str = "loramix-adapter/1";
const TENSORS_FILE: &str = "adapter.safetensors";
const MANIFEST_FILE: &str = "manifest.json";
/// Metadata key of `adapter.safetensors` holding the SHA-256 of the `manifest.json` saved with
/// it: the two files are renamed into place one after the other, and a crash between the
/// renames must not pair new tensors with an old manifest.
const MANIFEST_HASH_KEY: &str = "manifest_sha256";

/// What went wrong reading, writing or applying an adapter. Each variant names the file or
/// adapter and the problem.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: invalid manifest: {source}")]
    Manifest {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: unsupported adapter format `{found}` (this build reads `{ADAPTER_FORMAT}`)")]
    Format { path: PathBuf, found: String },
    #[error(
        "{path}: not a readable safetensors file ({detail}); the file may be truncated or corrupt"
    )]
    Tensors { path: PathBuf, detail: String },
    #[error("{path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
    #[error("{path}: tensor `{name}` is missing")]
    MissingTensor { path: PathBuf, name: String },
    #[error("{path}: tensor `{name}` has {found}, expected {expected}")]
    BadTensor {
        path: PathBuf,
        name: String,
        found: String,
        expected: String,
    },
    #[error(
        "{origin}: trained on base model {expected}, but this model is {found}; load it into the base it was trained on"
    )]
    Fingerprint {
        origin: String,
        expected: String,
        found: String,
    },
    #[error("{origin}: layer `{layer}` does not exist in this model")]
    UnknownLayer { origin: String, layer: String },
    #[error("{origin}: layer `{layer}` is {found} in the adapter but {expected} in this model")]
    LayerShape {
        origin: String,
        layer: String,
        found: String,
        expected: String,
    },
    #[error("{origin}: the model has no LoRA update to extract")]
    NoUpdate { origin: String },
}

type Result<T> = std::result::Result<T, AdapterError>;

/// Shape of one adapted layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerShape {
    /// Layer path in the model, e.g. `encoder.blocks.0.attn.query`.
    pub name: String,
    pub d_in: usize,
    pub d_out: usize,
    pub rank: usize,
}

/// What an adapter is: written as `manifest.json` beside the factors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterManifest {
    /// Always [`ADAPTER_FORMAT`].
    pub format: String,
    /// The upstream task the adapter was trained on.
    pub task: String,
    /// Rank of the layers (the largest one when they differ).
    pub rank: usize,
    /// `alpha`; each layer's update is `alpha / rank_of_layer * B A`.
    pub alpha: f32,
    /// Which linears of each block are adapted.
    pub targets: Vec<Target>,
    /// Fingerprint of the base model the factors were trained on.
    pub base_fingerprint: String,
    /// Every adapted layer, in model order.
    pub layers: Vec<LayerShape>,
    /// Metrics recorded at creation (accuracy, loss, steps, ...).
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// For an adapter made by composing others: how, from which, with which weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composition: Option<CompositionRecord>,
}

/// How a composed adapter was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompositionRecord {
    /// `uniform`, `learned`, `fixed`, `ties`, `dare`, `search`, ...
    pub method: String,
    /// The composed modules, in composition order.
    pub parents: Vec<ParentModule>,
    /// Largest relative Frobenius error of a layer's re-compression to `rank` (0 when exact).
    pub approximation_error: f64,
}

/// One module of a composition and its weight: one value for every layer, or one per layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParentModule {
    pub task: String,
    pub base_fingerprint: String,
    pub weights: Vec<f32>,
}

/// The factors of one adapted layer, in PEFT layout.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterLayer {
    /// `[rank, d_in]`, row-major.
    pub a: Vec<f32>,
    /// `[d_out, rank]`, row-major.
    pub b: Vec<f32>,
}

/// A LoRA adapter, independent of any backend or base model instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Adapter {
    pub manifest: AdapterManifest,
    /// One entry per `manifest.layers`, same order.
    pub layers: Vec<AdapterLayer>,
    /// Where it was loaded from, for error messages.
    pub origin: Option<PathBuf>,
}

/// A model that carries [`AdaptedLinear`] layers: what adapters are extracted from and applied to.
pub trait AdapterHost<B: Backend> {
    /// A stable hash of the base weights and architecture (not of LoRA factors or the head).
    fn fingerprint(&self) -> String;
    /// Every adaptable layer with its path, in model order.
    fn adaptable_layers(&self) -> Vec<(String, &AdaptedLinear<B>)>;
    /// The same layers, mutably, in the same order.
    fn adaptable_layers_mut(&mut self) -> Vec<(String, &mut AdaptedLinear<B>)>;
}

impl Adapter {
    /// Copy the attached LoRA updates of `host` into an adapter.
    pub fn extract<B: Backend, H: AdapterHost<B>>(
        host: &H,
        task: &str,
        config: &LoraConfig,
        metrics: BTreeMap<String, f64>,
    ) -> Result<Self> {
        let mut shapes = Vec::new();
        let mut layers = Vec::new();
        for (name, layer) in host.adaptable_layers() {
            let Some(lora) = &layer.lora else { continue };
            let rank = lora.rank();
            shapes.push(LayerShape {
                name,
                d_in: layer.d_in(),
                d_out: layer.d_out(),
                rank,
            });
            // Fold the layer's scale relative to `alpha / rank` into B so that any scale round-trips.
            let rescale = lora.scale / (config.alpha / rank as f32);
            layers.push(AdapterLayer {
                a: to_vec(lora.a.val().transpose()),
                b: to_vec(lora.b.val().transpose() * rescale),
            });
        }
        if layers.is_empty() {
            return Err(AdapterError::NoUpdate {
                origin: format!("adapter `{task}`"),
            });
        }
        Ok(Self {
            manifest: AdapterManifest {
                format: ADAPTER_FORMAT.to_string(),
                task: task.to_string(),
                rank: shapes.iter().map(|s| s.rank).max().unwrap_or(0),
                alpha: config.alpha,
                targets: config.targets.clone(),
                base_fingerprint: host.fingerprint(),
                layers: shapes,
                metrics,
                composition: None,
            },
            layers,
            origin: None,
        })
    }

    /// Where this adapter came from, for messages: its directory, or its task name.
    pub fn origin(&self) -> String {
        match &self.origin {
            Some(path) => path.display().to_string(),
            None => format!("adapter `{}`", self.manifest.task),
        }
    }

    /// The scale `alpha / r` of one layer.
    pub fn layer_scale(&self, layer: &LayerShape) -> f32 {
        self.manifest.alpha / layer.rank as f32
    }

    /// Check that this adapter fits `host`: same fingerprint, every layer present with the same
    /// shape. Returns the index in `host.adaptable_layers()` of each adapter layer.
    pub fn check_fits<B: Backend, H: AdapterHost<B>>(&self, host: &H) -> Result<Vec<usize>> {
        self.fits(host, &host.fingerprint())
    }

    /// [`Adapter::check_fits`] for each of `adapters`, fingerprinting `host` once: the
    /// fingerprint hashes every base weight, and per adapter it took 7% of a learned
    /// composition cell over 24 modules.
    pub fn check_all_fit<'a, B: Backend, H: AdapterHost<B>>(
        adapters: impl IntoIterator<Item = &'a Adapter>,
        host: &H,
    ) -> Result<Vec<Vec<usize>>> {
        let found = host.fingerprint();
        (adapters.into_iter())
            .map(|a| a.fits(host, &found))
            .collect()
    }

    /// [`Adapter::check_fits`] given the host's fingerprint.
    fn fits<B: Backend, H: AdapterHost<B>>(&self, host: &H, found: &str) -> Result<Vec<usize>> {
        self.check_consistent(Path::new(&self.origin()))?;
        if found != self.manifest.base_fingerprint {
            return Err(AdapterError::Fingerprint {
                origin: self.origin(),
                expected: self.manifest.base_fingerprint.clone(),
                found: found.to_string(),
            });
        }
        let layers = host.adaptable_layers();
        self.manifest
            .layers
            .iter()
            .map(|shape| {
                let index = layers
                    .iter()
                    .position(|(name, _)| *name == shape.name)
                    .ok_or_else(|| AdapterError::UnknownLayer {
                        origin: self.origin(),
                        layer: shape.name.clone(),
                    })?;
                let layer = layers[index].1;
                if (layer.d_in(), layer.d_out()) != (shape.d_in, shape.d_out) {
                    return Err(AdapterError::LayerShape {
                        origin: self.origin(),
                        layer: shape.name.clone(),
                        found: format!("{}x{}", shape.d_in, shape.d_out),
                        expected: format!("{}x{}", layer.d_in(), layer.d_out()),
                    });
                }
                Ok(index)
            })
            .collect()
    }

    /// The factors of one layer as tensors in this crate's layout (`a: [d_in, r]`, `b: [r, d_out]`).
    pub fn factors<B: Backend>(
        &self,
        index: usize,
        device: &B::Device,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let shape = &self.manifest.layers[index];
        let layer = &self.layers[index];
        let a = Tensor::<B, 2>::from_data(
            TensorData::new(layer.a.clone(), [shape.rank, shape.d_in]),
            device,
        );
        let b = Tensor::<B, 2>::from_data(
            TensorData::new(layer.b.clone(), [shape.d_out, shape.rank]),
            device,
        );
        (a.transpose(), b.transpose())
    }

    /// Attach this adapter's updates to `host` (frozen factors). Checks everything first: on
    /// error the host is unchanged.
    pub fn apply<B: Backend, H: AdapterHost<B>>(
        &self,
        host: &mut H,
        device: &B::Device,
    ) -> Result<()> {
        let indices = self.check_fits(host)?;
        let mut layers = host.adaptable_layers_mut();
        for (i, &index) in indices.iter().enumerate() {
            let (a, b) = self.factors::<B>(i, device);
            let scale = self.layer_scale(&self.manifest.layers[i]);
            layers[index].1.lora = Some(LoraDelta::from_factors(a, b, scale));
        }
        Ok(())
    }

    /// Refuses an adapter whose factors disagree with its manifest: factor sizes, a layer listed
    /// twice, a zero rank, a non-finite factor entry, alpha or metric.
    fn check_consistent(&self, path: &Path) -> Result<()> {
        let bad = |problem: String| {
            Err(AdapterError::Invalid {
                path: path.to_path_buf(),
                problem,
            })
        };
        let m = &self.manifest;
        if m.layers.len() != self.layers.len() {
            return bad(format!(
                "the manifest lists {} layers but {} are given",
                m.layers.len(),
                self.layers.len()
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for (shape, layer) in m.layers.iter().zip(&self.layers) {
            if !names.insert(shape.name.as_str()) {
                return bad(format!("layer `{}` is listed twice", shape.name));
            }
            if shape.rank == 0 {
                return bad(format!("layer `{}` has rank 0", shape.name));
            }
            if layer.a.len() != shape.rank * shape.d_in || layer.b.len() != shape.d_out * shape.rank
            {
                return bad(format!(
                    "layer `{}`: factors of {} and {} values do not fit rank {} of {}x{}",
                    shape.name,
                    layer.a.len(),
                    layer.b.len(),
                    shape.rank,
                    shape.d_in,
                    shape.d_out
                ));
            }
        }
        self.check_finite(path)?;
        if !m.alpha.is_finite() {
            return bad(format!("alpha is {}", m.alpha));
        }
        if let Some((name, value)) = m.metrics.iter().find(|(_, v)| !v.is_finite()) {
            return bad(format!(
                "metric `{name}` is {value} (JSON holds finite numbers only)"
            ));
        }
        Ok(())
    }

    /// Refuses a NaN or infinite factor entry, or factors whose update `s B A` can overflow
    /// 32-bit floats (bounded by `|s| max|B| max|A| rank`), naming the layer: either would turn
    /// the model's outputs into NaN.
    pub fn check_finite(&self, path: &Path) -> Result<()> {
        let bad = |problem: String| {
            Err(AdapterError::Invalid {
                path: path.to_path_buf(),
                problem,
            })
        };
        for (shape, layer) in self.manifest.layers.iter().zip(&self.layers) {
            for (factor, values) in [("lora_A", &layer.a), ("lora_B", &layer.b)] {
                if let Some(v) = values.iter().find(|v| !v.is_finite()) {
                    return bad(format!(
                        "layer `{}`: {factor} holds {v}; an adapter's factors must be finite",
                        shape.name
                    ));
                }
            }
            let largest = |v: &[f32]| v.iter().fold(0.0f64, |m, x| m.max(f64::from(x.abs())));
            let bound = f64::from(self.layer_scale(shape)).abs()
                * largest(&layer.b)
                * largest(&layer.a)
                * shape.rank as f64;
            if bound >= f64::from(f32::MAX) {
                return bad(format!(
                    "layer `{}`: its update scale * B * A can reach {bound:e}, beyond 32-bit floats",
                    shape.name
                ));
            }
        }
        Ok(())
    }

    /// Write `dir/adapter.safetensors` and `dir/manifest.json`, each through a temporary file
    /// and a rename, so a crash never leaves a half-written file under the final names; the
    /// tensors carry the manifest's hash, so a crash between the renames is caught on load.
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.check_consistent(dir)?;
        fs::create_dir_all(dir).map_err(|source| io_error(dir, source))?;
        let manifest = serde_json::to_vec_pretty(&self.manifest).expect("manifest serialises");
        let tensors: Vec<(String, Vec<usize>, &[f32])> = (self.manifest.layers.iter())
            .zip(&self.layers)
            .flat_map(|(shape, layer)| {
                [
                    (
                        format!("{}.lora_A", shape.name),
                        vec![shape.rank, shape.d_in],
                        layer.a.as_slice(),
                    ),
                    (
                        format!("{}.lora_B", shape.name),
                        vec![shape.d_out, shape.rank],
                        layer.b.as_slice(),
                    ),
                ]
            })
            .collect();
        let tensors_path = dir.join(TENSORS_FILE);
        let metadata = HashMap::from([
            ("format".to_string(), ADAPTER_FORMAT.to_string()),
            (MANIFEST_HASH_KEY.to_string(), sha256(&manifest)),
        ]);
        let encoded =
            crate::files::serialize_f32(&tensors, metadata).map_err(|e| AdapterError::Tensors {
                path: tensors_path.clone(),
                detail: e.to_string(),
            })?;
        write_atomically(&tensors_path, &encoded)?;
        write_atomically(&dir.join(MANIFEST_FILE), &manifest)
    }

    /// Read an adapter saved by [`Adapter::save`], checking that every tensor the manifest lists
    /// is present with the right dtype and shape.
    pub fn load(dir: &Path) -> Result<Self> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let text = crate::files::read(&manifest_path)
            .map_err(|source| io_error(&manifest_path, source))?;
        let manifest: AdapterManifest =
            serde_json::from_slice(&text).map_err(|source| AdapterError::Manifest {
                path: manifest_path.clone(),
                source,
            })?;
        if manifest.format != ADAPTER_FORMAT {
            return Err(AdapterError::Format {
                path: manifest_path,
                found: manifest.format,
            });
        }
        if !manifest.alpha.is_finite() || manifest.layers.iter().any(|l| l.rank == 0) {
            return Err(AdapterError::Invalid {
                path: manifest_path,
                problem: "every layer needs rank >= 1 and alpha must be finite".into(),
            });
        }

        let path = dir.join(TENSORS_FILE);
        let bytes = crate::files::read(&path).map_err(|source| io_error(&path, source))?;
        let (_, header) =
            SafeTensors::read_metadata(&bytes).map_err(|e| AdapterError::Tensors {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        let tensors = SafeTensors::deserialize(&bytes).map_err(|e| AdapterError::Tensors {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        let read = |name: String, shape: [usize; 2]| -> Result<Vec<f32>> {
            let view = tensors
                .tensor(&name)
                .map_err(|_| AdapterError::MissingTensor {
                    path: path.clone(),
                    name: name.clone(),
                })?;
            if view.dtype() != Dtype::F32 || view.shape() != shape {
                return Err(AdapterError::BadTensor {
                    path: path.clone(),
                    name,
                    found: format!("{:?} {:?}", view.dtype(), view.shape()),
                    expected: format!("F32 {shape:?}"),
                });
            }
            Ok(crate::files::f32_values(view.data()))
        };
        let layers = manifest
            .layers
            .iter()
            .map(|s| {
                Ok(AdapterLayer {
                    a: read(format!("{}.lora_A", s.name), [s.rank, s.d_in])?,
                    b: read(format!("{}.lora_B", s.name), [s.d_out, s.rank])?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let adapter = Self {
            manifest,
            layers,
            origin: Some(dir.to_path_buf()),
        };
        adapter.check_finite(&path)?;
        adapter.check_consistent(&manifest_path)?;
        let recorded = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(MANIFEST_HASH_KEY).cloned());
        if recorded.is_some_and(|hash| hash != sha256(&text)) {
            return Err(AdapterError::Invalid {
                path: manifest_path,
                problem: format!(
                    "does not belong to {} (another save's tensors; an interrupted save?): save the adapter again",
                    path.display()
                ),
            });
        }
        Ok(adapter)
    }
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn to_vec<B: Backend>(tensor: Tensor<B, 2>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .into_vec()
        .expect("converted to f32")
}

fn io_error(path: &Path, source: io::Error) -> AdapterError {
    AdapterError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).map_err(|source| io_error(&tmp, source))?;
    fs::rename(&tmp, path).map_err(|source| io_error(path, source))
}
