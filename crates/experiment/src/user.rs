//! What `loramix compose` and `loramix predict` take from a user: a Hugging Face base model
//! directory and adapters in PEFT or loramix format.

use std::path::{Path, PathBuf};

use loramix_backend::Inference;
use loramix_data::{ImageShape, Labelled};
use loramix_lora::{Adapter, AdapterHost};
use loramix_models::hf::{HfBlockNames, HfFamily};

use crate::error::{ExperimentError, Result};
use crate::family::{BertText, Vision};

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
        match HfFamily::of(dir)? {
            HfFamily::Bert => Ok(Self::Text(Box::new(BertText::pretrained(dir, max_len)?))),
            HfFamily::Dinov2 => {
                let size = image_size.unwrap_or_else(crate::family::default_image_size);
                let config =
                    loramix_models::dinov2::Dinov2Config::from_file(&dir.join("config.json"))?;
                let grid = size / config.patch_size;
                if grid * grid > loramix_models::dinov2::MAX_PATCHES {
                    return Err(ExperimentError::Invalid(format!(
                        "--image-size {size} cuts images into {grid}x{grid} patches of {} pixels; at most {} patches (DINOv2's largest grid) are allowed, as attention grows with their square: give a smaller --image-size",
                        config.patch_size,
                        loramix_models::dinov2::MAX_PATCHES
                    )));
                }
                let shape = ImageShape::square(3, size);
                Ok(Self::Vision(Vision::pretrained(dir, shape, Some(size))?))
            }
        }
    }
}

/// The pretrained model of a family [`UserBase::open`] made (always a checkpoint's).
pub fn base_of<F: crate::family::Family>(family: &F) -> &F::Frozen {
    family.pretrained().expect("a user base is pretrained")
}

/// Reads the adapter in `dir`, PEFT or loramix, printing what was left out of it.
pub fn load_adapter(dir: &Path, names: &HfBlockNames, base_fingerprint: &str) -> Result<Adapter> {
    let (adapter, notes) = loramix_peft::read_either(dir, names, base_fingerprint)?;
    for note in notes {
        eprintln!("note: {note}");
    }
    Ok(adapter)
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
