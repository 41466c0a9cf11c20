use burn::config::Config;
use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor};

use crate::Classifier;

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
pub struct Trainer<B: AutodiffBackend, M: Classifier<B> + AutodiffModule<B>> {
    /// Always `Some` between steps; taken only while the optimiser consumes it.
    model: Option<M>,
    optim: OptimizerAdaptor<AdamW, M, B>,
    lr: f64,
    head_lr: Option<f64>,
    steps: usize,
}

impl<B: AutodiffBackend, M: Classifier<B> + AutodiffModule<B>> Trainer<B, M> {
    pub fn new(model: M, config: &TrainConfig) -> Self {
        Self {
            model: Some(model),
            optim: AdamWConfig::new()
                .with_weight_decay(config.weight_decay)
                .init(),
            lr: config.lr,
            head_lr: config.head_lr,
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
    /// [`penalty`](Classifier::penalty), if any) before the update. A non-finite
    /// loss leaves the model untouched and is reported as an error.
    pub fn step(&mut self, input: M::Input, targets: Tensor<B, 1, Int>) -> Result<f32, TrainError> {
        let model = self.model();
        let logits = model.logits(input);
        let (inputs, n_targets) = (logits.dims()[0], targets.dims()[0]);
        if inputs != n_targets {
            return Err(TrainError::BatchMismatch {
                inputs,
                targets: n_targets,
            });
        }
        let mut loss = CrossEntropyLoss::new(None, &logits.device()).forward(logits, targets);
        if let Some(penalty) = model.penalty() {
            loss = loss + penalty;
        }
        let value: f32 = loss.clone().into_scalar().elem();
        if !value.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                step: self.steps,
                loss: value,
            });
        }
        let mut grads = loss.backward();
        let head_grads = self
            .head_lr
            .map(|lr| (lr, GradientsParams::from_module(&mut grads, model.head())));
        let grads = GradientsParams::from_grads(grads, model);
        let mut model = self.model.take().expect("model is present between steps");
        model = self.optim.step(self.lr, model, grads);
        if let Some((lr, head_grads)) = head_grads {
            model = self.optim.step(lr, model, head_grads);
        }
        self.model = Some(model);
        self.steps += 1;
        Ok(value)
    }
}
