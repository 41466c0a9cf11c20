//! A fresh linear head trained on cached features: the probe of every frozen-backbone method.

use burn::module::AutodiffModule;
use burn::nn::Linear;
use burn::tensor::Tensor;
use indicatif::ProgressBar;
use loramix_backend::{Inference, Train};
use loramix_data::Labelled;
use loramix_models::{LinearProbe, TrainError};

use super::train::{Examples, train};
use super::{EarlyStop, Schedule, Stopped, head_score, targets};

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
