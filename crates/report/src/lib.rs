//! Turns the sweep's CSV files into `summary.md` and plots (SVG and PNG). Pure Rust (no burn,
//! no system fonts), so a report can be rebuilt from the CSVs on any machine.
//!
//! ```no_run
//! use loramix_report::{AnalysisPlan, ClaimRoles, PlanStatus, ReportInputs, Shot, TaskFacts, read_results, read_weights, read_similarity, write_report, write_results};
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
//!     modules: Vec::new(), // upstream modules' own test accuracy, for the summary's opening
//!     preamble: String::new(),
//!     comparisons: vec![("learned".into(), "lora".into())], // a head-to-head table and plot
//!     roles: ClaimRoles::default(), // `learned` is learned composition, ... (Claims section)
//!     tasks: [("optdigits".to_string(), TaskFacts { classes: 10, full_per_class: 380, test_examples: 200 })].into(),
//!     // The experiment file's plan (validated when read), or the default family:
//!     plan: AnalysisPlan::default_for(&ClaimRoles::default(), &[Shot::K(1), Shot::K(5), Shot::Full]),
//!     // RegisteredWithRun only when the run's manifest recorded this plan's hash():
//!     plan_status: PlanStatus::Reanalysis { registered_hash: None },
//!     // How many of its planned runs the sweep has done: while some are missing, the
//!     // verdicts are called interim.
//!     planned: None,
//! };
//! let files = write_report(&inputs, Path::new("out"))?;  // summary.md, then plots/*.svg, *.png
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
//! - [`AnalysisPlan`] (serde, `deny_unknown_fields`, from the experiment file): the
//!   pre-registered primary tests, each a [`PrimaryTest`] (claim 1 to 4, a [`TestKind`]:
//!   superiority, noninferiority, equivalence, interaction or similarity; methods `a` and `b`;
//!   shots, averaged per (task, seed)), and claim 2's `margin` in points (default 2).
//!   [`AnalysisPlan::validate`] checks shapes ([`PlanError`]; method names are the caller's to
//!   check); [`AnalysisPlan::default_for`] builds a 5-test family from [`ClaimRoles`] and the
//!   study's shots; [`AnalysisPlan::hash`] is the SHA-256 of [`AnalysisPlan::canonical`], to
//!   record in the run's manifest before the transfer stage. [`PlanStatus`] says whether the
//!   report's plan is that one ([`PlanStatus::RegisteredWithRun`]) or a new analysis of old
//!   data ([`PlanStatus::Reanalysis`], the default), which the summary then says plainly.
//! - [`write_report`] with [`ReportInputs`]: `summary.md` and `plots/`. A plan with a bad
//!   shape is a [`ReportError::Plan`]; an empty plan judges no claim. The summary opens with
//!   **In brief** (the modules' own scores from [`ReportInputs::modules`], what ran, the
//!   claims supported and the primary differences, and what the run is too small to show;
//!   [`in_brief`] alone), then **Claims**: one verdict per claim of DESIGN.md (supported / not supported / not
//!   contradicted / not tested here) from that claim's primary tests only, never written by
//!   hand; a non-detection says what the test would have detected. Then **Primary tests**: per
//!   test the estimate of a random-intercept model over every (task, seed) cell (REML; mu,
//!   95% t interval and p on tasks − 1 df; tau), TOST for equivalence, one Wald F over the
//!   shifts for an interaction (shifts − 1, tasks − shifts df), Holm over the plan's tests
//!   only, and the smallest effect detectable at 80% power at alpha/m (exact noncentral t and
//!   F). Then per shift: accuracy and accuracy relative to the reference; exploratory
//!   head-to-head tables of the chosen pairs with raw p (never bold, never called
//!   significant); per task; cost; learned weights; Spearman rho of weights vs CKA with a
//!   permutation test. Each section says which interval it uses:
//!   - pooled numbers (per shift, all shifts) and paired differences: the mean over tasks and a
//!     95% two-stage bootstrap interval (tasks with replacement, then seeds within each drawn
//!     task; 10,000 resamples from a fixed seed), since runs of one task are not independent.
//!     With one task in a shift only seeds are resampled, and the summary says so;
//!   - per task: Student-t over the seeds, with exact quantiles (statrs);
//!   - exploratory tests of the head-to-head pairs, at every k, over all shifts and within
//!     each: a paired t over task means (over seeds where a scope has one task), raw p;
//!   - [`ReportInputs::roles`] names the methods in the claims' text and in
//!     [`AnalysisPlan::default_for`]; the verdicts judge the methods the plan names.
//!
//!   Test-set sampling: pooled intervals and tests over tasks carry it (each task's mean
//!   carries its split's error, and the spread of task means includes it); per-task
//!   intervals add the binomial variance of the split when [`ReportInputs::tasks`] gives its
//!   size; tests over the seeds of a single task leave it out. Every plot is written as `<name>.svg` (linked from the summary) and
//!   `<name>.png` (text set in DejaVu Sans, embedded in the binary). A method has one colour in every plot; legends name each series'
//!   number of runs (`n=10`) and wrap below the plot.
//!   - `accuracy-<shift>` (900x600): accuracy over k, 95% bootstrap intervals, a dashed chance
//!     line (1/classes, mean over the shift's tasks) and the size of `full` on its tick
//!     (`full (≈600/class)`), both only when [`ReportInputs::tasks`] covers every task of the
//!     shift;
//!   - `relative-<shift>`: paired difference to the reference method over k, zero line;
//!   - `diff-<shift>`: the same for each pair of [`ReportInputs::comparisons`] (first minus
//!     second), drawn only when a pair has results; intervals not Holm-adjusted;
//!   - `weights-<task>`: heat map, layer x upstream module (layer labels shortened,
//!     `encoder.blocks.0.query` -> `b0.query`), one colour scale for all heat maps of the
//!     report, stated in each caption and colour bar;
//!   - `similarity`: mean learned weight vs CKA per upstream module, one series per task.
//!
//!   When several methods learn weights, the weight and similarity files get a `-<method>`
//!   suffix. Names outside `[A-Za-z0-9._-]` become `_` in file names, not in the plots.
//! - [`TaskFacts`]: classes and full training size per task, for the chance line and `full`.
//! - [`paired`]: for candidates scored on one shared set of examples (`loramix compose`): the
//!   Wilson 95% interval of an accuracy and McNemar's exact paired test.
//! - Row types [`ResultRow`], [`WeightRow`], [`SimilarityRow`], [`Shift`], [`Shot`]; errors
//!   [`ReportError`] (every variant names its file, and line where there is one).

mod aggregate;
mod brief;
mod claims;
mod csvio;
mod error;
mod family;
mod inputs;
mod mixed;
pub mod paired;
mod plan;
mod plot;
mod power;
mod primary;
mod report;
mod resample;
mod rows;
mod stats;
mod summary;

pub use csvio::{Row, merge, read_results, read_similarity, read_weights, write_results};
pub use error::{Location, Measurement, ReportError, Result};
pub use inputs::{Left, ModuleFacts, Planned, ReportInputs, TaskFacts};
pub use plan::{AnalysisPlan, ClaimRoles, PlanError, PlanStatus, PrimaryTest, TestKind};
pub use report::{in_brief, write_report};
pub use rows::{BASE_MODULE, ResultRow, Shift, Shot, SimilarityRow, WeightRow};
