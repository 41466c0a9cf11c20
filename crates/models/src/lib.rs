//! The models loramix adapts, and how they are trained.
//!
//! [`Vit`] (images; also DINOv2 checkpoints, [`dinov2`]), [`TextTransformer`] (UTF-8 bytes) and
//! [`Bert`] (pretrained BERT-family checkpoints) share one [`Encoder`] whose attention and MLP
//! linears are [`AdaptedLinear`](loramix_lora::AdaptedLinear)s, so every LoRA target exists in
//! all of them. Both implement [`Classifier`] (features, then a
//! replaceable linear head) and [`AdapterHost`](loramix_lora::AdapterHost) (adapters are
//! extracted from and applied to them). [`Trainer`] runs one AdamW step on whichever parameters
//! [`Trainable`] leaves trainable.

mod attention;
mod batch;
mod bert;
mod block;
pub mod checkpoint;
mod classifier;
pub mod dinov2;
mod encoder;
mod fingerprint;
pub mod hf;
mod host;
mod learner;
mod text;
mod train;
mod trainable;
mod vit;
mod wordpiece;

pub use attention::SelfAttention;
pub use batch::{Batch, MIN_PART_TOKENS, in_parts, parts_for, split_rows};
pub use bert::{Bert, BertConfig, BertEmbeddings};
pub use block::{Block, BlockConfig};
pub use checkpoint::CheckpointError;
pub use classifier::{Classifier, named_params, trainable_params};
pub use encoder::{Encoder, EncoderConfig};
pub use fingerprint::{Fingerprinted, fingerprint};
pub use learner::{Learner, LinearProbe, forward_in_parts};
pub use text::{ByteTokenizer, PAD_TOKEN, TextTransformer, TextTransformerConfig};
pub use train::{BatchGradients, TrainConfig, TrainError, Trainer, batch_gradients};
pub use trainable::Trainable;
pub use vit::{Vit, VitConfig};
pub use wordpiece::WordPieceTokenizer;
