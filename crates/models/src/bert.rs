//! BERT-family sentence encoders (BertModel checkpoints such as all-MiniLM-L6-v2), loaded from a
//! Hugging Face directory (`config.json` + `model.safetensors`).
//!
//! Embeddings (word + position + token type 0, then LayerNorm), post-norm blocks of the shared
//! [`Encoder`], mean pooling over non-padding tokens as sentence-transformers does, and a
//! replaceable linear head. Every attention and MLP linear is LoRA-capable.
//!
//! Reproduces `transformers`' `BertModel` (src/transformers/models/bert/modeling_bert.py,
//! <https://github.com/huggingface/transformers/blob/main/src/transformers/models/bert/modeling_bert.py>),
//! with its blocks under loramix's names ([`crate::hf::BERT`] maps them).

use std::path::Path;

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use loramix_lora::{AdaptedLinear, AdapterHost, init, materialize};
use serde::{Deserialize, Serialize};

use crate::attention::{mean_over_tokens, padding_bias};
use crate::checkpoint::{self, Checkpoint, CheckpointError, Layout, Source};
use crate::classifier::require_grad;
use crate::hf::{BERT, norm_source};
use crate::host::{
    adapter_host_with_encoder_field, classifier_with_encoder_field, learner_with_head_field,
};
use crate::{BlockConfig, Classifier, Encoder, EncoderConfig, Learner, Trainable, fingerprint};

/// The fields of a Hugging Face BERT `config.json` that define the computation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    #[serde(default = "gelu")]
    pub hidden_act: String,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default = "absolute")]
    pub position_embedding_type: String,
}

fn gelu() -> String {
    "gelu".into()
}

fn absolute() -> String {
    "absolute".into()
}

impl BertConfig {
    /// Reads `config.json`, refusing settings this implementation does not compute.
    pub fn from_file(path: &Path) -> Result<Self, CheckpointError> {
        let invalid = |detail: String| CheckpointError::Config {
            path: path.to_path_buf(),
            detail,
        };
        let config: Self = checkpoint::read_config(path)?;
        if config.hidden_act != "gelu" {
            return Err(invalid(format!(
                "hidden_act `{}` is not supported (only `gelu`, the exact erf form)",
                config.hidden_act
            )));
        }
        if config.position_embedding_type != "absolute" {
            return Err(invalid(format!(
                "position_embedding_type `{}` is not supported (only `absolute`)",
                config.position_embedding_type
            )));
        }
        checkpoint::check_encoder_shape(
            config.hidden_size,
            config.num_attention_heads,
            config.layer_norm_eps,
        )
        .map_err(invalid)?;
        if config.hidden_size == 0 || config.intermediate_size == 0 {
            return Err(invalid(
                "hidden_size and intermediate_size must be at least 1".into(),
            ));
        }
        if config.pad_token_id >= config.vocab_size || config.type_vocab_size == 0 {
            return Err(invalid(
                "pad_token_id must be below vocab_size and type_vocab_size at least 1".into(),
            ));
        }
        Ok(config)
    }

    /// A lower bound of the model's parameter count: its embedding tables and the weight
    /// matrices of its blocks (what [`Checkpoint::check_holds`] compares before building it).
    pub fn weights_at_least(&self) -> u128 {
        let [v, p, t, d, i, l] = [
            self.vocab_size,
            self.max_position_embeddings,
            self.type_vocab_size,
            self.hidden_size,
            self.intermediate_size,
            self.num_hidden_layers,
        ]
        .map(|x| x as u128);
        let embeddings = (v + p + t).saturating_mul(d);
        let block = d.saturating_mul(d).saturating_mul(4) + d.saturating_mul(i).saturating_mul(2);
        embeddings.saturating_add(l.saturating_mul(block))
    }

    /// A randomly initialised model of this shape with a head of `n_classes` (what a checkpoint
    /// is loaded into; tests use it for tiny random models).
    pub fn init<B: Backend>(&self, n_classes: usize, device: &B::Device) -> Bert<B> {
        let d = self.hidden_size;
        let embedding = |n| EmbeddingConfig::new(n, d).init(device);
        materialize(Bert {
            embeddings: BertEmbeddings {
                word_embeddings: embedding(self.vocab_size),
                position_embeddings: embedding(self.max_position_embeddings),
                token_type_embeddings: embedding(self.type_vocab_size),
                layer_norm: LayerNormConfig::new(d)
                    .with_epsilon(self.layer_norm_eps)
                    .init(device),
            },
            encoder: EncoderConfig::new(
                BlockConfig::new(d, self.num_attention_heads, self.intermediate_size)
                    .with_norm_eps(self.layer_norm_eps)
                    .with_post_norm(true),
                self.num_hidden_layers,
            )
            .init(device),
            head: init::linear(d, n_classes, device),
            pad_token: self.pad_token_id as i64,
        })
    }
}

/// Token, position and token-type embeddings, summed and normalised.
#[derive(Module, Debug)]
pub struct BertEmbeddings<B: Backend> {
    pub word_embeddings: Embedding<B>,
    pub position_embeddings: Embedding<B>,
    pub token_type_embeddings: Embedding<B>,
    pub layer_norm: LayerNorm<B>,
}

/// See the module documentation. Input: token ids `[batch, len]`, padded with the config's
/// `pad_token_id` (what [`WordPieceTokenizer`](crate::WordPieceTokenizer) produces).
#[derive(Module, Debug)]
pub struct Bert<B: Backend> {
    pub embeddings: BertEmbeddings<B>,
    pub encoder: Encoder<B>,
    pub head: Linear<B>,
    pub pad_token: i64,
}

impl<B: Backend> Bert<B> {
    /// Loads `config.json` and `model.safetensors` from `dir`, with a fresh head of
    /// `n_classes`. A `bert.`-prefixed checkpoint (a task model's backbone) loads too; a pooler
    /// is ignored (loramix pools by mean).
    pub fn from_pretrained(
        dir: &Path,
        n_classes: usize,
        device: &B::Device,
    ) -> Result<Self, CheckpointError> {
        let config = BertConfig::from_file(&dir.join("config.json"))?;
        let checkpoint = Checkpoint::open(&dir.join("model.safetensors"))?
            .strip_prefix_if_all("bert.", "embeddings.word_embeddings.weight")
            .ignoring(&["pooler.", "embeddings.position_ids", "cls.", "classifier."]);
        checkpoint.check_holds(&dir.join("config.json"), config.weights_at_least())?;
        checkpoint::load(config.init(n_classes, device), &checkpoint, bert_source)
    }

    /// Token states after the last block, `[batch, len, dim]`, and the padding mask
    /// `[batch, len]` (1 for a real token).
    pub fn token_states(&self, tokens: Tensor<B, 2, Int>) -> (Tensor<B, 3>, Tensor<B, 2>) {
        let [batch, len] = tokens.dims();
        let device = tokens.device();
        let keep = tokens.clone().not_equal_elem(self.pad_token).float();
        let positions = Tensor::<B, 1, Int>::arange(0..len as i64, &device)
            .reshape([1, len])
            .expand([batch, len]);
        let types = Tensor::<B, 2, Int>::zeros([batch, len], &device);
        let e = &self.embeddings;
        let x = e.word_embeddings.forward(tokens)
            + e.position_embeddings.forward(positions)
            + e.token_type_embeddings.forward(types);
        let x = e.layer_norm.forward(x);
        (
            self.encoder.forward(x, Some(padding_bias(keep.clone()))),
            keep,
        )
    }
}

/// The checkpoint tensor of each parameter (the head stays fresh).
fn bert_source(path: &str) -> Option<Source> {
    if let Some(rest) = path.strip_prefix("encoder.") {
        return BERT.source(rest);
    }
    let (module, param) = path.rsplit_once('.')?;
    match module {
        "embeddings.word_embeddings"
        | "embeddings.position_embeddings"
        | "embeddings.token_type_embeddings" => {
            Some(Source::new(format!("{module}.{param}"), Layout::AsIs))
        }
        "embeddings.layer_norm" => norm_source("embeddings.LayerNorm", param),
        _ => None,
    }
}

impl<B: Backend> Learner<B> for Bert<B> {
    type Input = Tensor<B, 2, Int>;

    learner_with_head_field!();

    fn tokens(&self) -> usize {
        self.embeddings.position_embeddings.weight.dims()[0]
    }
}

impl<B: Backend> Classifier<B> for Bert<B> {
    /// Mean of the token states over non-padding tokens (sentence-transformers pooling).
    fn features(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 2> {
        let (states, keep) = self.token_states(tokens);
        mean_over_tokens(states, keep)
    }

    classifier_with_encoder_field!();

    fn trainable(self, which: Trainable) -> Self {
        let this = require_grad(self);
        Self {
            embeddings: if which == Trainable::All {
                this.embeddings
            } else {
                this.embeddings.no_grad()
            },
            encoder: this.encoder.trainable(which),
            ..this
        }
    }
}

impl<B: Backend> AdapterHost<B> for Bert<B> {
    fn fingerprint(&self) -> String {
        fingerprint(
            &format!("bert post-norm heads={}", self.encoder.heads()),
            &[&self.embeddings, &self.encoder.base_only()],
        )
    }

    adapter_host_with_encoder_field!();
}
