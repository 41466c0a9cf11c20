//! Pretrained backbones named in experiments (`[model] pretrained = "minilm-l6"`): where they
//! live, and the one-time conversion of a backbone that ships as ONNX.

use std::path::{Path, PathBuf};

use crate::error::{ExperimentError, Result};
use crate::output;

/// A backbone the fetch step brings as ONNX, converted on first use into a Hugging Face
/// directory named `name` beside it in the data cache.
struct Converted {
    name: &'static str,
    /// The ONNX file, relative to the data cache.
    onnx: &'static str,
}

const CONVERTED: [Converted; 1] = [Converted {
    name: "dinov2-s",
    onnx: "dinov2-s-onnx/vit_s_focus.onnx",
}];

/// Makes sure the checkpoint directory `dir` of an experiment exists: converts a known ONNX
/// backbone of the data cache `data` if `dir` is its (missing) target, and checks the result
/// against its pinned checksum.
pub fn prepare(dir: &Path, data: &Path) -> Result<()> {
    if dir.join("model.safetensors").exists() {
        return Ok(());
    }
    let known = CONVERTED.iter().find(|c| dir == data.join(c.name));
    let Some(known) = known else {
        return Err(ExperimentError::Invalid(format!(
            "{}: no model.safetensors here; model.pretrained must name a Hugging Face model directory (config.json + model.safetensors, + tokenizer.json for text) or a backbone of the data cache (run `bash datasets/fetch.sh`)",
            dir.display()
        )));
    };
    let onnx = data.join(known.onnx);
    if !onnx.exists() {
        return Err(ExperimentError::Invalid(format!(
            "{}: missing; run `bash datasets/fetch.sh` to fetch the `{}` backbone",
            onnx.display(),
            known.name
        )));
    }
    eprintln!(
        "converting {} into {} (once)",
        onnx.display(),
        dir.display()
    );
    import_dinov2(&onnx, dir)
}

/// Converts the DINOv2 ONNX file `onnx` into the directory `out`, refusing a result whose
/// checksum differs from the pinned one.
pub fn import_dinov2(onnx: &Path, out: &Path) -> Result<()> {
    let sha = loramix_onnx::dinov2::convert(onnx, out)
        .map_err(|e| ExperimentError::Invalid(format!("{}: {e}", onnx.display())))?;
    let pinned = loramix_onnx::dinov2::PINNED_SAFETENSORS_SHA256;
    if sha != pinned {
        let bad: PathBuf = out.join("model.safetensors");
        let _ = std::fs::remove_dir_all(out);
        return Err(ExperimentError::Invalid(format!(
            "{}: converted checkpoint has SHA-256 {sha}, expected {pinned}; was {} modified? (deleted)",
            bad.display(),
            onnx.display()
        )));
    }
    Ok(())
}

/// The files `export-peft` writes (what a rerun may replace).
pub const PEFT_FILES: [&str; 3] = [
    loramix_peft::CONFIG_FILE,
    loramix_peft::TENSORS_FILE,
    loramix_peft::MANIFEST_FILE,
];

/// Writes the loramix adapter in `adapter` as a PEFT adapter in `out`, with the module names of
/// the family of the checkpoint in `base` (its `config.json` `model_type`: `bert` or `dinov2`).
/// The adapter must fit that base (fingerprint and layer shapes): PEFT would otherwise load
/// it onto weights it was not trained against. A DINOv2 base's fingerprint covers its
/// position grid, so `image_size` must be the size the adapter was trained at.
pub fn export_peft(
    adapter_dir: &Path,
    base: &Path,
    image_size: Option<usize>,
    out: &Path,
) -> Result<()> {
    let kind = output::Kind::Folder { ours: &PEFT_FILES };
    output::check(out, kind, &[adapter_dir, base])?;
    let names = loramix_models::hf::HfFamily::of(base)?.names();
    let adapter = loramix_lora::Adapter::load(adapter_dir)?;
    let fits = match crate::user::UserBase::open(base, None, image_size)? {
        crate::user::UserBase::Text(family) => {
            adapter.check_fits(crate::user::base_of(family.as_ref()))
        }
        crate::user::UserBase::Vision(family) => adapter.check_fits(crate::user::base_of(&family)),
    };
    fits.map_err(|e| {
        ExperimentError::Invalid(format!(
            "{e} (export-peft writes an adapter for the base it was trained on{})",
            if names == &loramix_models::hf::DINOV2 {
                "; a DINOv2 fingerprint depends on --image-size"
            } else {
                ""
            }
        ))
    })?;
    let name = crate::user::absolute(base);
    let staged = output::Staged::begin(out, kind, &[])?;
    loramix_peft::write(&adapter, staged.path(), names, &name.display().to_string())?;
    staged.commit()
}
