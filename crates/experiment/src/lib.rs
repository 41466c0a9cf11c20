//! The stages behind the `loramix` command: `pretrain`, `upstream`, `transfer`, `similarity`
//! and `report`, chained by `run` (see [`runner`]); `check`; `bench`; and the user's jobs
//! `compose` ([`compose`]) and `predict` ([`predict`]).

pub mod bench;
pub mod cka;
pub mod compose;
pub mod config;
pub mod error;
pub mod family;
pub mod fit;
pub mod pipeline;
pub mod predict;
pub mod pretrained;
mod progress;
pub mod report;
pub mod runner;
pub mod store;
pub mod user;
