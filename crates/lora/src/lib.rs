//! LoRA for burn: a linear layer with a frozen base and a low-rank update `s * B A`, and
//! adapters that are saved, shared and loaded without the base model they were trained on.
//!
//! Shapes follow burn's [`Linear`](burn::nn::Linear) (`weight: [d_in, d_out]`, `y = x W + b`), so
//! internally `A` is stored as `[d_in, r]` and `B` as `[r, d_out]` and the update is
//! `x A B * s`. Adapter files use the PEFT layout (`lora_A: [r, d_in]`, `lora_B: [d_out, r]`).

mod adapter;
mod config;
pub mod files;
pub mod init;
mod linear;
mod materialize;
mod routed;
mod stacked;

pub use adapter::{
    ADAPTER_FORMAT, Adapter, AdapterError, AdapterHost, AdapterLayer, AdapterManifest,
    CompositionRecord, LayerShape, ParentModule,
};
pub use config::{LoraConfig, Target};
pub use linear::{AdaptedLinear, LoraDelta};
pub use materialize::materialize;
pub use routed::RoutedDelta;
pub use stacked::{ModuleFactors, StackedDelta};
