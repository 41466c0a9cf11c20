use burn::config::Config;
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use loramix_lora::{AdaptedLinear, LoraConfig, Target};

use crate::{Block, BlockConfig, Trainable};

/// A stack of [`Block`]s and, for pre-norm blocks, a final norm.
#[derive(Config, Debug, PartialEq)]
pub struct EncoderConfig {
    pub block: BlockConfig,
    /// Number of blocks.
    pub depth: usize,
}

impl EncoderConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> Encoder<B> {
        // Post-norm blocks end in a norm already (BERT has no final one).
        let norm = (!self.block.post_norm).then(|| {
            LayerNormConfig::new(self.block.dim)
                .with_epsilon(self.block.norm_eps)
                .init(device)
        });
        Encoder {
            blocks: (0..self.depth).map(|_| self.block.init(device)).collect(),
            norm,
        }
    }
}

/// The transformer body of every model: the ViT, the text model, BERT and DINOv2.
#[derive(Module, Debug)]
pub struct Encoder<B: Backend> {
    pub blocks: Vec<Block<B>>,
    pub norm: Option<LayerNorm<B>>,
}

impl<B: Backend> Encoder<B> {
    /// `x: [batch, tokens, dim]`; see [`SelfAttention::forward`](crate::SelfAttention::forward)
    /// for `key_bias`.
    ///
    /// The blocks see the tokens of the whole batch as rows of one `[batch * tokens, dim]`
    /// matrix: norms, linears and scales then broadcast over one axis, not two, and their
    /// backward passes reduce once (BENCHMARKS.md, kernel launches per step).
    pub fn forward(&self, x: Tensor<B, 3>, key_bias: Option<Tensor<B, 4>>) -> Tensor<B, 3> {
        let [batch, tokens, dim] = x.dims();
        let mut rows = x.reshape([batch * tokens, dim]);
        for block in &self.blocks {
            rows = block.forward(rows, tokens, key_bias.clone());
        }
        if let Some(norm) = &self.norm {
            rows = norm.forward(rows);
        }
        rows.reshape([batch, tokens, dim])
    }

    /// Every adaptable linear, named as seen from the model that owns this encoder
    /// (`encoder.blocks.{i}.{target}`), in block then target order.
    pub fn layers(&self) -> Vec<(String, &AdaptedLinear<B>)> {
        self.blocks
            .iter()
            .enumerate()
            .flat_map(|(i, block)| {
                Target::ALL
                    .into_iter()
                    .map(move |t| (format!("encoder.blocks.{i}.{t}"), block.layer(t)))
            })
            .collect()
    }

    /// [`Encoder::layers`], mutably.
    pub fn layers_mut(&mut self) -> Vec<(String, &mut AdaptedLinear<B>)> {
        let mut out = Vec::new();
        for (i, block) in self.blocks.iter_mut().enumerate() {
            let Block {
                attn,
                mlp_in,
                mlp_out,
                ..
            } = block;
            let layers = [
                (Target::Query, &mut attn.query),
                (Target::Key, &mut attn.key),
                (Target::Value, &mut attn.value),
                (Target::Output, &mut attn.output),
                (Target::MlpIn, mlp_in),
                (Target::MlpOut, mlp_out),
            ];
            out.extend(
                layers
                    .into_iter()
                    .map(|(t, l)| (format!("encoder.blocks.{i}.{t}"), l)),
            );
        }
        out
    }

    /// Attach fresh LoRA updates to the targets of every block.
    pub fn with_lora(self, config: &LoraConfig, device: &B::Device) -> Self {
        Self {
            blocks: self
                .blocks
                .into_iter()
                .map(|b| b.with_lora(config, device))
                .collect(),
            norm: self.norm,
        }
    }

    /// Apply `f` to every adaptable linear.
    pub fn map_layers(mut self, f: impl Fn(AdaptedLinear<B>) -> AdaptedLinear<B>) -> Self {
        for (_, layer) in self.layers_mut() {
            *layer = f(layer.clone());
        }
        self
    }

    /// Attention heads per block.
    pub fn heads(&self) -> usize {
        self.blocks.first().map_or(0, |b| b.attn.heads)
    }

    /// The encoder without any low-rank update: what a base fingerprint is computed on.
    pub fn base_only(&self) -> Self {
        self.clone().map_layers(AdaptedLinear::without_lora)
    }

    /// Freeze what `which` does not train: nothing (`All`), everything (`HeadOnly`, the head is
    /// not part of the encoder), or the base weights only (`AdaptersAndHead`).
    pub fn trainable(self, which: Trainable) -> Self {
        match which {
            Trainable::All => self,
            Trainable::HeadOnly => self.no_grad(),
            Trainable::AdaptersAndHead => self.freeze_base(),
        }
    }

    /// Freeze every base weight (norms, scales, linears) but leave LoRA updates trainable.
    pub fn freeze_base(self) -> Self {
        Self {
            blocks: self.blocks.into_iter().map(Block::freeze_base).collect(),
            norm: self.norm.map(LayerNorm::no_grad),
        }
    }
}
