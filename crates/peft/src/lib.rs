//! Hugging Face PEFT LoRA adapters, both ways.
//!
//! A PEFT adapter directory holds `adapter_config.json` ([`PeftConfig`]) and
//! `adapter_model.safetensors` with `base_model.model.<module>.lora_A.weight` (`[r, in]`) and
//! `lora_B.weight` (`[out, r]`) per adapted linear, where `<module>` is the Hugging Face path
//! (`encoder.layer.0.attention.self.query`). [`read`] turns one into a loramix [`Adapter`] for
//! a model family's names ([`HfBlockNames`]), folding each layer's PEFT scale (rank and alpha
//! patterns, rsLoRA) into `B`; [`write`] writes any loramix adapter (a composition included)
//! so that `PeftModel.from_pretrained` loads it with no missing or unexpected key.

mod config;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use loramix_lora::{
    ADAPTER_FORMAT, Adapter, AdapterError, AdapterLayer, AdapterManifest, LayerShape, Target,
};
use loramix_models::hf::HfBlockNames;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

pub use config::{PeftConfig, TargetModules};

pub const CONFIG_FILE: &str = "adapter_config.json";
pub const TENSORS_FILE: &str = "adapter_model.safetensors";
/// The loramix manifest written beside a PEFT adapter: its base fingerprint, task, metrics and,
/// for a composition, its parents and weights.
pub const MANIFEST_FILE: &str = "loramix_manifest.json";
const PREFIX: &str = "base_model.model.";

/// What went wrong reading or writing a PEFT adapter; each names the file and the field or
/// tensor.
#[derive(Debug, thiserror::Error)]
pub enum PeftError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: `{field}`: {problem}")]
    Config {
        path: PathBuf,
        field: String,
        problem: String,
    },
    #[error("{path}: {problem}")]
    Tensors { path: PathBuf, problem: String },
    #[error("rank_pattern / alpha_pattern: {0}")]
    Pattern(String),
    #[error(
        "{0}: only a pickled `adapter_model.bin` is here; loramix does not unpickle (it can run code). Convert it to safetensors with PEFT (`model.save_pretrained(dir, safe_serialization=True)`)"
    )]
    Pickle(PathBuf),
    /// A loramix adapter (read by [`read_either`]) that cannot be read.
    #[error(transparent)]
    Loramix(#[from] AdapterError),
    #[error("{0}: not an adapter (no adapter_config.json for PEFT, no manifest.json for loramix)")]
    NotAnAdapter(PathBuf),
}

/// The `lora_A` and `lora_B` tensors found for one module (each with its key), and the
/// module's Hugging Face path.
type Factors<'a> = (
    Option<(String, TensorView<'a>)>,
    Option<(String, TensorView<'a>)>,
    String,
);

/// A loramix layer name of block `i`'s `target`.
fn layer_name(i: usize, target: Target) -> String {
    format!("encoder.blocks.{i}.{target}")
}

/// Block and target of a loramix layer name.
fn parse_layer(name: &str) -> Option<(usize, Target)> {
    let rest = name.strip_prefix("encoder.blocks.")?;
    let (i, target) = rest.split_once('.')?;
    Some((i.parse().ok()?, target.parse().ok()?))
}

/// Whether `dir` holds a PEFT adapter (as opposed to a loramix one).
pub fn is_peft(dir: &Path) -> bool {
    dir.join(CONFIG_FILE).exists() || dir.join("adapter_model.bin").exists()
}

/// Reads the adapter in `dir`, PEFT (`adapter_config.json`, with [`read_noting`]'s notes) or
/// loramix (`manifest.json`), whichever it holds.
pub fn read_either(
    dir: &Path,
    names: &HfBlockNames,
    base_fingerprint: &str,
) -> Result<(Adapter, Vec<String>), PeftError> {
    if is_peft(dir) {
        read_noting(dir, names, base_fingerprint)
    } else if dir.join("manifest.json").exists() {
        Ok((Adapter::load(dir)?, Vec::new()))
    } else {
        Err(PeftError::NotAnAdapter(dir.to_path_buf()))
    }
}

/// Reads the PEFT adapter in `dir`, for a model whose modules are named by `names` and whose
/// fingerprint is `base_fingerprint` (PEFT records only the base's name). A loramix manifest
/// written beside it by [`write`] supplies the recorded fingerprint, task and composition.
pub fn read(
    dir: &Path,
    names: &HfBlockNames,
    base_fingerprint: &str,
) -> Result<Adapter, PeftError> {
    read_noting(dir, names, base_fingerprint).map(|(adapter, _)| adapter)
}

/// [`read`], with a note for each tensor left out as PEFT leaves it out: factors of modules
/// that the config's `target_modules`, `exclude_modules` or `layers_to_transform` do not
/// target (PEFT puts no LoRA there, so it never loads them), and factors of the linears the
/// family's [`HfBlockNames::unread`] lists (a BERT pooler: loramix's forward pass never reads
/// it, so they cannot change a prediction). Every other module outside the blocks is refused.
pub fn read_noting(
    dir: &Path,
    names: &HfBlockNames,
    base_fingerprint: &str,
) -> Result<(Adapter, Vec<String>), PeftError> {
    let config_path = dir.join(CONFIG_FILE);
    let tensors_path = dir.join(TENSORS_FILE);
    if !tensors_path.exists() && dir.join("adapter_model.bin").exists() {
        return Err(PeftError::Pickle(dir.join("adapter_model.bin")));
    }
    let config = PeftConfig::from_file(&config_path)?;
    let bytes = loramix_lora::files::read(&tensors_path).map_err(|source| PeftError::Io {
        path: tensors_path.clone(),
        source,
    })?;
    let bad = |problem: String| PeftError::Tensors {
        path: tensors_path.clone(),
        problem,
    };
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| {
        bad(format!(
            "not a readable safetensors file ({e}); truncated or corrupt?"
        ))
    })?;

    // Every tensor must be a LoRA factor of a linear loramix knows. Sorted by key, so that
    // what is reported first does not depend on the file's order.
    let mut modules: BTreeMap<(usize, Target), Factors> = BTreeMap::new();
    let mut untargeted = Vec::new();
    let mut unread = Vec::new();
    let mut all = tensors.tensors();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, view) in all {
        // PEFT saves `<module>.lora_A.weight`; files that kept the adapter name have
        // `<module>.lora_A.default.weight`.
        let module_and_factor = key
            .strip_prefix(PREFIX)
            .and_then(|k| k.strip_suffix(".weight"))
            .map(|k| k.strip_suffix(".default").unwrap_or(k));
        let Some(rest) = module_and_factor else {
            return Err(bad(format!(
                "tensor `{key}` is not a LoRA factor (`{PREFIX}<module>.lora_A.weight`)"
            )));
        };
        let (module, factor) = rest
            .rsplit_once('.')
            .ok_or_else(|| bad(format!("tensor `{key}` is not a LoRA factor")))?;
        let Some(place) = names.parse_any_module(module) else {
            if let Some(why) = names.unread_reason(module) {
                unread.push((key, why));
                continue;
            }
            return Err(bad(format!(
                "tensor `{key}`: `{module}` is not an attention or MLP linear of this model family (conv, embedding and other layers are not supported)"
            )));
        };
        if !config.targets(module) {
            untargeted.push(key);
            continue;
        }
        let entry = modules
            .entry(place)
            .or_insert_with(|| (None, None, module.to_string()));
        let slot = match factor {
            "lora_A" => &mut entry.0,
            "lora_B" => &mut entry.1,
            _ => {
                return Err(bad(format!(
                    "tensor `{key}`: unknown factor `{factor}` (only lora_A, lora_B)"
                )));
            }
        };
        // `X.lora_A.weight` and `X.lora_A.default.weight` name the same factor.
        if let Some((first, _)) = slot {
            return Err(bad(format!(
                "`{first}` and `{key}` are the same factor of `{module}`; keep one"
            )));
        }
        *slot = Some((key, view));
    }
    if modules.is_empty() {
        return Err(bad(if let Some((key, why)) = unread.first() {
            format!(
                "its only LoRA tensors are on modules loramix never reads (`{key}`: {why}); it cannot change a prediction"
            )
        } else if untargeted.is_empty() {
            "no LoRA tensors".into()
        } else {
            format!(
                "none of its {} LoRA tensors is on a module that the config targets (target_modules, exclude_modules, layers_to_transform)",
                untargeted.len()
            )
        }));
    }
    let at = tensors_path.display();
    let notes = (untargeted.iter())
        .map(|key| {
            format!(
                "{at}: `{key}` left out: the config does not target its module (PEFT does not load it either)"
            )
        })
        .chain(
            (unread.iter()).map(|(key, why)| format!("{at}: `{key}` left out: {why}")),
        )
        .collect();

    let mut shapes = Vec::new();
    let mut layers = Vec::new();
    let mut targets = Vec::new();
    // PEFT scales a layer by its alpha / rank (rsLoRA: alpha / sqrt(rank)); loramix by the
    // adapter's alpha over the layer's rank. B carries any ratio left, so a zero `lora_alpha`
    // (a valid adapter that changes nothing, or one whose alpha_pattern sets each layer) folds
    // against `r` instead of dividing by 0. rsLoRA's scale goes into alpha instead, so that B
    // stays as PEFT wrote it (GenKnowSub subtracts the factors as written).
    let alpha = if config.lora_alpha == 0.0 {
        config.r as f32
    } else if config.use_rslora {
        config.lora_alpha * (config.r as f32).sqrt()
    } else {
        config.lora_alpha
    };
    for ((i, target), (a, b, module)) in modules {
        let key = |f: &str| format!("{PREFIX}{module}.{f}.weight");
        let (a_key, a) =
            a.ok_or_else(|| bad(format!("`{}` has no `{}`", module, key("lora_A"))))?;
        let (b_key, b) =
            b.ok_or_else(|| bad(format!("`{}` has no `{}`", module, key("lora_B"))))?;
        let (rank, peft_scale) = config.rank_and_scale(&module)?;
        let (&[ra, d_in], &[d_out, rb]) = (a.shape(), b.shape()) else {
            return Err(bad(format!("`{module}`: factors are not matrices")));
        };
        if ra != rank || rb != rank {
            return Err(bad(format!(
                "`{module}`: lora_A is {:?} and lora_B {:?}, but the config gives rank {rank}",
                a.shape(),
                b.shape()
            )));
        }
        let rescale = peft_scale / (alpha / rank as f32);
        let a_values = floats(&a, &a_key, &bad)?;
        let b_values: Vec<f32> = floats(&b, &b_key, &bad)?
            .into_iter()
            .map(|v| v * rescale)
            .collect();
        for (key, values, what) in [
            (&a_key, &a_values, String::new()),
            (
                &b_key,
                &b_values,
                format!(" after PEFT's scale {peft_scale}"),
            ),
        ] {
            if let Some(v) = values.iter().find(|v| !v.is_finite()) {
                return Err(bad(format!(
                    "tensor `{key}` holds {v}{what}; LoRA factors must be finite"
                )));
            }
        }
        shapes.push(LayerShape {
            name: layer_name(i, target),
            d_in,
            d_out,
            rank,
        });
        layers.push(AdapterLayer {
            a: a_values,
            b: b_values,
        });
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    targets.sort();

    let recorded = read_manifest(dir)?;
    let task = dir
        .file_name()
        .map_or_else(|| "peft".to_string(), |n| n.to_string_lossy().into_owned());
    let manifest = AdapterManifest {
        format: ADAPTER_FORMAT.to_string(),
        task: recorded.as_ref().map_or(task, |m| m.task.clone()),
        rank: shapes.iter().map(|s| s.rank).max().unwrap_or(0),
        alpha,
        targets,
        base_fingerprint: recorded.as_ref().map_or_else(
            || base_fingerprint.to_string(),
            |m| m.base_fingerprint.clone(),
        ),
        layers: shapes,
        metrics: recorded
            .as_ref()
            .map(|m| m.metrics.clone())
            .unwrap_or_default(),
        composition: recorded.and_then(|m| m.composition),
    };
    let adapter = Adapter {
        manifest,
        layers,
        origin: Some(dir.to_path_buf()),
    };
    adapter.check_finite(&tensors_path).map_err(|e| match e {
        AdapterError::Invalid { problem, .. } => bad(problem),
        other => bad(other.to_string()),
    })?;
    Ok((adapter, notes))
}

fn read_manifest(dir: &Path) -> Result<Option<AdapterManifest>, PeftError> {
    let path = dir.join(MANIFEST_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text = loramix_lora::files::read_to_string(&path).map_err(|source| PeftError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| PeftError::Config {
            path,
            field: "(file)".into(),
            problem: e.to_string(),
        })
}

fn floats(
    view: &TensorView<'_>,
    key: &str,
    bad: &impl Fn(String) -> PeftError,
) -> Result<Vec<f32>, PeftError> {
    loramix_models::checkpoint::f32_values(view).ok_or_else(|| {
        bad(format!(
            "tensor `{key}` has dtype {:?} (F32, F64, F16, BF16 load)",
            view.dtype()
        ))
    })
}

/// Writes `adapter` as a PEFT adapter in `dir` (created), for a model family named by `names`
/// whose checkpoint is `base_model_name_or_path`, plus the loramix manifest beside it. Each
/// layer keeps its rank (`rank_pattern` where it differs from the largest) and loramix's
/// scale `alpha / rank`, so PEFT computes exactly the loramix update.
pub fn write(
    adapter: &Adapter,
    dir: &Path,
    names: &HfBlockNames,
    base_model_name_or_path: &str,
) -> Result<(), PeftError> {
    let m = &adapter.manifest;
    let mut modules = Vec::new();
    let mut rank_pattern = BTreeMap::new();
    let mut tensors: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
    for (shape, layer) in m.layers.iter().zip(&adapter.layers) {
        let (i, target) = parse_layer(&shape.name).ok_or_else(|| PeftError::Tensors {
            path: dir.to_path_buf(),
            problem: format!("layer `{}` is not an encoder block linear", shape.name),
        })?;
        let module = names.current_modules().module(i, target);
        if shape.rank != m.rank {
            rank_pattern.insert(module.clone(), shape.rank);
        }
        tensors.push((
            format!("{PREFIX}{module}.lora_A.weight"),
            loramix_lora::files::f32_bytes(&layer.a),
            vec![shape.rank, shape.d_in],
        ));
        tensors.push((
            format!("{PREFIX}{module}.lora_B.weight"),
            loramix_lora::files::f32_bytes(&layer.b),
            vec![shape.d_out, shape.rank],
        ));
        modules.push(module);
    }
    let config = serde_json::json!({
        "peft_type": "LORA",
        "task_type": null,
        "base_model_name_or_path": base_model_name_or_path,
        "r": m.rank,
        "lora_alpha": m.alpha,
        "target_modules": modules,
        "rank_pattern": rank_pattern,
        "alpha_pattern": {},
        "use_rslora": false,
        "use_dora": false,
        "fan_in_fan_out": false,
        "bias": "none",
        "lora_dropout": 0.0,
        "modules_to_save": null,
        "init_lora_weights": true,
        "inference_mode": true
    });
    fs::create_dir_all(dir).map_err(|source| PeftError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let views = tensors
        .iter()
        .map(|(name, data, shape)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), data)
                .expect("byte length matches the shape by construction");
            (name.clone(), view)
        })
        .collect::<Vec<_>>();
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    let encoded =
        safetensors::serialize(views, Some(metadata)).map_err(|e| PeftError::Tensors {
            path: dir.join(TENSORS_FILE),
            problem: e.to_string(),
        })?;
    let text = serde_json::to_vec_pretty(&config).expect("JSON value");
    let manifest = serde_json::to_vec_pretty(m).expect("manifest serialises");
    for (name, bytes) in [
        (TENSORS_FILE, encoded.as_slice()),
        (CONFIG_FILE, text.as_slice()),
        (MANIFEST_FILE, manifest.as_slice()),
    ] {
        let path = dir.join(name);
        fs::write(&path, bytes).map_err(|source| PeftError::Io { path, source })?;
    }
    Ok(())
}
