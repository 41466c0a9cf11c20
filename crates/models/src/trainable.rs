//! Which parameters a training run changes.

use serde::{Deserialize, Serialize};

/// Which parameters an optimizer may change. Everything else is frozen with
/// [`Module::no_grad`](burn::module::Module::no_grad): it gets no gradient, so the optimizer never sees it (no state, no weight
/// decay), not merely a zero update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trainable {
    /// Full fine-tuning: every weight.
    All,
    /// Linear probe: the head only.
    HeadOnly,
    /// LoRA: the attached low-rank factors and the head.
    AdaptersAndHead,
}
