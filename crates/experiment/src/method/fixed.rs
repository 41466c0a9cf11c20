//! Task arithmetic: the modules' deltas with weights the user chose, folded into the base, with
//! a fresh head.

use serde::{Deserialize, Serialize};

use super::{CellJob, Composition, FrozenCache, Outcome, SweepMethod, check_module_weights};
use crate::error::Result;
use crate::family::Family;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixed {
    /// One weight per upstream module, in suite order (any sign, any sum).
    pub weights: Vec<f32>,
}

impl SweepMethod for Fixed {
    const KIND: &'static str = "fixed";

    fn uses_modules(&self) -> bool {
        true
    }

    fn check_modules(&self, modules: usize) -> std::result::Result<(), String> {
        check_module_weights(&self.weights, modules)
    }

    fn run<F: Family>(&self, job: &CellJob<F>, frozen: &mut FrozenCache<F>) -> Result<Outcome> {
        job.fit_frozen(frozen, || Ok(self.compose(job)?.model))
    }
}

impl Fixed {
    pub fn compose<F: Family>(&self, job: &CellJob<F>) -> Result<Composition<F>> {
        Composition::attached(job, &self.weights)
    }
}
