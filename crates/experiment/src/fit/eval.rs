//! Evaluation: backbone features in batches (cut into parts run on their own threads) and
//! accuracy or validation score of a head on them.

use std::borrow::Cow;

use burn::nn::Linear;
use burn::nn::loss::CrossEntropyLoss;
use burn::tensor::{ElementConversion, Tensor};
use loramix_backend::Inference;
use loramix_data::Labelled;
use loramix_models::{Classifier, Learner, forward_in_parts};

use crate::family::Family;

use super::{ValScore, targets};

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

pub(super) fn features_in<'a, F: Family>(
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
pub(super) struct EvalBatch<'a, I: Clone> {
    pub(super) items: Cow<'a, [I]>,
    pub(super) real: usize,
}

/// `items` in batches of `batch` (at least 1). With `same_shape`, a batch with fewer items (the
/// last, or a set smaller than one batch) is filled up to `batch` with copies of its last item:
/// a GPU backend compiles kernels for every new input shape (seconds from an empty kernel
/// cache), while padding rows cost next to nothing there. The CPU backend has no kernels to
/// compile and computes every row, so it takes the batches as they are.
pub(super) fn eval_batches<I: Clone>(
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
    let correct = hits(logits, items).into_iter().filter(|&hit| hit).count();
    correct as f64 / items.len() as f64
}

/// Per item of `items`, whether a head classifies it correctly from its features: what a
/// paired test of two candidates on the same items compares.
pub fn head_hits<I: Labelled>(
    head: &Linear<Inference>,
    features: Tensor<Inference, 2>,
    items: &[I],
) -> Vec<bool> {
    match items.is_empty() {
        true => Vec::new(),
        false => hits(head.forward(features), items),
    }
}

/// Per item, whether its label is the argmax of its row of `logits`.
fn hits<I: Labelled>(logits: Tensor<Inference, 2>, items: &[I]) -> Vec<bool> {
    let predicted = (logits
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .to_vec::<i64>())
    .expect("converted to i64");
    (predicted.iter().zip(items))
        .map(|(p, item)| *p == item.label() as i64)
        .collect()
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
