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

/// `layers_to_transform`: one layer index or a list of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LayerIndices {
    One(usize),
    Many(Vec<usize>),
}

/// `layers_pattern`: the name (or names) of the module list whose index `layers_to_transform`
/// selects (`layer` in `encoder.layer.3.attention...`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LayersPattern {
    One(String),
    Many(Vec<String>),
}

/// Settings of newer PEFT versions that change what an adapter computes (activated LoRA,
/// layer replication, LoRA on raw parameters, trainable tokens, routing): refused when set,
/// since loramix would otherwise compute something else than PEFT does.
const CHANGES_THE_COMPUTATION: [&str; 8] = [
    "alora_invocation_tokens",
    "arrow_config",
    "kasa_config",
    "layer_replication",
    "target_parameters",
    "trainable_token_indices",
    "use_bdlora",
    "use_qalora",
];

/// `init_lora_weights` values with which PEFT rewrites the base weights whenever it loads the
/// adapter (PiSSA, OLoRA, CorDA, LoftQ, LoRA-GA), so the adapter's `B A` is not an update of
/// the original base.
const REWRITES_THE_BASE: [&str; 5] = ["pissa", "olora", "corda", "loftq", "lora_ga"];

/// The PEFT LoRA configuration (unknown fields, which PEFT adds over versions, are ignored,
/// except those in [`CHANGES_THE_COMPUTATION`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeftConfig {
    pub peft_type: String,
    pub r: usize,
    pub lora_alpha: f32,
    #[serde(default)]
    pub target_modules: Option<TargetModules>,
    #[serde(default)]
    pub exclude_modules: Option<TargetModules>,
    #[serde(default)]
    pub layers_to_transform: Option<LayerIndices>,
    #[serde(default)]
    pub layers_pattern: Option<LayersPattern>,
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
    /// Every other field, to refuse those in [`CHANGES_THE_COMPUTATION`] when set.
    #[serde(flatten, skip_serializing)]
    pub other: BTreeMap<String, serde_json::Value>,
}

fn no_bias() -> String {
    "none".into()
}

impl PeftConfig {
    /// Reads and checks `adapter_config.json`.
    pub fn from_file(path: &Path) -> Result<Self, PeftError> {
        let text = loramix_lora::files::read_to_string(path).map_err(|source| PeftError::Io {
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
        if let Some((key, alpha)) = self.alpha_pattern.iter().find(|(_, a)| !a.is_finite()) {
            return Err(("alpha_pattern", format!("alpha {alpha} for `{key}`")));
        }
        for field in CHANGES_THE_COMPUTATION {
            let set = self.other.get(field).is_some_and(|v| match v {
                serde_json::Value::Null | serde_json::Value::Bool(false) => false,
                serde_json::Value::Array(a) => !a.is_empty(),
                serde_json::Value::Object(o) => !o.is_empty(),
                _ => true,
            });
            if set {
                return Err((
                    field,
                    format!(
                        "is set ({}); loramix computes plain LoRA only and would differ from PEFT",
                        self.other[field]
                    ),
                ));
            }
        }
        if let Some(serde_json::Value::String(init)) = self.other.get("init_lora_weights")
            && REWRITES_THE_BASE.iter().any(|p| init.starts_with(p))
        {
            return Err((
                "init_lora_weights",
                format!(
                    "`{init}`: PEFT rewrites the base weights when it loads such an adapter; convert it to a plain LoRA with PEFT (`path_initial_model_for_weight_conversion` on save)"
                ),
            ));
        }
        let layered = self.layers_to_transform.is_some() || self.layers_pattern.is_some();
        if layered && matches!(self.target_modules, Some(TargetModules::Pattern(_))) {
            return Err((
                "layers_to_transform",
                "cannot be combined with a regex target_modules (PEFT refuses it too)".into(),
            ));
        }
        if self.layers_pattern.is_some() && self.layers_to_transform.is_none() {
            return Err((
                "layers_pattern",
                "is set without layers_to_transform (PEFT refuses it too)".into(),
            ));
        }
        let patterns = [
            ("target_modules", &self.target_modules),
            ("exclude_modules", &self.exclude_modules),
        ];
        for (field, patterns) in patterns {
            if let Some(TargetModules::Pattern(p)) = patterns {
                Regex::new(&format!("^(?:{p})$"))
                    .map_err(|e| (field, format!("`{p}` is not a regex: {e}")))?;
            }
        }
        for p in self.layer_patterns() {
            layer_regex(&p)
                .map_err(|e| ("layers_pattern", format!("`{p}` is not a regex: {e}")))?;
        }
        for key in self.rank_pattern.keys().chain(self.alpha_pattern.keys()) {
            pattern_regex(key).map_err(|e| ("rank_pattern / alpha_pattern", e))?;
        }
        Ok(())
    }

    /// Whether PEFT puts a LoRA on the module at `path` (PEFT's `check_target_module_exists`):
    /// not excluded by `exclude_modules`; then `target_modules` as a regex matching the whole
    /// path, or as names matching the path or its end (`.query`), and in that last case only in
    /// the blocks `layers_to_transform` lists (their index follows `layers_pattern`).
    pub fn targets(&self, path: &str) -> bool {
        let listed = |names: &[String]| {
            names
                .iter()
                .any(|n| path == n || path.ends_with(&format!(".{n}")))
        };
        let excluded = match &self.exclude_modules {
            Some(TargetModules::Pattern(p)) => full_match(p, path),
            Some(TargetModules::Names(names)) => listed(names),
            None => false,
        };
        if excluded {
            return false;
        }
        match &self.target_modules {
            // No list: PEFT's defaults for the model type; every tensor in the file was one.
            None => true,
            Some(TargetModules::Pattern(p)) if p.eq_ignore_ascii_case("all-linear") => true,
            Some(TargetModules::Pattern(p)) => full_match(p, path),
            Some(TargetModules::Names(names)) if names.iter().any(|n| n == path) => true,
            Some(TargetModules::Names(names)) => listed(names) && self.in_transformed_layer(path),
        }
    }

    /// The names `layers_pattern` gives (none when unset or empty).
    fn layer_patterns(&self) -> Vec<String> {
        match &self.layers_pattern {
            None => Vec::new(),
            Some(LayersPattern::One(p)) if p.is_empty() => Vec::new(),
            Some(LayersPattern::One(p)) => vec![p.clone()],
            Some(LayersPattern::Many(list)) => list.clone(),
        }
    }

    /// Whether `path` lies in a block that `layers_to_transform` selects (any block if unset).
    fn in_transformed_layer(&self, path: &str) -> bool {
        let wanted = match &self.layers_to_transform {
            None => return true,
            Some(LayerIndices::Many(list)) if list.is_empty() => return true,
            Some(LayerIndices::One(i)) => vec![*i],
            Some(LayerIndices::Many(list)) => list.clone(),
        };
        let patterns = self.layer_patterns();
        let regexes = if patterns.is_empty() {
            vec![Regex::new(r"^.*?\.[^.]*\.(\d+)\.").expect("a valid regex")]
        } else {
            patterns
                .iter()
                .filter_map(|p| layer_regex(p).ok())
                .collect()
        };
        let index = regexes
            .iter()
            .find_map(|regex| regex.captures(path)?.get(1)?.as_str().parse::<usize>().ok());
        index.is_some_and(|i| wanted.contains(&i))
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

/// Whether the regex `pattern` matches all of `path` (Python's `re.fullmatch`); checked to
/// compile when the config is read.
fn full_match(pattern: &str, path: &str) -> bool {
    Regex::new(&format!("^(?:{pattern})$")).is_ok_and(|r| r.is_match(path))
}

/// PEFT's regex for the block index after `layers_pattern` `p` (a regex itself): the first
/// `.{p}.<index>.` of the path.
fn layer_regex(p: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!(r"^(?:^|.*?\.){p}\.(\d+)\."))
}

/// The regex of a `rank_pattern` / `alpha_pattern` key.
fn pattern_regex(key: &str) -> Result<Regex, String> {
    Regex::new(&format!(r"^(.*\.)?({key})$")).map_err(|e| format!("`{key}`: {e}"))
}

/// PEFT's rule: key `k` applies to `path` if `(.*\.)?(k)$` matches it.
fn pattern_match<'a, V>(
    patterns: &'a BTreeMap<String, V>,
    path: &str,
) -> Result<Option<&'a V>, PeftError> {
    let mut found = None;
    for (key, value) in patterns {
        let regex = pattern_regex(key).map_err(PeftError::Pattern)?;
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
