use burn::config::Config;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A linear layer of a transformer block that can carry a LoRA update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Attention query projection.
    Query,
    /// Attention key projection.
    Key,
    /// Attention value projection.
    Value,
    /// Attention output projection.
    Output,
    /// First MLP linear (dim to hidden).
    MlpIn,
    /// Second MLP linear (hidden to dim).
    MlpOut,
}

impl Target {
    /// Every target, in block order.
    pub const ALL: [Target; 6] = [
        Target::Query,
        Target::Key,
        Target::Value,
        Target::Output,
        Target::MlpIn,
        Target::MlpOut,
    ];

    /// The name used in configs, adapter manifests and layer paths.
    pub fn name(self) -> &'static str {
        match self {
            Target::Query => "query",
            Target::Key => "key",
            Target::Value => "value",
            Target::Output => "output",
            Target::MlpIn => "mlp_in",
            Target::MlpOut => "mlp_out",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Target::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Target::ALL.iter().map(|t| t.name()).collect();
                format!(
                    "unknown LoRA target `{s}`; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// How to attach LoRA updates to a model.
#[derive(Config, Debug, PartialEq)]
pub struct LoraConfig {
    /// Rank `r` of the update.
    #[config(default = 8)]
    pub rank: usize,
    /// `alpha`; the update is scaled by `alpha / rank`.
    #[config(default = 16.0)]
    pub alpha: f32,
    /// Dropout applied to the input of the low-rank path only, during training.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Which linears of each block get an update.
    #[config(default = "vec![Target::Query, Target::Value]")]
    pub targets: Vec<Target>,
}

impl LoraConfig {
    /// The scale `s = alpha / r` applied to `B A`.
    pub fn scale(&self) -> f32 {
        self.alpha / self.rank as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_print_round_trip() {
        for t in Target::ALL {
            assert_eq!(t.name().parse::<Target>(), Ok(t));
        }
        let err = "queries".parse::<Target>().unwrap_err();
        assert!(err.contains("queries") && err.contains("mlp_out"), "{err}");
    }

    #[test]
    fn default_config_adapts_query_and_value() {
        let cfg = LoraConfig::new();
        assert_eq!(cfg.targets, vec![Target::Query, Target::Value]);
        assert_eq!(cfg.scale(), 2.0);
    }
}
