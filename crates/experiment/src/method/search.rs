//! LoraHub's recipe (Huang et al. 2023) with a head: module weights searched without gradients
//! on the cell's loss, folded into the base, then a fresh head.

use loramix_compose::SearchConfig;
use serde::{Deserialize, Serialize};

use super::{CellJob, FrozenCache, Outcome, SweepMethod, in_range};
use crate::error::Result;
use crate::family::Family;
use crate::fit::{SearchData, SearchObjective, features, head_accuracy, search};

/// The search's settings; defaults are LoraHub's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Search {
    /// Objective evaluations in all (each is one forward pass over the cell's examples).
    pub budget: usize,
    /// Candidates per generation.
    pub population: usize,
    /// Initial step size of the mutations.
    pub sigma: f32,
    /// `l1 * sum |w_i|` is added to the objective.
    pub l1: f32,
    /// Weights are kept in `[-bound, bound]`.
    pub bound: f32,
    /// What a candidate is scored by: its own fitted head's loss (on the validation examples
    /// when the sweep tunes), or LoraHub's one head fitted on the uniform composition.
    pub objective: SearchObjective,
}

impl Default for Search {
    fn default() -> Self {
        let d = SearchConfig::default();
        Self {
            budget: d.budget,
            population: d.population,
            sigma: d.sigma,
            l1: d.l1,
            bound: d.bound,
            objective: SearchObjective::default(),
        }
    }
}

impl SweepMethod for Search {
    const KIND: &'static str = "search";

    fn uses_modules(&self) -> bool {
        true
    }

    fn check(&self) -> std::result::Result<(), String> {
        in_range("budget", self.budget as f64, "1 or more", |v| v >= 1.0)?;
        in_range("population", self.population as f64, "2 or more", |v| {
            v >= 2.0
        })?;
        in_range("sigma", self.sigma.into(), "positive", |v| v > 0.0)?;
        in_range("l1", self.l1.into(), "0 or more", |v| v >= 0.0)?;
        in_range("bound", self.bound.into(), "positive", |v| v > 0.0)
    }

    fn run<F: Family>(&self, job: &CellJob<F>, _: &mut FrozenCache<F>) -> Result<Outcome> {
        let config = SearchConfig {
            budget: self.budget,
            population: self.population,
            sigma: self.sigma,
            l1: self.l1,
            bound: self.bound,
            seed: job.seed,
        };
        let eval_batch = job.eval_batch;
        let data = SearchData {
            train: &job.items,
            validation: job.validation.as_ref().map(|v| v.items.as_slice()),
            n_classes: job.n_classes(),
            eval_batch,
        };
        let found = search(
            job.family,
            job.base,
            job.adapters,
            &data,
            job.schedule,
            &config,
            self.objective,
        )
        .map_err(|e| e.in_context(job.label.clone()))?;
        // The head is fitted on the found composition as every frozen-backbone method's is
        // (tuned: the candidate rates, early-stopped on validation).
        let (head, choice) = job.fit_head_on(&found.model)?;
        let test = features(job.family, &found.model, job.test, eval_batch, job.parts);
        Ok(Outcome {
            accuracy: head_accuracy(&head, test, job.test),
            trainable_params: job.head_params() + job.adapters.len(),
            weights: vec![("all".to_string(), found.weights)],
            choice,
        })
    }
}
