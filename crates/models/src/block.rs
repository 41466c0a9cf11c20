use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig};
use burn::tensor::Tensor;
use burn::tensor::activation::gelu;
use burn::tensor::backend::Backend;
use loramix_lora::{AdaptedLinear, LoraConfig, Target, init};

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
    /// Epsilon of the block's layer norms (BERT: 1e-12, DINOv2: 1e-6).
    #[config(default = 1e-5)]
    pub norm_eps: f64,
    /// Norm after each residual sum (BERT) instead of before each branch (ViT, DINOv2).
    #[config(default = false)]
    pub post_norm: bool,
    /// Initial value of a per-channel scale on each branch (DINOv2's LayerScale); none if unset.
    #[config(default = "None")]
    pub layer_scale: Option<f32>,
}

impl BlockConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> Block<B> {
        let norm = || {
            LayerNormConfig::new(self.dim)
                .with_epsilon(self.norm_eps)
                .init(device)
        };
        let scale = || {
            self.layer_scale
                .map(|value| Param::from_tensor(Tensor::full([self.dim], value, device)))
        };
        Block {
            norm_attn: norm(),
            attn: SelfAttention::new(self.dim, self.heads, device),
            scale_attn: scale(),
            norm_mlp: norm(),
            mlp_in: init::linear(self.dim, self.mlp_dim, device).into(),
            mlp_out: init::linear(self.mlp_dim, self.dim, device).into(),
            scale_mlp: scale(),
            dropout: DropoutConfig::new(self.dropout).init(),
            post_norm: self.post_norm,
        }
    }
}

/// A transformer block with a GELU MLP. Pre-norm (ViT, DINOv2):
/// `x + g1 * attn(norm(x))`, then `x + g2 * mlp(norm(x))`, where `g1`, `g2` are the optional
/// LayerScales. Post-norm (BERT): `norm(x + attn(x))`, then `norm(x + mlp(x))`.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    pub norm_attn: LayerNorm<B>,
    pub attn: SelfAttention<B>,
    /// LayerScale of the attention branch (DINOv2 `layer_scale1`).
    pub scale_attn: Option<Param<Tensor<B, 1>>>,
    pub norm_mlp: LayerNorm<B>,
    pub mlp_in: AdaptedLinear<B>,
    pub mlp_out: AdaptedLinear<B>,
    /// LayerScale of the MLP branch (DINOv2 `layer_scale2`).
    pub scale_mlp: Option<Param<Tensor<B, 1>>>,
    pub dropout: Dropout,
    /// See [`BlockConfig::post_norm`].
    pub post_norm: bool,
}

/// `x * scale` broadcast over the channel axis, or `x` when there is no scale.
fn scaled<B: Backend>(x: Tensor<B, 2>, scale: &Option<Param<Tensor<B, 1>>>) -> Tensor<B, 2> {
    match scale {
        Some(scale) => x * scale.val().unsqueeze::<2>(),
        None => x,
    }
}

impl<B: Backend> Block<B> {
    /// `x: [batch * tokens, dim]`, the tokens of each example in consecutive rows; see
    /// [`SelfAttention::forward`] for `key_bias`.
    pub fn forward(
        &self,
        x: Tensor<B, 2>,
        tokens: usize,
        key_bias: Option<Tensor<B, 4>>,
    ) -> Tensor<B, 2> {
        let mlp = |h: Tensor<B, 2>| self.mlp_out.forward(gelu(self.mlp_in.forward(h)));
        if self.post_norm {
            let attended = self.attn.forward(x.clone(), tokens, key_bias);
            let x = self.norm_attn.forward(x + self.dropout.forward(attended));
            let hidden = mlp(x.clone());
            return self.norm_mlp.forward(x + self.dropout.forward(hidden));
        }
        let attended = self
            .attn
            .forward(self.norm_attn.forward(x.clone()), tokens, key_bias);
        let x = x + self.dropout.forward(scaled(attended, &self.scale_attn));
        let hidden = mlp(self.norm_mlp.forward(x.clone()));
        x + self.dropout.forward(scaled(hidden, &self.scale_mlp))
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

    /// Freeze every base weight of the block (norms, scales, linears) but leave LoRA updates
    /// trainable.
    pub fn freeze_base(mut self) -> Self {
        self.norm_attn = self.norm_attn.no_grad();
        self.norm_mlp = self.norm_mlp.no_grad();
        self.scale_attn = self.scale_attn.map(|s| s.set_require_grad(false));
        self.scale_mlp = self.scale_mlp.map(|s| s.set_require_grad(false));
        for target in Target::ALL {
            let layer = self.layer_mut(target);
            *layer = layer.clone().freeze_base();
        }
        self
    }
}
