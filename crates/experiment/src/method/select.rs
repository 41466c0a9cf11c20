//! Selection, then composition (AdapterSoup's and LoraRetriever's idea, with a measure that
//! needs none of the modules' training data): every module is ranked by how fast adding it
//! lowers the task's loss, the first `k` are kept, and those are composed uniformly or with
//! learned weights.
//!
//! The measure is a gradient: with every module attached at weight 0 (the base itself) and a
//! head fitted on the base's features of the cell's examples, the score of module `m` is
//! `-dL/dw_m`, the derivative of the examples' mean cross-entropy in the module's weight,
//! summed over the layers. One forward and one backward pass over the examples rank all N
//! modules at once, instead of N forward passes and N head fits.

use burn::module::{AutodiffModule, Param};
use burn::nn::Linear;
use burn::nn::loss::CrossEntropyLoss;
use burn::tensor::Tensor;
use loramix_backend::{Device, Inference, Train};
use loramix_compose::{
    LearnedComposition, LearnedConfig, Normalisation, Penalty, Sharing, attach, uniform_weights,
};
use loramix_lora::Adapter;
use loramix_models::{Classifier, Learner, Trainable};
use serde::{Deserialize, Serialize};

use super::{
    CellJob, Composition, FrozenCache, Learned, Outcome, SweepMethod, check_rate, in_range,
};
use crate::error::Result;
use crate::family::Family;
use crate::fit::targets;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Select {
    /// Modules kept (all of them when there are fewer).
    pub k: usize,
    /// How the kept modules are composed.
    #[serde(default)]
    pub then: Then,
    /// The head's learning rate under `then = "learned"`, when it should differ from `lr`.
    #[serde(default)]
    pub head_lr: Option<f64>,
}

/// The composition of the selected modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Then {
    /// Weights `1/k`, folded into the base, with a fresh head.
    #[default]
    Uniform,
    /// Per-layer softmax weights trained with the head (the paper's learned composition).
    Learned,
}

impl SweepMethod for Select {
    const KIND: &'static str = "select";

    fn uses_modules(&self) -> bool {
        true
    }

    fn check(&self) -> std::result::Result<(), String> {
        in_range("k", self.k as f64, "1 or more", |v| v >= 1.0)?;
        check_rate("head_lr", self.head_lr)
    }

    fn run<F: Family>(&self, job: &CellJob<F>, _: &mut FrozenCache<F>) -> Result<Outcome> {
        let composition = self.compose(job)?;
        if self.then == Then::Learned {
            return Ok(composition.tested_with_own_head(job));
        }
        // The selection depends on the cell's examples, so the backbone is not cached per
        // task as the other frozen recipes' are.
        let (accuracy, choice) = job.test_with_fresh_head(&composition.model)?;
        Ok(Outcome {
            accuracy,
            trainable_params: job.head_params(),
            weights: composition.weights,
            choice,
        })
    }
}

impl Select {
    /// The `k` modules that lower the loss fastest, composed; the weights name every module
    /// (0 for those left out).
    pub fn compose<F: Family>(&self, job: &CellJob<F>) -> Result<Composition<F>> {
        let n = job.adapters.len();
        let scores = gradient_scores(job)?;
        let kept = top_modules(&scores, self.k.min(n));
        let adapters: Vec<Adapter> = kept.iter().map(|&i| job.adapters[i].clone()).collect();
        let sub = job.with_adapters(&adapters);
        let mut composition = match self.then {
            Then::Uniform => Composition::attached(&sub, &uniform_weights(kept.len()))?,
            Then::Learned => Learned {
                head_lr: self.head_lr,
                sharing: Sharing::PerLayer,
                normalisation: Normalisation::Softmax,
                penalty: Penalty::None,
            }
            .compose(&sub)?,
        };
        for (_, row) in &mut composition.weights {
            let mut all = vec![0.0; n];
            for (&i, &w) in kept.iter().zip(row.iter()) {
                all[i] = w;
            }
            *row = all;
        }
        composition.kept = Some(kept);
        Ok(composition)
    }
}

/// The indices of the `k` highest scores, highest first (the lower index on a tie).
pub fn top_modules(scores: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order.truncate(k);
    order
}

/// Per module, `-dL/dw` at the base (every module at weight 0), summed over the layers: how
/// fast the cell's examples' mean cross-entropy falls as the module is added, under a head
/// fitted on the base's features.
pub fn gradient_scores<F: Family>(job: &CellJob<F>) -> Result<Vec<f32>> {
    let device = job.device;
    let n = job.adapters.len();
    let (head, _) = job.fit_head_on(job.base)?;
    let mut model =
        F::Trained::from_inner(job.base.clone()).with_new_head(trainable(&head, device));
    attach(&mut model, job.adapters, &vec![0.0; n], device)?;
    let config = LearnedConfig {
        sharing: Sharing::PerLayer,
        normalisation: Normalisation::Unconstrained,
        penalty: Penalty::None,
    };
    let mut composition =
        LearnedComposition::new(model, config, device)?.trainable(Trainable::AdaptersAndHead);
    let rows = composition.values.val().dims()[0];
    composition.values = Param::from_tensor(Tensor::zeros([rows, n], device));
    let mut scores = vec![0.0f32; n];
    let total = job.items.len() as f32;
    for chunk in job.items.chunks(job.eval_batch.max(1)) {
        let logits = composition.logits(job.family.input::<Train>(chunk, device));
        let loss = CrossEntropyLoss::new(None, device)
            .forward(logits, targets::<Train, _>(chunk, device))
            .mul_scalar(chunk.len() as f32 / total);
        let grads = loss.backward();
        let gradient = (composition.values.grad(&grads))
            .expect("the module weights take a gradient")
            .sum_dim(0);
        let gradient: Vec<f32> =
            (gradient.into_data().convert::<f32>().to_vec()).expect("converted to f32");
        for (score, g) in scores.iter_mut().zip(gradient) {
            *score -= g;
        }
    }
    if let Some(bad) = scores.iter().find(|s| !s.is_finite()) {
        return Err(crate::error::ExperimentError::Invalid(format!(
            "{}: a module's selection score is {bad}; its update overwhelms the base",
            job.label
        )));
    }
    Ok(scores)
}

/// A copy of a fitted head that training code can differentiate through.
fn trainable(head: &Linear<Inference>, device: &Device) -> Linear<Train> {
    let copy =
        |t: Tensor<Inference, 2>| Param::from_tensor(Tensor::from_data(t.into_data(), device));
    Linear {
        weight: copy(head.weight.val()),
        bias: (head.bias.as_ref())
            .map(|b| Param::from_tensor(Tensor::from_data(b.val().into_data(), device))),
    }
}

#[cfg(test)]
mod tests {
    use super::top_modules as top;

    #[test]
    fn the_top_scores_come_first_and_ties_keep_module_order() {
        assert_eq!(top(&[0.1, 0.5, -1.0, 0.5, 0.3], 3), vec![1, 3, 4]);
        assert_eq!(top(&[0.0, 0.0], 2), vec![0, 1]);
        assert_eq!(top(&[2.0], 0), Vec::<usize>::new());
    }
}
