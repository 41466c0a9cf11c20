//! LoRA from scratch: a fresh low-rank update on the upstream targets and a fresh head.

use burn::module::AutodiffModule;
use loramix_models::{Classifier, Trainable};
use serde::{Deserialize, Serialize};

use super::{CellJob, FrozenCache, Outcome, SweepMethod, check_rate, in_range};
use crate::error::Result;
use crate::family::Family;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lora {
    /// Rank and alpha of the fresh LoRA (default: the upstream modules').
    #[serde(default)]
    pub rank: Option<usize>,
    #[serde(default)]
    pub alpha: Option<f32>,
    /// The head's learning rate, when it should differ from `lr`.
    #[serde(default)]
    pub head_lr: Option<f64>,
}

impl SweepMethod for Lora {
    const KIND: &'static str = "lora";

    fn uses_modules(&self) -> bool {
        false
    }

    fn check(&self) -> std::result::Result<(), String> {
        if let Some(rank) = self.rank {
            in_range("rank", rank as f64, "1 or more", |v| v >= 1.0)?;
        }
        if let Some(alpha) = self.alpha {
            in_range("alpha", alpha.into(), "positive", |v| v > 0.0)?;
        }
        check_rate("head_lr", self.head_lr)
    }

    fn run<F: Family>(&self, job: &CellJob<F>, _: &mut FrozenCache<F>) -> Result<Outcome> {
        let config = (job.lora.clone())
            .with_rank(self.rank.unwrap_or(job.lora.rank))
            .with_alpha(self.alpha.unwrap_or(job.lora.alpha));
        let build = || {
            F::Trained::from_inner(job.base.clone())
                .with_head(job.n_classes(), job.device)
                .with_lora(&config, job.device)
                .trainable(Trainable::AdaptersAndHead)
        };
        job.fit_trained(build, self.head_lr)
    }
}
