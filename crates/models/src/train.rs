use burn::config::Config;
use burn::module::{AutodiffModule, ModuleMapper, Param};
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsAccumulator, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor};

use crate::{Batch, Learner, in_parts, parts_for};

/// Optimiser settings of one training run.
#[derive(Config, Debug, PartialEq)]
pub struct TrainConfig {
    /// AdamW learning rate.
    #[config(default = 1e-3)]
    pub lr: f64,
    /// AdamW decoupled weight decay.
    #[config(default = 1e-4)]
    pub weight_decay: f32,
    /// Learning rate of the head, when it differs from `lr` (a fresh head next to a pretrained
    /// backbone fine-tuned at a small `lr` would barely move otherwise).
    #[config(default = "None")]
    pub head_lr: Option<f64>,
    /// Parts each batch is cut into, one thread each (see [`Trainer::step`]). burn's CPU
    /// backends parallelise only large operations, so on small models one part keeps about one
    /// core busy; 1 on GPU backends.
    #[config(default = 1)]
    pub parts: usize,
}

/// Why a training step did not update the model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    #[error(
        "step {step}: the loss is {loss}; the update was skipped and the model kept as it was (lower the learning rate or check the inputs for NaN)"
    )]
    NonFiniteLoss { step: usize, loss: f32 },
    #[error("batch has {inputs} inputs but {targets} targets")]
    BatchMismatch { inputs: usize, targets: usize },
}

/// Runs training steps (forward, cross-entropy, backward, AdamW) on whichever parameters of the
/// model require a gradient; see [`Trainable`](crate::Trainable).
pub struct Trainer<B: AutodiffBackend, M: Learner<B> + AutodiffModule<B>> {
    /// Always `Some` between steps; taken only while the optimiser consumes it.
    model: Option<M>,
    optim: OptimizerAdaptor<AdamW, M, B>,
    lr: f64,
    head_lr: Option<f64>,
    parts: usize,
    steps: usize,
}

impl<B: AutodiffBackend, M: Learner<B> + AutodiffModule<B>> Trainer<B, M> {
    pub fn new(model: M, config: &TrainConfig) -> Self {
        Self {
            model: Some(model),
            optim: AdamWConfig::new()
                .with_weight_decay(config.weight_decay)
                .init(),
            lr: config.lr,
            head_lr: config.head_lr,
            parts: config.parts,
            steps: 0,
        }
    }

    /// The model as trained so far.
    pub fn model(&self) -> &M {
        self.model.as_ref().expect("model is present between steps")
    }

    /// The trained model.
    pub fn into_model(self) -> M {
        self.model.expect("model is present between steps")
    }

    /// Steps taken so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// One optimiser step on a batch; returns the batch loss (with the model's
    /// [`penalty`](crate::Learner::penalty), if any) before the update. A non-finite
    /// loss leaves the model untouched and is reported as an error.
    ///
    /// The gradients come from [`batch_gradients`] in [`TrainConfig::parts`] parts.
    pub fn step(&mut self, input: M::Input, targets: Tensor<B, 1, Int>) -> Result<f32, TrainError> {
        let (inputs, n_targets) = (input.batch_len(), targets.dims()[0]);
        if inputs != n_targets {
            return Err(TrainError::BatchMismatch {
                inputs,
                targets: n_targets,
            });
        }
        let model = self.model();
        let grads = batch_gradients(model, input, targets, self.parts, self.head_lr.is_some());
        if !grads.loss.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                step: self.steps,
                loss: grads.loss,
            });
        }
        let mut model = self.model.take().expect("model is present between steps");
        model = self.optim.step(self.lr, model, grads.body);
        if let (Some(lr), Some(head)) = (self.head_lr, grads.head) {
            model = self.optim.step(lr, model, head);
        }
        self.model = Some(model);
        self.steps += 1;
        Ok(grads.loss)
    }
}

/// The loss of a batch and the gradients of the parameters that require one.
pub struct BatchGradients {
    /// Cross-entropy over the batch, plus the model's penalty.
    pub loss: f32,
    /// Gradients of every trainable parameter (all but the head's when it is split off).
    pub body: GradientsParams,
    /// The head's gradients, when it is split off (it has its own learning rate).
    pub head: Option<GradientsParams>,
}

/// Loss and gradients of `model` on a batch, computed in `parts` parts of the batch (as many as
/// [`parts_for`] allows), each forward and backward on its own thread against its own copy of
/// the parameters' autodiff leaves. The parts' losses are weighted by their share of the batch
/// (the penalty counted once) and their gradients summed in part order: the one-part result up
/// to float rounding, the same on every run.
pub fn batch_gradients<B: AutodiffBackend, M: Learner<B> + AutodiffModule<B>>(
    model: &M,
    input: M::Input,
    targets: Tensor<B, 1, Int>,
    parts: usize,
    split_head: bool,
) -> BatchGradients {
    let len = input.batch_len();
    let parts = in_parts(
        &input,
        parts_for(len, model.tokens(), parts),
        |_| model.clone(),
        |replica, i, rows, input| {
            // One part (the whole batch) traces through the model's own leaves.
            let (replica, share) = if rows.len() == len {
                (replica, 1.0)
            } else {
                (fresh_leaves(replica), rows.len() as f64 / len as f64)
            };
            let targets = targets.rows(rows);
            part_gradients(&replica, input, targets, share, i == 0, split_head)
        },
    );
    let loss = parts.iter().map(|p| p.loss).sum();
    let (mut body, mut head) = (GradientsAccumulator::new(), GradientsAccumulator::new());
    for part in parts {
        body.accumulate(model, part.body);
        if let Some(grads) = part.head {
            head.accumulate(model.head(), grads);
        }
    }
    BatchGradients {
        loss,
        body: body.grads(),
        head: split_head.then(|| head.grads()),
    }
}

/// Forward and backward of one part: cross-entropy weighted by `share`, plus the model's penalty
/// when `with_penalty` (the first part only, so it counts once).
fn part_gradients<B: AutodiffBackend, M: Learner<B> + AutodiffModule<B>>(
    model: &M,
    input: M::Input,
    targets: Tensor<B, 1, Int>,
    share: f64,
    with_penalty: bool,
    split_head: bool,
) -> BatchGradients {
    let logits = model.logits(input);
    let mut loss = CrossEntropyLoss::new(None, &logits.device()).forward(logits, targets);
    if share != 1.0 {
        loss = loss * share;
    }
    if let Some(penalty) = model.penalty().filter(|_| with_penalty) {
        loss = loss + penalty;
    }
    let value: f32 = loss.clone().into_scalar().elem();
    let mut grads = loss.backward();
    let head = split_head.then(|| GradientsParams::from_module(&mut grads, model.head()));
    BatchGradients {
        loss: value,
        body: GradientsParams::from_grads(grads, model),
        head,
    }
}

/// `model` with every parameter on a new autodiff leaf (same values, ids and `require_grad`).
/// Two threads tracing through the same leaves would share one autodiff graph, whose lock
/// serialises their backward passes.
fn fresh_leaves<B: AutodiffBackend, M: AutodiffModule<B>>(model: M) -> M {
    struct Detach;
    impl<B: AutodiffBackend> ModuleMapper<B> for Detach {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            param.map(Tensor::detach)
        }
    }
    model.map(&mut Detach)
}
