//! `loramix bench`'s command line: its options, what they select, and the run that prints the
//! table (and writes JSON).

use std::path::PathBuf;
use std::process::ExitCode;

use super::{self as bench, BenchConfig};

/// `loramix bench`'s options.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Timed steps per run.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Runs per method (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Untimed warm-up steps before each run.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Training batch (default 64 for the ViT, DESIGN.md's reference; 32 with --minilm).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Inference batch of the ViT's inference row.
    #[arg(long, default_value_t = 256)]
    pub infer_batch: usize,
    /// GPU backends: measure without burn's fusion layer (each operation its own kernel); the
    /// cached-feature rows are left out.
    #[arg(long)]
    pub no_fusion: bool,
    /// Print every step's seconds as it ends.
    #[arg(long)]
    pub step_times: bool,
    /// Measure a pretrained BERT-family checkpoint instead (e.g. datasets/cache/minilm-l6):
    /// inference and a LoRA train step on texts of --tokens random token ids, the rows
    /// that benches/torch_minilm.py measures in PyTorch.
    #[arg(long, value_name = "DIR")]
    pub minilm: Option<PathBuf>,
    /// Tokens per text with --minilm.
    #[arg(long, default_value_t = 64)]
    pub tokens: usize,
    /// Measure learned composition for N = 1, 4, 8, 16, 32 modules instead.
    #[arg(long)]
    pub scaling: bool,
    /// Also write the rows as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Rows of another tool measured in the same window, to print ratios against (the
    /// JSON of benches/torch_vit.py or benches/torch_minilm.py --json). Without it, no
    /// ratio is printed.
    #[arg(long, value_name = "FILE")]
    pub reference: Option<PathBuf>,
    /// Only the rows whose method name contains this text (to profile one row, say).
    #[arg(long, value_name = "TEXT")]
    pub only: Option<String>,
}

/// `loramix bench`: exit 2 for options that select nothing or a reference that cannot be read.
pub fn run(args: BenchArgs, parts: usize) -> ExitCode {
    let setup = (args
        .reference
        .as_deref()
        .map(bench::Reference::read)
        .transpose())
    .map_err(|e| e.to_string())
    .and_then(|reference| Ok((reference, config(&args, parts)?)));
    let (reference, config) = match setup {
        Ok(setup) => setup,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let Some((methods, inference)) = selected(&args) else {
        let only = args.only.unwrap_or_default();
        eprintln!("error: no benchmark row matches --only {only:?}");
        return ExitCode::from(2);
    };
    eprintln!(
        "benchmarking on {} ({} runs of {} steps per method, {} parts per batch)",
        loramix_backend::NAME,
        config.runs,
        config.steps,
        config.parts
    );
    let report = |row: &bench::BenchRow| {
        eprintln!(
            "  {:<40} {:>8.0} samples/s",
            row.method, row.samples_per_sec
        )
    };
    let rows = match &args.minilm {
        Some(dir) => bench::run_bert(dir, args.tokens.max(2), &config, report),
        None => Ok(bench::run(&config, &methods, inference, report)),
    };
    let written = rows.map_err(|e| e.to_string()).and_then(|rows| {
        print!("{}", bench::table(&rows, reference.as_ref()));
        write_json(&rows, args.json.as_deref())
    });
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The measurement's settings from the options.
fn config(args: &BenchArgs, parts: usize) -> Result<BenchConfig, String> {
    if args.no_fusion && !loramix_backend::COMPILES_KERNELS {
        return Err(format!(
            "--no-fusion needs a GPU backend (build with --features cuda or wgpu); this one is {}",
            loramix_backend::NAME
        ));
    }
    let default_batch = if args.minilm.is_some() { 32 } else { 64 };
    Ok(BenchConfig {
        steps: args.steps,
        runs: args.runs.max(1),
        warmup: args.warmup,
        parts,
        batch: args.batch.unwrap_or(default_batch).max(1),
        infer_batch: args.infer_batch.max(1),
        unfused: args.no_fusion,
        step_times: args.step_times,
    })
}

/// The rows as JSON in `path`, if given.
fn write_json(rows: &[bench::BenchRow], path: Option<&std::path::Path>) -> Result<(), String> {
    let Some(path) = path else { return Ok(()) };
    let json = serde_json::to_string_pretty(rows).expect("rows serialise");
    std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))
}

/// The training rows `--scaling` and `--only` select, and whether the inference row is one of
/// them; `None` when nothing is.
fn selected(args: &BenchArgs) -> Option<(Vec<bench::Method>, bool)> {
    let wanted = |name: &str| {
        args.only
            .as_ref()
            .is_none_or(|text| name.contains(text.as_str()))
    };
    let all: &[bench::Method] = if args.scaling {
        &bench::SCALING
    } else {
        &bench::METHODS
    };
    let methods: Vec<_> = all.iter().filter(|m| wanted(&m.name())).copied().collect();
    let inference = !args.scaling && wanted(&bench::inference_name(args.infer_batch));
    (!methods.is_empty() || inference).then_some((methods, inference))
}
