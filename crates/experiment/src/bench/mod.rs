//! Train-step and inference throughput on the reference ViT of DESIGN.md and on a pretrained
//! BERT-family checkpoint. Ratios are printed only against a reference measured in the same
//! window (`--reference`, the JSON that `benches/torch_vit.py` and `benches/torch_minilm.py`
//! write): figures from another machine or day steer optimisation wrongly.

pub mod command;

use std::time::Instant;

use std::collections::BTreeMap;

use burn::module::{AutodiffModule, Param};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use loramix_backend::{Inference, Train};
use loramix_compose::{LearnedComposition, LearnedConfig, attach, uniform_weights};
use loramix_data::{ImageItem, ImageShape};
use loramix_lora::{Adapter, AdapterHost, LoraConfig, Target};
use loramix_models::Learner;
use loramix_models::{
    Bert, Classifier, TrainConfig, Trainable, Trainer, Vit, VitConfig, forward_in_parts,
    trainable_params,
};
use loramix_rng::Rng;
use serde::Serialize;

use crate::family::Vision;
use crate::fit::{Schedule, features, fit_head};

/// How long to measure.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Training batch (64 in the reference).
    pub batch: usize,
    /// Inference batch (256 in the reference).
    pub infer_batch: usize,
    /// Untimed steps before each measurement (allocator and kernel warm-up).
    pub warmup: usize,
    /// Timed steps per run.
    pub steps: usize,
    /// Runs per method; the median is reported.
    pub runs: usize,
    /// Parts (threads) each batch is cut into ([`loramix_backend::batch_parts`]).
    pub parts: usize,
    /// On a GPU backend: run without burn's fusion layer ([`loramix_backend::Unfused`]).
    pub unfused: bool,
    /// Print every step's seconds to stderr as it ends (to see where a slow row spends its
    /// time, before the row's line).
    pub step_times: bool,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            batch: 64,
            infer_batch: 256,
            warmup: 3,
            steps: 10,
            runs: 3,
            parts: loramix_backend::DEFAULT_BATCH_PARTS,
            unfused: false,
            step_times: false,
        }
    }
}

/// One line of the benchmark table.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub method: String,
    pub trainable_params: usize,
    /// Samples per second of each run.
    pub runs: Vec<f64>,
    /// Median of `runs`.
    pub samples_per_sec: f64,
    /// Seconds of the row's first step: on a GPU, with every kernel it launches compiled and
    /// autotuned then (unless cached from an earlier run, see [`loramix_backend::kernels`]).
    pub first_step_s: f64,
}

/// Rows measured by another tool in the same window, read from `--reference FILE`:
/// `{"tool": "PyTorch 2.15.0", "threads": 2, "rows": [{"method": .., "samples_per_sec": ..,
/// "runs": [..]}]}`. A row is compared with the loramix row of the same method name.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Reference {
    pub tool: String,
    pub threads: usize,
    /// Where it ran (`cpu`, `cuda`); files from before the scripts had `--device` say nothing.
    #[serde(default)]
    pub device: Option<String>,
    pub rows: Vec<ReferenceRow>,
}

/// One reference row.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct ReferenceRow {
    pub method: String,
    pub samples_per_sec: f64,
    pub runs: Vec<f64>,
}

impl Reference {
    /// Reads a reference file, naming it in errors.
    pub fn read(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let reference: Self = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}: not a bench reference ({e}); write one with benches/torch_vit.py or benches/torch_minilm.py --json",
                path.display()
            )
        })?;
        if let Some(row) = reference
            .rows
            .iter()
            .find(|r| !(r.samples_per_sec.is_finite() && r.samples_per_sec > 0.0))
        {
            return Err(format!(
                "{}: row `{}` has {} samples/s",
                path.display(),
                row.method,
                row.samples_per_sec
            ));
        }
        Ok(reference)
    }

    /// The reference row of `method`, if it measured one.
    pub fn row(&self, method: &str) -> Option<&ReferenceRow> {
        self.rows.iter().find(|r| r.method == method)
    }
}

/// What a benchmark row trains.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    Full,
    HeadOnly,
    Lora,
    /// Uniform composition of `n` modules, run unmerged (the stacked path every step).
    Uniform(usize),
    /// Learned composition of `n` modules (per-layer softmax weights and the head trained).
    Learned(usize),
    /// Head only as the pipeline runs it: backbone features of a k-shot set computed once, then
    /// the head trained on the cache (see [`CACHED_SET`]).
    HeadOnlyCached,
    /// Uniform composition of `n` modules folded into the base, then as [`Method::HeadOnlyCached`].
    UniformCached(usize),
}

/// The k-shot set of the cached rows (k = 20 of 10 classes) and the head's steps on it, as in
/// the experiments: samples/s counts the `CACHED_STEPS x batch` examples the head trains on,
/// over the time of one backbone pass per example plus the head's steps.
pub const CACHED_SET: usize = 200;
pub const CACHED_STEPS: usize = 100;

impl Method {
    /// The row runs on cached features, which only the pipeline's backend computes (so not
    /// with [`BenchConfig::unfused`]).
    fn cached(self) -> bool {
        matches!(self, Method::HeadOnlyCached | Method::UniformCached(_))
    }

    /// The row's name in the table.
    pub fn name(self) -> String {
        match self {
            Method::Full => "full fine-tuning".into(),
            Method::HeadOnly => "head only".into(),
            Method::Lora => "LoRA from scratch".into(),
            Method::Uniform(n) => format!("uniform composition N={n} (unmerged)"),
            Method::Learned(n) => format!("learned composition N={n}"),
            Method::HeadOnlyCached => {
                format!("head only, cached features ({CACHED_SET} examples, {CACHED_STEPS} steps)")
            }
            Method::UniformCached(n) => format!(
                "uniform N={n} folded, cached features ({CACHED_SET} examples, {CACHED_STEPS} steps)"
            ),
        }
    }
}

/// The rows of `loramix bench`: every method of DESIGN.md's table, then the frozen-backbone
/// methods as the pipeline runs them.
pub const METHODS: [Method; 7] = [
    Method::Full,
    Method::HeadOnly,
    Method::Lora,
    Method::Uniform(8),
    Method::Learned(8),
    Method::HeadOnlyCached,
    Method::UniformCached(8),
];

/// The rows of `loramix bench --scaling`: learned composition as N grows.
pub const SCALING: [Method; 5] = [
    Method::Learned(1),
    Method::Learned(4),
    Method::Learned(8),
    Method::Learned(16),
    Method::Learned(32),
];
/// The inference row's name at `batch`.
pub fn inference_name(batch: usize) -> String {
    format!("inference b{batch}")
}

/// Measure `methods` (and inference when `inference` is set); `progress` is told each row as it
/// finishes. With [`BenchConfig::unfused`] the cached rows are left out.
pub fn run(
    config: &BenchConfig,
    methods: &[Method],
    inference: bool,
    progress: impl FnMut(&BenchRow),
) -> Vec<BenchRow> {
    #[cfg(any(feature = "cuda", feature = "wgpu"))]
    if config.unfused {
        return run_on::<burn::backend::Autodiff<loramix_backend::Unfused>>(
            config, methods, inference, progress,
        );
    }
    run_on::<Train>(config, methods, inference, progress)
}

fn run_on<B: AutodiffBackend>(
    config: &BenchConfig,
    methods: &[Method],
    inference: bool,
    mut progress: impl FnMut(&BenchRow),
) -> Vec<BenchRow> {
    let mut rows = Vec::new();
    for &method in methods {
        let row = if method.cached() {
            if config.unfused {
                continue;
            }
            measure_cached(method, config)
        } else {
            measure_training::<B>(method, config)
        };
        progress(&row);
        rows.push(row);
    }
    if inference {
        let row = measure_inference::<B::InnerBackend>(config);
        progress(&row);
        rows.push(row);
    }
    rows
}

/// The LoRA of every bench row that has one (ViT and BERT): rank 8 on query and value.
fn lora_config() -> LoraConfig {
    LoraConfig::new()
        .with_rank(8)
        .with_targets(vec![Target::Query, Target::Value])
}

/// Train steps of `method` (not a cached one) on a fresh reference ViT.
fn measure_training<B: AutodiffBackend>(method: Method, config: &BenchConfig) -> BenchRow {
    let device = B::Device::default();
    let base = VitConfig::new().init::<B>(&device);
    let images = random_images::<B>(config.batch, &device);
    let name = method.name();
    match method {
        Method::Full => measure_steps(name, base.trainable(Trainable::All), images, config),
        Method::HeadOnly => {
            measure_steps(name, base.trainable(Trainable::HeadOnly), images, config)
        }
        Method::Lora => measure_steps(
            name,
            base.with_lora(&lora_config(), &device)
                .trainable(Trainable::AdaptersAndHead),
            images,
            config,
        ),
        Method::Uniform(n) | Method::Learned(n) => {
            let adapters = random_adapters(&base.valid(), n, &lora_config());
            let mut model = base;
            attach(&mut model, &adapters, &uniform_weights(n), &device)
                .expect("adapters were made on this base");
            if let Method::Uniform(_) = method {
                measure_steps(name, model.trainable(Trainable::HeadOnly), images, config)
            } else {
                let learned = LearnedComposition::new(model, LearnedConfig::default(), &device)
                    .expect("the model is composed");
                measure_steps(
                    name,
                    learned.trainable(Trainable::AdaptersAndHead),
                    images,
                    config,
                )
            }
        }
        Method::HeadOnlyCached | Method::UniformCached(_) => {
            unreachable!("cached rows are measured by measure_cached")
        }
    }
}

/// Features of a k-shot set through the frozen backbone once, then the head's steps on them.
fn measure_cached(method: Method, config: &BenchConfig) -> BenchRow {
    let device = loramix_backend::device();
    let mut backbone = VitConfig::new().init::<Inference>(&device);
    if let Method::UniformCached(n) = method {
        let adapters = random_adapters(&backbone, n, &lora_config());
        attach(&mut backbone, &adapters, &uniform_weights(n), &device)
            .expect("adapters were made on this base");
        backbone = backbone.fold_lora();
    }
    let family = Vision::own(VitConfig::new(), ImageShape::square(1, 28));
    let mut rng = Rng::new(7);
    let items: Vec<ImageItem> = (0..CACHED_SET)
        .map(|i| ImageItem {
            pixels: (0..28 * 28).map(|_| rng.unit()).collect(),
            label: i % 10,
        })
        .collect();
    let schedule = Schedule {
        steps: CACHED_STEPS,
        batch: config.batch,
        lr: 1e-2,
        head_lr: None,
        parts: config.parts,
    };
    let once = || {
        let cached = features(&family, &backbone, &items, config.infer_batch, config.parts);
        fit_head(cached, &items, 10, schedule, 0).expect("random data gives a finite loss")
    };
    let first_step_s = seconds(once);
    let runs = (0..config.runs)
        .map(|_| {
            once();
            (CACHED_STEPS * config.batch) as f64 / seconds(once)
        })
        .collect();
    let trainable = (backbone.head.weight.dims()[0] + 1) * 10;
    row(method.name(), trainable, runs, first_step_s)
}

fn measure_inference<B: Backend>(config: &BenchConfig) -> BenchRow {
    let device = B::Device::default();
    let model = VitConfig::new().init::<B>(&device);
    let images = random_images::<B>(config.infer_batch, &device);
    let infer = || {
        forward_in_parts(&model, &images, config.parts, |m, x| m.logits(x)).into_data();
    };
    let (first_step_s, runs) = timed(infer, config.infer_batch, config);
    row(inference_name(config.infer_batch), 0, runs, first_step_s)
}

/// Seconds `f` takes.
fn seconds<T>(f: impl FnOnce() -> T) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

/// The first call of `step` (seconds), then samples/s of each of `config.runs` runs of
/// `config.steps` calls after `config.warmup` untimed ones; `batch` samples per call. `step`
/// must wait for its work to finish (read a result back), or a GPU would be timed queueing.
fn timed(mut step: impl FnMut(), batch: usize, config: &BenchConfig) -> (f64, Vec<f64>) {
    let mut count = 0;
    let mut step = || {
        let secs = seconds(&mut step);
        count += 1;
        if config.step_times {
            eprintln!("    step {count}: {secs:.3} s");
        }
        secs
    };
    let first = step();
    let runs = (0..config.runs)
        .map(|_| {
            for _ in 0..config.warmup {
                step();
            }
            let elapsed: f64 = (0..config.steps).map(|_| step()).sum();
            (config.steps * batch) as f64 / elapsed
        })
        .collect();
    (first, runs)
}

/// `n` upstream adapters of `config` with random non-zero factors: their values do not change
/// the cost of a step.
fn random_adapters<B: Backend>(base: &Vit<B>, n: usize, config: &LoraConfig) -> Vec<Adapter> {
    let device = B::Device::default();
    (0..n)
        .map(|i| {
            let mut model = base.clone().with_lora(config, &device);
            for (_, layer) in model.adaptable_layers_mut() {
                if let Some(lora) = layer.lora.as_mut() {
                    let shape = lora.b.dims();
                    lora.b = Param::from_tensor(Tensor::random(
                        shape,
                        Distribution::Normal(0.0, 0.1),
                        &device,
                    ));
                }
            }
            Adapter::extract(&model, &format!("random-{i}"), config, BTreeMap::new())
                .expect("the model has LoRA updates")
        })
        .collect()
}

/// Train steps of `model` on `input` (labels cycling over 10 classes, or fewer if the head has
/// fewer).
fn measure_steps<B: AutodiffBackend, M: Classifier<B> + AutodiffModule<B>>(
    name: String,
    model: M,
    input: M::Input,
    config: &BenchConfig,
) -> BenchRow {
    let device = B::Device::default();
    let trainable = trainable_params(&model);
    let classes = model.head().weight.dims()[1].min(10) as i64;
    let labels: Vec<i64> = (0..config.batch as i64).map(|i| i % classes).collect();
    let targets = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [config.batch]), &device);
    let mut trainer = Trainer::new(model, &TrainConfig::new().with_parts(config.parts));
    // The step reads its loss back, so each call waits for its work.
    let step = || {
        trainer
            .step(input.clone(), targets.clone())
            .expect("random data gives a finite loss");
    };
    let (first_step_s, runs) = timed(step, config.batch, config);
    row(name, trainable, runs, first_step_s)
}

/// Rows of a pretrained BERT-family checkpoint (`dir`) at `config.batch` texts of `tokens`
/// random token ids: inference (features + head), a LoRA train step (rank 8 on query and
/// value, a fresh 3-class head) and a full fine-tuning step, as `benches/torch_minilm.py`
/// measures them in PyTorch.
pub fn run_bert(
    dir: &std::path::Path,
    tokens: usize,
    config: &BenchConfig,
    mut progress: impl FnMut(&BenchRow),
) -> Result<Vec<BenchRow>, loramix_models::CheckpointError> {
    let device = loramix_backend::device();
    let label = format!(
        "{} b{}x{tokens}",
        dir.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        config.batch
    );
    let base = Bert::<Inference>::from_pretrained(dir, 3, &device)?;
    let vocab = base.embeddings.word_embeddings.weight.dims()[0] as u64;
    let mut rng = Rng::new(11);
    let ids: Vec<i64> = (0..config.batch * tokens)
        .map(|_| 1000 + (rng.next_u64() % (vocab - 1000)) as i64)
        .collect();
    let input = Tensor::<Inference, 2, Int>::from_data(
        TensorData::new(ids, [config.batch, tokens]),
        &device,
    );
    let infer = || {
        forward_in_parts(&base, &input, config.parts, |m, x| m.logits(x)).into_data();
    };
    let (first_step_s, runs) = timed(infer, config.batch, config);
    let inference = row(format!("{label} inference"), 0, runs, first_step_s);
    progress(&inference);
    let model = Bert::<Train>::from_inner(base.clone())
        .with_lora(&lora_config(), &device)
        .trainable(Trainable::AdaptersAndHead);
    let train = measure_steps(
        format!("{label} LoRA train step"),
        model,
        Tensor::from_inner(input.clone()),
        config,
    );
    progress(&train);
    let full = measure_steps(
        format!("{label} full fine-tuning"),
        Bert::<Train>::from_inner(base).trainable(Trainable::All),
        Tensor::from_inner(input),
        config,
    );
    progress(&full);
    Ok(vec![inference, train, full])
}

fn row(method: String, trainable_params: usize, runs: Vec<f64>, first_step_s: f64) -> BenchRow {
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);
    BenchRow {
        method,
        trainable_params,
        samples_per_sec: sorted[sorted.len() / 2],
        runs,
        first_step_s,
    }
}

fn random_images<B: Backend>(n: usize, device: &B::Device) -> Tensor<B, 4> {
    Tensor::random([n, 1, 28, 28], Distribution::Uniform(0.0, 1.0), device)
}

/// The table as Markdown, with the backend's name in the header; with a reference, its
/// median per row and our median over it.
pub fn table(rows: &[BenchRow], reference: Option<&Reference>) -> String {
    let mut out = format!(
        "| method ({}) | trainable params | samples/s (median) | runs | first step (s) |",
        loramix_backend::NAME
    );
    match reference {
        Some(r) => {
            let place = match r.device.as_deref() {
                Some(device) if device != "cpu" => device.to_string(),
                _ => format!("{} threads", r.threads),
            };
            out.push_str(&format!(
                " {} ({place}) samples/s | ratio |\n|---|---|---|---|---|---|---|\n",
                r.tool
            ))
        }
        None => out.push_str("\n|---|---|---|---|---|\n"),
    }
    for r in rows {
        let runs: Vec<String> = r.runs.iter().map(|v| format!("{v:.0}")).collect();
        let trainable = match r.trainable_params {
            0 => "-".to_string(),
            n => n.to_string(),
        };
        out.push_str(&format!(
            "| {} | {trainable} | {:.0} | {} | {:.2} |",
            r.method,
            r.samples_per_sec,
            runs.join(", "),
            r.first_step_s,
        ));
        if let Some(reference) = reference {
            match reference.row(&r.method) {
                Some(theirs) => out.push_str(&format!(
                    " {:.0} | {:.2}x |",
                    theirs.samples_per_sec,
                    r.samples_per_sec / theirs.samples_per_sec
                )),
                None => out.push_str(" - | - |"),
            }
        }
        out.push('\n');
    }
    out
}
