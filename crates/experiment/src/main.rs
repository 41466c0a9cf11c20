//! `loramix`: compose LoRA modules for few-shot transfer.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use loramix_experiment::bench::{self, BenchConfig};

#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train-step and inference samples/s on the reference ViT (DESIGN.md), against PyTorch.
    Bench {
        /// Timed steps per run.
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Runs per method (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Untimed warm-up steps before each run.
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        /// Measure learned composition for N = 1, 4, 8, 16, 32 modules instead.
        #[arg(long)]
        scaling: bool,
        /// Also write the rows as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Bench {
            steps,
            runs,
            warmup,
            scaling,
            json,
        } => {
            let config = BenchConfig {
                steps,
                runs: runs.max(1),
                warmup,
                ..BenchConfig::default()
            };
            eprintln!(
                "benchmarking on {} ({} runs of {} steps per method)",
                loramix_backend::NAME,
                config.runs,
                config.steps
            );
            let methods: &[bench::Method] = if scaling {
                &bench::SCALING
            } else {
                &bench::METHODS
            };
            let rows = bench::run(&config, methods, !scaling, |row| {
                eprintln!(
                    "  {:<40} {:>8.0} samples/s",
                    row.method, row.samples_per_sec
                )
            });
            print!("{}", bench::table(&rows));
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&rows).expect("rows serialise");
                if let Err(e) = std::fs::write(&path, text) {
                    eprintln!("error: {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
    }
}
