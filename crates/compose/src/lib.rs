//! Compositions of N upstream LoRA adapters over one base model (DESIGN.md, "Methods").
//!
//! Every composition is exact: per adapted layer it adds `sum_i w_i s_i B_i A_i`, never
//! `(sum B_i)(sum A_i)`. Compositions that keep the modules apart run as one stacked
//! rank-`sum r_i` path ([`StackedDelta`](loramix_lora::StackedDelta)); merges that act on
//! entries of the dense deltas (TIES, DARE) fold their result into the base
//! ([`merged_deltas`] gives it for export).
//!
//! - [`attach`] with [`uniform_weights`] or user weights: uniform composition and task arithmetic.
//! - [`LearnedComposition`]: per-layer (or shared) weights trained with the head.
//! - [`merge_into_base`] with [`DenseMerge`]: TIES and DARE on the exact deltas.
//! - [`route`]: Arrow's per-token routing over the modules, with optional GenKnowSub.
//! - [`search_weights`]: a gradient-free evolutionary search of the weights (as LoraHub does).
//! - [`export_exact`]: any composition as one adapter of rank `sum r_i`, exactly; [`compress`]
//!   (factors) and [`compress_dense`] (TIES, DARE) to rank r, with the approximation error.
//! - Folding for inference is [`Classifier::fold_lora`](loramix_models::Classifier::fold_lora).

mod arrow;
mod error;
mod export;
mod learned;
mod merge;
mod search;
mod stack;

pub use arrow::{ArrowConfig, check_routable, route};
pub use error::ComposeError;
pub use export::{Compressed, compress, compress_dense, export_exact, max_rank};
pub use learned::{LearnedComposition, LearnedConfig, Normalisation, Penalty, Sharing};
pub use merge::{DenseMerge, add_to_base, merge_into_base, merged_deltas};
pub use search::{SearchConfig, SearchResult, search_weights};
pub use stack::{attach, set_weights, uniform_weights};
