//! An Arrow composition on disk, laid out for PEFT's `create_arrow_model`: every routed
//! adapter as a PEFT folder (`experts/task_<i>`, in routing order; `general/gks_<j>` for
//! GenKnowSub) and `arrow_config.json` with PEFT's `ArrowConfig` fields, the folders, and the
//! SHA-256 of each folder's tensors (so that the head beside them, which records the config's
//! hash, cannot be used over other adapters). `loramix predict` reads it back.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use loramix_compose::ArrowConfig;
use loramix_lora::Adapter;
use loramix_models::hf::HfBlockNames;
use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result, io};
use crate::{head, user};

/// The routing settings and adapters' file, in the output folder.
pub const CONFIG_FILE: &str = head::ARROW_CONFIG_FILE;
const FORMAT: &str = "loramix-arrow/1";

/// `arrow_config.json`: PEFT's `ArrowConfig` fields under PEFT's names, and the adapters.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArrowFile {
    format: String,
    top_k: usize,
    router_temperature: f32,
    use_gks: bool,
    rng_seed: u64,
    /// Folders relative to the output folder, in routing order.
    task_adapters: Vec<String>,
    general_adapters: Vec<String>,
    /// SHA-256 of each folder's `adapter_model.safetensors`.
    sha256: BTreeMap<String, String>,
}

/// Writes the routed adapters and `arrow_config.json` into `dir`.
pub fn write(
    dir: &Path,
    experts: &[Adapter],
    general: &[Adapter],
    config: &ArrowConfig,
    names: &HfBlockNames,
    base_name: &str,
) -> Result<()> {
    let mut sha256 = BTreeMap::new();
    let mut folders = |adapters: &[Adapter], parent: &str, prefix: &str| -> Result<Vec<String>> {
        let mut written = Vec::new();
        for (i, adapter) in adapters.iter().enumerate() {
            let folder = format!("{parent}/{prefix}_{i}");
            let path = dir.join(&folder);
            std::fs::create_dir_all(&path).map_err(io(&path))?;
            loramix_peft::write(adapter, &path, names, base_name)?;
            sha256.insert(folder.clone(), head::adapter_file_sha256(&path)?);
            written.push(folder);
        }
        Ok(written)
    };
    let task_adapters = folders(experts, "experts", "task")?;
    let general_adapters = folders(general, "general", "gks")?;
    let file = ArrowFile {
        format: FORMAT.into(),
        top_k: config.top_k,
        router_temperature: config.temperature,
        use_gks: !general.is_empty(),
        rng_seed: config.seed,
        task_adapters,
        general_adapters,
        sha256,
    };
    let path = dir.join(CONFIG_FILE);
    let text = serde_json::to_string_pretty(&file).expect("the config serialises");
    std::fs::write(&path, text).map_err(io(&path))
}

/// An Arrow composition read back.
#[derive(Debug)]
pub struct Routed {
    pub experts: Vec<Adapter>,
    /// GenKnowSub's general adapters (none without it).
    pub general: Vec<Adapter>,
    pub config: ArrowConfig,
}

/// The routed adapters and settings in `dir`, if it holds an Arrow composition.
pub fn read(dir: &Path, names: &HfBlockNames, base_fingerprint: &str) -> Result<Option<Routed>> {
    let path = dir.join(CONFIG_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let bad = |message: String| ExperimentError::Artifact {
        path: path.clone(),
        message,
    };
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let file: ArrowFile = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if file.format != FORMAT {
        return Err(bad(format!(
            "format `{}`; this build reads `{FORMAT}`",
            file.format
        )));
    }
    if file.use_gks == file.general_adapters.is_empty() {
        return Err(bad(
            "`use_gks` must be true exactly when `general_adapters` lists adapters".into(),
        ));
    }
    let load = |folders: &[String]| -> Result<Vec<Adapter>> {
        (folders.iter())
            .map(|folder| read_folder(dir, &file, folder, names, base_fingerprint))
            .collect()
    };
    Ok(Some(Routed {
        experts: load(&file.task_adapters)?,
        general: load(&file.general_adapters)?,
        config: ArrowConfig {
            top_k: file.top_k,
            temperature: file.router_temperature,
            seed: file.rng_seed,
        },
    }))
}

/// The adapter in `folder` of an Arrow output in `dir`, once the folder is shown to lie inside
/// `dir` and to hold the tensors whose hash the config recorded.
fn read_folder(
    dir: &Path,
    file: &ArrowFile,
    folder: &str,
    names: &HfBlockNames,
    base_fingerprint: &str,
) -> Result<Adapter> {
    let bad = |message: String| ExperimentError::Artifact {
        path: dir.join(CONFIG_FILE),
        message,
    };
    let inside = Path::new(folder)
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if !inside || folder.is_empty() {
        return Err(bad(format!(
            "`{folder}` is not a folder inside {}",
            dir.display()
        )));
    }
    let recorded = (file.sha256.get(folder))
        .ok_or_else(|| bad(format!("`sha256` records no hash for `{folder}`")))?;
    let adapter_dir = dir.join(folder);
    let adapter = user::load_adapter(&adapter_dir, names, base_fingerprint)?;
    if head::adapter_file_sha256(&adapter_dir)? != *recorded {
        return Err(bad(format!(
            "the tensors in `{folder}` changed since the config was written"
        )));
    }
    Ok(adapter)
}
