use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig, LinearConfig};
use burn::tensor::Tensor;
use burn::tensor::activation::gelu;
use burn::tensor::backend::Backend;
use loramix_lora::{AdaptedLinear, LoraConfig, Target};

use crate::SelfAttention;

/// Width and depth settings shared by every block of an encoder.
#[derive(Config, Debug, PartialEq)]
pub struct BlockConfig {
    /// Token width.
    pub dim: usize,
    /// Attention heads (`dim` must be divisible by it).
    pub heads: usize,
    /// Hidden width of the MLP.
    pub mlp_dim: usize,
    /// Dropout after attention and MLP.
    #[config(default = 0.0)]
    pub dropout: f64,
}

impl BlockConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> Block<B> {
        Block {
            norm_attn: LayerNormConfig::new(self.dim).init(device),
            attn: SelfAttention::new(self.dim, self.heads, device),
            norm_mlp: LayerNormConfig::new(self.dim).init(device),
            mlp_in: LinearConfig::new(self.dim, self.mlp_dim)
                .init(device)
                .into(),
            mlp_out: LinearConfig::new(self.mlp_dim, self.dim)
                .init(device)
                .into(),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

/// A pre-norm transformer block: `x + attn(norm(x))`, then `x + mlp(norm(x))` with a GELU MLP.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    pub norm_attn: LayerNorm<B>,
    pub attn: SelfAttention<B>,
    pub norm_mlp: LayerNorm<B>,
    pub mlp_in: AdaptedLinear<B>,
    pub mlp_out: AdaptedLinear<B>,
    pub dropout: Dropout,
}

impl<B: Backend> Block<B> {
    pub fn forward(&self, x: Tensor<B, 3>, key_bias: Option<Tensor<B, 4>>) -> Tensor<B, 3> {
        let attended = self
            .attn
            .forward(self.norm_attn.forward(x.clone()), key_bias);
        let x = x + self.dropout.forward(attended);
        let hidden = gelu(self.mlp_in.forward(self.norm_mlp.forward(x.clone())));
        x.clone() + self.dropout.forward(self.mlp_out.forward(hidden))
    }

    /// The linear that `target` names.
    pub fn layer(&self, target: Target) -> &AdaptedLinear<B> {
        match target {
            Target::Query => &self.attn.query,
            Target::Key => &self.attn.key,
            Target::Value => &self.attn.value,
            Target::Output => &self.attn.output,
            Target::MlpIn => &self.mlp_in,
            Target::MlpOut => &self.mlp_out,
        }
    }

    /// The linear that `target` names, mutably.
    pub fn layer_mut(&mut self, target: Target) -> &mut AdaptedLinear<B> {
        match target {
            Target::Query => &mut self.attn.query,
            Target::Key => &mut self.attn.key,
            Target::Value => &mut self.attn.value,
            Target::Output => &mut self.attn.output,
            Target::MlpIn => &mut self.mlp_in,
            Target::MlpOut => &mut self.mlp_out,
        }
    }

    /// Attach a fresh LoRA update to each linear in `config.targets`.
    pub fn with_lora(mut self, config: &LoraConfig, device: &B::Device) -> Self {
        for &target in &config.targets {
            let layer = self.layer_mut(target);
            *layer = layer.clone().with_lora(config, device);
        }
        self
    }
}
