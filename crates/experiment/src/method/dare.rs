//! DARE (Yu et al. 2024): drop each delta entry with probability `drop`, rescale the rest by
//! 1/(1 - drop), sum with weights; folded into the base, with a fresh head.

use loramix_compose::{DenseMerge, uniform_weights};
use serde::{Deserialize, Serialize};

use super::{
    CellJob, Composition, FrozenCache, Outcome, SweepMethod, check_module_weights, in_range,
};
use crate::error::Result;
use crate::family::Family;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dare {
    /// Probability of dropping an entry, in [0, 1).
    pub drop: f32,
    /// One weight per upstream module (default: 1/N each).
    #[serde(default)]
    pub weights: Option<Vec<f32>>,
    /// Seeds the drops (the same seed drops the same entries at every cell). Left out of the
    /// written settings at its default, so cells of earlier runs keep their hash.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seed: u64,
}

fn is_zero(seed: &u64) -> bool {
    *seed == 0
}

impl SweepMethod for Dare {
    const KIND: &'static str = "dare";

    fn uses_modules(&self) -> bool {
        true
    }

    fn check(&self) -> std::result::Result<(), String> {
        in_range("drop", self.drop.into(), "[0, 1)", |v| {
            (0.0..1.0).contains(&v)
        })
    }

    fn check_modules(&self, modules: usize) -> std::result::Result<(), String> {
        match &self.weights {
            Some(weights) => check_module_weights(weights, modules),
            None => Ok(()),
        }
    }

    fn run<F: Family>(&self, job: &CellJob<F>, frozen: &mut FrozenCache<F>) -> Result<Outcome> {
        job.fit_frozen(frozen, || Ok(self.compose(job)?.model))
    }
}

impl Dare {
    pub fn compose<F: Family>(&self, job: &CellJob<F>) -> Result<Composition<F>> {
        let weights = (self.weights.clone()).unwrap_or_else(|| uniform_weights(job.adapters.len()));
        let merge = DenseMerge::Dare {
            drop: self.drop,
            weights: weights.clone(),
            seed: self.seed,
        };
        Composition::merged(job, &merge, vec![("all".into(), weights)])
    }
}
