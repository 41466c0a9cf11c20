//! The rows of the pipeline's CSV files, with the column names fixed by the pipeline.

use serde::{Deserialize, Serialize};

pub use loramix_design::{Shift, Shot};

/// One run of the sweep: `task,shift,method,k,seed,accuracy,trainable_params,train_seconds,samples_per_sec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    pub task: String,
    pub shift: Shift,
    /// An opaque label from the experiment config (`head-only`, `lora`, `learned`, ...).
    pub method: String,
    pub k: Shot,
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
    pub k: Shot,
    pub seed: u64,
    pub layer: String,
    pub module: String,
    pub weight: f64,
}

/// The `module` of the similarity row that measures the base without any module: the
/// baseline each module's CKA is read against. Parenthesised, so no task (a folder name) has
/// it.
pub const BASE_MODULE: &str = "(base)";

/// Linear CKA between the downstream task's representation and upstream module `module`'s
/// (or the base's, [`BASE_MODULE`]): `task,module,cka,cka_debiased`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarityRow {
    pub task: String,
    pub module: String,
    pub cka: f64,
    /// The same by the unbiased HSIC estimator, exploratory: plain linear CKA is biased upwards
    /// when the examples are fewer than the feature dimensions. Absent from files written
    /// before it.
    #[serde(default)]
    pub cka_debiased: Option<f64>,
}

/// A one-shot result row with unit costs: the test modules' fixture.
#[cfg(test)]
pub(crate) fn one_shot(
    task: &str,
    shift: Shift,
    method: &str,
    seed: u64,
    accuracy: f64,
) -> ResultRow {
    ResultRow {
        task: task.into(),
        shift,
        method: method.into(),
        k: Shot::K(1),
        seed,
        accuracy,
        trainable_params: 1,
        train_seconds: 1.0,
        samples_per_sec: 1.0,
    }
}
