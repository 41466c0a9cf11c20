//! `loramix compose`: a base model, N adapters and a user's few-shot data in; the composition
//! as one PEFT adapter, its classifier head and a score table out. Every candidate (the base
//! with a head only, each adapter alone, the composition) is scored on the same validation
//! data, so the user sees whether composing helped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::nn::Linear;
use burn::tensor::ElementConversion;
use indicatif::ProgressBar;
use loramix_backend::{Inference, Train};
use loramix_compose::{
    ArrowConfig, Compressed, Normalisation, Penalty, Sharing, attach, compress, compress_dense,
    export_exact, uniform_weights,
};
use loramix_data::{ImageItem, Labelled, SuiteItem, TextItem};
use loramix_lora::{Adapter, AdapterHost, CompositionRecord, LoraConfig, ParentModule};
use loramix_models::Classifier;
use loramix_models::hf::HfBlockNames;
use serde::Serialize;

use crate::error::{ExperimentError, Result, io};
use crate::family::Family;
use crate::fit::{Schedule, features, fit_head, head_hits};
use crate::method::{
    Arrow, CellJob, Dare, Fixed, Kind, Learned, MethodSpec, Search, Select, Then, Ties, Uniform,
    Update, gradient_scores, top_modules,
};
use crate::user::{self, InputArgs, UserBase};
use crate::{head, output, progress};

pub mod arrow;
mod verdict;

pub use verdict::{Comparison, Score, Verdict};

/// How the adapters are composed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The average of the modules' deltas (weights 1/N).
    Uniform,
    /// Per-layer softmax weights over the modules, trained with the head.
    Learned,
    /// LoRA Soups' CAT: per-layer, per-module scalars of any sign and sum (no softmax), trained
    /// with the head.
    Cat,
    /// LoraHub's gradient-free search of one weight per module.
    Search,
    /// TIES-merging of the dense deltas (`--density`, `--lambda`).
    Ties,
    /// DARE: random drops of delta entries, rescaled, then a weighted sum (`--drop`).
    Dare,
    /// The weights given with `--weights` (task arithmetic; negative weights allowed).
    Fixed,
    /// Ranks the adapters by how fast each lowers the loss on the training examples (one
    /// gradient for all), keeps the `--top-k` best and composes them (`--then`).
    Select,
    /// Arrow routing: per token, each layer adds the `--top-k` adapters whose prototype best
    /// matches its input, weighted by a softmax at `--temperature`; nothing is trained but the
    /// head. Written for PEFT's `create_arrow_model`; `--general` adds GenKnowSub.
    Arrow,
}

/// Everything `loramix compose` is given (its command-line arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct ComposeJob {
    /// The base model: a Hugging Face BertModel or Dinov2Model directory (config.json,
    /// model.safetensors; tokenizer.json for text).
    #[arg(long)]
    pub base: PathBuf,
    /// An adapter directory, PEFT (adapter_config.json) or loramix (manifest.json); repeat
    /// for each adapter.
    #[arg(long = "adapter", required = true)]
    pub adapters: Vec<PathBuf>,
    /// The labelled few-shot examples: an image folder (<class>/ sub-folders, or train/ and
    /// val/ holding them) or CSV text (a file, or a folder with train.csv and val.csv).
    #[arg(long)]
    pub data: PathBuf,
    /// Validation examples in the same form, if --data holds none. Without validation data,
    /// scores are training accuracy.
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// CSV column holding the label.
    #[arg(long, default_value = "label")]
    pub label_column: String,
    #[arg(long, value_enum, default_value = "learned")]
    pub method: Method,
    /// Module weights for --method fixed (required) and dare (default 1/N), comma-separated.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub weights: Option<Vec<f32>>,
    /// Compress the written adapter to this rank (truncated SVD, error reported). Default:
    /// exact, rank sum r_i; TIES and DARE default to the largest sum r_i of a layer.
    #[arg(long)]
    pub rank: Option<usize>,
    /// TIES: fraction of each delta's entries kept.
    #[arg(long, default_value_t = 0.2)]
    pub density: f32,
    /// TIES: scale of the merged delta.
    #[arg(long, default_value_t = 1.0)]
    pub lambda: f32,
    /// DARE: probability of dropping a delta entry.
    #[arg(long, default_value_t = 0.5)]
    pub drop: f32,
    /// --method select: adapters kept (default 8); --method arrow: adapters routed to per
    /// token (default 3, PEFT's).
    #[arg(long)]
    pub top_k: Option<usize>,
    /// --method arrow: softmax temperature of the routing scores.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// --method arrow: a general-domain adapter (PEFT or loramix); their mean is subtracted
    /// from every routed adapter first (GenKnowSub). Repeat for each.
    #[arg(long = "general")]
    pub general: Vec<PathBuf>,
    /// --method select: how the kept adapters are composed.
    #[arg(long, value_enum, default_value = "learned")]
    pub then: Then,
    /// Adapters scored alone, each with its own head (the table's references). With more
    /// adapters than this, those scored are the ones ranked highest by the loss gradient (as
    /// --method select ranks them): one backward pass instead of a head fit per adapter.
    #[arg(long, default_value_t = 16)]
    pub alone: usize,
    /// Training steps of the learned composition.
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// Learning rate of the learned composition's weights.
    #[arg(long, default_value_t = 0.05)]
    pub lr: f64,
    /// Steps of every classifier head (fitted on frozen features; cheap).
    #[arg(long, default_value_t = 200)]
    pub head_steps: usize,
    /// Learning rate of every classifier head.
    #[arg(long, default_value_t = 0.01)]
    pub head_lr: f64,
    /// Training batch size.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    #[command(flatten)]
    pub input: InputArgs,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Parts (threads) each batch is cut into; set by the caller, not the command line.
    #[arg(skip = 1usize)]
    pub parts: usize,
}

/// What `compose` did, written as `compose.json` beside the adapter.
#[derive(Debug, Clone, Serialize)]
pub struct ComposeReport {
    pub method: Method,
    pub base: PathBuf,
    pub adapters: Vec<PathBuf>,
    pub classes: Vec<String>,
    pub train_examples: usize,
    pub validation_examples: usize,
    /// `validation`, or `training` when no validation data was given (optimistic).
    pub scored_on: String,
    /// Head only, each adapter scored alone, the composition, and the adapter as written.
    pub scores: Vec<Score>,
    /// Adapters scored alone: all, or (`--alone`) those ranked highest by the loss gradient.
    pub scored_alone: usize,
    /// The adapter as written against the base and the best single adapter.
    pub verdict: Verdict,
    pub rank: usize,
    pub approximation_error: f64,
    pub seconds: f64,
    /// Seconds per stage: loading, ranking (which adapters to score alone), references (the
    /// base and the adapters alone), composition (with its export), scoring.
    pub stage_seconds: Vec<(String, f64)>,
}

/// The files `compose` writes in `--out` (what a rerun may replace); a trailing `/` marks a
/// folder (an Arrow composition's adapters).
pub const OUTPUT_FILES: [&str; 8] = [
    loramix_peft::CONFIG_FILE,
    loramix_peft::TENSORS_FILE,
    loramix_peft::MANIFEST_FILE,
    head::HEAD_FILE,
    "compose.json",
    arrow::CONFIG_FILE,
    "experts/",
    "general/",
];

/// Runs the job and writes its outputs to `job.out`.
pub fn compose(job: &ComposeJob) -> Result<ComposeReport> {
    check_job(job)?;
    note_repeated_adapters(&job.adapters);
    let names = loramix_models::hf::HfFamily::of(&job.base)?.names();
    eprintln!("loading the base model in {}", job.base.display());
    match UserBase::open(&job.base, job.input.max_len, job.input.image_size)? {
        UserBase::Text(family) => {
            let data = text_splits(job)?;
            run(family.as_ref(), names, data, job)
        }
        UserBase::Vision(family) => {
            let data = image_splits(job, family.shape)?;
            run(&family, names, data, job)
        }
    }
}

fn check_job(job: &ComposeJob) -> Result<()> {
    check_weights(job).map_err(ExperimentError::Invalid)?;
    check_numbers(job).map_err(ExperimentError::Invalid)?;
    let mut inputs: Vec<&Path> = (job.adapters.iter().chain(&job.general))
        .map(PathBuf::as_path)
        .collect();
    inputs.extend([job.base.as_path(), job.data.as_path()]);
    inputs.extend(job.val.as_deref());
    output::check(&job.out, COMPOSE_OUTPUT, &inputs)
}

/// Adapters given, and `--weights` where the method takes them: one finite value each.
fn check_weights(job: &ComposeJob) -> std::result::Result<(), String> {
    if job.adapters.is_empty() {
        return Err("give at least one adapter directory".into());
    }
    match (&job.weights, job.method) {
        (Some(w), Method::Fixed | Method::Dare) if w.len() != job.adapters.len() => {
            return Err(format!(
                "--weights has {} values for {} adapters",
                w.len(),
                job.adapters.len()
            ));
        }
        (None, Method::Fixed) => return Err("--method fixed needs --weights".into()),
        (Some(_), method) if !matches!(method, Method::Fixed | Method::Dare) => {
            return Err(format!(
                "--weights applies to --method fixed and dare, not {method:?}"
            ));
        }
        _ => {}
    }
    match job.weights.iter().flatten().find(|v| !v.is_finite()) {
        Some(v) => Err(format!("--weights: {v} is not a finite number")),
        None => Ok(()),
    }
}

/// Every other option in its range.
fn check_numbers(job: &ComposeJob) -> std::result::Result<(), String> {
    if job.top_k == Some(0) || job.alone == 0 {
        return Err("--top-k and --alone must be at least 1".into());
    }
    check_arrow(job)?;
    if job.rank == Some(0) {
        return Err("--rank must be at least 1".into());
    }
    if !job.lambda.is_finite() {
        return Err(format!(
            "--lambda must be a finite number, not {}",
            job.lambda
        ));
    }
    if !(job.density > 0.0 && job.density <= 1.0) {
        return Err(format!("--density must be in (0, 1], not {}", job.density));
    }
    if !(0.0..1.0).contains(&job.drop) {
        return Err(format!("--drop must be in [0, 1), not {}", job.drop));
    }
    for (name, lr) in [("--lr", job.lr), ("--head-lr", job.head_lr)] {
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(format!("{name} must be positive, not {lr}"));
        }
    }
    if job.steps == 0 || job.head_steps == 0 || job.batch == 0 {
        return Err("--steps, --head-steps and --batch must be at least 1".into());
    }
    Ok(())
}

/// Arrow's options: `--top-k` within the adapters, a positive temperature, `--general` only
/// with `--method arrow` (it would be silently unused).
fn check_arrow(job: &ComposeJob) -> std::result::Result<(), String> {
    if job.method != Method::Arrow {
        return match job.general.is_empty() {
            true => Ok(()),
            false => Err(format!(
                "--general applies to --method arrow, not {:?}",
                job.method
            )),
        };
    }
    let n = job.adapters.len();
    match top_k(job) {
        k if k > n => Err(format!("--top-k {k} is more than the {n} adapters")),
        _ if !(job.temperature > 0.0 && job.temperature.is_finite()) => Err(format!(
            "--temperature must be positive, not {}",
            job.temperature
        )),
        _ => Ok(()),
    }
}

/// `--top-k`, or the method's default: 3 routed per token (PEFT's), 8 selected.
fn top_k(job: &ComposeJob) -> usize {
    let default = if job.method == Method::Arrow { 3 } else { 8 };
    job.top_k.unwrap_or(default)
}

const COMPOSE_OUTPUT: output::Kind = output::Kind::Folder {
    ours: &OUTPUT_FILES,
};

/// Says so when one adapter folder is given twice: it is composed twice (twice the weight in a
/// uniform average), which is rarely meant.
fn note_repeated_adapters(adapters: &[PathBuf]) {
    let mut seen = std::collections::BTreeSet::new();
    for dir in adapters {
        if !seen.insert(user::absolute(dir)) {
            eprintln!(
                "note: {} is given more than once; each copy counts as one more adapter",
                dir.display()
            );
        }
    }
}

/// Training and (optional) validation items with the training classes.
struct Splits<I> {
    classes: Vec<String>,
    train: Vec<I>,
    val: Option<Vec<I>>,
}

fn text_splits(job: &ComposeJob) -> Result<Splits<TextItem>> {
    let given =
        loramix_data::text::load_csv_splits(&job.data, &job.input.text_column, &job.label_column)?;
    splits(given, job, |p| {
        if p.is_dir() {
            return Err(ExperimentError::Invalid(format!(
                "--val {}: a folder; --val takes one CSV file (a folder with train.csv and val.csv goes to --data)",
                p.display()
            )));
        }
        Ok(loramix_data::text::load_csv_text(
            p,
            &job.input.text_column,
            &job.label_column,
        )?)
    })
}

fn image_splits(job: &ComposeJob, shape: loramix_data::ImageShape) -> Result<Splits<ImageItem>> {
    let given = loramix_data::image::load_image_splits(&job.data, shape)?;
    splits(given, job, |p| {
        Ok(loramix_data::image::load_image_folder(p, shape)?)
    })
}

fn splits<I: Labelled + SuiteItem>(
    given: loramix_data::GivenSplits<I>,
    job: &ComposeJob,
    load_val: impl Fn(&Path) -> Result<loramix_data::LabelledDataset<I>>,
) -> Result<Splits<I>> {
    let classes = given.train.classes.clone();
    if classes.len() < 2 {
        return Err(ExperimentError::Invalid(format!(
            "{}: {} class; a classifier needs at least 2",
            job.data.display(),
            classes.len()
        )));
    }
    let (val, val_origin) = match (&job.val, given.val) {
        (Some(path), Some(_)) => {
            return Err(ExperimentError::Invalid(format!(
                "{} holds validation data and --val {} was given too: give one",
                job.data.display(),
                path.display()
            )));
        }
        (Some(path), None) => (
            Some(user::relabel(load_val(path)?, &classes, path)?),
            path.display().to_string(),
        ),
        (None, val) => (
            val.map(|v| v.items),
            format!("the validation split of {}", job.data.display()),
        ),
    };
    if let Some(val) = &val {
        check_validation(val, &given.train.items, &val_origin)?;
    }
    Ok(Splits {
        classes,
        train: given.train.items,
        val,
    })
}

/// Refuses validation data that cannot tell candidates apart honestly: none at all, or every
/// example a copy of a training example (the table would call training accuracy validation).
/// Some copies are allowed with a note.
fn check_validation<I: SuiteItem>(val: &[I], train: &[I], origin: &str) -> Result<()> {
    if val.is_empty() {
        return Err(ExperimentError::Invalid(format!(
            "{origin}: no validation examples; give some, or none at all (scores are then on the training examples)"
        )));
    }
    let seen: std::collections::HashSet<u64> = train.iter().map(SuiteItem::content_key).collect();
    let copies = val
        .iter()
        .filter(|v| seen.contains(&v.content_key()))
        .count();
    if copies == val.len() {
        return Err(ExperimentError::Invalid(format!(
            "{origin}: every validation example is also a training example; validation must be held out"
        )));
    }
    if copies > 0 {
        eprintln!(
            "note: {copies} of {} validation examples in {origin} are also training examples; their scores are optimistic",
            val.len()
        );
    }
    Ok(())
}

/// What every candidate is fitted and scored with.
struct Scorer<'a, F: Family> {
    family: &'a F,
    splits: &'a Splits<F::Item>,
    schedule: Schedule,
    batch: usize,
    seed: u64,
}

impl<'a, F: Family> Scorer<'a, F> {
    /// Heads at `--head-steps` and `--head-lr`, features in batches of at least 32.
    fn new(family: &'a F, splits: &'a Splits<F::Item>, job: &ComposeJob) -> Self {
        Self {
            family,
            splits,
            schedule: Schedule {
                steps: job.head_steps,
                batch: job.batch,
                lr: job.head_lr,
                head_lr: None,
                parts: job.parts,
            },
            batch: job.batch.max(32),
            seed: job.seed,
        }
    }

    /// The items scores are computed on: validation, else training.
    fn scored(&self) -> &[F::Item] {
        self.splits.val.as_deref().unwrap_or(&self.splits.train)
    }

    /// A fresh head fitted on `backbone`'s features of the training items. Every head starts
    /// from the same seeded initialisation, so reruns agree and candidates differ only by their
    /// backbone.
    fn fit(&self, backbone: &F::Frozen) -> Result<Linear<Inference>> {
        loramix_lora::init::seed::<Train>(&loramix_backend::device(), self.seed);
        let (family, parts) = (self.family, self.schedule.parts);
        let train = features(family, backbone, &self.splits.train, self.batch, parts);
        // An update that overwhelms the base overflows in the forward pass, not in the weights.
        let non_finite: i64 = (train.clone().is_finite().bool_not().int().sum())
            .into_scalar()
            .elem();
        if non_finite > 0 {
            return Err(ExperimentError::NonFiniteFeatures);
        }
        fit_head(
            train,
            &self.splits.train,
            self.splits.classes.len(),
            self.schedule,
            self.seed,
        )
        .map_err(|source| ExperimentError::Train {
            context: "fitting a head".into(),
            source,
        })
    }

    /// A head fitted on `backbone`, scored: one candidate of the table.
    fn fit_and_score(&self, backbone: &F::Frozen) -> Result<Vec<bool>> {
        let head = self.fit(backbone)?;
        Ok(self.score(backbone, &head))
    }

    /// Per scored item, whether `head` on `backbone`'s features classifies it correctly.
    fn score(&self, backbone: &F::Frozen, head: &Linear<Inference>) -> Vec<bool> {
        let items = self.scored();
        let features = features(
            self.family,
            backbone,
            items,
            self.batch,
            self.schedule.parts,
        );
        head_hits(head, features, items)
    }

    /// A sweep cell on the training examples (what the sweep's methods run on), tested on the
    /// scored examples; the validation examples stay unseen: they score the table.
    fn cell<'c>(
        &'c self,
        base: &'c F::Frozen,
        adapters: &'c [Adapter],
        method: &'c str,
        schedule: Schedule,
        device: &'c loramix_backend::Device,
        job: &ComposeJob,
    ) -> CellJob<'c, F> {
        CellJob {
            family: self.family,
            device,
            eval_batch: self.batch,
            parts: job.parts,
            lora: LoraConfig::new(),
            base,
            adapters,
            task: "compose",
            classes: self.splits.classes.len(),
            test: self.scored(),
            method,
            items: self.splits.train.clone(),
            schedule,
            seed: job.seed,
            label: format!("compose --method {}", method_name(job)),
            validation: None,
        }
    }
}

/// The composition a method produced: the model to score, its head, what to write.
struct Composed<F: Family> {
    model: F::Frozen,
    head: Linear<Inference>,
    exported: Exported,
}

/// What a composition is written as.
enum Exported {
    /// One adapter (every method but Arrow).
    Adapter(Box<Compressed>),
    /// The routed adapters themselves, with the routing settings and GenKnowSub's general
    /// adapters.
    Arrow {
        config: ArrowConfig,
        general: Vec<Adapter>,
    },
}

impl Exported {
    /// The written rank and the relative error of writing the composition at that rank (none
    /// for Arrow, whose adapters are written as they are).
    fn rank_and_error(&self, adapters: &[Adapter]) -> (usize, f64) {
        match self {
            Exported::Adapter(exported) => {
                let manifest = &exported.adapter.manifest;
                let error = manifest.composition.as_ref();
                (manifest.rank, error.map_or(0.0, |c| c.approximation_error))
            }
            Exported::Arrow { .. } => (
                adapters.iter().map(|a| a.manifest.rank).max().unwrap_or(0),
                0.0,
            ),
        }
    }
}

fn run<F: Family>(
    family: &F,
    names: &HfBlockNames,
    splits: Splits<F::Item>,
    job: &ComposeJob,
) -> Result<ComposeReport> {
    let mut clock = Stages::start();
    let base = user::base_of(family).clone();
    let adapters = load_adapters(&base, names, &job.adapters, job)?;
    let general = load_adapters(&base, names, &job.general, job)?;
    let spec = method_spec(job, general);
    if let Kind::Arrow(arrow) = &spec.kind {
        loramix_compose::check_routable(&adapters, &arrow.general, &arrow.config())?;
    }
    check_rank(&base, job)?;
    announce(&adapters, &splits);
    let scorer = Scorer::new(family, &splits, job);
    clock.lap("loading");
    let alone = alone(&scorer, &base, &adapters, job)?;
    clock.lap("ranking");
    let bar = progress::bar(alone.len() + 2, "compose");
    let mut scores = baseline_scores(&scorer, &base, &adapters, &alone, &bar)?;
    clock.lap("references");
    bar.set_message(format!("{:?}", job.method).to_lowercase());
    let composed =
        compose_with(&scorer, &base, &adapters, spec, job).map_err(|e| overflow(e, job))?;
    bar.finish_and_clear();
    clock.lap("composition");
    let written = score_composed(&scorer, &base, &composed, job, &mut scores)?;
    clock.lap("scoring");
    let n_val = splits.val.as_ref().map_or(0, Vec::len);
    let scored_on = if n_val > 0 { "validation" } else { "training" };
    let verdict = Verdict::judge(
        &scores[0],
        &scores[1..=alone.len()],
        scores.last().expect("the written adapter's score"),
        scored_on,
    );
    let (rank, approximation_error) = composed.exported.rank_and_error(&adapters);
    let report = ComposeReport {
        method: job.method,
        base: user::absolute(&job.base),
        adapters: job.adapters.iter().map(|a| user::absolute(a)).collect(),
        classes: splits.classes.clone(),
        train_examples: splits.train.len(),
        validation_examples: n_val,
        scored_on: scored_on.into(),
        scores,
        scored_alone: alone.len(),
        verdict,
        rank,
        approximation_error,
        seconds: clock.total(),
        stage_seconds: clock.laps,
    };
    write(job, names, composed, &adapters, &report, written)?;
    Ok(report)
}

/// Seconds spent in each stage of a run, in order.
struct Stages {
    started: Instant,
    last: Instant,
    laps: Vec<(String, f64)>,
}

impl Stages {
    fn start() -> Self {
        let now = Instant::now();
        Self {
            started: now,
            last: now,
            laps: Vec::new(),
        }
    }

    /// Ends the stage `name`.
    fn lap(&mut self, name: &str) {
        let now = Instant::now();
        let seconds = (now - self.last).as_secs_f64();
        self.laps.push((name.into(), seconds));
        self.last = now;
    }

    fn total(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// Refuses `--rank` above what any layer can hold.
fn check_rank<H: AdapterHost<Inference>>(base: &H, job: &ComposeJob) -> Result<()> {
    let most = loramix_compose::max_rank(base);
    match job.rank {
        Some(rank) if rank > most => Err(ExperimentError::Invalid(format!(
            "--rank {rank} is above {most}, the smaller side of this base's widest adapted layer (no update has a higher rank)"
        ))),
        _ => Ok(()),
    }
}

/// Says what the run composes, on what.
fn announce<I>(adapters: &[Adapter], splits: &Splits<I>) {
    let n_val = splits.val.as_ref().map_or(0, Vec::len);
    eprintln!(
        "{} adapters, {} classes, {} training examples, {}",
        adapters.len(),
        splits.classes.len(),
        splits.train.len(),
        if n_val > 0 {
            format!("{n_val} validation examples")
        } else {
            "no validation data: scores are on the training examples (optimistic)".into()
        }
    );
}

/// A composition that overflows, said in the options' terms.
fn overflow(e: ExperimentError, job: &ComposeJob) -> ExperimentError {
    match e {
        ExperimentError::Compose(c @ loramix_compose::ComposeError::NotFinite { .. }) => {
            ExperimentError::Invalid(format!(
                "{c}: the module weights (--weights, --lambda) are too large for 32-bit floats"
            ))
        }
        ExperimentError::NonFiniteFeatures => ExperimentError::Invalid(format!(
            "{} composition: {e}: its update overwhelms the base (module weights or --lambda too large?)",
            method_name(job)
        )),
        other => other,
    }
}

/// Adds the scores of the composition and of the adapter as written (so that a compressed
/// adapter reports its own accuracy); returns the latter's accuracy.
fn score_composed<F: Family>(
    scorer: &Scorer<F>,
    base: &F::Frozen,
    composed: &Composed<F>,
    job: &ComposeJob,
    scores: &mut Vec<Score>,
) -> Result<f64> {
    let composition = Score::new(
        format!("{} composition", method_name(job)),
        scorer.score(&composed.model, &composed.head),
    );
    // Arrow writes the adapters it routes, unchanged: the composition is what is written.
    let Exported::Adapter(exported) = &composed.exported else {
        let accuracy = composition.accuracy;
        scores.push(composition);
        return Ok(accuracy);
    };
    scores.push(composition);
    let mut written = base.clone();
    let adapter = &exported.adapter;
    adapter.apply(&mut written, &loramix_backend::device())?;
    let written = Score::new(
        format!("written adapter (rank {})", adapter.manifest.rank),
        scorer.score(&written.fold_lora(), &composed.head),
    );
    let accuracy = written.accuracy;
    scores.push(written);
    Ok(accuracy)
}

/// The adapters in `dirs`, each checked against the base's layers and fingerprint.
fn load_adapters<H: AdapterHost<Inference>>(
    base: &H,
    names: &HfBlockNames,
    dirs: &[PathBuf],
    job: &ComposeJob,
) -> Result<Vec<Adapter>> {
    let fingerprint = base.fingerprint();
    let adapters = dirs
        .iter()
        .map(|dir| user::load_adapter(dir, names, &fingerprint))
        .collect::<Result<Vec<_>>>()?;
    user::check_same_base(base, &job.base, &adapters)?;
    Ok(adapters)
}

/// The adapters scored alone, by index: all of them, or, when there are more than `--alone`,
/// the `--alone` ranked highest by the loss gradient (as `--method select` ranks them): one
/// backward pass for all instead of a feature pass and a head fit per adapter.
fn alone<F: Family>(
    scorer: &Scorer<F>,
    base: &F::Frozen,
    adapters: &[Adapter],
    job: &ComposeJob,
) -> Result<Vec<usize>> {
    if adapters.len() <= job.alone {
        return Ok((0..adapters.len()).collect());
    }
    eprintln!(
        "ranking {} adapters by the loss gradient; the {} ranked highest are scored alone (--alone)",
        adapters.len(),
        job.alone
    );
    let device = loramix_backend::device();
    let cell = scorer.cell(base, adapters, "alone", scorer.schedule, &device, job);
    loramix_lora::init::seed::<Train>(&device, job.seed);
    let scores = gradient_scores(&cell)?;
    Ok(top_modules(&scores, job.alone))
}

/// The references a composition is judged against: the base with a head only, and each
/// adapter in `alone` by itself.
fn baseline_scores<F: Family>(
    scorer: &Scorer<F>,
    base: &F::Frozen,
    adapters: &[Adapter],
    alone: &[usize],
    bar: &ProgressBar,
) -> Result<Vec<Score>> {
    let device = loramix_backend::device();
    bar.set_message("head only");
    let head_only = scorer.fit_and_score(base).map_err(|e| match e {
        ExperimentError::NonFiniteFeatures => ExperimentError::Invalid(format!(
            "the base alone: {e}: check the base's weights and config.json"
        )),
        other => other,
    })?;
    let mut scores = vec![Score::new("head only (base)".into(), head_only)];
    bar.inc(1);
    for adapter in alone.iter().map(|&i| &adapters[i]) {
        let task = user::printable(&adapter.manifest.task);
        bar.set_message(task.clone());
        let mut model = base.clone();
        attach(&mut model, std::slice::from_ref(adapter), &[1.0], &device)?;
        let hits = scorer
            .fit_and_score(&model.fold_lora())
            .map_err(|e| match e {
                ExperimentError::NonFiniteFeatures => ExperimentError::Invalid(format!(
                    "{} alone: {e}: its update overwhelms the base",
                    adapter.origin()
                )),
                other => other,
            })?;
        scores.push(Score::new(format!("{task} alone"), hits));
        bar.inc(1);
    }
    Ok(scores)
}

fn method_name(job: &ComposeJob) -> String {
    match job.method {
        Method::Ties => format!("ties(density={}, lambda={})", job.density, job.lambda),
        Method::Dare => format!("dare(drop={})", job.drop),
        Method::Select => format!("select(k={}, then {:?})", top_k(job), job.then).to_lowercase(),
        Method::Arrow => format!(
            "arrow(k={}, temperature={}{})",
            top_k(job),
            job.temperature,
            if job.general.is_empty() {
                ""
            } else {
                ", genknowsub"
            }
        ),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The composition record: each composed adapter (those `kept`, or all) with its weight
/// vector (one value, or one per composed layer).
fn record(
    job: &ComposeJob,
    adapters: &[Adapter],
    weights: Vec<Vec<f32>>,
    kept: Option<&[usize]>,
) -> CompositionRecord {
    let all: Vec<usize> = (0..adapters.len()).collect();
    let parents = (kept.unwrap_or(&all).iter())
        .map(|&i| ParentModule {
            task: adapters[i].manifest.task.clone(),
            base_fingerprint: adapters[i].manifest.base_fingerprint.clone(),
            weights: weights[i].clone(),
        })
        .collect();
    CompositionRecord {
        method: method_name(job),
        parents,
        approximation_error: 0.0,
    }
}

/// The method's composition, made by the sweep's own code for the method ([`Kind::compose`])
/// on the training examples, exported (exactly, or at `--rank`), with a fresh head fitted as
/// every other candidate's is, so the scores compare compositions rather than head budgets.
fn compose_with<F: Family>(
    scorer: &Scorer<F>,
    base: &F::Frozen,
    adapters: &[Adapter],
    spec: MethodSpec,
    job: &ComposeJob,
) -> Result<Composed<F>> {
    let device = loramix_backend::device();
    let schedule = Schedule {
        steps: spec.steps,
        lr: spec.lr,
        ..scorer.schedule
    };
    let cell = scorer.cell(base, adapters, &spec.name, schedule, &device, job);
    loramix_lora::init::seed::<Train>(&device, job.seed);
    let composition = (spec.kind.compose(&cell)).expect("compose offers composing kinds only")?;
    let weights = composition.per_module(adapters.len());
    let record = record(job, adapters, weights, composition.kept.as_deref());
    let task = "composition";
    let exported = match (&composition.update, job.rank) {
        (Update::Attached(host), None) => {
            Exported::Adapter(Box::new(match stacked_past_the_layer(host) {
                // Exact up to rounding, and no larger than the layer: PEFT loads rank min(d_in,
                // d_out) faster than a stack of hundreds of modules.
                true => compress(host, loramix_compose::max_rank(host), task, record)?,
                false => export_exact(host, task, record)?,
            }))
        }
        (Update::Attached(host), Some(rank)) => {
            Exported::Adapter(Box::new(compress(host, rank, task, record)?))
        }
        (Update::Dense(deltas), rank) => {
            let rank = rank.unwrap_or_else(|| widest_stack(base, adapters));
            Exported::Adapter(Box::new(compress_dense(
                base,
                deltas.clone(),
                rank,
                task,
                record,
            )?))
        }
        (Update::Routed { config, general }, _) => Exported::Arrow {
            config: *config,
            general: general.clone(),
        },
    };
    let head = scorer.fit(&composition.model)?;
    Ok(Composed {
        model: composition.model,
        head,
        exported,
    })
}

/// Whether some layer's stacked modules have a higher total rank than the layer's smaller
/// side (then the exact export would be larger than the layer, and an SVD at that side is
/// exact).
fn stacked_past_the_layer<H: AdapterHost<Inference>>(host: &H) -> bool {
    (host.adaptable_layers().iter()).any(|(_, l)| l.update_rank() > l.d_in().min(l.d_out()))
}

/// The job's options as the sweep's method: the same settings, the same code.
fn method_spec(job: &ComposeJob, general: Vec<Adapter>) -> MethodSpec {
    let n = job.adapters.len();
    let learned = |normalisation| {
        Kind::Learned(Learned {
            head_lr: Some(job.head_lr),
            sharing: Sharing::PerLayer,
            normalisation,
            penalty: Penalty::None,
        })
    };
    let kind = match job.method {
        Method::Uniform => Kind::Uniform(Uniform {}),
        Method::Fixed => Kind::Fixed(Fixed {
            weights: job.weights.clone().expect("checked: fixed has --weights"),
        }),
        Method::Ties => Kind::Ties(Ties {
            density: job.density,
            lambda: job.lambda,
        }),
        Method::Dare => Kind::Dare(Dare {
            drop: job.drop,
            weights: Some(job.weights.clone().unwrap_or_else(|| uniform_weights(n))),
            seed: job.seed,
        }),
        Method::Search => Kind::Search(Search::default()),
        Method::Learned => learned(Normalisation::Softmax),
        Method::Cat => learned(Normalisation::Unconstrained),
        Method::Select => Kind::Select(Select {
            k: top_k(job),
            then: job.then,
            head_lr: Some(job.head_lr),
        }),
        Method::Arrow => Kind::Arrow(Arrow {
            top_k: top_k(job),
            temperature: job.temperature,
            seed: job.seed,
            general,
        }),
    };
    let (steps, lr) = match (job.method, job.then) {
        (Method::Learned | Method::Cat, _) | (Method::Select, Then::Learned) => (job.steps, job.lr),
        _ => (job.head_steps, job.head_lr),
    };
    MethodSpec {
        name: kind.label().into(),
        steps,
        lr,
        kind,
    }
}

/// The largest total rank of the modules on one layer: what TIES and DARE export at by
/// default (their merged update has no smaller natural rank).
fn widest_stack<H: AdapterHost<Inference>>(host: &H, adapters: &[Adapter]) -> usize {
    let mut per_layer: BTreeMap<&str, usize> = BTreeMap::new();
    for adapter in adapters {
        for layer in &adapter.manifest.layers {
            *per_layer.entry(layer.name.as_str()).or_default() += layer.rank;
        }
    }
    let widest = per_layer.values().copied().max().unwrap_or(1);
    let smallest_side = host
        .adaptable_layers()
        .iter()
        .map(|(_, l)| l.d_in().min(l.d_out()))
        .min()
        .unwrap_or(widest);
    widest.min(smallest_side)
}

/// The adapter (PEFT format + loramix manifest), its head and `compose.json` in `job.out`.
fn write<F: Family>(
    job: &ComposeJob,
    names: &HfBlockNames,
    composed: Composed<F>,
    adapters: &[Adapter],
    report: &ComposeReport,
    accuracy: f64,
) -> Result<()> {
    let base_name = report.base.display().to_string();
    let staged = output::Staged::begin(&job.out, COMPOSE_OUTPUT, &[])?;
    let dir = staged.path();
    let origin = match composed.exported {
        Exported::Adapter(exported) => {
            let adapter = with_metrics(exported.adapter.clone(), report, accuracy);
            loramix_peft::write(&adapter, dir, names, &base_name)?;
            head::HeadOrigin::of(&adapter, dir)?
        }
        Exported::Arrow { config, general } => {
            arrow::write(dir, adapters, &general, &config, names, &base_name)?;
            head::HeadOrigin::of(&adapters[0], dir)?
        }
    };
    head::write_head(dir, &composed.head, &report.classes, &origin)?;
    let path = dir.join("compose.json");
    let text = serde_json::to_string_pretty(report).expect("report serialises");
    std::fs::write(&path, text).map_err(io(&path))?;
    staged.commit()
}

/// The adapter with its scores on the user's data recorded in its manifest.
fn with_metrics(mut adapter: Adapter, report: &ComposeReport, accuracy: f64) -> Adapter {
    adapter.manifest.metrics = BTreeMap::from([
        (format!("{}_accuracy", report.scored_on), accuracy),
        ("train_examples".into(), report.train_examples as f64),
        (
            "validation_examples".into(),
            report.validation_examples as f64,
        ),
    ]);
    adapter
}

/// The score table `compose` prints: each candidate with its 95% interval, then the verdict
/// and what the examples are too few to tell.
pub fn table(report: &ComposeReport) -> String {
    let examples = if report.validation_examples > 0 {
        report.validation_examples
    } else {
        report.train_examples
    };
    let width = (report.scores.iter())
        .map(|s| s.candidate.len())
        .max()
        .unwrap_or(0);
    let mut out = format!(
        "{} accuracy ({examples} examples, {} classes), with 95% Wilson intervals:\n",
        report.scored_on,
        report.classes.len()
    );
    for score in &report.scores {
        let (low, high) = score.interval;
        out.push_str(&format!(
            "  {:<width$}  {:>6.2}%  [{:>5.1}, {:>5.1}]\n",
            score.candidate,
            100.0 * score.accuracy,
            100.0 * low,
            100.0 * high
        ));
    }
    if report.approximation_error > 0.0 {
        out.push_str(&format!(
            "rank {} keeps the composition within a relative error of {:.4} (largest layer)\n",
            report.rank, report.approximation_error
        ));
    }
    let adapters = report.adapters.len();
    if report.scored_alone < adapters {
        out.push_str(&format!(
            "{} of {adapters} adapters scored alone: those ranked highest by the loss gradient (--alone)\n",
            report.scored_alone
        ));
    }
    let verdict = &report.verdict;
    out.push_str(&format!(
        "verdict (the written adapter; exact McNemar tests on the same examples, 5% level; the best adapter is picked on these examples, which favours it):\n  {}\n",
        verdict.line
    ));
    for warning in &verdict.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    let stages: Vec<String> = (report.stage_seconds.iter())
        .map(|(stage, seconds)| format!("{stage} {seconds:.0}"))
        .collect();
    out.push_str(&format!(
        "took {:.0} s ({})\n",
        report.seconds,
        stages.join(", ")
    ));
    out
}
