use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use loramix_lora::{AdaptedLinear, AdapterHost, init, materialize};

use crate::classifier::require_grad;
use crate::host::{
    adapter_host_with_encoder_field, classifier_with_encoder_field, learner_with_head_field,
};
use crate::{BlockConfig, Classifier, Encoder, EncoderConfig, Learner, Trainable, fingerprint};

/// A Vision Transformer: non-overlapping patches, a class token, learned positions, pre-norm
/// blocks and a linear head on the class token. Defaults are the reference config of
/// DESIGN.md (28x28x1, patch 4, dim 64, depth 4, 4 heads, MLP 256, 10 classes).
#[derive(Config, Debug, PartialEq)]
pub struct VitConfig {
    #[config(default = 28)]
    pub image_size: usize,
    #[config(default = 4)]
    pub patch_size: usize,
    #[config(default = 1)]
    pub channels: usize,
    #[config(default = 64)]
    pub dim: usize,
    #[config(default = 4)]
    pub depth: usize,
    #[config(default = 4)]
    pub heads: usize,
    #[config(default = 256)]
    pub mlp_dim: usize,
    #[config(default = 10)]
    pub n_classes: usize,
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Epsilon of the layer norms (DINOv2: 1e-6).
    #[config(default = 1e-5)]
    pub norm_eps: f64,
    /// Initial LayerScale of each block branch (DINOv2); none if unset.
    #[config(default = "None")]
    pub layer_scale: Option<f32>,
}

impl VitConfig {
    /// Patches per image.
    pub fn n_patches(&self) -> usize {
        (self.image_size / self.patch_size).pow(2)
    }

    /// # Panics
    /// If the image size is not a multiple of the patch size.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Vit<B> {
        assert!(
            self.patch_size > 0 && self.image_size.is_multiple_of(self.patch_size),
            "image size {} is not a multiple of patch size {}",
            self.image_size,
            self.patch_size
        );
        let small = |shape| Param::from_tensor(init::normal(shape, 0.02, device));
        let patch_width = self.channels * self.patch_size * self.patch_size;
        materialize(Vit {
            patch_embed: init::linear(patch_width, self.dim, device),
            cls_token: small([1, 1, self.dim]),
            positions: small([1, self.n_patches() + 1, self.dim]),
            encoder: EncoderConfig::new(
                BlockConfig::new(self.dim, self.heads, self.mlp_dim)
                    .with_dropout(self.dropout)
                    .with_norm_eps(self.norm_eps)
                    .with_layer_scale(self.layer_scale),
                self.depth,
            )
            .init(device),
            head: init::linear(self.dim, self.n_classes, device),
            patch_size: self.patch_size,
        })
    }
}

/// See [`VitConfig`]. Input: images `[batch, channels, height, width]`.
#[derive(Module, Debug)]
pub struct Vit<B: Backend> {
    pub patch_embed: Linear<B>,
    pub cls_token: Param<Tensor<B, 3>>,
    pub positions: Param<Tensor<B, 3>>,
    pub encoder: Encoder<B>,
    pub head: Linear<B>,
    pub patch_size: usize,
}

impl<B: Backend> Vit<B> {
    /// Token states after the encoder (and its final norm), `[batch, 1 + patches, dim]`, the
    /// class token first (Hugging Face's `last_hidden_state`).
    pub fn token_states(&self, images: Tensor<B, 4>) -> Tensor<B, 3> {
        let batch = images.dims()[0];
        let tokens = self.patch_embed.forward(self.patchify(images));
        let dim = tokens.dims()[2];
        let cls = self.cls_token.val().expand([batch, 1, dim]);
        let x = Tensor::cat(vec![cls, tokens], 1) + self.positions.val();
        self.encoder.forward(x, None)
    }

    /// `[batch, c, h, w]` to `[batch, patches, c * p * p]`, patches in row-major order.
    fn patchify(&self, images: Tensor<B, 4>) -> Tensor<B, 3> {
        let [batch, channels, height, width] = images.dims();
        let p = self.patch_size;
        let (rows, cols) = (height / p, width / p);
        images
            .reshape([batch, channels, rows, p, cols, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([batch, rows * cols, channels * p * p])
    }
}

impl<B: Backend> Learner<B> for Vit<B> {
    type Input = Tensor<B, 4>;

    learner_with_head_field!();

    fn tokens(&self) -> usize {
        self.positions.dims()[1]
    }
}

impl<B: Backend> Classifier<B> for Vit<B> {
    /// The class token's final state.
    fn features(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let x = self.token_states(images);
        let [batch, _, dim] = x.dims();
        x.narrow(1, 0, 1).reshape([batch, dim])
    }

    classifier_with_encoder_field!();

    fn trainable(self, which: Trainable) -> Self {
        let frozen = which != Trainable::All;
        let this = require_grad(self);
        Self {
            patch_embed: if frozen {
                this.patch_embed.no_grad()
            } else {
                this.patch_embed
            },
            cls_token: this.cls_token.set_require_grad(!frozen),
            positions: this.positions.set_require_grad(!frozen),
            encoder: this.encoder.trainable(which),
            ..this
        }
    }
}

impl<B: Backend> AdapterHost<B> for Vit<B> {
    fn fingerprint(&self) -> String {
        fingerprint(
            &format!(
                "vit patch={} heads={}",
                self.patch_size,
                self.encoder.heads()
            ),
            &[
                &self.patch_embed,
                &self.cls_token,
                &self.positions,
                &self.encoder.base_only(),
            ],
        )
    }

    adapter_host_with_encoder_field!();
}
