//! Training and evaluation primitives shared by every stage: a seeded minibatch loop over a
//! training set held as one tensor, a linear head trained on cached features, accuracy, and
//! the weight search that needs a head.

use std::borrow::Cow;

use burn::module::AutodiffModule;
use burn::nn::Linear;
use burn::nn::loss::CrossEntropyLoss;
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use indicatif::ProgressBar;
use loramix_backend::{Device, Inference, Train};
use loramix_compose::{
    ComposeError, SearchConfig, attach, search_weights, set_weights, uniform_weights,
};
use loramix_data::Labelled;
use loramix_lora::Adapter;
use loramix_models::{
    Classifier, Learner, LinearProbe, TrainConfig, TrainError, Trainer, forward_in_parts,
};
use loramix_rng::Rng;

use crate::error::ExperimentError;
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
        select: F::select,
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
struct Examples<'a, X> {
    input: &'a X,
    targets: &'a Tensor<Train, 1, Int>,
    select: fn(&X, Tensor<Train, 1, Int>) -> X,
}

impl<X: Clone> Examples<'_, X> {
    /// The next minibatch, or the whole set when it is no larger than the batch.
    fn batch(&self, batches: &mut Minibatches) -> (X, Tensor<Train, 1, Int>) {
        match batches.next() {
            None => (self.input.clone(), self.targets.clone()),
            Some(index) => {
                let n = index.len();
                let device = self.targets.device();
                let index =
                    Tensor::<Train, 1, Int>::from_data(TensorData::new(index, [n]), &device);
                (
                    (self.select)(self.input, index.clone()),
                    self.targets.clone().select(0, index),
                )
            }
        }
    }
}

/// The minibatch loop every training run shares: seeded batches, one [`Trainer`] step each.
fn train<M, X>(
    model: M,
    examples: Examples<X>,
    schedule: Schedule,
    seed: u64,
    progress: &ProgressBar,
    stop: Option<&EarlyStop<M>>,
) -> Result<Stopped<M>, TrainError>
where
    M: Learner<Train, Input = X> + AutodiffModule<Train>,
    X: Clone,
{
    let config = TrainConfig::new()
        .with_lr(schedule.lr)
        .with_head_lr(schedule.head_lr)
        .with_parts(schedule.parts);
    let mut trainer = Trainer::new(model, &config);
    let mut batches = Minibatches::new(examples.targets.dims()[0], schedule.batch, seed);
    let mut best: Option<Stopped<M>> = None;
    let mut stale_checks = 0;
    for step in 1..=schedule.steps {
        let (input, targets) = examples.batch(&mut batches);
        trainer.step(input, targets)?;
        progress.inc(1);
        if let Some(stop) = stop
            && (step % stop.every == 0 || step == schedule.steps)
        {
            let score = (stop.score)(trainer.model());
            if best
                .as_ref()
                .is_none_or(|b| ValScore::improves(score, b.score))
            {
                let model = trainer.model().clone();
                best = Some(Stopped {
                    model,
                    score,
                    steps: step,
                    converged: false,
                });
                stale_checks = 0;
            } else {
                stale_checks += 1;
            }
            if stop.patience.is_some_and(|p| stale_checks >= p) {
                progress.inc((schedule.steps - step) as u64);
                return Ok(best
                    .map(|b| Stopped {
                        converged: true,
                        ..b
                    })
                    .expect("a check without improvement follows one that set the best"));
            }
        }
    }
    Ok(best.unwrap_or_else(|| Stopped {
        steps: trainer.steps(),
        model: trainer.into_model(),
        score: None,
        converged: false,
    }))
}

/// Backbone features `[n, dim]` of `items`, in batches of `batch`, each cut into `parts` run on
/// their own threads. On GPU backends every batch has `batch` rows (see [`eval_batches`]).
pub fn features<F: Family>(
    family: &F,
    model: &F::Frozen,
    items: &[F::Item],
    batch: usize,
    parts: usize,
) -> Tensor<Inference, 2> {
    features_in(
        family,
        model,
        eval_batches(items, batch, loramix_backend::COMPILES_KERNELS),
        parts,
    )
}

fn features_in<'a, F: Family>(
    family: &F,
    model: &F::Frozen,
    batches: impl Iterator<Item = EvalBatch<'a, F::Item>>,
    parts: usize,
) -> Tensor<Inference, 2> {
    let device = loramix_backend::device();
    let batches: Vec<_> = batches
        .map(|batch| {
            let input = family.input(&batch.items, &device);
            let features = forward_in_parts(model, &input, parts, |m, x| m.features(x));
            if batch.real < batch.items.len() {
                features.narrow(0, 0, batch.real)
            } else {
                features
            }
        })
        .collect();
    Tensor::cat(batches, 0)
}

/// A batch to evaluate and how many of its leading items are real (the rest are padding).
struct EvalBatch<'a, I: Clone> {
    items: Cow<'a, [I]>,
    real: usize,
}

/// `items` in batches of `batch` (at least 1). With `same_shape`, a batch with fewer items (the
/// last, or a set smaller than one batch) is filled up to `batch` with copies of its last item:
/// a GPU backend compiles kernels for every new input shape (seconds from an empty kernel
/// cache), while padding rows cost next to nothing there. The CPU backend has no kernels to
/// compile and computes every row, so it takes the batches as they are.
fn eval_batches<I: Clone>(
    items: &[I],
    batch: usize,
    same_shape: bool,
) -> impl Iterator<Item = EvalBatch<'_, I>> {
    let batch = batch.max(1);
    items.chunks(batch).map(move |chunk| {
        let real = chunk.len();
        let items = match (same_shape && real < batch, chunk.last()) {
            (true, Some(last)) => {
                let mut padded = chunk.to_vec();
                padded.resize(batch, last.clone());
                Cow::Owned(padded)
            }
            _ => Cow::Borrowed(chunk),
        };
        EvalBatch { items, real }
    })
}

/// Fraction of `items` the model classifies correctly.
pub fn accuracy<F: Family>(
    family: &F,
    model: &F::Frozen,
    items: &[F::Item],
    batch: usize,
    parts: usize,
) -> f64 {
    let features = features(family, model, items, batch, parts);
    head_accuracy(model.head(), features, items)
}

/// Fraction of `items` a head classifies correctly from their features.
pub fn head_accuracy<I: Labelled>(
    head: &Linear<Inference>,
    features: Tensor<Inference, 2>,
    items: &[I],
) -> f64 {
    if items.is_empty() {
        return 0.0;
    }
    fraction_correct(head.forward(features), items)
}

/// Share of `items` whose label is the argmax of their row of `logits` (`items` not empty).
fn fraction_correct<I: Labelled>(logits: Tensor<Inference, 2>, items: &[I]) -> f64 {
    let predicted = (logits
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .to_vec::<i64>())
    .expect("converted to i64");
    let correct = (predicted.iter().zip(items))
        .filter(|(p, item)| **p == item.label() as i64)
        .count();
    correct as f64 / items.len() as f64
}

/// Accuracy and mean cross-entropy of `head` on `features` of `items` (not empty).
pub fn head_score<I: Labelled>(
    head: &Linear<Inference>,
    features: Tensor<Inference, 2>,
    items: &[I],
) -> ValScore {
    let logits = head.forward(features);
    let device = logits.device();
    let loss = CrossEntropyLoss::new(None, &device)
        .forward(logits.clone(), targets::<Inference, _>(items, &device))
        .into_scalar()
        .elem::<f64>();
    ValScore {
        accuracy: fraction_correct(logits, items),
        loss,
    }
}

/// Train a fresh linear head of `n_classes` on cached features (the backbone ran once per
/// example; each step costs one small matmul). The probe is all head: it learns at the head's
/// rate, `lr` when none is given, on one thread.
pub fn fit_head<I: Labelled>(
    features: Tensor<Inference, 2>,
    items: &[I],
    n_classes: usize,
    schedule: Schedule,
    seed: u64,
) -> Result<Linear<Inference>, TrainError> {
    fit_head_stopped(features, items, n_classes, schedule, seed, None).map(|best| best.model)
}

/// Validation data for a head: cached features, their items, and how many checks to make.
pub struct HeadValidation<'a, I> {
    pub features: Tensor<Inference, 2>,
    pub items: &'a [I],
    pub checks: usize,
}

/// [`fit_head`], keeping the head most accurate on `validation` (if given).
pub fn fit_head_stopped<I: Labelled>(
    features: Tensor<Inference, 2>,
    items: &[I],
    n_classes: usize,
    schedule: Schedule,
    seed: u64,
    validation: Option<&HeadValidation<I>>,
) -> Result<Stopped<Linear<Inference>>, TrainError> {
    let device = features.device();
    let dim = features.dims()[1];
    let examples = Examples {
        input: &Tensor::<Train, 2>::from_inner(features),
        targets: &targets::<Train, I>(items, &device),
        select: |x: &Tensor<Train, 2>, index| x.clone().select(0, index),
    };
    let schedule = Schedule {
        lr: schedule.head_lr.unwrap_or(schedule.lr),
        head_lr: None,
        parts: 1,
        ..schedule
    };
    let score = |probe: &LinearProbe<Train>| {
        validation.map(|v| head_score(&probe.valid().head, v.features.clone(), v.items))
    };
    let stop = validation.map(|v| EarlyStop {
        every: EarlyStop::<LinearProbe<Train>>::every(schedule.steps, v.checks),
        score: &score,
        patience: None,
    });
    let probe = LinearProbe::<Train>::new(dim, n_classes, &device);
    let best = train(
        probe,
        examples,
        schedule,
        seed,
        &ProgressBar::hidden(),
        stop.as_ref(),
    )?;
    Ok(Stopped {
        model: best.model.valid().head,
        score: best.score,
        steps: best.steps,
        converged: best.converged,
    })
}

/// Why a weight search stopped.
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

/// A searched composition: the base with the found weights folded in, and the weights. The
/// caller fits its head ([`head_on`], or with validation as the sweep's frozen methods do).
pub struct Searched<F: Family> {
    pub model: F::Frozen,
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
pub fn head_on<F: Family>(
    family: &F,
    model: &F::Frozen,
    data: &SearchData<F::Item>,
    schedule: Schedule,
    seed: u64,
) -> Result<Linear<Inference>, TrainError> {
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
) -> Result<Searched<F>, SearchFailure> {
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
        model: model.fold_lora(),
        weights: found.weights,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use loramix_data::TextItem;

    /// Two classes on either side of the first feature's zero.
    fn separable(n: usize) -> (Tensor<Inference, 2>, Vec<TextItem>) {
        let values: Vec<f32> = (0..n)
            .flat_map(|i| {
                let side = if i % 2 == 0 { 1.0 } else { -1.0 };
                [side * (1.0 + i as f32 / n as f32), 0.5]
            })
            .collect();
        let items = (0..n)
            .map(|i| TextItem {
                text: String::new(),
                label: i % 2,
            })
            .collect();
        let device = loramix_backend::device();
        (
            Tensor::from_data(TensorData::new(values, [n, 2]), &device),
            items,
        )
    }

    #[test]
    fn same_shape_batches_are_full_and_keep_every_item_once_in_order() {
        let items: Vec<usize> = (0..7).collect();
        let shapes = |same_shape| {
            eval_batches(&items, 3, same_shape)
                .map(|b| (b.items.to_vec(), b.real))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            shapes(false),
            [(vec![0, 1, 2], 3), (vec![3, 4, 5], 3), (vec![6], 1)]
        );
        assert_eq!(
            shapes(true),
            [(vec![0, 1, 2], 3), (vec![3, 4, 5], 3), (vec![6, 6, 6], 1)]
        );
        // A set smaller than one batch fills it too.
        let few = eval_batches(&items[..2], 5, true)
            .map(|b| (b.items.to_vec(), b.real))
            .collect::<Vec<_>>();
        assert_eq!(few, [(vec![0, 1, 1, 1, 1], 2)]);
    }

    #[test]
    fn padded_batches_give_the_features_of_the_items_alone() {
        use crate::family::Vision;
        use loramix_data::{ImageItem, ImageShape};
        use loramix_models::VitConfig;
        let config = VitConfig::new()
            .with_image_size(8)
            .with_dim(16)
            .with_heads(2)
            .with_depth(1)
            .with_mlp_dim(32);
        let family = Vision::own(config, ImageShape::square(1, 8));
        let device = loramix_backend::device();
        let model = family.init(3, &device).valid();
        let items: Vec<ImageItem> = (0..5)
            .map(|i| ImageItem {
                pixels: (0..64)
                    .map(|p| ((p * 7 + i * 13) % 17) as f32 / 17.0)
                    .collect(),
                label: i % 3,
            })
            .collect();
        let alone = Tensor::cat(
            items
                .iter()
                .map(|item| model.features(family.input(std::slice::from_ref(item), &device)))
                .collect(),
            0,
        );
        let padded = features_in(&family, &model, eval_batches(&items, 4, true), 1);
        assert_eq!(padded.dims(), alone.dims());
        padded
            .into_data()
            .assert_approx_eq::<f32>(&alone.into_data(), burn::tensor::Tolerance::absolute(1e-5));
    }

    /// Tests that seed burn's one generator take turns.
    fn turn() -> std::sync::MutexGuard<'static, ()> {
        static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
        TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A head fitted from burn's generator seeded with 7.
    fn seeded_head(lr: f64, head_lr: Option<f64>) -> Linear<Inference> {
        let (x, items) = separable(24);
        loramix_lora::init::seed::<Train>(&loramix_backend::device(), 7);
        let schedule = Schedule {
            steps: 40,
            batch: 8,
            lr,
            head_lr,
            parts: 2,
        };
        fit_head(x, &items, 2, schedule, 3).unwrap()
    }

    #[test]
    fn the_probe_learns_at_the_head_rate_and_separates() {
        let _turn = turn();
        let weights = |head: &Linear<Inference>| head.weight.val().into_data();
        let at_head_rate = seeded_head(1e-9, Some(0.1));
        let at_lr = seeded_head(0.1, None);
        assert_eq!(
            weights(&at_head_rate),
            weights(&at_lr),
            "a probe is all head: head_lr must be its rate"
        );
        let barely = seeded_head(1e-9, None);
        assert_ne!(weights(&barely), weights(&at_lr));
        let (x, items) = separable(24);
        assert_eq!(head_accuracy(&at_lr, x, &items), 1.0);
    }

    /// 100 steps of batch 8 at rate 0.5: the early-stopping tests' schedule.
    fn hundred_steps() -> Schedule {
        Schedule {
            steps: 100,
            batch: 8,
            lr: 0.5,
            head_lr: None,
            parts: 1,
        }
    }

    #[test]
    fn early_stopping_breaks_accuracy_ties_by_validation_loss() {
        let _turn = turn();
        let (x, items) = separable(24);
        let validation = HeadValidation {
            features: x.clone(),
            items: &items,
            checks: 10,
        };
        loramix_lora::init::seed::<Train>(&loramix_backend::device(), 7);
        let schedule = hundred_steps();
        let best = fit_head_stopped(x.clone(), &items, 2, schedule, 3, Some(&validation)).unwrap();
        // Checks every 10 steps. Separable data is classified perfectly long before step 100,
        // but its loss keeps falling, so the last check wins the accuracy tie.
        let score = best.score.unwrap();
        assert_eq!(score.accuracy, 1.0);
        assert_eq!(best.steps, 100);
        assert_eq!(head_score(&best.model, x, &items), score);
    }

    #[test]
    fn training_to_convergence_stops_after_patience_checks_without_improvement() {
        let _turn = turn();
        let (x, items) = separable(24);
        let device = loramix_backend::device();
        let schedule = hundred_steps();
        let run = |scripted: &[(f64, f64)], patience: Option<usize>| {
            let calls = std::cell::Cell::new(0);
            let score = |_: &LinearProbe<Train>| {
                let (accuracy, loss) = scripted[calls.get().min(scripted.len() - 1)];
                calls.set(calls.get() + 1);
                Some(ValScore { accuracy, loss })
            };
            let stop = EarlyStop {
                every: 10,
                score: &score,
                patience,
            };
            let examples = Examples {
                input: &Tensor::<Train, 2>::from_inner(x.clone()),
                targets: &targets::<Train, TextItem>(&items, &device),
                select: |x: &Tensor<Train, 2>, index| x.clone().select(0, index),
            };
            loramix_lora::init::seed::<Train>(&device, 7);
            let probe = LinearProbe::<Train>::new(2, 2, &device);
            let hidden = ProgressBar::hidden();
            let stopped = train(probe, examples, schedule, 3, &hidden, Some(&stop)).unwrap();
            (stopped, calls.get())
        };
        // Best at the second check (step 20); the third ties its accuracy at a higher loss and
        // the fourth is worse: two checks without improvement end the run there.
        let scripted = [(0.5, 1.0), (0.7, 0.8), (0.7, 0.9), (0.6, 0.5), (0.9, 0.1)];
        let (stopped, checks) = run(&scripted, Some(2));
        assert_eq!((stopped.steps, stopped.converged, checks), (20, true, 4));
        assert_eq!(stopped.score.unwrap().accuracy, 0.7);
        // The model kept is the one of step 20: as a run of 20 steps leaves it.
        let kept = stopped.model.head.weight.val().into_data();
        let short = Schedule {
            steps: 20,
            ..schedule
        };
        loramix_lora::init::seed::<Train>(&device, 7);
        let probe = LinearProbe::<Train>::new(2, 2, &device);
        let examples = Examples {
            input: &Tensor::<Train, 2>::from_inner(x.clone()),
            targets: &targets::<Train, TextItem>(&items, &device),
            select: |x: &Tensor<Train, 2>, index| x.clone().select(0, index),
        };
        let plain = train(probe, examples, short, 3, &ProgressBar::hidden(), None).unwrap();
        assert_eq!(kept, plain.model.head.weight.val().into_data());
        // Without patience every step runs and the best check is kept, not marked converged.
        let (stopped, checks) = run(&scripted, None);
        assert_eq!((stopped.steps, stopped.converged, checks), (50, false, 10));
    }

    #[test]
    fn a_score_beats_another_by_accuracy_then_loss_and_equal_ones_keep_the_first() {
        let score = |accuracy, loss| ValScore { accuracy, loss };
        assert!(score(0.6, 2.0).beats(&score(0.5, 0.1)));
        assert!(score(0.5, 0.1).beats(&score(0.5, 0.2)));
        assert!(!score(0.5, 0.2).beats(&score(0.5, 0.2)));
        assert!(!score(0.4, 0.0).beats(&score(0.5, 9.0)));
        assert!(ValScore::improves(Some(score(0.0, 9.0)), None));
        assert!(!ValScore::improves(None, Some(score(0.0, 9.0))));
        assert!(!ValScore::improves(None, None));
    }
}
