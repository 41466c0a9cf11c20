//! The experiment file (`experiments/*.toml`): which suite, how big a model, how each stage
//! trains, and the methods of the sweep. Everything a result depends on is in here, so a hash
//! of the relevant parts names each cached artifact.

use std::path::{Path, PathBuf};

use loramix_design::Shot;
use loramix_lora::Target;
use loramix_report::AnalysisPlan;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backbone::ModelSpec;
use crate::error::{ExperimentError, Result, io};
use crate::method::MethodSpec;

/// One study: a suite, a model size, and how every stage trains.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Names the run directory `runs/<name>/`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The task suite, relative to this file.
    pub suite: PathBuf,
    /// The fetch step's cache, relative to this file (`LORAMIX_DATA` overrides it).
    pub data: PathBuf,
    pub model: ModelSpec,
    /// Absent for a pretrained backbone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrain: Option<PretrainSpec>,
    pub upstream: UpstreamSpec,
    pub transfer: TransferSpec,
    #[serde(rename = "method")]
    pub methods: Vec<MethodSpec>,
    pub similarity: SimilaritySpec,
    /// The pre-registered primary tests (`[analysis]`); absent, a small default family from
    /// the methods' kinds ([`AnalysisPlan::default_for`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisPlan>,
}

/// Supervised pretraining of the base model on the suite's pretraining task.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PretrainSpec {
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
}

/// One LoRA per upstream task.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSpec {
    /// Upstream tasks to train (empty: every upstream task of the suite).
    #[serde(default)]
    pub tasks: Vec<String>,
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub rank: usize,
    pub alpha: f32,
    pub targets: Vec<Target>,
    /// Train each module until validation stops improving, `steps` at most; absent, every
    /// module trains `steps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converge: Option<Convergence>,
    /// The rate of each module's fresh head (default `lr`): a head at a LoRA's rate barely
    /// moves in a short run, and the module then learns nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_lr: Option<f64>,
    /// Points above chance (100 / classes) every module must reach on its own test split;
    /// below it the run stops before the sweep, naming the modules, instead of composing
    /// modules that learned nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_above_chance: Option<f64>,
}

/// Training to a validation-checked convergence: validation examples held out of the task's
/// training pool, a check every `every` steps, and a stop once `patience` checks in a row have
/// not beaten the best (whose model is kept). The step count is then a cap, not a budget.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Convergence {
    pub validation_per_class: usize,
    pub every: usize,
    pub patience: usize,
}

impl Convergence {
    fn check(&self, what: &str) -> std::result::Result<(), String> {
        if self.validation_per_class == 0 || self.every == 0 || self.patience == 0 {
            return Err(format!(
                "{what}.converge: validation_per_class, every and patience must be at least 1"
            ));
        }
        Ok(())
    }
}

/// The sweep: downstream tasks x methods x shots x seeds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TransferSpec {
    /// Downstream tasks (empty: every downstream task of the suite).
    #[serde(default)]
    pub tasks: Vec<String>,
    pub shots: Vec<Shot>,
    /// What `full` means: this many training examples per class (or all a class has).
    pub full_per_class: usize,
    /// Seeds `0..seeds`.
    pub seeds: usize,
    /// Largest training batch (a k-shot set smaller than this is one batch).
    pub batch: usize,
    #[serde(default = "default_eval_batch")]
    pub eval_batch: usize,
    /// Validation and per-method tuning; absent, each method trains its `steps` at its rates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<TuningSpec>,
    /// Why the methods may train for different numbers of steps. Without it a config that gives
    /// one method more steps than another is refused: an unequal budget decides a comparison
    /// before the data do. Given, the reason is printed in the summary's protocol line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unequal_steps: Option<String>,
}

fn default_eval_batch() -> usize {
    256
}

/// The fewest rate factors a tuned sweep tries.
pub const MIN_RATE_FACTORS: usize = 5;

/// The fair protocol: each cell sets validation examples aside (k per class for a k-shot cell,
/// as a user with k labelled examples would; `validation_full` per class for `full`), and every
/// method picks its rates and its stopping step on them from the same candidates, with the
/// same budget. No method sees test data before its final evaluation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TuningSpec {
    /// Validation examples per class of a `full` cell.
    pub validation_full: usize,
    /// Each method tries its `lr` (and its `head_lr`) times each factor.
    pub rate_factors: Vec<f64>,
    /// Validation checks per training run, evenly spaced; the best is kept (early stopping).
    pub checks: usize,
    /// Where the rate factor is chosen: on each cell's own validation examples (`per-cell`,
    /// the default), or once per method and shot on the suite's `[[tuning]]` tasks
    /// (`tuning-tasks`) and then fixed for every evaluation task.
    #[serde(default, skip_serializing_if = "Selection::is_per_cell")]
    pub select: Selection,
    /// Seeds `0..n` of each tuning task's cells (default: the sweep's `seeds`); fewer seeds
    /// make the tuning cheaper, as long as the tasks x seeds averaged stay several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning_seeds: Option<usize>,
}

/// Where a tuned sweep chooses each method's rate factor.
///
/// Per cell, at k = 1 the choice rests on one validation example per class and is fitted to
/// it (the chosen score beat test by 4.5-10.8 points in the November studies). On tuning tasks
/// the factor with the best mean validation accuracy over every tuning task and seed is kept
/// for the method and shot, as few-shot benchmarks do; each evaluation cell then trains that
/// one candidate, early-stopped on its own validation examples, which also divides the
/// sweep's cost by the grid's size.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    #[default]
    PerCell,
    TuningTasks,
}

impl Selection {
    fn is_per_cell(&self) -> bool {
        *self == Selection::PerCell
    }
}

impl TuningSpec {
    fn check(&self) -> std::result::Result<(), String> {
        if self.validation_full == 0 || self.checks == 0 || self.tuning_seeds == Some(0) {
            return Err(
                "transfer.tuning.validation_full, checks and tuning_seeds must be at least 1"
                    .into(),
            );
        }
        let factors = &self.rate_factors;
        if let Some(f) = factors.iter().find(|f| !(f.is_finite() && **f > 0.0)) {
            return Err(format!(
                "transfer.tuning.rate_factors must be positive, not {f}"
            ));
        }
        let (low, high) = (factors.first(), factors.last());
        let spans = low
            .zip(high)
            .is_some_and(|(low, high)| high / low >= 100.0 * (1.0 - 1e-9));
        if factors.len() < MIN_RATE_FACTORS || !spans || !factors.is_sorted_by(|a, b| a < b) {
            return Err(format!(
                "transfer.tuning.rate_factors must be at least {MIN_RATE_FACTORS} increasing, \
                 log-spaced factors spanning 100x (e.g. [0.1, 0.3, 1, 3, 10]), not {factors:?}: \
                 a grid that does not bracket the best rate decides the choice at its edge"
            ));
        }
        Ok(())
    }

    /// Seeds of a tuning task's cells.
    pub fn seeds_on_tuning_tasks(&self, sweep_seeds: usize) -> usize {
        self.tuning_seeds.unwrap_or(sweep_seeds)
    }

    /// Validation examples per class of a cell at `shot`.
    pub fn validation_per_class(&self, shot: Shot) -> usize {
        match shot {
            Shot::K(k) => k,
            Shot::Full => self.validation_full,
        }
    }
}

/// The representation similarity analysis (claim 4).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimilaritySpec {
    /// Off skips the stage.
    pub enabled: bool,
    /// Steps of the LoRA trained on each downstream task's full-shot set (seed 0), whose
    /// representation the upstream modules are compared with.
    pub steps: usize,
    /// Downstream test examples the representations are taken on.
    pub examples: usize,
    /// Train each reference LoRA until validation stops improving, `steps` at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converge: Option<Convergence>,
}

impl Experiment {
    /// Reads and checks an experiment file; relative paths in it are taken from its folder.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = loramix_lora::files::read_to_string(path).map_err(io(path))?;
        let mut experiment: Experiment =
            toml::from_str(&text).map_err(|e| ExperimentError::Config {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let folder = path.parent().unwrap_or(Path::new("."));
        experiment.suite = folder.join(&experiment.suite);
        experiment.data = match std::env::var_os("LORAMIX_DATA") {
            Some(data) => PathBuf::from(data),
            None => folder.join(&experiment.data),
        };
        if let ModelSpec::Pretrained(pretrained) = &mut experiment.model {
            pretrained.dir = match pretrained.name.contains('/') {
                true => folder.join(&pretrained.name),
                false => experiment.data.join(&pretrained.name),
            };
        }
        experiment
            .check_shape()
            .map_err(|message| ExperimentError::Config {
                path: path.to_path_buf(),
                message,
            })?;
        Ok(experiment)
    }

    /// Checks that need nothing but the file.
    fn check_shape(&self) -> std::result::Result<(), String> {
        if !loramix_data::is_folder_name(&self.name) {
            return Err(format!(
                "name {:?} must be 1 to 100 letters, digits, `-`, `_` or `.`, not `.` or `..` (it names a folder)",
                self.name
            ));
        }
        self.check_method_names()?;
        if self.transfer.shots.is_empty() || self.transfer.seeds == 0 {
            return Err("transfer needs at least one shot count and one seed".into());
        }
        if self.similarity.enabled && (self.similarity.steps == 0 || self.similarity.examples == 0)
        {
            return Err("similarity.steps and similarity.examples must be at least 1".into());
        }
        self.check_numbers()?;
        self.check_pretraining()?;
        self.check_budgets()?;
        self.check_analysis()?;
        for (what, converge) in [
            ("upstream", &self.upstream.converge),
            ("similarity", &self.similarity.converge),
        ] {
            converge.map(|c| c.check(what)).transpose()?;
        }
        match &self.transfer.tuning {
            Some(tuning) => tuning.check(),
            None => Ok(()),
        }
    }

    /// `[pretrain]` given exactly when the backbone is loramix's own.
    fn check_pretraining(&self) -> std::result::Result<(), String> {
        match (&self.model, &self.pretrain) {
            (ModelSpec::Pretrained(p), Some(_)) => Err(format!(
                "[pretrain] cannot be given with model.pretrained = {:?}: a pretrained backbone is not pretrained again",
                p.name
            )),
            (ModelSpec::Own(_), None) => {
                Err("[pretrain] is missing: an own backbone is pretrained first".into())
            }
            _ => Ok(()),
        }
    }

    /// At least one method, each with its own name.
    fn check_method_names(&self) -> std::result::Result<(), String> {
        if self.methods.is_empty() {
            return Err("no [[method]] given".into());
        }
        let mut names: Vec<&str> = self.methods.iter().map(|m| m.name.as_str()).collect();
        names.sort();
        match names.windows(2).find(|w| w[0] == w[1]) {
            Some(w) => Err(format!(
                "two methods are named `{}`; give one a `name`",
                w[0]
            )),
            None => Ok(()),
        }
    }

    /// Rates, sizes and counts in their ranges.
    fn check_numbers(&self) -> std::result::Result<(), String> {
        let rates = [
            ("pretrain.lr", self.pretrain.as_ref().map_or(1.0, |p| p.lr)),
            ("upstream.lr", self.upstream.lr),
            ("upstream.head_lr", self.upstream.head_lr.unwrap_or(1.0)),
        ];
        if let Some((what, lr)) = rates
            .into_iter()
            .find(|(_, v)| !(v.is_finite() && *v > 0.0))
        {
            return Err(format!("{what} must be a positive number, not {lr}"));
        }
        if !(self.upstream.alpha.is_finite() && self.upstream.alpha > 0.0) {
            return Err(format!(
                "upstream.alpha must be positive, not {}",
                self.upstream.alpha
            ));
        }
        if let Some(len) = self.model.max_len()
            && !(2..=MAX_TOKENS).contains(&len)
        {
            return Err(format!(
                "model.max_len must be 2 to {MAX_TOKENS} tokens, not {len}"
            ));
        }
        if let Some(size) = self.model.image_size()
            && !(1..=loramix_data::MAX_IMAGE_SIDE).contains(&size)
        {
            return Err(format!(
                "model.image_size must be 1 to {} pixels, not {size}",
                loramix_data::MAX_IMAGE_SIDE
            ));
        }
        let counts = [
            (
                "pretrain.batch",
                self.pretrain.as_ref().map_or(1, |p| p.batch),
            ),
            ("upstream.batch", self.upstream.batch),
            ("upstream.rank", self.upstream.rank),
            ("transfer.batch", self.transfer.batch),
            ("transfer.eval_batch", self.transfer.eval_batch),
            ("transfer.full_per_class", self.transfer.full_per_class),
        ];
        match counts.into_iter().find(|(_, v)| *v == 0) {
            Some((what, _)) => Err(format!("{what} must be at least 1")),
            None => Ok(()),
        }
    }

    /// A declared plan has a sound shape and names methods of this experiment.
    fn check_analysis(&self) -> std::result::Result<(), String> {
        let Some(plan) = &self.analysis else {
            return Ok(());
        };
        plan.validate().map_err(|e| format!("[analysis]: {e}"))?;
        let names = (plan.primary.iter()).flat_map(|t| std::iter::once(&t.a).chain(&t.b));
        for name in names {
            if self.method(name).is_none() {
                return Err(format!(
                    "[analysis] names method `{name}`, which no [[method]] is called"
                ));
            }
        }
        Ok(())
    }

    /// The plan the report tests: the declared one, or the default family of the methods that
    /// play each part of the claims.
    pub fn analysis_plan(&self) -> AnalysisPlan {
        match &self.analysis {
            Some(plan) => plan.clone(),
            None => {
                let kinds = self
                    .methods
                    .iter()
                    .map(|m| (m.name.as_str(), m.kind.label()));
                let roles = crate::method::claim_roles(kinds);
                AnalysisPlan::default_for(&roles, &self.transfer.shots)
            }
        }
    }

    /// Every method the same step cap, unless the config says why not (`unequal_steps`). The
    /// rate grid and the validation checks are one setting for all methods already.
    fn check_budgets(&self) -> std::result::Result<(), String> {
        let steps: std::collections::BTreeSet<usize> =
            self.methods.iter().map(|m| m.steps).collect();
        match &self.transfer.unequal_steps {
            Some(reason) if reason.trim().is_empty() => Err(
                "transfer.unequal_steps must say why the budgets differ (it is printed in the summary)"
                    .into(),
            ),
            Some(_) => Ok(()),
            None if steps.len() > 1 => {
                let each: Vec<String> = (self.methods.iter())
                    .map(|m| format!("{} {}", m.name, m.steps))
                    .collect();
                Err(format!(
                    "the methods train for different numbers of steps ({}): every method gets the \
                     same budget; give them one `steps`, or declare why with \
                     transfer.unequal_steps = \"...\" (printed in the summary)",
                    each.join(", ")
                ))
            }
            None => Ok(()),
        }
    }

    /// Whether any stage uses the upstream modules (a composing method or the similarity
    /// analysis); if none does, they are not trained.
    pub fn needs_modules(&self) -> bool {
        self.similarity.enabled || self.methods.iter().any(|m| m.kind.uses_modules())
    }

    /// Checks of the methods that need the number of upstream modules.
    pub fn check_methods(&self, modules: usize) -> Result<()> {
        for method in &self.methods {
            method
                .kind
                .check_modules(modules)
                .map_err(|message| ExperimentError::Method {
                    method: method.name.clone(),
                    message,
                })?;
        }
        Ok(())
    }

    /// The `[[method]]` named `name`.
    pub fn method(&self, name: &str) -> Option<&MethodSpec> {
        self.methods.iter().find(|m| m.name == name)
    }
}

/// The longest text a model may be asked to read, in tokens: attention memory grows with its
/// square, and no backbone loramix loads has more positions.
pub const MAX_TOKENS: usize = 4096;

/// First 16 hex digits of SHA-256 over the JSON of `parts`: names a cached artifact.
pub fn hash_of(parts: &[&dyn erased::Json]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.json().as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Object-safe JSON for hashing values of different types together.
pub mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }

    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).expect("configs serialise")
        }
    }
}
