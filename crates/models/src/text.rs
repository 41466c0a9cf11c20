use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Embedding, Linear};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use loramix_lora::{AdaptedLinear, AdapterHost, init, materialize};

use crate::attention::{mean_over_tokens, padding_bias};
use crate::classifier::require_grad;
use crate::host::{
    adapter_host_with_encoder_field, classifier_with_encoder_field, learner_with_head_field,
};
use crate::{BlockConfig, Classifier, Encoder, EncoderConfig, Learner, Trainable, fingerprint};

/// Token id of padding; byte `b` is token `b + 1`.
pub const PAD_TOKEN: i64 = 0;
const VOCAB: usize = 257;

/// Byte-level tokenizer: no vocabulary file, every UTF-8 string is representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteTokenizer {
    /// Sequence length; longer texts are cut at the last character boundary that fits.
    pub max_len: usize,
}

impl ByteTokenizer {
    /// Token ids of `text`, truncated (never split inside a character) and padded to `max_len`.
    pub fn encode(&self, text: &str) -> Vec<i64> {
        let mut end = text.len().min(self.max_len);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut ids: Vec<i64> = text.as_bytes()[..end]
            .iter()
            .map(|&b| b as i64 + 1)
            .collect();
        ids.resize(self.max_len, PAD_TOKEN);
        ids
    }

    /// The text of token ids, padding dropped. Ids that are not bytes are skipped; invalid
    /// UTF-8 is replaced, so decoding never fails.
    pub fn decode(&self, ids: &[i64]) -> String {
        let bytes: Vec<u8> = ids
            .iter()
            .filter_map(|&id| u8::try_from(id - 1).ok().filter(|_| id != PAD_TOKEN))
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// A batch `[texts, max_len]` of token ids.
    pub fn batch<B: Backend, S: AsRef<str>>(
        &self,
        texts: &[S],
        device: &B::Device,
    ) -> Tensor<B, 2, Int> {
        let ids: Vec<i64> = texts.iter().flat_map(|t| self.encode(t.as_ref())).collect();
        Tensor::from_data(TensorData::new(ids, [texts.len(), self.max_len]), device)
    }
}

/// A small transformer over UTF-8 bytes: byte embeddings, learned positions, the shared
/// pre-norm blocks, mean pooling over non-padding tokens, a linear head.
#[derive(Config, Debug, PartialEq)]
pub struct TextTransformerConfig {
    /// Longest input in bytes.
    #[config(default = 128)]
    pub max_len: usize,
    #[config(default = 64)]
    pub dim: usize,
    #[config(default = 4)]
    pub depth: usize,
    #[config(default = 4)]
    pub heads: usize,
    #[config(default = 256)]
    pub mlp_dim: usize,
    #[config(default = 2)]
    pub n_classes: usize,
    #[config(default = 0.0)]
    pub dropout: f64,
}

impl TextTransformerConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> TextTransformer<B> {
        materialize(TextTransformer {
            embedding: init::embedding(VOCAB, self.dim, 0.02, device),
            positions: Param::from_tensor(init::normal([1, self.max_len, self.dim], 0.02, device)),
            encoder: EncoderConfig::new(
                BlockConfig::new(self.dim, self.heads, self.mlp_dim).with_dropout(self.dropout),
                self.depth,
            )
            .init(device),
            head: init::linear(self.dim, self.n_classes, device),
        })
    }

    /// The tokenizer matching this model's input length.
    pub fn tokenizer(&self) -> ByteTokenizer {
        ByteTokenizer {
            max_len: self.max_len,
        }
    }
}

/// See [`TextTransformerConfig`]. Input: token ids `[batch, len]` with `len <= max_len`.
#[derive(Module, Debug)]
pub struct TextTransformer<B: Backend> {
    pub embedding: Embedding<B>,
    pub positions: Param<Tensor<B, 3>>,
    pub encoder: Encoder<B>,
    pub head: Linear<B>,
}

impl<B: Backend> Learner<B> for TextTransformer<B> {
    type Input = Tensor<B, 2, Int>;

    learner_with_head_field!();

    fn tokens(&self) -> usize {
        self.positions.dims()[1]
    }
}

impl<B: Backend> Classifier<B> for TextTransformer<B> {
    fn features(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 2> {
        let len = tokens.dims()[1];
        let keep = tokens.clone().not_equal_elem(PAD_TOKEN).float();
        let x = self.embedding.forward(tokens) + self.positions.val().narrow(1, 0, len);
        let x = self.encoder.forward(x, Some(padding_bias(keep.clone())));
        mean_over_tokens(x, keep)
    }

    classifier_with_encoder_field!();

    fn trainable(self, which: Trainable) -> Self {
        let frozen = which != Trainable::All;
        let this = require_grad(self);
        Self {
            embedding: if frozen {
                this.embedding.no_grad()
            } else {
                this.embedding
            },
            positions: this.positions.set_require_grad(!frozen),
            encoder: this.encoder.trainable(which),
            ..this
        }
    }
}

impl<B: Backend> AdapterHost<B> for TextTransformer<B> {
    fn fingerprint(&self) -> String {
        fingerprint(
            &format!("text bytes heads={}", self.encoder.heads()),
            &[&self.embedding, &self.positions, &self.encoder.base_only()],
        )
    }

    adapter_host_with_encoder_field!();
}
