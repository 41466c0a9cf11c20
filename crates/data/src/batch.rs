//! Items to tensors, through burn's `Batcher` so the data loaders of burn can drive them.

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use loramix_models::ByteTokenizer;

use crate::{ImageItem, ImageShape, TextItem};

/// Images `[n, channels, height, width]` and their class ids `[n]`.
#[derive(Debug, Clone)]
pub struct ImageBatch<B: Backend> {
    pub images: Tensor<B, 4>,
    pub targets: Tensor<B, 1, Int>,
}

/// Token ids `[n, max_len]` (padded with `PAD_TOKEN`) and class ids `[n]`.
#[derive(Debug, Clone)]
pub struct TextBatch<B: Backend> {
    pub tokens: Tensor<B, 2, Int>,
    pub targets: Tensor<B, 1, Int>,
}

/// Stacks [`ImageItem`]s of one shape.
#[derive(Debug, Clone, Copy)]
pub struct ImageBatcher {
    pub shape: ImageShape,
}

/// Tokenizes [`TextItem`]s with the model's tokenizer.
#[derive(Debug, Clone, Copy)]
pub struct TextBatcher {
    pub tokenizer: ByteTokenizer,
}

fn targets<B: Backend>(
    labels: impl Iterator<Item = usize>,
    device: &B::Device,
) -> Tensor<B, 1, Int> {
    let ids: Vec<i64> = labels.map(|l| l as i64).collect();
    let n = ids.len();
    Tensor::from_data(TensorData::new(ids, [n]), device)
}

impl<B: Backend> Batcher<B, ImageItem, ImageBatch<B>> for ImageBatcher {
    /// # Panics
    /// If an item does not have `shape.len()` pixels (the loaders guarantee it does).
    fn batch(&self, items: Vec<ImageItem>, device: &B::Device) -> ImageBatch<B> {
        let ImageShape {
            channels,
            height,
            width,
        } = self.shape;
        let pixels: Vec<f32> = items
            .iter()
            .flat_map(|item| {
                assert_eq!(
                    item.pixels.len(),
                    self.shape.len(),
                    "image of the wrong shape"
                );
                item.pixels.iter().copied()
            })
            .collect();
        ImageBatch {
            images: Tensor::from_data(
                TensorData::new(pixels, [items.len(), channels, height, width]),
                device,
            ),
            targets: targets(items.iter().map(|i| i.label), device),
        }
    }
}

impl<B: Backend> Batcher<B, TextItem, TextBatch<B>> for TextBatcher {
    fn batch(&self, items: Vec<TextItem>, device: &B::Device) -> TextBatch<B> {
        let texts: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
        TextBatch {
            tokens: self.tokenizer.batch(&texts, device),
            targets: targets(items.iter().map(|i| i.label), device),
        }
    }
}
