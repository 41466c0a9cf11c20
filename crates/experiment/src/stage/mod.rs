//! The stages of an experiment, written once for both modalities and run in this order by
//! `loramix run`: `warm-up` (GPU backends only: kernel compilation), `pretrain` (the base model),
//! `upstream` (one LoRA per upstream task), `transfer` (the sweep), `similarity` (CKA) and
//! `report`. Each stage's artifacts are
//! named by a hash of what made them ([`Plan`](crate::plan::Plan)), so a rerun reuses them.

pub mod pretrain;
pub mod render;
pub mod report;
pub mod similarity;
pub mod transfer;
pub mod upstream;
pub mod warmup;
