//! `adapter_config.json`: the fields of PEFT's `LoraConfig` that decide what the tensors mean,
//! and the refusal of every setting loramix does not compute.

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::PeftError;

/// `target_modules`: module names (matched as the full path or its last components) or one
/// regular expression matched against the full path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetModules {
    Names(Vec<String>),
    Pattern(String),
}

/// The PEFT LoRA configuration (unknown fields, which PEFT adds over versions, are ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeftConfig {
    pub peft_type: String,
    pub r: usize,
    pub lora_alpha: f32,
    #[serde(default)]
    pub target_modules: Option<TargetModules>,
    #[serde(default)]
    pub rank_pattern: BTreeMap<String, usize>,
    #[serde(default)]
    pub alpha_pattern: BTreeMap<String, f32>,
    #[serde(default)]
    pub use_rslora: bool,
    #[serde(default)]
    pub fan_in_fan_out: bool,
    #[serde(default = "no_bias")]
    pub bias: String,
    #[serde(default)]
    pub modules_to_save: Option<Vec<String>>,
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    #[serde(default)]
    pub use_dora: bool,
    #[serde(default)]
    pub lora_bias: bool,
    #[serde(default)]
    pub lora_dropout: f32,
}

fn no_bias() -> String {
    "none".into()
}

impl PeftConfig {
    /// Reads and checks `adapter_config.json`.
    pub fn from_file(path: &Path) -> Result<Self, PeftError> {
        let text = std::fs::read_to_string(path).map_err(|source| PeftError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config: Self = serde_json::from_str(&text).map_err(|e| PeftError::Config {
            path: path.to_path_buf(),
            field: "(file)".into(),
            problem: e.to_string(),
        })?;
        config
            .check()
            .map_err(|(field, problem)| PeftError::Config {
                path: path.to_path_buf(),
                field: field.into(),
                problem,
            })?;
        Ok(config)
    }

    fn check(&self) -> Result<(), (&'static str, String)> {
        let unsupported =
            |field, what: &str| Err((field, format!("{what} is not supported by loramix")));
        if self.peft_type != "LORA" {
            return Err(("peft_type", format!("`{}` is not LoRA", self.peft_type)));
        }
        if self.r == 0 || !self.lora_alpha.is_finite() {
            return Err(("r", "r must be at least 1 and lora_alpha finite".into()));
        }
        if self.use_dora {
            return unsupported("use_dora", "DoRA (weight-decomposed LoRA)");
        }
        if self.bias != "none" || self.lora_bias {
            return unsupported("bias", &format!("training biases (`{}`)", self.bias));
        }
        if self.fan_in_fan_out {
            return unsupported("fan_in_fan_out", "a transposed (Conv1D) base layer");
        }
        if self.modules_to_save.as_ref().is_some_and(|m| !m.is_empty()) {
            return Err((
                "modules_to_save",
                "saved task heads are not loaded: loramix trains its own head on mean-pooled (BERT) or class-token (DINOv2) features".into(),
            ));
        }
        if let Some((key, _)) = self.rank_pattern.iter().find(|(_, r)| **r == 0) {
            return Err(("rank_pattern", format!("rank 0 for `{key}`")));
        }
        Ok(())
    }

    /// Rank and scale of the LoRA on the module at `path`, as PEFT computes them: the
    /// `rank_pattern` / `alpha_pattern` key that matches the path's end, else `r` and
    /// `lora_alpha`; the scale is `alpha / r`, or `alpha / sqrt(r)` with rsLoRA. Two keys that
    /// both match are refused: PEFT takes the first in file order, which is not kept here.
    pub fn rank_and_scale(&self, path: &str) -> Result<(usize, f32), PeftError> {
        let rank = *pattern_match(&self.rank_pattern, path)?.unwrap_or(&self.r);
        let alpha = *pattern_match(&self.alpha_pattern, path)?.unwrap_or(&self.lora_alpha);
        let scale = if self.use_rslora {
            alpha / (rank as f32).sqrt()
        } else {
            alpha / rank as f32
        };
        Ok((rank, scale))
    }
}

/// PEFT's rule: key `k` applies to `path` if `(.*\.)?(k)$` matches it.
fn pattern_match<'a, V>(
    patterns: &'a BTreeMap<String, V>,
    path: &str,
) -> Result<Option<&'a V>, PeftError> {
    let mut found = None;
    for (key, value) in patterns {
        let regex = Regex::new(&format!(r"^(.*\.)?({key})$"))
            .map_err(|e| PeftError::Pattern(format!("`{key}`: {e}")))?;
        if regex.is_match(path) {
            if let Some((first, _)) = found {
                return Err(PeftError::Pattern(format!(
                    "both `{first}` and `{key}` match `{path}`"
                )));
            }
            found = Some((key, value));
        }
    }
    Ok(found.map(|(_, value)| value))
}
