//! Train-step and inference throughput on the reference ViT of DESIGN.md, side by side with the
//! PyTorch figures measured there on the same kind of machine (2 cores, no GPU).

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use loramix_backend::{Inference, Train};
use loramix_lora::{LoraConfig, Target};
use loramix_models::{
    Classifier, TrainConfig, Trainable, Trainer, Vit, VitConfig, trainable_params,
};
use serde::Serialize;

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
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            batch: 64,
            infer_batch: 256,
            warmup: 3,
            steps: 10,
            runs: 3,
        }
    }
}

/// One line of the benchmark table.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub method: &'static str,
    pub trainable_params: usize,
    /// Samples per second of each run.
    pub runs: Vec<f64>,
    /// Median of `runs`.
    pub samples_per_sec: f64,
    /// PyTorch 2 CPU threads, DESIGN.md (low, high).
    pub pytorch: (f64, f64),
}

impl BenchRow {
    /// Our median over the middle of PyTorch's range.
    pub fn ratio(&self) -> f64 {
        self.samples_per_sec / ((self.pytorch.0 + self.pytorch.1) / 2.0)
    }
}

/// The methods measured, with PyTorch's samples/s from DESIGN.md.
const METHODS: [(&str, (f64, f64)); 3] = [
    ("full fine-tuning", (895.0, 1134.0)),
    ("head only", (4079.0, 4558.0)),
    ("LoRA from scratch", (1402.0, 1439.0)),
];
const INFERENCE: (&str, (f64, f64)) = ("inference b256", (2413.0, 2458.0));

/// Measure every method; `progress` is told each row as it finishes.
pub fn run(config: &BenchConfig, mut progress: impl FnMut(&BenchRow)) -> Vec<BenchRow> {
    let device = loramix_backend::device();
    let mut rows = Vec::new();
    for (method, pytorch) in METHODS {
        let model = reference_model::<Train>(method, &device);
        let row = measure_training(method, pytorch, model, config);
        progress(&row);
        rows.push(row);
    }
    let model = VitConfig::new().init::<Inference>(&device);
    let images = random_images::<Inference>(config.infer_batch, &device);
    let runs = (0..config.runs)
        .map(|_| {
            for _ in 0..config.warmup {
                model.logits(images.clone()).into_data();
            }
            let start = Instant::now();
            for _ in 0..config.steps {
                model.logits(images.clone()).into_data();
            }
            (config.steps * config.infer_batch) as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    let row = row(INFERENCE.0, 0, runs, INFERENCE.1);
    progress(&row);
    rows.push(row);
    rows
}

/// The reference ViT set up for `method`: LoRA is rank 8 on query and value.
fn reference_model<B: Backend>(method: &str, device: &B::Device) -> Vit<B> {
    let model = VitConfig::new().init::<B>(device);
    match method {
        "full fine-tuning" => model.trainable(Trainable::All),
        "head only" => model.trainable(Trainable::HeadOnly),
        _ => model
            .with_lora(
                &LoraConfig::new()
                    .with_rank(8)
                    .with_targets(vec![Target::Query, Target::Value]),
                device,
            )
            .trainable(Trainable::AdaptersAndHead),
    }
}

fn measure_training<M: Classifier<Train, Input = Tensor<Train, 4>> + AutodiffModule<Train>>(
    method: &'static str,
    pytorch: (f64, f64),
    model: M,
    config: &BenchConfig,
) -> BenchRow {
    let device = loramix_backend::device();
    let trainable = trainable_params(&model);
    let images = random_images::<Train>(config.batch, &device);
    let labels: Vec<i64> = (0..config.batch as i64).map(|i| i % 10).collect();
    let targets =
        Tensor::<Train, 1, Int>::from_data(TensorData::new(labels, [config.batch]), &device);
    let mut trainer = Trainer::new(model, &TrainConfig::new());
    let mut step = || {
        trainer
            .step(images.clone(), targets.clone())
            .expect("random data gives a finite loss")
    };
    let runs = (0..config.runs)
        .map(|_| {
            for _ in 0..config.warmup {
                step();
            }
            let start = Instant::now();
            for _ in 0..config.steps {
                step();
            }
            (config.steps * config.batch) as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    row(method, trainable, runs, pytorch)
}

fn row(
    method: &'static str,
    trainable_params: usize,
    runs: Vec<f64>,
    pytorch: (f64, f64),
) -> BenchRow {
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);
    BenchRow {
        method,
        trainable_params,
        samples_per_sec: sorted[sorted.len() / 2],
        runs,
        pytorch,
    }
}

fn random_images<B: Backend>(n: usize, device: &B::Device) -> Tensor<B, 4> {
    Tensor::random([n, 1, 28, 28], Distribution::Uniform(0.0, 1.0), device)
}

/// The table as Markdown, with the backend's name in the header.
pub fn table(rows: &[BenchRow]) -> String {
    let mut out = format!(
        "| method ({}) | trainable params | samples/s (median) | runs | PyTorch samples/s | ratio |\n|---|---|---|---|---|---|\n",
        loramix_backend::NAME
    );
    for r in rows {
        let runs: Vec<String> = r.runs.iter().map(|v| format!("{v:.0}")).collect();
        out.push_str(&format!(
            "| {} | {} | {:.0} | {} | {:.0} to {:.0} | {:.2}x |\n",
            r.method,
            match r.trainable_params {
                0 => "-".to_string(),
                n => n.to_string(),
            },
            r.samples_per_sec,
            runs.join(", "),
            r.pytorch.0,
            r.pytorch.1,
            r.ratio()
        ));
    }
    out
}
