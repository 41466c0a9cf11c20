//! The experiment file (`experiments/*.toml`): which suite, how big a model, how each stage
//! trains, and the methods of the sweep. Everything a result depends on is in here, so a hash
//! of the relevant parts names each cached artifact.

use std::fmt;
use std::path::{Path, PathBuf};

use loramix_compose::{Normalisation, Penalty, Sharing};
use loramix_lora::Target;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ExperimentError, Result};

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
    /// The folder of `model.pretrained`, resolved when the file is read.
    #[serde(skip)]
    pub pretrained_dir: Option<PathBuf>,
}

/// The backbone: a size that loramix pretrains itself (the suite decides ViT or text
/// transformer), or a pretrained Hugging Face checkpoint (BertModel for text, Dinov2Model for
/// images) whose `config.json` gives the size.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// A pretrained checkpoint: a folder of the data cache (`minilm-l6`, `dinov2-s`) or a
    /// path (containing `/`) relative to the experiment file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<String>,
    pub dim: Option<usize>,
    pub depth: Option<usize>,
    pub heads: Option<usize>,
    pub mlp_dim: Option<usize>,
    /// ViT patch side in pixels (image suites, own backbone).
    pub patch_size: Option<usize>,
    /// Longest token sequence (text suites).
    pub max_len: Option<usize>,
    /// Side in pixels that images are resized to (image suites, pretrained backbone); default
    /// 112 on the CPU, 224 on a GPU backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
}

/// The size of a backbone loramix pretrains itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnSize {
    pub dim: usize,
    pub depth: usize,
    pub heads: usize,
    pub mlp_dim: usize,
}

impl ModelSpec {
    /// The size of an own backbone, or `None` for a pretrained one (checked when read).
    pub fn own_size(&self) -> Option<OwnSize> {
        Some(OwnSize {
            dim: self.dim?,
            depth: self.depth?,
            heads: self.heads?,
            mlp_dim: self.mlp_dim?,
        })
    }

    fn check(&self, has_pretrain: bool) -> std::result::Result<(), String> {
        let sizes = [
            ("dim", self.dim),
            ("depth", self.depth),
            ("heads", self.heads),
            ("mlp_dim", self.mlp_dim),
            ("patch_size", self.patch_size),
        ];
        if let Some(name) = &self.pretrained {
            if let Some((field, _)) = sizes.iter().find(|(_, v)| v.is_some()) {
                return Err(format!(
                    "model.{field} cannot be set with model.pretrained = {name:?}: the checkpoint's config.json sets the size"
                ));
            }
            if has_pretrain {
                return Err(format!(
                    "[pretrain] cannot be given with model.pretrained = {name:?}: a pretrained backbone is not pretrained again"
                ));
            }
            return Ok(());
        }
        if let Some((field, _)) = sizes[..4].iter().find(|(_, v)| v.is_none()) {
            return Err(format!(
                "model.{field} is missing (or name a checkpoint with model.pretrained)"
            ));
        }
        if !has_pretrain {
            return Err("[pretrain] is missing: an own backbone is pretrained first".into());
        }
        if self.image_size.is_some() {
            return Err("model.image_size applies to pretrained backbones only (an own ViT takes the suite's size)".into());
        }
        let size = self.own_size().expect("checked above");
        if size.heads == 0 || !size.dim.is_multiple_of(size.heads) {
            return Err(format!(
                "model.dim {} is not a multiple of model.heads {}",
                size.dim, size.heads
            ));
        }
        Ok(())
    }
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
}

fn default_eval_batch() -> usize {
    256
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
}

/// A number of shots per class, or the task's whole (capped) training pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "RawShot", into = "RawShot")]
pub enum Shot {
    K(usize),
    Full,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum RawShot {
    K(usize),
    Name(String),
}

impl TryFrom<RawShot> for Shot {
    type Error = String;
    fn try_from(raw: RawShot) -> std::result::Result<Self, String> {
        match raw {
            RawShot::K(0) => Err("shots must be at least 1".into()),
            RawShot::K(k) => Ok(Shot::K(k)),
            RawShot::Name(s) if s == "full" => Ok(Shot::Full),
            RawShot::Name(s) => Err(format!("shots are numbers or \"full\", not {s:?}")),
        }
    }
}

impl From<Shot> for RawShot {
    fn from(shot: Shot) -> Self {
        match shot {
            Shot::K(k) => RawShot::K(k),
            Shot::Full => RawShot::Name("full".into()),
        }
    }
}

impl fmt::Display for Shot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shot::K(k) => write!(f, "{k}"),
            Shot::Full => f.write_str("full"),
        }
    }
}

/// What a method trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MethodKind {
    /// Linear probe on the frozen base (the reference point).
    HeadOnly,
    /// Every weight and the head.
    Full,
    /// A fresh LoRA and the head.
    Lora,
    /// Mean of the upstream modules' deltas, folded; the head only.
    Uniform,
    /// User weights per module (task arithmetic), folded; the head only.
    Fixed,
    /// TIES-merged deltas, folded; the head only.
    Ties,
    /// DARE-merged deltas, folded; the head only.
    Dare,
    /// Softmax weights per layer over the modules, trained with the head.
    Learned,
    /// Module weights searched without gradients on the k-shot loss (as LoraHub), then the head.
    Search,
}

impl MethodKind {
    /// The method builds on the upstream modules.
    pub fn uses_modules(self) -> bool {
        !matches!(
            self,
            MethodKind::HeadOnly | MethodKind::Full | MethodKind::Lora
        )
    }

    /// The backbone stays frozen, so its features are computed once and the head trains on them.
    pub fn frozen_backbone(self) -> bool {
        matches!(
            self,
            MethodKind::HeadOnly
                | MethodKind::Uniform
                | MethodKind::Fixed
                | MethodKind::Ties
                | MethodKind::Dare
        )
    }

    fn label(self) -> &'static str {
        match self {
            MethodKind::HeadOnly => "head-only",
            MethodKind::Full => "full",
            MethodKind::Lora => "lora",
            MethodKind::Uniform => "uniform",
            MethodKind::Fixed => "fixed",
            MethodKind::Ties => "ties",
            MethodKind::Dare => "dare",
            MethodKind::Learned => "learned",
            MethodKind::Search => "search",
        }
    }
}

/// One method of the sweep with its training rule (the same steps and learning rate at every
/// shot count, as the protocol asks) and the settings of its kind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MethodSpec {
    pub kind: MethodKind,
    /// Label in the results (default: the kind); lets one sweep compare variants of a kind.
    pub name: Option<String>,
    pub steps: usize,
    pub lr: f64,
    /// `full`, `lora`, `learned`: the head's learning rate when it should differ from `lr`.
    /// (Left out of the JSON when unset, so adding the setting kept earlier cells' hashes.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_lr: Option<f64>,
    /// `lora`: rank and alpha of the fresh LoRA (default: the upstream ones).
    pub rank: Option<usize>,
    pub alpha: Option<f32>,
    /// `fixed` and `dare`: one weight per upstream module (dare default: 1/N each).
    pub weights: Option<Vec<f32>>,
    /// `ties`: fraction of each delta kept, and the scale of the merge.
    pub density: Option<f32>,
    pub lambda: Option<f32>,
    /// `dare`: drop probability.
    pub drop: Option<f32>,
    /// `learned`: one weight vector per layer or shared, softmax or unconstrained, penalty.
    pub sharing: Option<Sharing>,
    pub normalisation: Option<Normalisation>,
    pub penalty: Option<Penalty>,
    /// `search`: objective evaluations, candidates per generation, step size, L1, bound.
    pub budget: Option<usize>,
    pub population: Option<usize>,
    pub sigma: Option<f32>,
    pub l1: Option<f32>,
    pub bound: Option<f32>,
}

impl MethodSpec {
    pub fn name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.kind.label().to_string())
    }

    /// Settings given that this kind does not use are a mistake worth stopping for.
    fn check(&self, modules: usize) -> std::result::Result<(), String> {
        use MethodKind::*;
        let given = [
            (
                "head_lr",
                self.head_lr.is_some(),
                &[Full, Lora, Learned][..],
            ),
            ("rank", self.rank.is_some(), &[Lora]),
            ("alpha", self.alpha.is_some(), &[Lora]),
            ("weights", self.weights.is_some(), &[Fixed, Dare]),
            ("density", self.density.is_some(), &[Ties]),
            ("lambda", self.lambda.is_some(), &[Ties]),
            ("drop", self.drop.is_some(), &[Dare]),
            ("sharing", self.sharing.is_some(), &[Learned]),
            ("normalisation", self.normalisation.is_some(), &[Learned]),
            ("penalty", self.penalty.is_some(), &[Learned]),
            ("budget", self.budget.is_some(), &[Search]),
            ("population", self.population.is_some(), &[Search]),
            ("sigma", self.sigma.is_some(), &[Search]),
            ("l1", self.l1.is_some(), &[Search]),
            ("bound", self.bound.is_some(), &[Search]),
        ];
        for (field, is_given, kinds) in given {
            if is_given && !kinds.contains(&self.kind) {
                return Err(format!(
                    "`{field}` does not apply to kind `{}`",
                    self.kind.label()
                ));
            }
        }
        if self.steps == 0 {
            return Err("steps must be at least 1".into());
        }
        for (name, lr) in [("lr", Some(self.lr)), ("head_lr", self.head_lr)] {
            if let Some(lr) = lr
                && !(lr > 0.0 && lr.is_finite())
            {
                return Err(format!("{name} must be positive, not {lr}"));
            }
        }
        if self.kind == Fixed && self.weights.is_none() {
            return Err("kind `fixed` needs `weights`, one per upstream module".into());
        }
        if let Some(weights) = &self.weights
            && weights.len() != modules
        {
            return Err(format!(
                "{} weights given for {modules} upstream modules",
                weights.len()
            ));
        }
        if self.kind == Ties && self.density.is_none() {
            return Err("kind `ties` needs `density` (fraction of each delta kept)".into());
        }
        if self.kind == Dare && self.drop.is_none() {
            return Err("kind `dare` needs `drop` (probability of dropping an entry)".into());
        }
        self.check_ranges()
    }

    /// Every value in its range, so that a bad one stops the run before anything trains.
    fn check_ranges(&self) -> std::result::Result<(), String> {
        let finite = |v: f32| v.is_finite();
        let checks: [RangeCheck; 10] = [
            ("rank", self.rank.map(|v| v as f64), "1 or more", |v| {
                v >= 1.0
            }),
            ("alpha", self.alpha.map(f64::from), "positive", |v| v > 0.0),
            ("density", self.density.map(f64::from), "(0, 1]", |v| {
                v > 0.0 && v <= 1.0
            }),
            (
                "lambda",
                self.lambda.map(f64::from),
                "a finite number",
                |_| true,
            ),
            ("drop", self.drop.map(f64::from), "[0, 1)", |v| {
                (0.0..1.0).contains(&v)
            }),
            ("budget", self.budget.map(|v| v as f64), "1 or more", |v| {
                v >= 1.0
            }),
            (
                "population",
                self.population.map(|v| v as f64),
                "2 or more",
                |v| v >= 2.0,
            ),
            ("sigma", self.sigma.map(f64::from), "positive", |v| v > 0.0),
            ("l1", self.l1.map(f64::from), "0 or more", |v| v >= 0.0),
            ("bound", self.bound.map(f64::from), "positive", |v| v > 0.0),
        ];
        for (name, value, range, ok) in checks {
            if let Some(v) = value
                && !(v.is_finite() && ok(v))
            {
                return Err(format!("`{name}` must be {range}, not {v}"));
            }
        }
        if let Some(w) = self.weights.iter().flatten().find(|w| !finite(**w)) {
            return Err(format!("`weights` must be finite numbers, not {w}"));
        }
        let coefficient = match self.penalty {
            Some(Penalty::L1(c) | Penalty::Entropy(c)) => c,
            _ => 0.0,
        };
        if !(finite(coefficient) && coefficient >= 0.0) {
            return Err(format!("`penalty` must be 0 or more, not {coefficient}"));
        }
        Ok(())
    }
}

impl Experiment {
    /// Reads and checks an experiment file; relative paths in it are taken from its folder.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ExperimentError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
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
        experiment.pretrained_dir = experiment.model.pretrained.as_ref().map(|name| {
            if name.contains('/') {
                folder.join(name)
            } else {
                experiment.data.join(name)
            }
        });
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
                "name {:?} must be non-empty letters, digits, `-`, `_` or `.`, not `.` or `..` (it names a folder)",
                self.name
            ));
        }
        if self.methods.is_empty() {
            return Err("no [[method]] given".into());
        }
        let mut names: Vec<String> = self.methods.iter().map(MethodSpec::name).collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!(
                "two methods are named `{}`; give one a `name`",
                w[0]
            ));
        }
        if self.transfer.shots.is_empty() || self.transfer.seeds == 0 {
            return Err("transfer needs at least one shot count and one seed".into());
        }
        if self.similarity.enabled && (self.similarity.steps == 0 || self.similarity.examples == 0)
        {
            return Err("similarity.steps and similarity.examples must be at least 1".into());
        }
        if !(self.upstream.alpha.is_finite() && self.upstream.alpha > 0.0) {
            return Err(format!(
                "upstream.alpha must be positive, not {}",
                self.upstream.alpha
            ));
        }
        if let Some(len) = self.model.max_len
            && !(2..=MAX_TOKENS).contains(&len)
        {
            return Err(format!(
                "model.max_len must be 2 to {MAX_TOKENS} tokens, not {len}"
            ));
        }
        if let Some(size) = self.model.image_size
            && !(1..=loramix_data::MAX_IMAGE_SIDE).contains(&size)
        {
            return Err(format!(
                "model.image_size must be 1 to {} pixels, not {size}",
                loramix_data::MAX_IMAGE_SIDE
            ));
        }
        self.model.check(self.pretrain.is_some())?;
        for (what, value) in [
            (
                "pretrain.batch",
                self.pretrain.as_ref().map_or(1, |p| p.batch),
            ),
            ("upstream.batch", self.upstream.batch),
            ("upstream.rank", self.upstream.rank),
            ("transfer.batch", self.transfer.batch),
            ("transfer.eval_batch", self.transfer.eval_batch),
            ("transfer.full_per_class", self.transfer.full_per_class),
        ] {
            if value == 0 {
                return Err(format!("{what} must be at least 1"));
            }
        }
        Ok(())
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
                .check(modules)
                .map_err(|message| ExperimentError::Method {
                    method: method.name(),
                    message,
                })?;
        }
        Ok(())
    }

    /// The `[[method]]` named `name`.
    pub fn method(&self, name: &str) -> Option<&MethodSpec> {
        self.methods.iter().find(|m| m.name() == name)
    }
}

/// A setting's name, its value if given, its range in words, and the test of the range.
type RangeCheck = (&'static str, Option<f64>, &'static str, fn(f64) -> bool);

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
