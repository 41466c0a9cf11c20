//! What a method gets to run one cell, and what it gives back.

use std::collections::HashMap;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::nn::Linear;
use burn::tensor::Tensor;
use indicatif::ProgressBar;
use loramix_backend::{Device, Inference, Train};
use loramix_lora::{Adapter, LoraConfig};
use loramix_models::{Classifier, Learner, TrainError, trainable_params};

use crate::error::{ExperimentError, Result};
use crate::family::Family;
use crate::fit::{
    EarlyStop, HeadValidation, Schedule, Stopped, TrainSet, ValScore, accuracy, features,
    fit_head_stopped, fit_stopped, head_accuracy, head_score,
};

/// One cell of the sweep as its method sees it: the base, the modules, the task, the cell's
/// training examples and seed.
pub struct CellJob<'a, F: Family> {
    pub family: &'a F,
    pub device: &'a Device,
    /// Batch of feature extraction and testing.
    pub eval_batch: usize,
    /// Parts (threads) each batch is cut into.
    pub parts: usize,
    /// The upstream modules' LoRA settings, the default of a fresh LoRA.
    pub lora: LoraConfig,
    pub base: &'a F::Frozen,
    pub adapters: &'a [Adapter],
    /// The task's name (what the frozen backbones are cached under).
    pub task: &'a str,
    /// The task's classes.
    pub classes: usize,
    /// The examples the cell is tested on: the task's test split (a warm-up cell takes one
    /// batch of it).
    pub test: &'a [F::Item],
    /// The method's label (`[[method]]` name).
    pub method: &'a str,
    /// The cell's training examples (k per class, or the capped pool).
    pub items: Vec<F::Item>,
    /// The method's steps and rate, the sweep's batch; no separate head rate.
    pub schedule: Schedule,
    /// Seeds the minibatch order and the search; burn's generator (head and LoRA init) is
    /// seeded with it before the method runs.
    pub seed: u64,
    /// Names the cell in errors: task, method, k, seed.
    pub label: String,
    /// The fair protocol's validation examples and candidates, when the sweep tunes.
    pub validation: Option<Validation<F>>,
}

/// Validation examples set aside from the cell's training pool, the rate factors every method
/// tries, and the checks per run.
#[derive(Clone)]
pub struct Validation<F: Family> {
    pub items: Vec<F::Item>,
    pub rate_factors: Vec<f64>,
    pub checks: usize,
    /// Whether one more factor is tried past the edge the best lies on ([`extension`]): per-cell
    /// choice does; a tuning cell tries a grid already extended at both edges ([`bracketed`]),
    /// and an evaluation cell the one factor its tuning chose.
    pub extend: bool,
}

/// The grid with one more factor past each edge: what every tuning cell tries, so that the
/// factors compared across tuning cells are the same and an edge choice is never untested.
pub fn bracketed(factors: &[f64]) -> Vec<f64> {
    let mut all = Vec::with_capacity(factors.len() + 2);
    all.extend(extension(factors, 0));
    all.extend_from_slice(factors);
    all.extend(extension(factors, factors.len().saturating_sub(1)));
    all
}

/// What the tuning chose for a cell: the rates, the steps trained (early stopping) and the
/// validation score that chose them, with every candidate's score beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub lr: f64,
    pub head_lr: Option<f64>,
    pub steps: usize,
    /// On the validation examples; `None` without them.
    pub score: Option<ValScore>,
    /// Every rate factor tried, in order, with its best validation score: the whole curve,
    /// so a reader sees whether the choice is a peak or an edge.
    pub tried: Vec<(f64, Option<ValScore>)>,
    /// The factor added past an edge of the grid because the best candidate lay on it.
    pub extended: Option<f64>,
}

/// One more grid step past the edge `best` lies on (once): the grid's own ratio at that edge.
/// `None` when the best is inside the grid or the grid has a single factor.
fn extension(factors: &[f64], best: usize) -> Option<f64> {
    match (factors.len(), best) {
        (0 | 1, _) => None,
        (_, 0) => Some(factors[0] * factors[0] / factors[1]),
        (n, b) if b == n - 1 => Some(factors[b] * factors[b] / factors[b - 1]),
        _ => None,
    }
}

/// What a method reached on a cell.
pub struct Outcome {
    pub accuracy: f64,
    pub trainable_params: usize,
    /// The module weights the method chose, per layer (`all` when one vector serves every
    /// layer), in the order of the adapters; empty for methods that choose none.
    pub weights: Vec<(String, Vec<f32>)>,
    /// What the tuning chose (none without validation).
    pub choice: Option<Choice>,
}

impl<F: Family> CellJob<'_, F> {
    pub fn n_classes(&self) -> usize {
        self.classes
    }

    /// The same cell over other modules (a selection of the cell's).
    pub fn with_adapters<'b>(&'b self, adapters: &'b [Adapter]) -> CellJob<'b, F> {
        CellJob {
            adapters,
            items: self.items.clone(),
            label: self.label.clone(),
            validation: self.validation.clone(),
            lora: self.lora.clone(),
            ..*self
        }
    }

    /// Weights and biases of a fresh head on the base's features.
    pub fn head_params(&self) -> usize {
        (self.base.head().weight.dims()[0] + 1) * self.n_classes()
    }

    /// The cell's examples as tensors on the training device.
    pub fn train_set(&self) -> TrainSet<F> {
        TrainSet::new(self.family, &self.items, self.device)
    }

    /// Test accuracy of a trained model (its own head).
    pub fn test_accuracy(&self, model: &F::Frozen) -> f64 {
        accuracy(self.family, model, self.test, self.eval_batch, self.parts)
    }

    /// A bar that shows nothing: the sweep's bar counts cells, not a cell's steps.
    pub fn hidden(&self) -> ProgressBar {
        ProgressBar::hidden()
    }

    /// Trains the model `build` makes (whichever of its parameters require a gradient) on the
    /// cell's examples, the head at `head_lr` if given, and tests it with its own head. Tuned,
    /// each candidate rate trains a fresh model and the one best on validation is tested.
    pub fn fit_trained(
        &self,
        build: impl Fn() -> F::Trained,
        head_lr: Option<f64>,
    ) -> Result<Outcome> {
        let set = self.train_set();
        let score = |model: &F::Trained| self.val_score(&model.valid());
        let mut params = 0;
        let (model, choice) = self.best_of(head_lr, |schedule| {
            let model = build();
            params = trainable_params(&model);
            let stop = self.early_stop(schedule, &score);
            fit_stopped::<F, _>(
                model,
                &set,
                schedule,
                self.seed,
                &self.hidden(),
                stop.as_ref(),
            )
        })?;
        Ok(Outcome {
            accuracy: self.test_accuracy(&model.valid().fold_lora()),
            trainable_params: params,
            weights: Vec::new(),
            choice,
        })
    }

    /// How a model (with its own head) does on the validation examples; `None` without them.
    pub fn val_score(&self, model: &F::Frozen) -> Option<ValScore> {
        let v = self.validation.as_ref()?;
        let features = features(self.family, model, &v.items, self.eval_batch, self.parts);
        Some(head_score(model.head(), features, &v.items))
    }

    /// Early stopping on the validation examples, when the cell has them.
    pub fn early_stop<'s, M>(
        &self,
        schedule: Schedule,
        score: &'s dyn Fn(&M) -> Option<ValScore>,
    ) -> Option<EarlyStop<'s, M>> {
        let v = self.validation.as_ref()?;
        Some(EarlyStop {
            every: EarlyStop::<M>::every(schedule.steps, v.checks),
            score,
            patience: None,
        })
    }

    /// The rate factors a method tries: 1 (its own rates) without validation.
    fn factors(&self) -> Vec<f64> {
        match &self.validation {
            None => vec![1.0],
            Some(v) => v.rate_factors.clone(),
        }
    }

    /// Runs `attempt` once per rate factor, the generators reseeded with the cell's seed before
    /// each so every candidate starts alike, and keeps the one best on validation (on a tie, the
    /// earlier candidate). When the best lies on an edge of the grid, one more factor past that
    /// edge is tried (once), so a choice is never an untested boundary.
    pub fn best_of<T>(
        &self,
        head_lr: Option<f64>,
        mut attempt: impl FnMut(Schedule) -> std::result::Result<Stopped<T>, TrainError>,
    ) -> Result<(T, Option<Choice>)> {
        let own = self.schedule.with_head_lr(head_lr);
        let mut best: Option<(T, Choice)> = None;
        let mut tried = Vec::new();
        let mut run_factor = |factor: f64, best: &mut Option<(T, Choice)>| -> Result<bool> {
            let schedule = Schedule {
                lr: own.lr * factor,
                head_lr: own.head_lr.map(|h| h * factor),
                ..own
            };
            loramix_lora::init::seed::<Train>(self.device, self.seed);
            let run = attempt(schedule).map_err(|e| self.train_error(e))?;
            tried.push((factor, run.score));
            let better =
                (best.as_ref()).is_none_or(|(_, b)| ValScore::improves(run.score, b.score));
            if better {
                let (lr, head_lr, steps, score) =
                    (schedule.lr, schedule.head_lr, run.steps, run.score);
                let choice = Choice {
                    lr,
                    head_lr,
                    steps,
                    score,
                    tried: Vec::new(),
                    extended: None,
                };
                *best = Some((run.model, choice));
            }
            Ok(better)
        };
        let factors = self.factors();
        let mut best_index = 0;
        for (i, &factor) in factors.iter().enumerate() {
            if run_factor(factor, &mut best)? {
                best_index = i;
            }
        }
        let extended = match self.validation.as_ref().is_some_and(|v| v.extend) {
            true => extension(&factors, best_index),
            false => None,
        };
        if let Some(factor) = extended {
            run_factor(factor, &mut best)?;
        }
        let (model, mut choice) =
            best.expect("a method has at least one candidate (checked when read)");
        (choice.tried, choice.extended) = (tried, extended);
        Ok((model, self.validation.as_ref().map(|_| choice)))
    }

    /// A training failure, with the cell it happened in.
    pub fn train_error(&self, source: TrainError) -> ExperimentError {
        ExperimentError::Train {
            context: self.label.clone(),
            source,
        }
    }

    /// The frozen-backbone recipe: features of the cell's examples through the backbone
    /// `build` makes (once per task and method), a fresh head fitted on them, tested on the
    /// cached test features.
    pub fn fit_frozen(
        &self,
        frozen: &mut FrozenCache<F>,
        build: impl FnOnce() -> Result<F::Frozen>,
    ) -> Result<Outcome> {
        let cached = frozen.get_or_build(self, build)?;
        let (head, choice) = self.fit_head_on(&cached.backbone)?;
        Ok(Outcome {
            accuracy: head_accuracy(&head, cached.test.clone(), self.test),
            trainable_params: self.head_params(),
            weights: Vec::new(),
            choice,
        })
    }

    /// The test accuracy of `backbone` under a fresh head ([`CellJob::fit_head_on`]), with
    /// what the tuning chose: for backbones made from the cell's own examples, which the
    /// per-task cache of [`CellJob::fit_frozen`] cannot hold.
    pub fn test_with_fresh_head(&self, backbone: &F::Frozen) -> Result<(f64, Option<Choice>)> {
        let (head, choice) = self.fit_head_on(backbone)?;
        let test = features(
            self.family,
            backbone,
            self.test,
            self.eval_batch,
            self.parts,
        );
        Ok((head_accuracy(&head, test, self.test), choice))
    }

    /// A fresh head on `backbone`'s features of the cell's examples; tuned, the candidate
    /// rates each fit one and the head best on validation (early-stopped) is kept.
    pub fn fit_head_on(&self, backbone: &F::Frozen) -> Result<(Linear<Inference>, Option<Choice>)> {
        let features_of =
            |items: &[F::Item]| features(self.family, backbone, items, self.eval_batch, self.parts);
        let train = features_of(&self.items);
        let validation = self.validation.as_ref().map(|v| HeadValidation {
            features: features_of(&v.items),
            items: &v.items,
            checks: v.checks,
        });
        let n_classes = self.n_classes();
        self.best_of(None, |schedule| {
            let train = train.clone();
            fit_head_stopped(
                train,
                &self.items,
                n_classes,
                schedule,
                self.seed,
                validation.as_ref(),
            )
        })
    }
}

/// A frozen backbone and its features of the task's test split.
pub struct Frozen<F: Family> {
    pub backbone: F::Frozen,
    pub test: Tensor<Inference, 2>,
}

/// The frozen backbones of the current task, one per method, built by the first cell that
/// needs one. Cells come grouped by task (the primary tests' cells, then the others), so a new
/// task frees the previous one's; a method in both groups builds twice per task. The time
/// spent building is kept apart: it is not charged to the cell that happened to build.
pub struct FrozenCache<F: Family> {
    task: String,
    backbones: HashMap<String, Frozen<F>>,
    setup_seconds: f64,
}

impl<F: Family> Default for FrozenCache<F> {
    fn default() -> Self {
        Self {
            task: String::new(),
            backbones: HashMap::new(),
            setup_seconds: 0.0,
        }
    }
}

impl<F: Family> FrozenCache<F> {
    fn get_or_build(
        &mut self,
        job: &CellJob<F>,
        build: impl FnOnce() -> Result<F::Frozen>,
    ) -> Result<&Frozen<F>> {
        if self.task != job.task {
            self.backbones.clear();
            self.task = job.task.to_string();
        }
        if !self.backbones.contains_key(job.method) {
            let started = Instant::now();
            let backbone = build()?;
            let test = features(job.family, &backbone, job.test, job.eval_batch, job.parts);
            self.setup_seconds += started.elapsed().as_secs_f64();
            self.backbones
                .insert(job.method.to_string(), Frozen { backbone, test });
        }
        Ok(&self.backbones[job.method])
    }

    /// Seconds spent building backbones since the last call.
    pub fn take_setup_seconds(&mut self) -> f64 {
        std::mem::take(&mut self.setup_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::{bracketed, extension};

    #[test]
    fn the_grid_extends_one_step_past_the_edge_the_best_lies_on() {
        let grid = [0.1, 0.3, 1.0, 3.0, 10.0];
        assert_eq!(extension(&grid, 0), Some(0.1 * 0.1 / 0.3));
        assert_eq!(extension(&grid, 4), Some(10.0 * 10.0 / 3.0));
        for inside in 1..4 {
            assert_eq!(extension(&grid, inside), None);
        }
        assert_eq!(extension(&[1.0], 0), None);
    }

    #[test]
    fn a_bracketed_grid_adds_one_step_past_each_edge() {
        let grid = [0.1, 0.3, 1.0, 3.0, 10.0];
        let all = bracketed(&grid);
        assert_eq!(all.len(), 7);
        assert_eq!(&all[1..6], &grid);
        assert!((all[0] - 0.1 / 3.0).abs() < 1e-12 && (all[6] - 100.0 / 3.0).abs() < 1e-12);
        assert_eq!(bracketed(&[1.0]), vec![1.0]);
    }
}
