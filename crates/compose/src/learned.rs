use std::fmt::Write as _;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use loramix_lora::{AdaptedLinear, AdapterHost};
use loramix_models::{Classifier, Encoder, Learner, Trainable};
use serde::{Deserialize, Serialize};

use crate::error::{ComposeError, Result};

/// One weight vector per composed layer (the paper), or one for the whole model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Sharing {
    #[default]
    PerLayer,
    Shared,
}

/// How trained values become module weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Normalisation {
    /// `softmax(v)`: weights positive and summing to one (the paper).
    #[default]
    Softmax,
    /// The values themselves, started at `1/N`: any sign, any sum.
    Unconstrained,
}

/// A regulariser on the module weights, added to the training loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Penalty {
    #[default]
    None,
    /// `lambda * mean over rows of sum_i |w_i|` (sparsity for unconstrained weights; constant under softmax).
    L1(f32),
    /// `lambda * mean over rows of the entropy of softmax(v)`: pushes each row towards few modules.
    Entropy(f32),
}

/// Settings of a learned composition.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct LearnedConfig {
    #[serde(default)]
    pub sharing: Sharing,
    #[serde(default)]
    pub normalisation: Normalisation,
    #[serde(default)]
    pub penalty: Penalty,
}

/// A model with composed layers (see [`attach`](crate::attach)) and trainable module weights.
///
/// The weights are a `[rows, N]` parameter (`rows` = composed layers, or 1 when shared); each
/// forward writes them into the layers' stacked updates, so gradients reach them through the
/// exact composition. They start equal, so step 0 is the uniform composition.
#[derive(Module, Debug)]
pub struct LearnedComposition<B: Backend, M> {
    pub model: M,
    /// Trained values `[rows, N]` (logits under softmax).
    pub values: Param<Tensor<B, 2>>,
    #[module(skip)]
    pub config: LearnedConfig,
}

impl<B: Backend, M: Classifier<B>> LearnedComposition<B, M> {
    /// Wrap `model`, whose layers already carry a composition of `n` modules.
    pub fn new(model: M, config: LearnedConfig, device: &B::Device) -> Result<Self> {
        let composed: Vec<usize> = model
            .adaptable_layers()
            .iter()
            .filter_map(|(_, l)| l.composition.as_ref().map(|s| s.n_modules()))
            .collect();
        let Some(&n) = composed.first() else {
            return Err(ComposeError::NothingComposed { action: "learn" });
        };
        let rows = match config.sharing {
            Sharing::PerLayer => composed.len(),
            Sharing::Shared => 1,
        };
        let start = match config.normalisation {
            Normalisation::Softmax => 0.0,
            Normalisation::Unconstrained => 1.0 / n as f32,
        };
        let values = Tensor::from_data(TensorData::new(vec![start; rows * n], [rows, n]), device);
        Ok(Self {
            model,
            values: Param::from_tensor(values),
            config,
        })
    }

    /// The module weights `[rows, N]`.
    pub fn weights(&self) -> Tensor<B, 2> {
        match self.config.normalisation {
            Normalisation::Softmax => softmax(self.values.val(), 1),
            Normalisation::Unconstrained => self.values.val(),
        }
    }

    /// The wrapped model with the current weights written into its composed layers.
    pub fn composed(&self) -> M {
        let weights = self.weights();
        let [rows, n] = weights.dims();
        let mut model = self.model.clone();
        let composed = model
            .adaptable_layers_mut()
            .into_iter()
            .filter_map(|(_, layer)| layer.composition.as_mut());
        for (i, stack) in composed.enumerate() {
            let row = if rows == 1 { 0 } else { i };
            stack.weights = weights.clone().slice([row..row + 1, 0..n]).reshape([n]);
        }
        model
    }

    /// The module weights per composed layer, named by its parameter path, or one row named
    /// `all` when the weights are shared.
    pub fn layer_weights(&self) -> Vec<(String, Vec<f32>)> {
        let weights = self.weights().into_data().convert::<f32>();
        let n = weights.shape[1];
        let values = weights.to_vec::<f32>().expect("converted to f32");
        let layers: Vec<String> = match self.config.sharing {
            Sharing::Shared => vec!["all".to_string()],
            Sharing::PerLayer => self
                .model
                .adaptable_layers()
                .into_iter()
                .filter(|(_, l)| l.composition.is_some())
                .map(|(name, _)| name)
                .collect(),
        };
        layers
            .into_iter()
            .zip(values.chunks(n).map(<[f32]>::to_vec))
            .collect()
    }

    /// The weights as CSV: a `layer` column (or `all` when shared), then one column per module.
    pub fn weights_csv(&self, module_names: &[String]) -> String {
        let mut csv = format!("layer,{}\n", module_names.join(","));
        for (layer, row) in self.layer_weights() {
            let cells: Vec<String> = row.iter().map(|w| w.to_string()).collect();
            let _ = writeln!(csv, "{layer},{}", cells.join(","));
        }
        csv
    }
}

impl<B: Backend, M: Classifier<B>> Learner<B> for LearnedComposition<B, M> {
    type Input = M::Input;

    fn logits(&self, input: Self::Input) -> Tensor<B, 2> {
        self.head().forward(self.features(input))
    }

    fn head(&self) -> &Linear<B> {
        self.model.head()
    }

    fn tokens(&self) -> usize {
        self.model.tokens()
    }

    fn penalty(&self) -> Option<Tensor<B, 1>> {
        let per_row = match self.config.penalty {
            Penalty::None => return None,
            Penalty::L1(lambda) => self.weights().abs().sum_dim(1) * lambda,
            Penalty::Entropy(lambda) => {
                let logits = self.values.val();
                let p = softmax(logits.clone(), 1);
                (p * log_softmax(logits, 1)).sum_dim(1) * (-lambda)
            }
        };
        Some(per_row.mean())
    }
}

impl<B: Backend, M: Classifier<B>> Classifier<B> for LearnedComposition<B, M> {
    fn features(&self, input: Self::Input) -> Tensor<B, 2> {
        self.composed().features(input)
    }

    fn encoder(&self) -> &Encoder<B> {
        self.model.encoder()
    }

    fn map_encoder(self, f: impl FnOnce(Encoder<B>) -> Encoder<B>) -> Self {
        Self {
            model: self.model.map_encoder(f),
            ..self
        }
    }

    fn with_new_head(self, head: Linear<B>) -> Self {
        Self {
            model: self.model.with_new_head(head),
            ..self
        }
    }

    /// Folds the composition with the current weights into the base.
    fn fold_lora(self) -> Self {
        Self {
            model: self.composed().fold_lora(),
            ..self
        }
    }

    /// `HeadOnly` freezes the weights too; `AdaptersAndHead` trains the weights and the head;
    /// `All` trains everything.
    fn trainable(self, which: Trainable) -> Self {
        let train_weights = which != Trainable::HeadOnly;
        Self {
            model: match which {
                Trainable::All => self.model.trainable(Trainable::All),
                _ => self.model.trainable(Trainable::HeadOnly),
            },
            values: self.values.set_require_grad(train_weights),
            config: self.config,
        }
    }
}

/// The wrapped model's layers, which hold the weights given at [`attach`](crate::attach)
/// time, not the learned ones: to fold, compress or save what was learned, use
/// [`LearnedComposition::composed`] first.
impl<B: Backend, M: Classifier<B>> AdapterHost<B> for LearnedComposition<B, M> {
    fn fingerprint(&self) -> String {
        self.model.fingerprint()
    }

    fn adaptable_layers(&self) -> Vec<(String, &AdaptedLinear<B>)> {
        self.model.adaptable_layers()
    }

    fn adaptable_layers_mut(&mut self) -> Vec<(String, &mut AdaptedLinear<B>)> {
        self.model.adaptable_layers_mut()
    }
}
