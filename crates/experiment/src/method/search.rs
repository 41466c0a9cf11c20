//! LoraHub's recipe (Huang et al. 2023) with a head: module weights searched without gradients
//! on the cell's loss, folded into the base, then a fresh head.

use loramix_compose::SearchConfig;
use serde::{Deserialize, Serialize};

use super::{CellJob, Composition, FrozenCache, Outcome, SweepMethod, in_range};
use burn::nn::Linear;
use burn::nn::loss::CrossEntropyLoss;
use burn::tensor::ElementConversion;
use loramix_backend::Inference;
use loramix_compose::{ComposeError, attach, search_weights, set_weights, uniform_weights};
use loramix_lora::Adapter;
use loramix_models::TrainError;

use crate::error::{ExperimentError, Result};
use crate::family::Family;
use crate::fit::{Schedule, features, fit_head, targets};

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
        let composition = self.compose(job)?;
        // The head is fitted on the found composition as every frozen-backbone method's is
        // (tuned: the candidate rates, early-stopped on validation).
        let (accuracy, choice) = job.test_with_fresh_head(&composition.model)?;
        Ok(Outcome {
            accuracy,
            trainable_params: job.head_params() + composition.trainable_params,
            weights: composition.weights,
            choice,
        })
    }
}

impl Search {
    /// One weight per module, searched on the job's examples (scored on its validation
    /// examples when it has them).
    pub fn compose<F: Family>(&self, job: &CellJob<F>) -> Result<Composition<F>> {
        let config = SearchConfig {
            budget: self.budget,
            population: self.population,
            sigma: self.sigma,
            l1: self.l1,
            bound: self.bound,
            seed: job.seed,
        };
        let data = SearchData {
            train: &job.items,
            validation: job.validation.as_ref().map(|v| v.items.as_slice()),
            n_classes: job.n_classes(),
            eval_batch: job.eval_batch,
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
        Ok(Composition {
            trainable_params: job.adapters.len(),
            ..Composition::of_host(found.host, vec![("all".into(), found.weights)])
        })
    }
}

#[derive(Debug)]
pub enum SearchFailure {
    Train(TrainError),
    Compose(ComposeError),
}

impl SearchFailure {
    /// The failure as the command reports it; `context` says which search failed.
    pub fn in_context(self, context: String) -> ExperimentError {
        match self {
            SearchFailure::Train(source) => ExperimentError::Train { context, source },
            SearchFailure::Compose(e) => e.into(),
        }
    }
}

/// A searched composition: the base with the modules attached at the found weights, and the
/// weights.
pub struct Searched<F: Family> {
    pub host: F::Frozen,
    pub weights: Vec<f32>,
}

/// What the weight search minimises for a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SearchObjective {
    /// LoraHub's recipe with a head: the training loss under one head fitted on the uniform
    /// composition. That head favours uniform, so the search rarely leaves it.
    FixedHead,
    /// Each candidate gets its own head fitted on the training examples; its loss on the
    /// validation examples (the training ones without) is the objective.
    #[default]
    OwnHead,
}

/// The examples a search fits and scores heads on.
pub struct SearchData<'a, I> {
    pub train: &'a [I],
    /// Scored on instead of `train` when given.
    pub validation: Option<&'a [I]>,
    pub n_classes: usize,
    /// Examples per feature-extraction batch.
    pub eval_batch: usize,
}

/// A head fitted on `model`'s features of the training examples, from burn's generator as
/// `seed` left it.
fn head_on<F: Family>(
    family: &F,
    model: &F::Frozen,
    data: &SearchData<F::Item>,
    schedule: Schedule,
    seed: u64,
) -> std::result::Result<Linear<Inference>, TrainError> {
    let train = features(family, model, data.train, data.eval_batch, schedule.parts);
    fit_head(train, data.train, data.n_classes, schedule, seed)
}

/// Module weights searched without gradients (`config`) for the `objective`, folded into the
/// base.
pub fn search<F: Family>(
    family: &F,
    base: &F::Frozen,
    adapters: &[Adapter],
    data: &SearchData<F::Item>,
    schedule: Schedule,
    config: &SearchConfig,
    objective: SearchObjective,
) -> std::result::Result<Searched<F>, SearchFailure> {
    let device = loramix_backend::device();
    let (parts, n, eval_batch) = (schedule.parts, adapters.len(), data.eval_batch);
    let mut model = base.clone();
    attach(&mut model, adapters, &uniform_weights(n), &device).map_err(SearchFailure::Compose)?;
    let fit = |model: &F::Frozen| head_on(family, model, data, schedule, config.seed);
    let fixed = match objective {
        SearchObjective::FixedHead => Some(fit(&model).map_err(SearchFailure::Train)?),
        SearchObjective::OwnHead => None,
    };
    let scored = data.validation.unwrap_or(data.train);
    let found = search_weights(n, config, |weights| {
        if set_weights(&mut model, weights, &device).is_err() {
            return f32::INFINITY;
        }
        let head = match &fixed {
            Some(head) => head.clone(),
            None => match fit(&model) {
                Ok(head) => head,
                Err(_) => return f32::INFINITY,
            },
        };
        let logits = head.forward(features(family, &model, scored, eval_batch, parts));
        let targets = targets::<Inference, _>(scored, &device);
        CrossEntropyLoss::new(None, &device)
            .forward(logits, targets)
            .into_scalar()
            .elem()
    });
    set_weights(&mut model, &found.weights, &device).map_err(SearchFailure::Compose)?;
    Ok(Searched {
        host: model,
        weights: found.weights,
    })
}
