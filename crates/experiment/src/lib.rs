//! The stages behind the `loramix` command: `pretrain`, `upstream`, `transfer`, `similarity`
//! and `report`, chained by `run` (see [`runner`]), and `bench`.

pub mod bench;
pub mod cka;
pub mod config;
pub mod error;
pub mod family;
pub mod fit;
pub mod pipeline;
pub mod pretrained;
mod progress;
pub mod report;
pub mod runner;
pub mod store;
