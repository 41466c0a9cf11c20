//! Arrow routing (Ostapenko et al. 2024, as PEFT's `create_arrow_model` builds it): no
//! training of the modules' mix; per token, each layer adds the `top_k` modules whose
//! prototype best matches its input, with a fresh head on top. The sweep routes without
//! GenKnowSub (its library has no general-domain modules); `compose --general` adds it.

use loramix_compose::{ArrowConfig, route};
use loramix_lora::Adapter;
use loramix_models::Classifier;
use serde::{Deserialize, Serialize};

use super::{CellJob, Composition, FrozenCache, Outcome, SweepMethod, Update, in_range};
use crate::error::Result;
use crate::family::Family;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arrow {
    /// Modules combined per token (PEFT's default 3).
    #[serde(default = "three")]
    pub top_k: usize,
    /// Softmax temperature of the routing scores.
    #[serde(default = "one")]
    pub temperature: f32,
    /// Seed of the prototypes' power iteration (PEFT's `rng_seed`).
    #[serde(default)]
    pub seed: u64,
    /// General-domain adapters whose mean is subtracted from every module (GenKnowSub); given
    /// by `compose --general`, never by an experiment file.
    #[serde(skip)]
    pub general: Vec<Adapter>,
}

fn three() -> usize {
    3
}

fn one() -> f32 {
    1.0
}

impl SweepMethod for Arrow {
    const KIND: &'static str = "arrow";

    fn uses_modules(&self) -> bool {
        true
    }

    fn check(&self) -> std::result::Result<(), String> {
        in_range("top_k", self.top_k as f64, "1 or more", |v| v >= 1.0)?;
        in_range("temperature", self.temperature.into(), "above 0", |v| {
            v > 0.0
        })
    }

    fn check_modules(&self, modules: usize) -> std::result::Result<(), String> {
        match self.top_k <= modules {
            true => Ok(()),
            false => Err(format!(
                "`top_k` {} is more than the {modules} upstream modules",
                self.top_k
            )),
        }
    }

    fn run<F: Family>(&self, job: &CellJob<F>, frozen: &mut FrozenCache<F>) -> Result<Outcome> {
        job.fit_frozen(frozen, || Ok(self.compose(job)?.model))
    }
}

impl Arrow {
    pub fn config(&self) -> ArrowConfig {
        ArrowConfig {
            top_k: self.top_k,
            temperature: self.temperature,
            seed: self.seed,
        }
    }

    /// The modules routed on the base; the model keeps the routing (it does not fold).
    pub fn compose<F: Family>(&self, job: &CellJob<F>) -> Result<Composition<F>> {
        let mut host = job.base.clone();
        route(
            &mut host,
            job.adapters,
            &self.general,
            &self.config(),
            job.device,
        )?;
        Ok(Composition {
            model: host.fold_lora(),
            update: Update::Routed {
                config: self.config(),
                general: self.general.clone(),
            },
            weights: Vec::new(),
            trainable_params: 0,
            choice: None,
            kept: None,
        })
    }
}
