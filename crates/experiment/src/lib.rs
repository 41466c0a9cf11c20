//! The stages behind the `loramix` command: `pretrain`, `upstream`, `transfer`, `similarity`
//! and `report` ([`stage`]), chained by `run` ([`runner`]); `check`; `bench`; and the user's
//! jobs `compose` ([`compose`]) and `predict` ([`predict`]). ARCHITECTURE.md at the top of the
//! repository follows one cell from the experiment file to `results.csv`.

pub mod backbone;
pub mod bench;
pub mod cka;
pub mod compose;
pub mod config;
pub mod context;
pub mod error;
pub mod family;
pub mod fit;
pub mod head;
pub mod method;
pub mod output;
pub mod plan;
pub mod predict;
pub mod pretrained;
mod progress;
pub mod registration;
pub mod rows;
pub mod runner;
pub mod stage;
pub mod store;
pub mod tuning;
pub mod user;
