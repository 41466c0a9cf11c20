//! The paper's uniform composition: the mean of the modules' exact deltas, folded into the
//! base, with a fresh head.

use loramix_compose::uniform_weights;
use serde::{Deserialize, Serialize};

use super::{CellJob, Composition, FrozenCache, Outcome, SweepMethod};
use crate::error::Result;
use crate::family::Family;

/// Every module weighted 1/N; no settings of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uniform {}

impl SweepMethod for Uniform {
    const KIND: &'static str = "uniform";

    fn uses_modules(&self) -> bool {
        true
    }

    fn run<F: Family>(&self, job: &CellJob<F>, frozen: &mut FrozenCache<F>) -> Result<Outcome> {
        job.fit_frozen(frozen, || Ok(self.compose(job)?.model))
    }
}

impl Uniform {
    pub fn compose<F: Family>(&self, job: &CellJob<F>) -> Result<Composition<F>> {
        Composition::attached(job, &uniform_weights(job.adapters.len()))
    }
}
