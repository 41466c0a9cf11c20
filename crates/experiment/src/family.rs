//! What differs between the vision and the text study: the item type, the backbone, and how
//! items become the backbone's input. Every stage is written once against [`Family`].

use std::path::Path;

use burn::data::dataloader::batcher::Batcher;
use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Int, Tensor};
use loramix_backend::{Device, Inference, Train};
use loramix_data::{ImageBatcher, ImageItem, ImageShape, SuiteItem, TextBatcher, TextItem};
use loramix_models::Learner;
use loramix_models::{
    Batch, Bert, Classifier, TextTransformer, TextTransformerConfig, Vit, VitConfig,
    WordPieceTokenizer,
};

use crate::backbone::{ModelSpec, OwnModel};
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

    /// A backbone with a fresh head of `n_classes`: the pretrained one if there is one, else
    /// a freshly initialised one.
    fn init(&self, n_classes: usize, device: &Device) -> Self::Trained;

    /// The pretrained backbone, if the experiment names one (then nothing is pretrained).
    fn pretrained(&self) -> Option<&Self::Frozen>;

    /// Items as one input batch.
    fn input<B: Backend>(&self, items: &[Self::Item], device: &B::Device) -> Self::Input<B>;
}

/// Grey or colour images and a ViT: loramix's own, or a pretrained DINOv2.
#[derive(Debug, Clone)]
pub struct Vision {
    pub shape: ImageShape,
    backbone: VisionBackbone,
}

#[derive(Debug, Clone)]
enum VisionBackbone {
    /// A ViT of this config, initialised fresh.
    Own(VitConfig),
    /// A pretrained ViT, and the side suite images are resized to for it.
    Pretrained {
        base: Box<Vit<Inference>>,
        size: usize,
    },
}

/// ImageNet channel statistics, which DINOv2 inputs are normalised with.
const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Texts and loramix's byte-level transformer.
#[derive(Debug, Clone)]
pub struct Text {
    pub config: TextTransformerConfig,
}

/// Texts and a pretrained BERT-family encoder with its WordPiece tokenizer.
#[derive(Debug, Clone)]
pub struct BertText {
    base: Bert<Inference>,
    tokenizer: WordPieceTokenizer,
}

impl Vision {
    /// The family of `model` for images of `shape`: a pretrained backbone is loaded from its
    /// folder.
    pub fn new(model: &ModelSpec, shape: ImageShape) -> Result<Self> {
        match model {
            ModelSpec::Pretrained(p) => Self::pretrained(&p.dir, shape, p.image_size),
            ModelSpec::Own(own) => Self::of_size(own, shape),
        }
    }

    /// The DINOv2 checkpoint in `dir`, for images of `shape` resized to `image_size` (default
    /// [`default_image_size`]).
    pub fn pretrained(dir: &Path, shape: ImageShape, image_size: Option<usize>) -> Result<Self> {
        if !matches!(shape.channels, 1 | 3) {
            return Err(ExperimentError::Invalid(format!(
                "a pretrained ViT takes grey or RGB images, not {} channels",
                shape.channels
            )));
        }
        let size = image_size.unwrap_or_else(default_image_size);
        let base = Vit::<Inference>::from_pretrained(dir, size, 1, &loramix_backend::device())?;
        Ok(Self {
            shape,
            backbone: VisionBackbone::Pretrained {
                base: Box::new(base),
                size,
            },
        })
    }

    /// A ViT of `model`'s size that loramix pretrains itself, for images of `shape`.
    fn of_size(model: &OwnModel, shape: ImageShape) -> Result<Self> {
        let size = model.size;
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
            .with_dim(size.dim)
            .with_depth(size.depth)
            .with_heads(size.heads)
            .with_mlp_dim(size.mlp_dim);
        Ok(Self::own(config, shape))
    }

    /// loramix's own ViT of `config` on images of `shape`.
    pub fn own(config: VitConfig, shape: ImageShape) -> Self {
        Self {
            shape,
            backbone: VisionBackbone::Own(config),
        }
    }
}

impl Text {
    pub fn new(model: &OwnModel) -> Result<Self> {
        let size = model.size;
        let max_len = model.max_len.ok_or_else(|| {
            ExperimentError::Invalid("model.max_len is needed for a text suite".into())
        })?;
        let config = TextTransformerConfig::new()
            .with_max_len(max_len)
            .with_dim(size.dim)
            .with_depth(size.depth)
            .with_heads(size.heads)
            .with_mlp_dim(size.mlp_dim);
        Ok(Self { config })
    }
}

/// The side a pretrained ViT's inputs are resized to unless the user says: its native 224 px on
/// an accelerator, 112 px on the CPU (a quarter of the patches).
pub fn default_image_size() -> usize {
    if loramix_backend::accelerator() {
        224
    } else {
        112
    }
}

/// On GPU backends texts are padded to a multiple of this many tokens: a few input shapes to
/// compile kernels for instead of one per longest text (see [`WordPieceTokenizer`]).
const GPU_LENGTH_BUCKET: usize = 16;

impl BertText {
    /// Loads the checkpoint and `tokenizer.json` in `dir`; texts are cut to `max_len`
    /// tokens (default 128, or the checkpoint's positions if fewer).
    pub fn pretrained(dir: &Path, max_len: Option<usize>) -> Result<Self> {
        let base = Bert::from_pretrained(dir, 1, &loramix_backend::device())?;
        let max_len = max_len.unwrap_or(base.tokens().min(128));
        if max_len > base.tokens() {
            return Err(ExperimentError::Invalid(format!(
                "model.max_len {max_len} exceeds the checkpoint's {} positions",
                base.tokens()
            )));
        }
        let mut tokenizer =
            WordPieceTokenizer::from_file(&dir.join("tokenizer.json"), max_len, base.pad_token)?;
        if loramix_backend::COMPILES_KERNELS {
            tokenizer = tokenizer.with_pad_to_multiple_of(GPU_LENGTH_BUCKET);
        }
        Ok(Self { base, tokenizer })
    }
}

impl Family for Vision {
    type Item = ImageItem;
    type Input<B: Backend> = Tensor<B, 4>;
    type Trained = Vit<Train>;
    type Frozen = Vit<Inference>;

    fn init(&self, n_classes: usize, device: &Device) -> Vit<Train> {
        match &self.backbone {
            VisionBackbone::Pretrained { base, .. } => {
                Vit::from_inner(base.as_ref().clone()).with_head(n_classes, device)
            }
            VisionBackbone::Own(config) => config.clone().with_n_classes(n_classes).init(device),
        }
    }

    fn pretrained(&self) -> Option<&Vit<Inference>> {
        match &self.backbone {
            VisionBackbone::Pretrained { base, .. } => Some(base),
            VisionBackbone::Own(_) => None,
        }
    }

    /// The suite's images; for a pretrained backbone resized (bilinear) to its input size,
    /// grey repeated to three channels, and normalised with the ImageNet statistics.
    fn input<B: Backend>(&self, items: &[ImageItem], device: &B::Device) -> Tensor<B, 4> {
        let images = ImageBatcher { shape: self.shape }
            .batch(items.to_vec(), device)
            .images;
        let VisionBackbone::Pretrained { size, .. } = self.backbone else {
            return images;
        };
        let channels = images.dims()[1];
        let resized = interpolate(
            images,
            [size, size],
            InterpolateOptions {
                mode: InterpolateMode::Bilinear,
                align_corners: false,
            },
        );
        let rgb = if channels == 1 {
            resized.repeat_dim(1, 3)
        } else {
            resized
        };
        let stat = |v: [f32; 3]| Tensor::<B, 1>::from_floats(v, device).reshape([1, 3, 1, 1]);
        (rgb - stat(IMAGENET_MEAN)) / stat(IMAGENET_STD)
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

    fn pretrained(&self) -> Option<&TextTransformer<Inference>> {
        None
    }

    fn input<B: Backend>(&self, items: &[TextItem], device: &B::Device) -> Tensor<B, 2, Int> {
        TextBatcher {
            tokenizer: self.config.tokenizer(),
        }
        .batch(items.to_vec(), device)
        .tokens
    }
}

impl Family for BertText {
    type Item = TextItem;
    type Input<B: Backend> = Tensor<B, 2, Int>;
    type Trained = Bert<Train>;
    type Frozen = Bert<Inference>;

    fn init(&self, n_classes: usize, device: &Device) -> Bert<Train> {
        Bert::from_inner(self.base.clone()).with_head(n_classes, device)
    }

    fn pretrained(&self) -> Option<&Bert<Inference>> {
        Some(&self.base)
    }

    /// WordPiece ids padded to the longest text of `items` (at most `max_len`; on GPU backends
    /// rounded up to a multiple of [`GPU_LENGTH_BUCKET`]).
    fn input<B: Backend>(&self, items: &[TextItem], device: &B::Device) -> Tensor<B, 2, Int> {
        let texts: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
        self.tokenizer
            .batch(&texts, device)
            .unwrap_or_else(|e| panic!("{e}"))
    }
}
