//! The paper's learned composition: softmax weights per layer over the frozen modules, trained
//! with a fresh head on the cell's examples.

use burn::module::AutodiffModule;
use loramix_backend::Train;
use loramix_compose::{
    LearnedComposition, LearnedConfig, Normalisation, Penalty, Sharing, attach, uniform_weights,
};
use loramix_models::{Classifier, Trainable, trainable_params};
use serde::{Deserialize, Serialize};

use super::{CellJob, Composition, FrozenCache, Outcome, SweepMethod, check_rate, in_range};
use crate::error::Result;
use crate::family::Family;
use crate::fit::fit_stopped;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Learned {
    /// The head's learning rate, when it should differ from `lr` (the weights' rate).
    #[serde(default)]
    pub head_lr: Option<f64>,
    /// One weight vector per layer (the paper) or one shared.
    #[serde(default)]
    pub sharing: Sharing,
    /// Softmax weights (the paper) or unconstrained ones.
    #[serde(default)]
    pub normalisation: Normalisation,
    #[serde(default)]
    pub penalty: Penalty,
}

impl SweepMethod for Learned {
    const KIND: &'static str = "learned";

    fn uses_modules(&self) -> bool {
        true
    }

    fn check(&self) -> std::result::Result<(), String> {
        let coefficient = match self.penalty {
            Penalty::L1(c) | Penalty::Entropy(c) => c,
            Penalty::None => 0.0,
        };
        in_range("penalty", coefficient.into(), "0 or more", |v| v >= 0.0)?;
        check_rate("head_lr", self.head_lr)
    }

    fn run<F: Family>(&self, job: &CellJob<F>, _: &mut FrozenCache<F>) -> Result<Outcome> {
        Ok(self.compose(job)?.tested_with_own_head(job))
    }
}

impl Learned {
    /// The weights and a fresh head trained together; the model keeps that head.
    pub fn compose<F: Family>(&self, job: &CellJob<F>) -> Result<Composition<F>> {
        let device = job.device;
        let mut model = F::Trained::from_inner(job.base.clone()).with_head(job.n_classes(), device);
        attach(
            &mut model,
            job.adapters,
            &uniform_weights(job.adapters.len()),
            device,
        )?;
        let config = LearnedConfig {
            sharing: self.sharing,
            normalisation: self.normalisation,
            penalty: self.penalty,
        };
        let learned =
            LearnedComposition::new(model, config, device)?.trainable(Trainable::AdaptersAndHead);
        let trainable_params = trainable_params(&learned);
        let set = job.train_set();
        let score = |l: &LearnedComposition<Train, F::Trained>| {
            job.val_score(&l.composed().valid().fold_lora())
        };
        // Every candidate starts from this composition: uniform weights and one fresh head.
        let (learned, choice) = job.best_of(self.head_lr, |schedule| {
            let stop = job.early_stop(schedule, &score);
            let (seed, hidden) = (job.seed, job.hidden());
            fit_stopped::<F, _>(
                learned.clone(),
                &set,
                schedule,
                seed,
                &hidden,
                stop.as_ref(),
            )
        })?;
        Ok(Composition {
            trainable_params,
            choice,
            ..Composition::of_host(learned.composed().valid(), learned.layer_weights())
        })
    }
}
