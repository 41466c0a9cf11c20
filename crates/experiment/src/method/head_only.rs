//! The reference point: a linear probe on the frozen base.

use serde::{Deserialize, Serialize};

use super::{CellJob, FrozenCache, Outcome, SweepMethod};
use crate::error::Result;
use crate::family::Family;

/// A fresh head on the frozen base's features; no settings of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadOnly {}

impl SweepMethod for HeadOnly {
    const KIND: &'static str = "head-only";

    fn uses_modules(&self) -> bool {
        false
    }

    fn run<F: Family>(&self, job: &CellJob<F>, frozen: &mut FrozenCache<F>) -> Result<Outcome> {
        job.fit_frozen(frozen, || Ok(job.base.clone()))
    }
}
