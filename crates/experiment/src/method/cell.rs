//! What a method gets to run one cell, and what it gives back.

use std::collections::HashMap;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::Tensor;
use indicatif::ProgressBar;
use loramix_backend::{Device, Inference};
use loramix_data::Task;
use loramix_lora::{Adapter, LoraConfig};
use loramix_models::{Classifier, Learner, TrainError, trainable_params};

use crate::error::{ExperimentError, Result};
use crate::family::Family;
use crate::fit::{Schedule, TrainSet, accuracy, features, fit, fit_head, head_accuracy};

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
    pub task: &'a Task<F::Item>,
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
}

/// What a method reached on a cell.
pub struct Outcome {
    pub accuracy: f64,
    pub trainable_params: usize,
    /// The module weights the method chose, per layer (`all` when one vector serves every
    /// layer), in the order of the adapters; empty for methods that choose none.
    pub weights: Vec<(String, Vec<f32>)>,
}

impl<F: Family> CellJob<'_, F> {
    pub fn n_classes(&self) -> usize {
        self.task.train.classes.len()
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
        let test = &self.task.test.items;
        accuracy(self.family, model, test, self.eval_batch, self.parts)
    }

    /// A bar that shows nothing: the sweep's bar counts cells, not a cell's steps.
    pub fn hidden(&self) -> ProgressBar {
        ProgressBar::hidden()
    }

    /// Trains `model` (whichever of its parameters require a gradient) on the cell's
    /// examples, the head at `head_lr` if given, and tests it with its own head.
    pub fn fit_trained(&self, model: F::Trained, head_lr: Option<f64>) -> Result<Outcome> {
        let trainable_params = trainable_params(&model);
        let schedule = self.schedule.with_head_lr(head_lr);
        let model = fit::<F, _>(
            model,
            &self.train_set(),
            schedule,
            self.seed,
            &self.hidden(),
        )
        .map_err(|e| self.train_error(e))?;
        Ok(Outcome {
            accuracy: self.test_accuracy(&model.valid().fold_lora()),
            trainable_params,
            weights: Vec::new(),
        })
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
        let train = features(
            self.family,
            &cached.backbone,
            &self.items,
            self.eval_batch,
            self.parts,
        );
        let head = fit_head(
            train,
            &self.items,
            self.n_classes(),
            self.schedule,
            self.seed,
        )
        .map_err(|e| self.train_error(e))?;
        Ok(Outcome {
            accuracy: head_accuracy(&head, cached.test.clone(), &self.task.test.items),
            trainable_params: self.head_params(),
            weights: Vec::new(),
        })
    }
}

/// A frozen backbone and its features of the task's test split.
pub struct Frozen<F: Family> {
    pub backbone: F::Frozen,
    pub test: Tensor<Inference, 2>,
}

/// The frozen backbones of the current task, one per method, built by the first cell that
/// needs one. Cells come grouped by task, so a new task frees the previous one's. The time
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
        if self.task != job.task.name {
            self.backbones.clear();
            self.task = job.task.name.clone();
        }
        if !self.backbones.contains_key(job.method) {
            let started = Instant::now();
            let backbone = build()?;
            let test = features(
                job.family,
                &backbone,
                &job.task.test.items,
                job.eval_batch,
                job.parts,
            );
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
