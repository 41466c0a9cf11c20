//! loramix: compose LoRA modules for few-shot transfer, on burn.
//!
//! This facade re-exports the workspace crates under short names; the end-to-end tests in
//! `tests/` use it as a downstream user would.
//!
//! - [`backend`]: the one mapping from cargo feature to burn backend.
//! - [`lora`]: LoRA-capable linears and adapters saved apart from their base.
//! - [`models`]: the ViT, the byte-level text transformer and their training step.
//! - [`compose`]: composition of several adapters.
//! - [`design`]: the design's vocabulary, [`design::Shift`] and [`design::Shot`].
//! - [`data`]: datasets, task suites and k-shot sampling.
//! - [`peft`]: Hugging Face PEFT adapters to and from loramix adapters.
//! - [`report`]: results CSVs to summaries and plots.
//! - [`experiment`]: the stages behind the `loramix` command.

pub use loramix_backend as backend;
pub use loramix_compose as compose;
pub use loramix_data as data;
pub use loramix_design as design;
pub use loramix_experiment as experiment;
pub use loramix_lora as lora;
pub use loramix_models as models;
pub use loramix_peft as peft;
pub use loramix_report as report;
