//! The rows of the pipeline's CSV files, with the column names fixed by the pipeline.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How the downstream task differs from the upstream ones. The derived order (covariate, label,
/// task) is the order of the report's sections.
/// Parsed by hand (not serde's derive) so a bad value's error names the column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum Shift {
    Covariate,
    Label,
    Task,
}

impl Shift {
    pub fn name(self) -> &'static str {
        match self {
            Shift::Covariate => "covariate",
            Shift::Label => "label",
            Shift::Task => "task",
        }
    }
}

impl TryFrom<String> for Shift {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.trim() {
            "covariate" => Ok(Shift::Covariate),
            "label" => Ok(Shift::Label),
            "task" => Ok(Shift::Task),
            _ => Err(format!(
                "shift must be `covariate`, `label` or `task`, got `{s}`"
            )),
        }
    }
}

impl From<Shift> for &'static str {
    fn from(shift: Shift) -> &'static str {
        shift.name()
    }
}

/// Labelled examples per class: `1`, `2`, ... or `full`. The derived order puts every `K` in
/// numeric order and `Full` last, which is the column order of every table and plot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Shots {
    K(u32),
    Full,
}

impl fmt::Display for Shots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shots::K(k) => write!(f, "{k}"),
            Shots::Full => f.write_str("full"),
        }
    }
}

impl FromStr for Shots {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "full" => Ok(Shots::Full),
            k => k
                .parse()
                .map(Shots::K)
                .map_err(|_| format!("k must be a whole number or `full`, got `{s}`")),
        }
    }
}

impl TryFrom<String> for Shots {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Shots> for String {
    fn from(k: Shots) -> String {
        k.to_string()
    }
}

/// One run of the sweep: `task,shift,method,k,seed,accuracy,trainable_params,train_seconds,samples_per_sec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    pub task: String,
    pub shift: Shift,
    /// An opaque label from the experiment config (`head-only`, `lora`, `learned`, ...).
    pub method: String,
    pub k: Shots,
    pub seed: u64,
    /// Test accuracy in [0, 1].
    pub accuracy: f64,
    pub trainable_params: u64,
    pub train_seconds: f64,
    pub samples_per_sec: f64,
}

/// One learned composition weight: `task,method,k,seed,layer,module,weight`. `layer` is a
/// parameter path (`encoder.blocks.0.query`) or `all` when one weight is shared by every layer;
/// `module` names the upstream task whose adapter the weight scales.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightRow {
    pub task: String,
    pub method: String,
    pub k: Shots,
    pub seed: u64,
    pub layer: String,
    pub module: String,
    pub weight: f64,
}

/// Linear CKA between the downstream task's representation and upstream module `module`'s:
/// `task,module,cka`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarityRow {
    pub task: String,
    pub module: String,
    pub cka: f64,
}
