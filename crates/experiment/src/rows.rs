//! The rows the stages write: `sweep/*.csv` (one per cell), `sweep/*.weights.csv` (module
//! weights a cell chose), `sweep/tuning/` (the tuning tasks' cells and every factor they
//! tried) and `similarity-*.csv`. Each carries the hash of the config that made
//! it, so rows of another config are never mistaken for this one's.

use loramix_design::{Shift, Shot};
use serde::{Deserialize, Serialize};

/// One finished cell of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellRow {
    pub task: String,
    pub shift: Shift,
    pub method: String,
    pub k: Shot,
    pub seed: usize,
    pub accuracy: f64,
    pub trainable_params: usize,
    /// Training time of the cell (feature extraction included for frozen backbones).
    pub train_seconds: f64,
    /// Training examples processed per second (steps x batch / train_seconds).
    pub samples_per_sec: f64,
    /// Hash of everything the cell depends on; rows of another config are not reused.
    pub config: String,
    /// What the tuning chose on the cell's validation examples (empty without tuning): the
    /// rates, the steps kept by early stopping and the validation accuracy.
    #[serde(default)]
    pub lr: Option<f64>,
    #[serde(default)]
    pub head_lr: Option<f64>,
    #[serde(default)]
    pub steps: Option<usize>,
    #[serde(default)]
    pub val_accuracy: Option<f64>,
    /// Every rate factor the tuning tried and its validation accuracy, `factor=accuracy`
    /// separated by spaces, in the order tried (empty without tuning).
    #[serde(default)]
    pub candidates: String,
    /// The factor added past an edge of the grid because the best lay on it (once).
    #[serde(default)]
    pub extended_to: Option<f64>,
}

/// A learned (or searched) module weight of one cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightRow {
    pub task: String,
    pub method: String,
    pub k: Shot,
    pub seed: usize,
    pub layer: String,
    pub module: String,
    pub weight: f64,
    pub config: String,
}

/// One rate factor a tuning cell tried (`sweep/tuning/<shard>.candidates.csv`), with the validation
/// score of its best check: what the choice per method and shot is made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateRow {
    pub task: String,
    pub method: String,
    pub k: Shot,
    pub seed: usize,
    pub factor: f64,
    pub val_accuracy: Option<f64>,
    pub val_loss: Option<f64>,
    pub config: String,
}

/// CKA between a downstream task's representation and an upstream module's: the report's own
/// row type, so the file is written and read by one definition.
pub use loramix_report::SimilarityRow;

/// How the similarity stage's reference LoRA of a downstream task trained
/// (`similarity-<hash>.references.csv`): a reference that stayed near the base makes its
/// CKA uninformative, so the report states this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceRow {
    pub task: String,
    pub steps: usize,
    pub max_steps: usize,
    pub val_accuracy: Option<f64>,
    /// Stopped because validation stopped improving, before `max_steps`.
    pub converged: bool,
    pub test_accuracy: f64,
}

impl ReferenceRow {
    /// The file beside the similarity rows at `similarity`.
    pub fn path(similarity: &std::path::Path) -> std::path::PathBuf {
        similarity.with_extension("references.csv")
    }
}

/// What identifies a cell: task, method, k, seed and the config hash.
pub type CellKey = (String, String, Shot, usize, String);

impl CellRow {
    pub fn key(&self) -> CellKey {
        cell_key(&self.task, &self.method, self.k, self.seed, &self.config)
    }
}

impl CandidateRow {
    /// The key of the tuning cell that tried this factor.
    pub fn key(&self) -> CellKey {
        cell_key(&self.task, &self.method, self.k, self.seed, &self.config)
    }
}

impl WeightRow {
    /// The key of the cell that chose this weight.
    pub fn key(&self) -> CellKey {
        cell_key(&self.task, &self.method, self.k, self.seed, &self.config)
    }
}

fn cell_key(task: &str, method: &str, k: Shot, seed: usize, config: &str) -> CellKey {
    let (task, method, config) = (task.to_string(), method.to_string(), config.to_string());
    (task, method, k, seed, config)
}
