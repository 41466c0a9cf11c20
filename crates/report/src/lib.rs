//! Turns the sweep's CSV files into `summary.md` and PNG plots. Pure Rust (no burn), so a
//! report can be rebuilt from the CSVs on any machine.
//!
//! ```no_run
//! use loramix_report::{ReportInputs, read_results, read_weights, read_similarity, write_report, write_results};
//! use std::path::{Path, PathBuf};
//! # fn main() -> loramix_report::Result<()> {
//! let shards = [PathBuf::from("a/results.csv"), PathBuf::from("b/results.csv")];
//! let results = read_results(&shards)?;                 // merged; conflicting cells are an error
//! write_results(Path::new("out/results.csv"), &results)?; // sorted: task, method, k, seed
//! let inputs = ReportInputs {
//!     title: "loramix: vision".into(),
//!     reference_method: "head-only".into(),
//!     results,
//!     weights: read_weights(&[PathBuf::from("out/learned_weights.csv")])?,
//!     similarity: read_similarity(&[])?,
//!     preamble: String::new(),
//!     comparisons: vec![("learned".into(), "lora".into())], // a head-to-head table
//! };
//! let files = write_report(&inputs, Path::new("out"))?;  // summary.md, then plots/*.png
//! # Ok(()) }
//! ```
//!
//! Public API:
//! - [`read_results`], [`read_weights`], [`read_similarity`]: read and merge shards. A cell
//!   (results: task, method, k, seed; weights: also layer, module; similarity: task, module)
//!   repeated with the same measured value is dropped; with another value it is a
//!   [`ReportError::Conflict`] naming both files and lines. Results may differ in timings only.
//!   Rows keep file order, so methods appear in the order the config listed them.
//! - [`write_results`]: the merged `results.csv`, sorted by task, method, k (`full` last), seed.
//! - [`write_report`] with [`ReportInputs`]: `summary.md` (per shift: accuracy and accuracy
//!   relative to the reference, mean ± 95% Student-t half-width; per task; cost; learned weights;
//!   Spearman rho of weights vs CKA; head-to-head tables of chosen pairs) and `plots/`: `accuracy-<shift>.png`,
//!   `relative-<shift>.png` (900x600), `weights-<task>.png` (heat map; layer labels shortened,
//!   `encoder.blocks.0.query` -> `b0.query`), `similarity.png`. When several methods learn
//!   weights, the weight and similarity files get a `-<method>` suffix.
//! - Row types [`ResultRow`], [`WeightRow`], [`SimilarityRow`], [`Shift`], [`Shots`]; errors
//!   [`ReportError`] (every variant names its file, and line where there is one).

mod aggregate;
mod csvio;
mod error;
mod plot;
mod report;
mod rows;
mod stats;
mod summary;

pub use csvio::{Row, merge, read_results, read_similarity, read_weights, write_results};
pub use error::{Location, Measurement, ReportError, Result};
pub use report::{ReportInputs, write_report};
pub use rows::{ResultRow, Shift, Shots, SimilarityRow, WeightRow};
