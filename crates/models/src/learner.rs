//! What the [`Trainer`](crate::Trainer) needs of a model, so one training loop serves every
//! classifier and the linear probe that trains on cached features.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use loramix_lora::init;

use crate::{Batch, in_parts, parts_for};

/// A model the trainer can step: logits for a batch, the head (which may learn at its own
/// rate), an optional penalty, and the tokens per example (how finely a batch is worth
/// cutting across threads).
pub trait Learner<B: Backend>: Module<B> {
    type Input: Batch;

    /// Class logits `[batch, classes]`.
    fn logits(&self, input: Self::Input) -> Tensor<B, 2>;

    /// The classifier head.
    fn head(&self) -> &Linear<B>;

    /// A regularisation term added to the training loss (`[1]`), if the model has one.
    fn penalty(&self) -> Option<Tensor<B, 1>> {
        None
    }

    /// Tokens the model sees per example: what the work of a batch part scales with
    /// ([`parts_for`](crate::parts_for)).
    fn tokens(&self) -> usize;
}

/// A linear head alone, trained on features a frozen backbone computed once per example:
/// each step costs one small matmul.
#[derive(Module, Debug)]
pub struct LinearProbe<B: Backend> {
    pub head: Linear<B>,
}

impl<B: Backend> LinearProbe<B> {
    /// A fresh head from `dim` features to `n_classes`, initialised as every model's head is.
    pub fn new(dim: usize, n_classes: usize, device: &B::Device) -> Self {
        Self {
            head: init::linear(dim, n_classes, device),
        }
    }
}

impl<B: Backend> Learner<B> for LinearProbe<B> {
    /// Features `[batch, dim]`.
    type Input = Tensor<B, 2>;

    fn logits(&self, features: Tensor<B, 2>) -> Tensor<B, 2> {
        self.head.forward(features)
    }

    fn head(&self) -> &Linear<B> {
        &self.head
    }

    /// One row of features stands for one token's worth of work.
    fn tokens(&self) -> usize {
        1
    }
}
/// `f` (a forward pass with rows first in its output) over [`in_parts`] of `input`, as many as
/// [`parts_for`] allows of `parts`, concatenated.
pub fn forward_in_parts<B: Backend, M: Learner<B>, const D: usize>(
    model: &M,
    input: &M::Input,
    parts: usize,
    f: impl Fn(&M, M::Input) -> Tensor<B, D> + Sync,
) -> Tensor<B, D> {
    let parts = parts_for(input.batch_len(), model.tokens(), parts);
    let mut outputs = in_parts(input, parts, |_| model.clone(), |m, _, _, x| f(&m, x));
    match outputs.len() {
        1 => outputs.remove(0),
        _ => Tensor::cat(outputs, 0),
    }
}
