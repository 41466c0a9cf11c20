//! The stages of an experiment, written once for both modalities: `pretrain` (the base model),
//! `upstream` (one LoRA per upstream task), `transfer` (the sweep) and `similarity` (CKA).
//! Each stage's artifacts are named by a hash of what made them, so a rerun reuses them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::Backend;
use indicatif::ProgressBar;
use loramix_backend::{Device, Inference, Train};
use loramix_compose::{
    DenseMerge, LearnedComposition, LearnedConfig, SearchConfig, attach, merge_into_base,
    uniform_weights,
};
use loramix_data::{Labelled, LoadedSuite, Role, Shots, Suite, SuiteItem, Task};
use loramix_lora::{Adapter, LoraConfig};
use loramix_models::{Classifier, Trainable, trainable_params};
use loramix_rng::derive_seed;
use serde::{Deserialize, Serialize};

use crate::cka::linear_cka;
use crate::config::{Experiment, MethodKind, MethodSpec, Shot, hash_of};
use crate::error::{ExperimentError, Result, io};
use crate::family::Family;
use crate::fit::{
    Schedule, SearchFailure, TrainSet, accuracy, features, fit, fit_head, head_accuracy, search,
};
use crate::progress;
use crate::store::{Appender, RunDir, Shard, read_rows, write_atomic, write_csv};

/// One finished cell of the sweep: a row of `results.csv`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CellRow {
    pub task: String,
    pub shift: String,
    pub method: String,
    pub k: String,
    pub seed: usize,
    pub accuracy: f64,
    pub trainable_params: usize,
    /// Training time of the cell (feature extraction included for frozen backbones).
    pub train_seconds: f64,
    /// Training examples processed per second (steps x batch / train_seconds).
    pub samples_per_sec: f64,
    /// Hash of everything the cell depends on; rows of another config are not reused.
    pub config: String,
}

/// A learned (or searched) module weight of one cell.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WeightRow {
    pub task: String,
    pub method: String,
    pub k: String,
    pub seed: usize,
    pub layer: String,
    pub module: String,
    pub weight: f64,
    pub config: String,
}

/// CKA between a downstream task's representation and an upstream module's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimilarityRow {
    pub task: String,
    pub module: String,
    pub cka: f64,
}

/// What an experiment will do, decided from its files alone (no data loaded): the tasks in use
/// and the hash that names every artifact.
#[derive(Debug, Clone)]
pub struct Plan {
    pub experiment: Experiment,
    pub suite_keys: SuiteKeys,
    /// The fingerprint of a pretrained base (none for a base loramix pretrains).
    pub base_identity: Option<String>,
    /// Upstream tasks in use, in suite order.
    pub upstream: Vec<String>,
    /// Downstream tasks in use, in suite order.
    pub downstream: Vec<String>,
    pub run: RunDir,
}

impl Plan {
    /// Checks task names and method settings against the suite.
    pub fn new<I: SuiteItem>(
        experiment: Experiment,
        suite: &Suite<I>,
        suite_keys: SuiteKeys,
        base_identity: Option<String>,
        runs: &Path,
    ) -> Result<Self> {
        let pick = |role: Role, wanted: &[String], what: &str| -> Result<Vec<String>> {
            let all: Vec<String> = suite
                .tasks()
                .filter(|(r, _)| *r == role)
                .map(|(_, t)| t.name.clone())
                .collect();
            if let Some(missing) = wanted.iter().find(|w| !all.contains(w)) {
                return Err(ExperimentError::Invalid(format!(
                    "{what} task `{missing}` is not in suite `{}` (it has: {})",
                    suite.name,
                    all.join(", ")
                )));
            }
            Ok(if wanted.is_empty() {
                all
            } else {
                all.into_iter().filter(|t| wanted.contains(t)).collect()
            })
        };
        let upstream = pick(Role::Upstream, &experiment.upstream.tasks, "upstream")?;
        let downstream = pick(Role::Downstream, &experiment.transfer.tasks, "downstream")?;
        if upstream.is_empty() || downstream.is_empty() {
            return Err(ExperimentError::Invalid(format!(
                "suite `{}` needs at least one upstream and one downstream task",
                suite.name
            )));
        }
        experiment.check_methods(upstream.len())?;
        let run = RunDir::new(runs, &experiment.name);
        Ok(Self {
            experiment,
            suite_keys,
            base_identity,
            upstream,
            downstream,
            run,
        })
    }

    /// A pretrained base is named by its fingerprint (its weights), an own base by what made it:
    /// the suite's shared settings and its pretraining task, not the rest of the suite.
    pub fn base_hash(&self) -> String {
        match &self.base_identity {
            Some(fingerprint) => hash_of(&[&"pretrained/1", fingerprint, &self.experiment.model]),
            None => hash_of(&[
                &"base/2",
                &self.suite_keys.shared,
                &self.suite_keys.task(&self.suite_keys.pretrain),
                &self.experiment.model,
                &self.experiment.pretrain,
            ]),
        }
    }

    /// The base, the upstream settings and the upstream tasks in use.
    pub fn upstream_hash(&self) -> String {
        let tasks: Vec<_> = self
            .upstream
            .iter()
            .map(|t| self.suite_keys.task(t))
            .collect();
        hash_of(&[
            &self.base_hash(),
            &self.suite_keys.shared,
            &tasks,
            &self.experiment.upstream,
        ])
    }

    /// The hash a sweep row of `method` on downstream task `task` must carry to count as done.
    pub fn cell_hash(&self, method: &MethodSpec, task: &str) -> String {
        let t = &self.experiment.transfer;
        hash_of(&[
            &self.upstream_hash(),
            &self.upstream,
            &self.suite_keys.task(task),
            &(t.full_per_class, t.batch, t.eval_batch),
            method,
        ])
    }

    /// The similarity stage's hash.
    pub fn similarity_hash(&self) -> String {
        let tasks: Vec<_> = self
            .downstream
            .iter()
            .map(|t| self.suite_keys.task(t))
            .collect();
        hash_of(&[
            &self.upstream_hash(),
            &self.upstream,
            &self.downstream,
            &tasks,
            &self.experiment.similarity,
            &self.experiment.transfer.full_per_class,
        ])
    }

    fn lora_config(&self, rank: Option<usize>, alpha: Option<f32>) -> LoraConfig {
        let up = &self.experiment.upstream;
        LoraConfig::new()
            .with_rank(rank.unwrap_or(up.rank))
            .with_alpha(alpha.unwrap_or(up.alpha))
            .with_targets(up.targets.clone())
    }
}

/// What artifact hashes take from a suite file: its shared settings and each task's table as
/// parsed TOML, without names and descriptions. Comments, formatting, descriptions and tasks an
/// artifact does not use change no hash, so adding a downstream task retrains nothing.
#[derive(Debug, Clone, Default)]
pub struct SuiteKeys {
    shared: BTreeMap<String, toml::Value>,
    tasks: BTreeMap<String, toml::Value>,
    pretrain: String,
}

impl SuiteKeys {
    /// The keys of the suite TOML `text` (read from `path`).
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ExperimentError::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut keys = Self::default();
        for (key, value) in table {
            match key.as_str() {
                "name" | "description" => {}
                "pretrain" => keys.pretrain = keys.insert_task(value),
                "upstream" | "downstream" => {
                    for task in value.as_array().cloned().unwrap_or_default() {
                        keys.insert_task(task);
                    }
                }
                _ => {
                    keys.shared.insert(key, value);
                }
            }
        }
        Ok(keys)
    }

    /// Adds one task table; returns its name.
    fn insert_task(&mut self, mut task: toml::Value) -> String {
        let mut name = String::new();
        if let Some(table) = task.as_table_mut() {
            table.remove("description");
            if let Some(toml::Value::String(n)) = table.remove("name") {
                name = n;
            }
        }
        self.tasks.insert(name.clone(), task);
        name
    }

    fn task(&self, name: &str) -> Option<&toml::Value> {
        self.tasks.get(name)
    }
}

/// A plan with its data loaded: what the training stages share.
pub struct Context<F: Family> {
    pub plan: Plan,
    pub suite: LoadedSuite<F::Item>,
    pub family: F,
    pub device: Device,
    /// The downstream tasks, loaded and checked against every shot count.
    pub downstream: Vec<Task<F::Item>>,
    /// Parts (threads) each training and inference batch is cut into.
    pub parts: usize,
}

impl<F: Family> Context<F> {
    /// Loads the data and checks, before any training, that every downstream class has at
    /// least k training examples for every k of the sweep.
    pub fn new(plan: Plan, suite: Suite<F::Item>, family: F, parts: usize) -> Result<Self> {
        let data = &plan.experiment.data;
        if !data.is_dir() {
            return Err(ExperimentError::Invalid(format!(
                "data folder {} does not exist: run `bash datasets/fetch.sh` (or set LORAMIX_DATA)",
                data.display()
            )));
        }
        let suite = suite.load(data)?;
        let mut downstream = Vec::new();
        for name in &plan.downstream {
            let task = suite.task(name)?;
            let mut per_class = vec![0; task.train.classes.len()];
            task.train
                .items
                .iter()
                .for_each(|i| per_class[i.label()] += 1);
            eprintln!(
                "  {name}: {} classes, training pool {}..{} per class, {} test examples",
                per_class.len(),
                per_class.iter().min().unwrap_or(&0),
                per_class.iter().max().unwrap_or(&0),
                task.test.items.len()
            );
            for shot in &plan.experiment.transfer.shots {
                if let Shot::K(k) = *shot {
                    task.shots(Shots::K(k), 0)?;
                }
            }
            downstream.push(task);
        }
        Ok(Self {
            plan,
            suite,
            family,
            device: loramix_backend::device(),
            downstream,
            parts,
        })
    }
}

/// Summary of a trained model, next to its weights.
#[derive(Debug, Serialize, Deserialize)]
struct BaseInfo {
    task: String,
    classes: Vec<String>,
    test_accuracy: f64,
    train_seconds: f64,
}

const MODEL_FILE: &str = "model";

fn recorder() -> NamedMpkFileRecorder<FullPrecisionSettings> {
    NamedMpkFileRecorder::new()
}

/// Pretrains the base model on the suite's pretraining task, or loads it if this config made one.
pub fn pretrain<F: Family>(ctx: &Context<F>) -> Result<F::Frozen> {
    if let Some(base) = ctx.family.pretrained() {
        let fingerprint = ctx.plan.base_identity.as_deref().unwrap_or("unknown");
        eprintln!("pretrain: skipped, the backbone is pretrained ({fingerprint})");
        return Ok(base.clone());
    }
    let dir = ctx.plan.run.base(&ctx.plan.base_hash());
    let info_path = dir.join("base.json");
    let name = ctx.suite.suite().pretrain.name.clone();
    if info_path.exists() {
        let info: BaseInfo = read_json(&info_path)?;
        let skeleton = ctx.family.init(info.classes.len(), &ctx.device).valid();
        let model = skeleton
            .load_file(dir.join(MODEL_FILE), &recorder(), &ctx.device)
            .map_err(|e| ExperimentError::Artifact {
                path: dir.join(format!("{MODEL_FILE}.mpk")),
                message: format!("{e}; delete {} to pretrain again", dir.display()),
            })?;
        eprintln!(
            "pretrain: reusing {} (test accuracy {:.1}%)",
            dir.display(),
            100.0 * info.test_accuracy
        );
        return Ok(model);
    }
    let task = ctx.suite.task(&name)?;
    let spec = ctx
        .plan
        .experiment
        .pretrain
        .as_ref()
        .expect("an own backbone has [pretrain] (checked when read)");
    <Train as Backend>::seed(&ctx.device, derive_seed(0, "pretrain"));
    let model = ctx
        .family
        .init(task.train.classes.len(), &ctx.device)
        .trainable(Trainable::All);
    let schedule = Schedule {
        steps: spec.steps,
        batch: spec.batch,
        lr: spec.lr,
        head_lr: None,
        parts: ctx.parts,
    };
    let trained = train_on_task(ctx, model, &task, schedule, "pretrain", "pretrain/batches")?;
    let (model, test_accuracy, seconds) = (trained.model, trained.accuracy, trained.seconds);
    // Staged under a per-process name and renamed whole: a reader never sees half a base, and
    // shards pretraining at once do not collide (the first rename wins, the others are dropped).
    let staging = dir.with_extension(format!("partial.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    model
        .clone()
        .save_file(staging.join(MODEL_FILE), &recorder())
        .map_err(|e| ExperimentError::Artifact {
            path: staging.clone(),
            message: e.to_string(),
        })?;
    let info = BaseInfo {
        task: name,
        classes: task.train.classes.clone(),
        test_accuracy,
        train_seconds: seconds,
    };
    write_json(&staging.join("base.json"), &info)?;
    if let Err(e) = std::fs::rename(&staging, &dir) {
        if !dir.join("base.json").exists() {
            return Err(ExperimentError::Io {
                path: dir,
                source: e,
            });
        }
        let _ = std::fs::remove_dir_all(&staging);
    }
    Ok(model)
}

/// A model trained on a task's whole training pool, with its test accuracy.
struct Trained<M> {
    model: M,
    accuracy: f64,
    seconds: f64,
}

/// Trains `model` on all of `task`'s training pool (minibatch order seeded by `batches`), tests
/// it, and prints one line for the `stage`.
fn train_on_task<F: Family>(
    ctx: &Context<F>,
    model: F::Trained,
    task: &Task<F::Item>,
    schedule: Schedule,
    stage: &str,
    batches: &str,
) -> Result<Trained<F::Frozen>> {
    let name = &task.name;
    let started = Instant::now();
    let set = TrainSet::new(&ctx.family, &task.train.items, &ctx.device);
    let bar = progress::bar(schedule.steps, &format!("{stage} {name}"));
    let model =
        fit::<F, _>(model, &set, schedule, derive_seed(0, batches), &bar).map_err(|source| {
            ExperimentError::Train {
                context: format!("{stage} task `{name}`"),
                source,
            }
        })?;
    let model = model.valid();
    let seconds = started.elapsed().as_secs_f64();
    let eval_batch = ctx.plan.experiment.transfer.eval_batch;
    let accuracy = accuracy(&ctx.family, &model, &task.test.items, eval_batch, ctx.parts);
    bar.finish_and_clear();
    eprintln!(
        "{stage}: {name}, {} examples, {} steps in {seconds:.0}s, test accuracy {:.1}%",
        task.train.items.len(),
        schedule.steps,
        100.0 * accuracy
    );
    Ok(Trained {
        model,
        accuracy,
        seconds,
    })
}

/// Trains one LoRA per upstream task on the base (each with its own head, not saved), or loads
/// those this config already made.
pub fn upstream<F: Family>(ctx: &Context<F>, base: &F::Frozen) -> Result<Vec<Adapter>> {
    let dir = ctx.plan.run.upstream(&ctx.plan.upstream_hash());
    let spec = &ctx.plan.experiment.upstream;
    let config = ctx.plan.lora_config(None, None);
    let mut adapters = Vec::new();
    for name in &ctx.plan.upstream {
        let path = dir.join(name);
        if path.join("manifest.json").exists() {
            adapters.push(Adapter::load(&path)?);
            continue;
        }
        let task = ctx.suite.task(name)?;
        <Train as Backend>::seed(&ctx.device, derive_seed(0, &format!("upstream/{name}")));
        let model = F::Trained::from_inner(base.clone())
            .with_head(task.train.classes.len(), &ctx.device)
            .with_lora(&config, &ctx.device)
            .trainable(Trainable::AdaptersAndHead);
        let schedule = Schedule {
            steps: spec.steps,
            batch: spec.batch,
            lr: spec.lr,
            head_lr: None,
            parts: ctx.parts,
        };
        let batches = format!("upstream/{name}/batches");
        let trained = train_on_task(ctx, model, &task, schedule, "upstream", &batches)?;
        let (model, acc, seconds) = (trained.model, trained.accuracy, trained.seconds);
        let metrics = BTreeMap::from([
            ("test_accuracy".to_string(), acc),
            ("train_seconds".to_string(), seconds),
            ("train_examples".to_string(), task.train.items.len() as f64),
        ]);
        let adapter = Adapter::extract(&model, name, &config, metrics)?;
        adapter.save(&path)?;
        adapters.push(Adapter::load(&path)?);
    }
    Ok(adapters)
}

/// Runs the cells of `shard` that are not yet in its results file, appending each as it ends.
pub fn transfer<F: Family>(
    ctx: &Context<F>,
    base: &F::Frozen,
    adapters: &[Adapter],
    shard: Shard,
) -> Result<()> {
    let results_path = ctx.plan.run.results(shard);
    // Opening first cuts a row left half-written by an interrupted run.
    let mut results = Appender::open::<CellRow>(&results_path)?;
    // A cell finished by any shard counts, so the shard count may change mid-sweep.
    let mut done: BTreeSet<(String, String, String, usize, String)> = BTreeSet::new();
    for file in ctx.plan.run.shard_files(false)? {
        done.extend(
            read_rows::<CellRow>(&file)?
                .into_iter()
                .map(|r| (r.task, r.method, r.k, r.seed, r.config)),
        );
    }
    // A cell writes its weight rows, then its result row. One interrupted between the two left
    // weights without a result: it runs again, so those rows go first (the rerun writes them).
    let weights_path = ctx.plan.run.weights(shard);
    let written = read_rows::<WeightRow>(&weights_path)?;
    let (kept, orphans): (Vec<WeightRow>, Vec<WeightRow>) = written.into_iter().partition(|r| {
        done.contains(&(
            r.task.clone(),
            r.method.clone(),
            r.k.clone(),
            r.seed,
            r.config.clone(),
        ))
    });
    if !orphans.is_empty() {
        eprintln!(
            "transfer: dropping {} weight rows of interrupted cells from {}",
            orphans.len(),
            weights_path.display()
        );
        write_csv(&weights_path, &kept)?;
    }
    let mut weights = Appender::open::<WeightRow>(&weights_path)?;
    let t = &ctx.plan.experiment.transfer;

    // Cells in a fixed order (task, method, shot, seed): the shard and resume logic rely on it.
    let mut todo = Vec::new();
    let mut index = 0;
    for (task_index, task) in ctx.downstream.iter().enumerate() {
        for method in &ctx.plan.experiment.methods {
            let hash = ctx.plan.cell_hash(method, &task.name);
            for &shot in &t.shots {
                for seed in 0..t.seeds {
                    let key = (
                        task.name.clone(),
                        method.name(),
                        shot.to_string(),
                        seed,
                        hash.clone(),
                    );
                    if shard.contains(index) && !done.contains(&key) {
                        todo.push((task_index, method, shot, seed));
                    }
                    index += 1;
                }
            }
        }
    }
    let in_shard = (0..index).filter(|&i| shard.contains(i)).count();
    eprintln!(
        "transfer: {} of {in_shard} cells to run{} ({} already in {}), writing to {}",
        todo.len(),
        if shard.count > 1 {
            format!(" in shard {}/{}", shard.index, shard.count)
        } else {
            String::new()
        },
        in_shard - todo.len(),
        ctx.plan.run.sweep().display(),
        results_path.display()
    );
    let bar = progress::bar(todo.len(), "transfer");
    let mut frozen: HashMap<(usize, String), (F::Frozen, burn::tensor::Tensor<Inference, 2>)> =
        HashMap::new();
    for (task_index, method, shot, seed) in todo {
        let task = &ctx.downstream[task_index];
        bar.set_message(format!(
            "{} {} k={shot} seed {seed}",
            task.name,
            method.name()
        ));
        if method.kind.frozen_backbone() && !frozen.contains_key(&(task_index, method.name())) {
            // Free the previous task's cache: cells come grouped by task.
            frozen.retain(|(i, _), _| *i == task_index);
            let backbone = frozen_backbone(ctx, base, adapters, method)?;
            let test = features(
                &ctx.family,
                &backbone,
                &task.test.items,
                t.eval_batch,
                ctx.parts,
            );
            frozen.insert((task_index, method.name()), (backbone, test));
        }
        let cached = frozen.get(&(task_index, method.name()));
        let cell = Cell {
            task,
            method,
            shot,
            seed,
            config: ctx.plan.cell_hash(method, &task.name),
        };
        let (row, weight_rows) = run_cell(ctx, base, adapters, &cell, cached)?;
        weights.append(&weight_rows)?;
        results.append(&[row])?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

/// The frozen backbone of a frozen-backbone method: the base, or the base with the modules'
/// deltas folded in.
fn frozen_backbone<F: Family>(
    ctx: &Context<F>,
    base: &F::Frozen,
    adapters: &[Adapter],
    method: &MethodSpec,
) -> Result<F::Frozen> {
    let mut model = base.clone();
    let n = adapters.len();
    match method.kind {
        MethodKind::HeadOnly => return Ok(model),
        MethodKind::Uniform => attach(&mut model, adapters, &uniform_weights(n), &ctx.device)?,
        MethodKind::Fixed => {
            let weights = method.weights.clone().unwrap_or_else(|| uniform_weights(n));
            attach(&mut model, adapters, &weights, &ctx.device)?
        }
        MethodKind::Ties => {
            let merge = DenseMerge::Ties {
                density: method.density.unwrap_or(1.0),
                lambda: method.lambda.unwrap_or(1.0),
            };
            merge_into_base(&mut model, adapters, &merge, &ctx.device)?
        }
        MethodKind::Dare => {
            let merge = DenseMerge::Dare {
                drop: method.drop.unwrap_or(0.0),
                weights: method.weights.clone().unwrap_or_else(|| uniform_weights(n)),
                seed: 0,
            };
            merge_into_base(&mut model, adapters, &merge, &ctx.device)?
        }
        other => unreachable!("{other:?} trains its backbone"),
    }
    Ok(model.fold_lora())
}

fn shots_of(shot: Shot, full_per_class: usize, classes: usize) -> Shots {
    match shot {
        Shot::K(k) => Shots::K(k),
        Shot::Full => Shots::Full {
            cap: Some(full_per_class * classes),
        },
    }
}

/// One cell of the sweep: a method on a task at k shots with a seed.
struct Cell<'a, I> {
    task: &'a Task<I>,
    method: &'a MethodSpec,
    shot: Shot,
    seed: usize,
    /// The current config's hash of `method`, carried by every row the cell writes.
    config: String,
}

impl<I> Cell<'_, I> {
    fn row(
        &self,
        accuracy: f64,
        trainable_params: usize,
        seconds: f64,
        processed: usize,
    ) -> CellRow {
        CellRow {
            task: self.task.name.clone(),
            shift: self
                .task
                .shift
                .map(|s| format!("{s:?}").to_lowercase())
                .unwrap_or_default(),
            method: self.method.name(),
            k: self.shot.to_string(),
            seed: self.seed,
            accuracy,
            trainable_params,
            train_seconds: seconds,
            samples_per_sec: processed as f64 / seconds.max(1e-9),
            config: self.config.clone(),
        }
    }

    fn weight_row(&self, layer: String, module: &Adapter, weight: f32) -> WeightRow {
        WeightRow {
            task: self.task.name.clone(),
            method: self.method.name(),
            k: self.shot.to_string(),
            seed: self.seed,
            layer,
            module: module.manifest.task.clone(),
            weight: weight as f64,
            config: self.config.clone(),
        }
    }
}

/// What the method of a cell reached, and the module weights it chose (if it chooses any).
struct Outcome {
    accuracy: f64,
    trainable_params: usize,
    weights: Vec<WeightRow>,
}

fn run_cell<F: Family>(
    ctx: &Context<F>,
    base: &F::Frozen,
    adapters: &[Adapter],
    cell: &Cell<F::Item>,
    cached: Option<&(F::Frozen, burn::tensor::Tensor<Inference, 2>)>,
) -> Result<(CellRow, Vec<WeightRow>)> {
    let t = &ctx.plan.experiment.transfer;
    let (task, method) = (cell.task, cell.method);
    let n_classes = task.train.classes.len();
    let items = task.shots(
        shots_of(cell.shot, t.full_per_class, n_classes),
        cell.seed as u64,
    )?;
    let name = method.name();
    let seed = derive_seed(
        cell.seed as u64,
        &format!("cell/{}/{name}/{}", task.name, cell.shot),
    );
    <Train as Backend>::seed(&ctx.device, seed);
    let schedule = Schedule {
        steps: method.steps,
        batch: t.batch,
        lr: method.lr,
        head_lr: method.head_lr,
        parts: ctx.parts,
    };
    let train_error = |source| ExperimentError::Train {
        context: format!(
            "task `{}`, method `{name}`, k={}, seed {}",
            task.name, cell.shot, cell.seed
        ),
        source,
    };
    let head_params = (base.head().weight.dims()[0] + 1) * n_classes;
    let hidden = ProgressBar::hidden();
    let test_accuracy = |model: &F::Frozen| {
        accuracy(
            &ctx.family,
            model,
            &task.test.items,
            t.eval_batch,
            ctx.parts,
        )
    };
    let started = Instant::now();
    let outcome = match method.kind {
        kind if kind.frozen_backbone() => {
            let (backbone, test) = cached.expect("frozen backbones are cached before their cells");
            let train = features(&ctx.family, backbone, &items, t.eval_batch, ctx.parts);
            let head = fit_head(train, &items, n_classes, schedule, seed).map_err(train_error)?;
            Outcome {
                accuracy: head_accuracy(&head, test.clone(), &task.test.items),
                trainable_params: head_params,
                weights: Vec::new(),
            }
        }
        MethodKind::Full | MethodKind::Lora => {
            let mut model = F::Trained::from_inner(base.clone()).with_head(n_classes, &ctx.device);
            model = if method.kind == MethodKind::Lora {
                let config = ctx.plan.lora_config(method.rank, method.alpha);
                model
                    .with_lora(&config, &ctx.device)
                    .trainable(Trainable::AdaptersAndHead)
            } else {
                model.trainable(Trainable::All)
            };
            let trainable_params = trainable_params(&model);
            let set = TrainSet::new(&ctx.family, &items, &ctx.device);
            let model = fit::<F, _>(model, &set, schedule, seed, &hidden).map_err(train_error)?;
            Outcome {
                accuracy: test_accuracy(&model.valid().fold_lora()),
                trainable_params,
                weights: Vec::new(),
            }
        }
        MethodKind::Learned => {
            let mut model = F::Trained::from_inner(base.clone()).with_head(n_classes, &ctx.device);
            let uniform = uniform_weights(adapters.len());
            attach(&mut model, adapters, &uniform, &ctx.device)?;
            let config = LearnedConfig {
                sharing: method.sharing.unwrap_or_default(),
                normalisation: method.normalisation.unwrap_or_default(),
                penalty: method.penalty.unwrap_or_default(),
            };
            let learned = LearnedComposition::new(model, config, &ctx.device)?
                .trainable(Trainable::AdaptersAndHead);
            let trainable_params = trainable_params(&learned);
            let set = TrainSet::new(&ctx.family, &items, &ctx.device);
            let learned =
                fit::<F, _>(learned, &set, schedule, seed, &hidden).map_err(train_error)?;
            Outcome {
                weights: learned_weight_rows(cell, &learned, adapters),
                accuracy: test_accuracy(&learned.composed().valid().fold_lora()),
                trainable_params,
            }
        }
        MethodKind::Search => {
            let (accuracy, weights) = search_cell(
                ctx, base, adapters, cell, &items, schedule, seed,
            )
            .map_err(|e| match e {
                SearchFailure::Train(source) => train_error(source),
                SearchFailure::Compose(e) => e.into(),
            })?;
            Outcome {
                accuracy,
                trainable_params: head_params + adapters.len(),
                weights: adapters
                    .iter()
                    .zip(weights)
                    .map(|(a, w)| cell.weight_row("all".into(), a, w))
                    .collect(),
            }
        }
        _ => unreachable!("frozen kinds are handled above"),
    };
    let seconds = started.elapsed().as_secs_f64();
    let processed = schedule.steps * schedule.batch.min(items.len());
    Ok((
        cell.row(
            outcome.accuracy,
            outcome.trainable_params,
            seconds,
            processed,
        ),
        outcome.weights,
    ))
}

fn learned_weight_rows<I, M: Classifier<Train>>(
    cell: &Cell<I>,
    learned: &LearnedComposition<Train, M>,
    adapters: &[Adapter],
) -> Vec<WeightRow> {
    let weights = learned.weights().into_data().convert::<f32>();
    let n = weights.shape[1];
    let values = weights.to_vec::<f32>().expect("converted to f32");
    let layers: Vec<String> = if learned.config.sharing == loramix_compose::Sharing::Shared {
        vec!["all".into()]
    } else {
        learned
            .model
            .adaptable_layers()
            .into_iter()
            .filter(|(_, l)| l.composition.is_some())
            .map(|(name, _)| name)
            .collect()
    };
    let mut rows = Vec::with_capacity(layers.len() * n);
    for (r, layer) in layers.into_iter().enumerate() {
        for (adapter, &weight) in adapters.iter().zip(&values[r * n..(r + 1) * n]) {
            rows.push(cell.weight_row(layer.clone(), adapter, weight));
        }
    }
    rows
}

/// LoraHub's recipe with a head ([`fit::search`](crate::fit::search)) on a cell, scored on the
/// test split.
fn search_cell<F: Family>(
    ctx: &Context<F>,
    base: &F::Frozen,
    adapters: &[Adapter],
    cell: &Cell<F::Item>,
    items: &[F::Item],
    schedule: Schedule,
    seed: u64,
) -> std::result::Result<(f64, Vec<f32>), SearchFailure> {
    let (task, method) = (cell.task, cell.method);
    let t = &ctx.plan.experiment.transfer;
    let defaults = SearchConfig::default();
    let config = SearchConfig {
        budget: method.budget.unwrap_or(defaults.budget),
        population: method.population.unwrap_or(defaults.population),
        sigma: method.sigma.unwrap_or(defaults.sigma),
        l1: method.l1.unwrap_or(defaults.l1),
        bound: method.bound.unwrap_or(defaults.bound),
        seed,
    };
    let n_classes = task.train.classes.len();
    let found = search(
        &ctx.family,
        base,
        adapters,
        items,
        n_classes,
        schedule,
        t.eval_batch,
        &config,
    )?;
    let test = features(
        &ctx.family,
        &found.model,
        &task.test.items,
        t.eval_batch,
        ctx.parts,
    );
    Ok((
        head_accuracy(&found.head, test, &task.test.items),
        found.weights,
    ))
}

/// Linear CKA (claim 4) between each downstream task's representation and each upstream
/// module's, on the same downstream test inputs: the final encoder features (after the last
/// norm, pooled as the head sees them) of the base with a LoRA trained on the downstream task's
/// full-shot set, against the base with upstream module i applied. High CKA: module i moves the
/// representation the way the downstream task wants.
pub fn similarity<F: Family>(
    ctx: &Context<F>,
    base: &F::Frozen,
    adapters: &[Adapter],
) -> Result<Option<PathBuf>> {
    let spec = &ctx.plan.experiment.similarity;
    if !spec.enabled {
        return Ok(None);
    }
    let hash = ctx.plan.similarity_hash();
    let path = ctx.plan.run.similarity(&hash);
    if path.exists() {
        eprintln!("similarity: reusing {}", path.display());
        return Ok(Some(path));
    }
    let t = &ctx.plan.experiment.transfer;
    let up = &ctx.plan.experiment.upstream;
    let config = ctx.plan.lora_config(None, None);
    let bar = progress::bar(ctx.downstream.len() * spec.steps, "similarity");
    let mut rows = Vec::new();
    for task in &ctx.downstream {
        let n_classes = task.train.classes.len();
        let items = task.shots(shots_of(Shot::Full, t.full_per_class, n_classes), 0)?;
        let seed = derive_seed(0, &format!("similarity/{}", task.name));
        <Train as Backend>::seed(&ctx.device, seed);
        let model = F::Trained::from_inner(base.clone())
            .with_head(n_classes, &ctx.device)
            .with_lora(&config, &ctx.device)
            .trainable(Trainable::AdaptersAndHead);
        let set = TrainSet::new(&ctx.family, &items, &ctx.device);
        let schedule = Schedule {
            steps: spec.steps,
            batch: up.batch,
            lr: up.lr,
            head_lr: None,
            parts: ctx.parts,
        };
        let model = fit::<F, _>(model, &set, schedule, seed, &bar).map_err(|source| {
            ExperimentError::Train {
                context: format!("similarity reference LoRA for `{}`", task.name),
                source,
            }
        })?;
        let probe = &task.test.items[..spec.examples.min(task.test.items.len())];
        let reference = to_rows(features(
            &ctx.family,
            &model.valid().fold_lora(),
            probe,
            t.eval_batch,
            ctx.parts,
        ));
        for adapter in adapters {
            let mut with_module = base.clone();
            adapter.apply(&mut with_module, &ctx.device)?;
            let x = to_rows(features(
                &ctx.family,
                &with_module.fold_lora(),
                probe,
                t.eval_batch,
                ctx.parts,
            ));
            rows.push(SimilarityRow {
                task: task.name.clone(),
                module: adapter.manifest.task.clone(),
                cka: linear_cka(&x, &reference),
            });
        }
    }
    bar.finish_and_clear();
    std::fs::create_dir_all(&ctx.plan.run.root).map_err(io(&ctx.plan.run.root))?;
    write_csv(&path, &rows)?;
    eprintln!("similarity: wrote {}", path.display());
    Ok(Some(path))
}

fn to_rows(features: burn::tensor::Tensor<Inference, 2>) -> Vec<Vec<f64>> {
    let [n, d] = features.dims();
    let values = features
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("f32");
    (0..n)
        .map(|i| {
            values[i * d..(i + 1) * d]
                .iter()
                .map(|&v| v as f64)
                .collect()
        })
        .collect()
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&text).map_err(|e| ExperimentError::Artifact {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_vec_pretty(value).expect("artifacts serialise");
    write_atomic(path, &text)
}
