//! What `loramix compose` and `loramix predict` take from a user: a Hugging Face base model
//! directory, adapters in PEFT or loramix format, and the classifier head a composition ships
//! with (`head.safetensors`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Tensor, TensorData};
use loramix_backend::Inference;
use loramix_data::{ImageShape, Labelled};
use loramix_lora::{Adapter, AdapterHost};
use loramix_models::hf::{BERT, DINOV2, HfBlockNames};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::backbone::ModelSpec;
use crate::error::{ExperimentError, Result, io};
use crate::family::{BertText, Vision};

/// The classifier head beside a composed adapter: `weight` `[classes, dim]` and `bias`
/// `[classes]` as PyTorch's `nn.Linear` stores them, the class names in the metadata.
pub const HEAD_FILE: &str = "head.safetensors";

/// How `compose` and `predict` read their inputs.
#[derive(Debug, Clone, clap::Args)]
pub struct InputArgs {
    /// CSV column holding the text.
    #[arg(long, default_value = "text")]
    pub text_column: String,
    /// Longest text in tokens (BERT family; default 128).
    #[arg(long)]
    pub max_len: Option<usize>,
    /// Image side in pixels (DINOv2; default 112 on the CPU, 224 on a GPU).
    #[arg(long)]
    pub image_size: Option<usize>,
}

/// A base model directory, as the model family that reads it.
pub enum UserBase {
    Text(Box<BertText>),
    Vision(Vision),
}

impl UserBase {
    /// Opens the Hugging Face directory `dir` by its `config.json` `model_type`: `bert` (with
    /// `tokenizer.json`; texts cut to `max_len` tokens) or `dinov2` (images resized to
    /// `image_size`, default 112 on the CPU and 224 on a GPU).
    pub fn open(dir: &Path, max_len: Option<usize>, image_size: Option<usize>) -> Result<Self> {
        if let Some(len) = max_len
            && !(2..=crate::config::MAX_TOKENS).contains(&len)
        {
            return Err(ExperimentError::Invalid(format!(
                "--max-len must be 2 to {} tokens, not {len}",
                crate::config::MAX_TOKENS
            )));
        }
        if let Some(size) = image_size
            && !(1..=loramix_data::MAX_IMAGE_SIDE).contains(&size)
        {
            return Err(ExperimentError::Invalid(format!(
                "--image-size must be 1 to {} pixels, not {size}",
                loramix_data::MAX_IMAGE_SIDE
            )));
        }
        let spec = ModelSpec {
            pretrained: Some(dir.display().to_string()),
            dim: None,
            depth: None,
            heads: None,
            mlp_dim: None,
            patch_size: None,
            max_len,
            image_size,
        };
        match HfFamily::of(dir)? {
            HfFamily::Bert => Ok(Self::Text(Box::new(BertText::new(&spec, dir)?))),
            HfFamily::Dinov2 => {
                let size = image_size.unwrap_or_else(crate::family::default_image_size);
                let config =
                    loramix_models::dinov2::Dinov2Config::from_file(&dir.join("config.json"))
                        .map_err(|e| ExperimentError::Invalid(e.to_string()))?;
                let grid = size / config.patch_size;
                if grid * grid > loramix_models::dinov2::MAX_PATCHES {
                    return Err(ExperimentError::Invalid(format!(
                        "--image-size {size} cuts images into {grid}x{grid} patches of {} pixels; at most {} patches (DINOv2's largest grid) are allowed, as attention grows with their square: give a smaller --image-size",
                        config.patch_size,
                        loramix_models::dinov2::MAX_PATCHES
                    )));
                }
                let shape = ImageShape::square(3, size);
                Ok(Self::Vision(Vision::new(&spec, shape, Some(dir))?))
            }
        }
    }
}

/// The pretrained model of a family [`UserBase::open`] made (always a checkpoint's).
pub fn base_of<F: crate::family::Family>(family: &F) -> &F::Frozen {
    family.pretrained().expect("a user base is pretrained")
}

/// The Hugging Face model families loramix reads, by `config.json`'s `model_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HfFamily {
    /// `bert`: BertModel (sentence encoders such as all-MiniLM-L6-v2).
    Bert,
    /// `dinov2`: Dinov2Model.
    Dinov2,
}

impl HfFamily {
    /// The family of the checkpoint in `dir`.
    pub fn of(dir: &Path) -> Result<Self> {
        #[derive(serde::Deserialize)]
        struct ModelType {
            #[serde(default)]
            model_type: String,
        }
        let path = dir.join("config.json");
        let found: ModelType = loramix_models::checkpoint::read_config(&path)
            .map_err(|e| ExperimentError::Invalid(e.to_string()))?;
        match found.model_type.as_str() {
            "bert" => Ok(Self::Bert),
            "dinov2" => Ok(Self::Dinov2),
            other => Err(ExperimentError::Invalid(format!(
                "{}: model_type `{other}`: loramix reads `bert` (BertModel) and `dinov2` (Dinov2Model) checkpoints",
                path.display()
            ))),
        }
    }

    /// Its Hugging Face module names.
    pub fn names(self) -> &'static HfBlockNames {
        match self {
            Self::Bert => &BERT,
            Self::Dinov2 => &DINOV2,
        }
    }
}

/// Reads the adapter in `dir`: PEFT (`adapter_config.json`) or loramix (`manifest.json`).
pub fn load_adapter(dir: &Path, names: &HfBlockNames, base_fingerprint: &str) -> Result<Adapter> {
    if loramix_peft::is_peft(dir) {
        let (adapter, notes) = loramix_peft::read_noting(dir, names, base_fingerprint)
            .map_err(|e| ExperimentError::Invalid(e.to_string()))?;
        for note in notes {
            eprintln!("note: {note}");
        }
        Ok(adapter)
    } else if dir.join("manifest.json").exists() {
        Ok(Adapter::load(dir)?)
    } else {
        Err(ExperimentError::Invalid(format!(
            "{}: not an adapter (no adapter_config.json for PEFT, no manifest.json for loramix)",
            dir.display()
        )))
    }
}

/// Refuses adapters trained on another base than `base`, naming every one that differs: their
/// deltas would be added to weights they were not trained against.
pub fn check_same_base<H: AdapterHost<Inference>>(
    base: &H,
    base_dir: &Path,
    adapters: &[Adapter],
) -> Result<()> {
    let fingerprint = base.fingerprint();
    let foreign: Vec<String> = adapters
        .iter()
        .filter(|a| a.manifest.base_fingerprint != fingerprint)
        .map(|a| format!("{} (base {})", a.origin(), a.manifest.base_fingerprint))
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    Err(ExperimentError::Invalid(format!(
        "{} of {} adapters were trained on another base than {} (fingerprint {fingerprint}): {}",
        foreign.len(),
        adapters.len(),
        base_dir.display(),
        foreign.join(", ")
    )))
}

/// What a head was fitted on, recorded in its metadata so that `predict` refuses a head
/// beside an adapter or on a base it does not belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadOrigin {
    /// The base model's fingerprint.
    pub base_fingerprint: String,
    /// SHA-256 of the adapter's tensor file as written beside the head.
    pub adapter_sha256: String,
}

const BASE_KEY: &str = "base_fingerprint";
const ADAPTER_KEY: &str = "adapter_sha256";

impl HeadOrigin {
    /// The origin of a head fitted on `adapter` (just written to `dir`) over its base.
    pub fn of(adapter: &Adapter, dir: &Path) -> Result<Self> {
        Ok(Self {
            base_fingerprint: adapter.manifest.base_fingerprint.clone(),
            adapter_sha256: adapter_file_sha256(dir)?,
        })
    }
}

/// An Arrow composition's settings and adapters' file (see `compose::arrow`).
pub const ARROW_CONFIG_FILE: &str = "arrow_config.json";

/// SHA-256 of the adapter in `dir`: an Arrow composition's `arrow_config.json` (which records
/// its adapters' hashes), else PEFT's `adapter_model.safetensors`, else loramix's
/// `adapter.safetensors`.
pub fn adapter_file_sha256(dir: &Path) -> Result<String> {
    use sha2::Digest;
    let candidates = [
        ARROW_CONFIG_FILE,
        loramix_peft::TENSORS_FILE,
        "adapter.safetensors",
    ];
    let path = (candidates.iter().map(|name| dir.join(name)))
        .find(|path| path.exists())
        .unwrap_or_else(|| dir.join("adapter.safetensors"));
    let bytes = loramix_lora::files::read(&path).map_err(io(&path))?;
    Ok(sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// `text` with control characters (newlines, terminal escapes) written as escapes, for names
/// read from files that are printed in tables.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Writes `head`, the names of its classes and its origin to `dir/head.safetensors`.
pub fn write_head(
    dir: &Path,
    head: &Linear<Inference>,
    classes: &[String],
    origin: &HeadOrigin,
) -> Result<()> {
    let weight = head.weight.val().transpose();
    let [n, dim] = weight.dims();
    let bias = head
        .bias
        .as_ref()
        .map(|b| b.val())
        .unwrap_or_else(|| Tensor::zeros([n], &weight.device()));
    let bytes = |t: TensorData| -> Vec<u8> {
        t.convert::<f32>()
            .to_vec::<f32>()
            .expect("f32")
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    };
    let (weight, bias) = (bytes(weight.into_data()), bytes(bias.into_data()));
    let views = vec![
        (
            "weight".to_string(),
            TensorView::new(Dtype::F32, vec![n, dim], &weight).expect("shape matches"),
        ),
        (
            "bias".to_string(),
            TensorView::new(Dtype::F32, vec![n], &bias).expect("shape matches"),
        ),
    ];
    let metadata = HashMap::from([
        (
            "classes".to_string(),
            serde_json::to_string(classes).expect("strings serialise"),
        ),
        (BASE_KEY.to_string(), origin.base_fingerprint.clone()),
        (ADAPTER_KEY.to_string(), origin.adapter_sha256.clone()),
    ]);
    let path = dir.join(HEAD_FILE);
    let encoded =
        loramix_lora::files::serialize(views, metadata).map_err(|e| ExperimentError::Artifact {
            path: path.clone(),
            message: e.to_string(),
        })?;
    std::fs::write(&path, encoded).map_err(io(&path))
}

/// A classifier head as `compose` wrote it.
pub struct Head {
    pub linear: Linear<Inference>,
    pub classes: Vec<String>,
    /// `None` for a head written before loramix recorded it.
    pub origin: Option<HeadOrigin>,
}

impl Head {
    /// Refuses a head (in adapter folder `dir`) fitted on another base or beside another
    /// adapter than the one in `dir`; a head that records neither is used with a note.
    pub fn check_origin(&self, dir: &Path, base_fingerprint: &str) -> Result<()> {
        let path = dir.join(HEAD_FILE);
        let Some(origin) = &self.origin else {
            eprintln!(
                "note: {} records no base or adapter (written by an older loramix): cannot check that it belongs to this adapter",
                path.display()
            );
            return Ok(());
        };
        let problem = if origin.base_fingerprint != base_fingerprint {
            format!(
                "was fitted on another base (fingerprint {}, this base {base_fingerprint})",
                origin.base_fingerprint
            )
        } else if origin.adapter_sha256 != adapter_file_sha256(dir)? {
            "was fitted beside another adapter than the one in this folder (its recorded SHA-256 differs): compose again, or put the head back beside its adapter".into()
        } else {
            return Ok(());
        };
        Err(ExperimentError::Artifact {
            path,
            message: problem,
        })
    }
}

/// Reads `dir/head.safetensors`: the head, its class names (at least two, distinct) and its
/// origin; every weight must be finite.
pub fn read_head(dir: &Path) -> Result<Head> {
    let path = dir.join(HEAD_FILE);
    let bad = |message: String| ExperimentError::Artifact {
        path: path.clone(),
        message,
    };
    if !path.exists() {
        return Err(bad(
            "missing: an adapter written by `loramix compose` carries its classifier head here"
                .into(),
        ));
    }
    let bytes = loramix_lora::files::read(&path).map_err(io(&path))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a readable safetensors file ({e})")))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let classes = head_classes(&metadata).map_err(bad)?;
    let origin = match (metadata.get(BASE_KEY), metadata.get(ADAPTER_KEY)) {
        (Some(base), Some(adapter)) => Some(HeadOrigin {
            base_fingerprint: base.clone(),
            adapter_sha256: adapter.clone(),
        }),
        _ => None,
    };
    let tensors = SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(format!("not a readable safetensors file ({e})")))?;
    Ok(Head {
        linear: head_linear(&tensors, classes.len()).map_err(bad)?,
        classes,
        origin,
    })
}

/// The head file's class names: at least two, none twice.
fn head_classes(
    metadata: &std::collections::HashMap<String, String>,
) -> std::result::Result<Vec<String>, String> {
    let classes: Vec<String> = (metadata.get("classes"))
        .and_then(|c| serde_json::from_str(c).ok())
        .ok_or("no `classes` list in the metadata")?;
    if classes.len() < 2 {
        return Err(format!(
            "{} class; a classifier head needs at least 2",
            classes.len()
        ));
    }
    let mut sorted: Vec<&String> = classes.iter().collect();
    sorted.sort();
    match sorted.windows(2).find(|w| w[0] == w[1]) {
        Some(twice) => Err(format!(
            "class `{}` is listed twice; predictions would be ambiguous",
            printable(twice[0])
        )),
        None => Ok(classes),
    }
}

/// The head's `weight` `[n, dim]` and `bias` `[n]`, finite, as a linear layer.
fn head_linear(tensors: &SafeTensors, n: usize) -> std::result::Result<Linear<Inference>, String> {
    let tensor = |name: &str| -> std::result::Result<(Vec<usize>, Vec<f32>), String> {
        let view = (tensors.tensor(name)).map_err(|_| format!("no `{name}` tensor"))?;
        let values = loramix_models::checkpoint::f32_values(&view)
            .ok_or_else(|| format!("`{name}` has dtype {:?}", view.dtype()))?;
        match values.iter().find(|v| !v.is_finite()) {
            Some(v) => Err(format!(
                "`{name}` holds {v}; a head's weights must be finite"
            )),
            None => Ok((view.shape().to_vec(), values)),
        }
    };
    let (weight_shape, weight) = tensor("weight")?;
    let (bias_shape, bias) = tensor("bias")?;
    let [rows, dim] = weight_shape[..] else {
        return Err(format!("`weight` has shape {weight_shape:?}"));
    };
    if rows != n || bias_shape != [n] {
        return Err(format!(
            "`weight` {weight_shape:?} and `bias` {bias_shape:?} do not fit {n} classes"
        ));
    }
    if dim == 0 {
        return Err("`weight` takes 0 features".into());
    }
    let device = loramix_backend::device();
    let weight = Tensor::<Inference, 2>::from_data(TensorData::new(weight, [n, dim]), &device);
    let bias = Tensor::<Inference, 1>::from_data(TensorData::new(bias, [n]), &device);
    Ok(Linear {
        weight: Param::from_tensor(weight.transpose()),
        bias: Some(Param::from_tensor(bias)),
    })
}

/// Items of `data` relabelled from its `classes` onto `onto` (by name); a class `onto` lacks
/// is an error naming `origin`.
pub fn relabel<I: Labelled>(
    data: loramix_data::LabelledDataset<I>,
    onto: &[String],
    origin: &Path,
) -> Result<Vec<I>> {
    let relabelled = data.relabelled(onto, |c| {
        ExperimentError::Invalid(format!(
            "{}: class `{c}` is not among the training classes ({})",
            origin.display(),
            onto.join(", ")
        ))
    })?;
    Ok(relabelled.items)
}

/// `dir` made absolute for the records (left as given if that fails).
pub fn absolute(dir: &Path) -> PathBuf {
    dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())
}
