//! The models loramix adapts, and how they are trained.
//!
//! [`Vit`] (images) and [`TextTransformer`] (UTF-8 bytes) share one pre-norm
//! [`Encoder`] whose attention and MLP linears are [`AdaptedLinear`](loramix_lora::AdaptedLinear)s,
//! so every LoRA target exists in both. Both implement [`Classifier`] (features, then a
//! replaceable linear head) and [`AdapterHost`](loramix_lora::AdapterHost) (adapters are
//! extracted from and applied to them). [`Trainer`] runs one AdamW step on whichever parameters
//! [`Trainable`] leaves trainable.

mod attention;
mod batch;
mod block;
mod classifier;
mod encoder;
mod fingerprint;
mod text;
mod train;
mod vit;

pub use attention::SelfAttention;
pub use batch::{Batch, MIN_PART_TOKENS, forward_in_parts, in_parts, parts_for, split_rows};
pub use block::{Block, BlockConfig};
pub use classifier::{Classifier, Trainable, named_params, trainable_params};
pub use encoder::{Encoder, EncoderConfig};
pub use fingerprint::{Fingerprinted, fingerprint};
pub use text::{ByteTokenizer, PAD_TOKEN, TextTransformer, TextTransformerConfig};
pub use train::{BatchGradients, TrainConfig, TrainError, Trainer, batch_gradients};
pub use vit::{Vit, VitConfig};
