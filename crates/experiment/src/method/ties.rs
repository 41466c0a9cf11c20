//! TIES merging (Yadav et al. 2023): trim each delta to its largest entries, elect a sign per
//! entry, average the agreeing ones; folded into the base, with a fresh head.

use loramix_compose::DenseMerge;
use serde::{Deserialize, Serialize};

use super::{CellJob, Composition, FrozenCache, Outcome, SweepMethod, in_range};
use crate::error::Result;
use crate::family::Family;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ties {
    /// Fraction of each delta's entries kept, in (0, 1].
    pub density: f32,
    /// Scale of the merged delta.
    #[serde(default = "one")]
    pub lambda: f32,
}

fn one() -> f32 {
    1.0
}

impl SweepMethod for Ties {
    const KIND: &'static str = "ties";

    fn uses_modules(&self) -> bool {
        true
    }

    fn check(&self) -> std::result::Result<(), String> {
        in_range("density", self.density.into(), "(0, 1]", |v| {
            v > 0.0 && v <= 1.0
        })?;
        in_range("lambda", self.lambda.into(), "a finite number", |_| true)
    }

    fn run<F: Family>(&self, job: &CellJob<F>, frozen: &mut FrozenCache<F>) -> Result<Outcome> {
        job.fit_frozen(frozen, || Ok(self.compose(job)?.model))
    }
}

impl Ties {
    pub fn compose<F: Family>(&self, job: &CellJob<F>) -> Result<Composition<F>> {
        let merge = DenseMerge::Ties {
            density: self.density,
            lambda: self.lambda,
        };
        Composition::merged(job, &merge, Vec::new())
    }
}
