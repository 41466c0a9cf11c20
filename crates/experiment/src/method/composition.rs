//! What a composing method makes of the base and the modules: the one implementation behind
//! the sweep's cells and `loramix compose`, so the two cannot drift apart. The sweep fits a
//! head on it and tests; `compose` scores it beside the base and each adapter, and writes it.

use burn::tensor::Tensor;
use loramix_backend::Inference;
use loramix_compose::{ArrowConfig, DenseMerge, add_to_base, merged_deltas};
use loramix_lora::Adapter;
use loramix_models::Classifier;

use super::{CellJob, Choice, Kind, Outcome};
use crate::error::Result;
use crate::family::Family;

/// A composition of the modules, before any head is fitted on it (the learned composition's
/// model carries the head trained with its weights).
pub struct Composition<F: Family> {
    /// The base with the composed update folded in.
    pub model: F::Frozen,
    /// The update in the form it is exported from.
    pub update: Update<F::Frozen>,
    /// The module weights per layer (`all` when one vector serves every layer), in the order
    /// of the adapters; empty when the method weighs no module (TIES).
    pub weights: Vec<(String, Vec<f32>)>,
    /// Parameters trained to make it (the learned composition's weights and head; the search's
    /// one weight per module); 0 for the fixed recipes.
    pub trainable_params: usize,
    /// What the tuning chose (the learned composition; the others tune only their head).
    pub choice: Option<Choice>,
    /// The modules composed, by index, when a selection kept only some (their weights are the
    /// nonzero ones); `None` when every module is.
    pub kept: Option<Vec<usize>>,
}

/// The composed update as it is exported.
pub enum Update<H> {
    /// The modules attached with their weights: exported exactly, every module's factors
    /// stacked.
    Attached(H),
    /// Merged dense deltas, one per adaptable layer (TIES, DARE): not low-rank, so exported
    /// through a truncated SVD.
    Dense(Vec<Option<Tensor<Inference, 2>>>),
    /// The modules routed per token (Arrow): exported as the modules themselves with the
    /// routing settings and GenKnowSub's general adapters, as PEFT's `create_arrow_model`
    /// takes them.
    Routed {
        config: ArrowConfig,
        general: Vec<Adapter>,
    },
}

impl<F: Family> Composition<F> {
    /// The modules attached to the base with `weights` (one per module, every layer).
    pub fn attached(job: &CellJob<F>, weights: &[f32]) -> Result<Self> {
        let mut host = job.base.clone();
        loramix_compose::attach(&mut host, job.adapters, weights, job.device)?;
        Ok(Self::of_host(host, vec![("all".into(), weights.to_vec())]))
    }

    /// The modules' dense deltas merged by `merge` and added to the base.
    pub fn merged(
        job: &CellJob<F>,
        merge: &DenseMerge,
        weights: Vec<(String, Vec<f32>)>,
    ) -> Result<Self> {
        let deltas = merged_deltas(job.base, job.adapters, merge, job.device)?;
        let mut model = job.base.clone();
        add_to_base(&mut model, deltas.clone());
        Ok(Self {
            model: model.fold_lora(),
            update: Update::Dense(deltas),
            weights,
            trainable_params: 0,
            choice: None,
            kept: None,
        })
    }

    /// A host with its composed modules attached, and the weights it was given.
    pub fn of_host(host: F::Frozen, weights: Vec<(String, Vec<f32>)>) -> Self {
        Self {
            model: host.clone().fold_lora(),
            update: Update::Attached(host),
            weights,
            trainable_params: 0,
            choice: None,
            kept: None,
        }
    }

    /// The cell's outcome when the model carries the head trained with its weights (the
    /// learned composition): its test accuracy with that head.
    pub fn tested_with_own_head(self, job: &CellJob<F>) -> Outcome {
        Outcome {
            accuracy: job.test_accuracy(&self.model),
            trainable_params: self.trainable_params,
            weights: self.weights,
            choice: self.choice,
        }
    }

    /// Each module's weights, one per weighted layer (one value when shared by every layer).
    pub fn per_module(&self, modules: usize) -> Vec<Vec<f32>> {
        (0..modules)
            .map(|m| self.weights.iter().map(|(_, row)| row[m]).collect())
            .collect()
    }
}

impl Kind {
    /// The composition this kind makes on the job's examples; `None` for the kinds that do not
    /// compose the modules (head-only, full fine-tuning, LoRA).
    pub fn compose<F: Family>(&self, job: &CellJob<F>) -> Option<Result<Composition<F>>> {
        Some(match self {
            Kind::Uniform(m) => m.compose(job),
            Kind::Fixed(m) => m.compose(job),
            Kind::Ties(m) => m.compose(job),
            Kind::Dare(m) => m.compose(job),
            Kind::Learned(m) => m.compose(job),
            Kind::Search(m) => m.compose(job),
            Kind::Select(m) => m.compose(job),
            Kind::Arrow(m) => m.compose(job),
            Kind::HeadOnly(_) | Kind::Full(_) | Kind::Lora(_) => return None,
        })
    }
}
