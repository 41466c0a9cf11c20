//! The minibatch loop every training run shares: a seeded order over a training set held as
//! one tensor, AdamW steps, and early stopping on validation (to convergence, with patience).

use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use indicatif::ProgressBar;
use loramix_backend::{Device, Train};
use loramix_data::Labelled;
use loramix_models::{Batch, Learner, TrainConfig, TrainError, Trainer};
use loramix_rng::Rng;

use crate::family::Family;

/// Steps, batch size and learning rates of one training run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    /// The head's learning rate, if not `lr`.
    pub head_lr: Option<f64>,
    /// Parts (threads) each batch is cut into; see [`TrainConfig::parts`].
    pub parts: usize,
}

impl Schedule {
    /// This schedule with the head learning at `head_lr` (if given).
    pub fn with_head_lr(self, head_lr: Option<f64>) -> Self {
        Self { head_lr, ..self }
    }
}

/// A training set as one input tensor and its targets, on the training device.
pub struct TrainSet<F: Family> {
    pub input: F::Input<Train>,
    pub targets: Tensor<Train, 1, Int>,
    pub len: usize,
}

impl<F: Family> TrainSet<F> {
    pub fn new(family: &F, items: &[F::Item], device: &Device) -> Self {
        Self {
            input: family.input(items, device),
            targets: targets(items, device),
            len: items.len(),
        }
    }
}

/// Class ids of `items` as a tensor.
pub fn targets<B: Backend, I: Labelled>(items: &[I], device: &B::Device) -> Tensor<B, 1, Int> {
    let labels: Vec<i64> = items.iter().map(|i| i.label() as i64).collect();
    Tensor::from_data(TensorData::new(labels, [items.len()]), device)
}

/// Epochs of seeded shuffles cut into batches; a set no larger than the batch is one batch.
struct Minibatches {
    order: Vec<usize>,
    at: usize,
    batch: usize,
    rng: Rng,
}

impl Minibatches {
    fn new(len: usize, batch: usize, seed: u64) -> Self {
        Self {
            order: (0..len).collect(),
            at: len,
            batch: batch.min(len).max(1),
            rng: Rng::new(seed),
        }
    }

    /// `None` when the whole set is the batch (no gather needed).
    fn next(&mut self) -> Option<Vec<i64>> {
        if self.batch == self.order.len() {
            return None;
        }
        if self.at + self.batch > self.order.len() {
            self.rng.shuffle(&mut self.order);
            self.at = 0;
        }
        let batch = self.order[self.at..self.at + self.batch]
            .iter()
            .map(|&i| i as i64)
            .collect();
        self.at += self.batch;
        Some(batch)
    }
}

/// Train `model` on `set` with AdamW; `progress` advances one per step.
pub fn fit<F: Family, M>(
    model: M,
    set: &TrainSet<F>,
    schedule: Schedule,
    seed: u64,
    progress: &ProgressBar,
) -> Result<M, TrainError>
where
    M: Learner<Train, Input = F::Input<Train>> + AutodiffModule<Train>,
{
    fit_stopped(model, set, schedule, seed, progress, None).map(|best| best.model)
}

/// [`fit`], keeping the best model `stop` scores (the last one without `stop`).
pub fn fit_stopped<F: Family, M>(
    model: M,
    set: &TrainSet<F>,
    schedule: Schedule,
    seed: u64,
    progress: &ProgressBar,
    stop: Option<&EarlyStop<M>>,
) -> Result<Stopped<M>, TrainError>
where
    M: Learner<Train, Input = F::Input<Train>> + AutodiffModule<Train>,
{
    let examples = Examples {
        input: &set.input,
        targets: &set.targets,
    };
    train(model, examples, schedule, seed, progress, stop)
}

/// How a model did on validation examples. Accuracy decides; its ties, common with a few
/// validation examples (k = 1 has one per class), go to the lower cross-entropy, so that a tie
/// does not default to the first candidate and the earliest check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValScore {
    pub accuracy: f64,
    /// Mean cross-entropy of the validation examples.
    pub loss: f64,
}

impl ValScore {
    /// Strictly better: higher accuracy, or the same accuracy at a lower loss. Equal scores
    /// keep the one found first.
    pub fn beats(&self, other: &ValScore) -> bool {
        self.accuracy > other.accuracy
            || (self.accuracy == other.accuracy && self.loss < other.loss)
    }

    /// `new` beats `old`; a missing score beats nothing and anything beats a missing one.
    pub fn improves(new: Option<ValScore>, old: Option<ValScore>) -> bool {
        match (new, old) {
            (Some(new), Some(old)) => new.beats(&old),
            (new, old) => new.is_some() && old.is_none(),
        }
    }
}

/// Early stopping on validation data: every `every` steps (and after the last) the model is
/// scored, and the best one is kept ([`ValScore::beats`]; on equal scores the earlier,
/// shorter-trained one).
pub struct EarlyStop<'a, M> {
    pub every: usize,
    /// `None` never beats a score.
    pub score: &'a dyn Fn(&M) -> Option<ValScore>,
    /// Stop once this many checks in a row have not beaten the best (train to convergence);
    /// `None` trains every step.
    pub patience: Option<usize>,
}

impl<M> EarlyStop<'_, M> {
    /// Checks to make in `steps`: `checks` of them, evenly spaced.
    pub fn every(steps: usize, checks: usize) -> usize {
        steps.div_ceil(checks.max(1)).max(1)
    }
}

/// The model a training run kept, its validation score (`None` without validation) and the
/// steps it had taken.
pub struct Stopped<M> {
    pub model: M,
    pub score: Option<ValScore>,
    pub steps: usize,
    /// The run ended because validation stopped improving ([`EarlyStop::patience`]), not at
    /// its last step.
    pub converged: bool,
}

/// A training set held as one input and its targets, and how to take rows of the input.
pub(super) struct Examples<'a, X> {
    pub(super) input: &'a X,
    pub(super) targets: &'a Tensor<Train, 1, Int>,
}

impl<X: Batch> Examples<'_, X> {
    /// The next minibatch, or the whole set when it is no larger than the batch.
    fn batch(&self, batches: &mut Minibatches) -> (X, Tensor<Train, 1, Int>) {
        match batches.next() {
            None => (self.input.clone(), self.targets.clone()),
            Some(index) => (
                self.input.select_rows(&index),
                self.targets.select_rows(&index),
            ),
        }
    }
}

/// The best validation check so far, and the checks since one improved on it.
struct Checks<M> {
    best: Option<Stopped<M>>,
    stale: usize,
}

impl<M: Clone> Checks<M> {
    /// Records a check of `model` after `step` steps; true when `patience` checks in a row
    /// have not improved on the best.
    fn record(
        &mut self,
        model: &M,
        score: Option<ValScore>,
        step: usize,
        patience: Option<usize>,
    ) -> bool {
        let improves = (self.best.as_ref()).is_none_or(|b| ValScore::improves(score, b.score));
        if improves {
            self.best = Some(Stopped {
                model: model.clone(),
                score,
                steps: step,
                converged: false,
            });
            self.stale = 0;
        } else {
            self.stale += 1;
        }
        patience.is_some_and(|p| self.stale >= p)
    }
}

/// The minibatch loop every training run shares: seeded batches, one [`Trainer`] step each.
pub(super) fn train<M, X>(
    model: M,
    examples: Examples<X>,
    schedule: Schedule,
    seed: u64,
    progress: &ProgressBar,
    stop: Option<&EarlyStop<M>>,
) -> Result<Stopped<M>, TrainError>
where
    M: Learner<Train, Input = X> + AutodiffModule<Train>,
    X: Batch,
{
    let config = TrainConfig::new()
        .with_lr(schedule.lr)
        .with_head_lr(schedule.head_lr)
        .with_parts(schedule.parts);
    let mut trainer = Trainer::new(model, &config);
    let mut batches = Minibatches::new(examples.targets.dims()[0], schedule.batch, seed);
    let mut checks = Checks {
        best: None,
        stale: 0,
    };
    for step in 1..=schedule.steps {
        let (input, targets) = examples.batch(&mut batches);
        trainer.step(input, targets)?;
        progress.inc(1);
        if let Some(stop) = stop
            && (step % stop.every == 0 || step == schedule.steps)
        {
            let score = (stop.score)(trainer.model());
            if checks.record(trainer.model(), score, step, stop.patience) {
                progress.inc((schedule.steps - step) as u64);
                let best = (checks.best)
                    .expect("a check without improvement follows one that set the best");
                return Ok(Stopped {
                    converged: true,
                    ..best
                });
            }
        }
    }
    Ok(checks.best.unwrap_or_else(|| Stopped {
        steps: trainer.steps(),
        model: trainer.into_model(),
        score: None,
        converged: false,
    }))
}
