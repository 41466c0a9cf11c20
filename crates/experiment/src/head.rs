//! The classifier head a composition ships with (`head.safetensors`): written by `compose`
//! beside the adapter, read by `predict`, with the base and adapter it was fitted on recorded
//! so that it is never used over others.

use std::collections::HashMap;
use std::path::Path;

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Tensor, TensorData};
use loramix_backend::Inference;
use loramix_lora::Adapter;
use safetensors::SafeTensors;

use crate::error::{ExperimentError, Result, io};
use crate::user::printable;

/// The classifier head beside a composed adapter: `weight` `[classes, dim]` and `bias`
/// `[classes]` as PyTorch's `nn.Linear` stores them, the class names in the metadata.
pub const HEAD_FILE: &str = "head.safetensors";

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
    let values = |t: TensorData| t.convert::<f32>().to_vec::<f32>().expect("f32");
    let (weight, bias) = (values(weight.into_data()), values(bias.into_data()));
    let tensors = [
        ("weight".to_string(), vec![n, dim], weight.as_slice()),
        ("bias".to_string(), vec![n], bias.as_slice()),
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
    let encoded = loramix_lora::files::serialize_f32(&tensors, metadata).map_err(|e| {
        ExperimentError::Artifact {
            path: path.clone(),
            message: e.to_string(),
        }
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
