//! What differs between the vision and the text study: the item type, the backbone, and how
//! items become the backbone's input. Every stage is written once against [`Family`].

use burn::data::dataloader::batcher::Batcher;
use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use loramix_backend::{Device, Inference, Train};
use loramix_data::{ImageBatcher, ImageItem, ImageShape, SuiteItem, TextBatcher, TextItem};
use loramix_models::{Batch, Classifier, TextTransformer, TextTransformerConfig, Vit, VitConfig};

use crate::config::ModelSpec;
use crate::error::{ExperimentError, Result};

/// A modality: its items, its backbone and the backbone's input.
pub trait Family: Clone + Send + Sync + 'static {
    type Item: SuiteItem;
    type Input<B: Backend>: Batch;
    /// The backbone being trained.
    type Trained: Classifier<Train, Input = Self::Input<Train>>
        + AutodiffModule<Train, InnerModule = Self::Frozen>;
    /// The same backbone without autodiff, for evaluation and feature extraction.
    type Frozen: Classifier<Inference, Input = Self::Input<Inference>>;

    /// A freshly initialised backbone with a head of `n_classes`.
    fn init(&self, n_classes: usize, device: &Device) -> Self::Trained;

    /// Items as one input batch.
    fn input<B: Backend>(&self, items: &[Self::Item], device: &B::Device) -> Self::Input<B>;

    /// Rows `index` of a batch (a minibatch drawn from a training set held as one tensor).
    fn select<B: Backend>(input: &Self::Input<B>, index: Tensor<B, 1, Int>) -> Self::Input<B>;
}

/// Grey or colour images and the ViT.
#[derive(Debug, Clone)]
pub struct Vision {
    pub config: VitConfig,
    pub shape: ImageShape,
}

/// Texts and the byte-level transformer.
#[derive(Debug, Clone)]
pub struct Text {
    pub config: TextTransformerConfig,
}

impl Vision {
    pub fn new(model: &ModelSpec, shape: ImageShape) -> Result<Self> {
        let patch = model.patch_size.ok_or_else(|| {
            ExperimentError::Invalid("model.patch_size is needed for an image suite".into())
        })?;
        if shape.height != shape.width || !shape.height.is_multiple_of(patch) {
            return Err(ExperimentError::Invalid(format!(
                "images of {}x{} cannot be cut into square patches of {patch}",
                shape.height, shape.width
            )));
        }
        let config = VitConfig::new()
            .with_image_size(shape.height)
            .with_channels(shape.channels)
            .with_patch_size(patch)
            .with_dim(model.dim)
            .with_depth(model.depth)
            .with_heads(model.heads)
            .with_mlp_dim(model.mlp_dim);
        Ok(Self { config, shape })
    }
}

impl Text {
    pub fn new(model: &ModelSpec) -> Result<Self> {
        let max_len = model.max_len.ok_or_else(|| {
            ExperimentError::Invalid("model.max_len is needed for a text suite".into())
        })?;
        let config = TextTransformerConfig::new()
            .with_max_len(max_len)
            .with_dim(model.dim)
            .with_depth(model.depth)
            .with_heads(model.heads)
            .with_mlp_dim(model.mlp_dim);
        Ok(Self { config })
    }
}

impl Family for Vision {
    type Item = ImageItem;
    type Input<B: Backend> = Tensor<B, 4>;
    type Trained = Vit<Train>;
    type Frozen = Vit<Inference>;

    fn init(&self, n_classes: usize, device: &Device) -> Vit<Train> {
        self.config.clone().with_n_classes(n_classes).init(device)
    }

    fn input<B: Backend>(&self, items: &[ImageItem], device: &B::Device) -> Tensor<B, 4> {
        ImageBatcher { shape: self.shape }
            .batch(items.to_vec(), device)
            .images
    }

    fn select<B: Backend>(input: &Tensor<B, 4>, index: Tensor<B, 1, Int>) -> Tensor<B, 4> {
        input.clone().select(0, index)
    }
}

impl Family for Text {
    type Item = TextItem;
    type Input<B: Backend> = Tensor<B, 2, Int>;
    type Trained = TextTransformer<Train>;
    type Frozen = TextTransformer<Inference>;

    fn init(&self, n_classes: usize, device: &Device) -> TextTransformer<Train> {
        self.config.clone().with_n_classes(n_classes).init(device)
    }

    fn input<B: Backend>(&self, items: &[TextItem], device: &B::Device) -> Tensor<B, 2, Int> {
        TextBatcher {
            tokenizer: self.config.tokenizer(),
        }
        .batch(items.to_vec(), device)
        .tokens
    }

    fn select<B: Backend>(
        input: &Tensor<B, 2, Int>,
        index: Tensor<B, 1, Int>,
    ) -> Tensor<B, 2, Int> {
        input.clone().select(0, index)
    }
}
