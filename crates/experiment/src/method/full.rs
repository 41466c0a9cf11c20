//! Full fine-tuning: every weight of the base and a fresh head.

use burn::module::AutodiffModule;
use loramix_models::{Classifier, Trainable};
use serde::{Deserialize, Serialize};

use super::{CellJob, FrozenCache, Outcome, SweepMethod, check_rate};
use crate::error::Result;
use crate::family::Family;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Full {
    /// The head's learning rate, when it should differ from the backbone's `lr` (a fresh head
    /// next to a pretrained backbone fine-tuned at a small rate would barely move otherwise).
    #[serde(default)]
    pub head_lr: Option<f64>,
}

impl SweepMethod for Full {
    const KIND: &'static str = "full";

    fn uses_modules(&self) -> bool {
        false
    }

    fn check(&self) -> std::result::Result<(), String> {
        check_rate("head_lr", self.head_lr)
    }

    fn run<F: Family>(&self, job: &CellJob<F>, _: &mut FrozenCache<F>) -> Result<Outcome> {
        let build = || {
            F::Trained::from_inner(job.base.clone())
                .with_head(job.n_classes(), job.device)
                .trainable(Trainable::All)
        };
        job.fit_trained(build, self.head_lr)
    }
}
