//! From an experiment file to its stages: reads the files, picks the model family from the
//! suite's modality, runs what was asked and records how long each stage took.

use std::path::{Path, PathBuf};
use std::time::Instant;

use loramix_data::{ImageItem, Modality, Suite, TextItem};
use loramix_lora::Adapter;
use serde::Deserialize;

use crate::backbone::ModelSpec;
use crate::config::Experiment;
use crate::context::Context;
use crate::error::{ExperimentError, Result, io};
use crate::family::{BertText, Family, Text, Vision};
use crate::plan::{Plan, SuiteKeys};
use crate::registration::register_modules;
use crate::stage::{pretrain, report, similarity, transfer, upstream, warmup};
use crate::store::{Shard, Timings};

/// What `loramix` was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Pretrain,
    Upstream,
    Transfer,
    Similarity,
    Report,
    /// Every stage in order (the sweep limited to the shard).
    Run,
    /// Everything up to training: files, suite, data, shot counts, pretrained backbone.
    Check,
}

/// Where runs go and which part of the sweep this process runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub runs: PathBuf,
    pub shard: Shard,
    /// Parts (threads) each batch is cut into ([`loramix_backend::batch_parts`]).
    pub parts: usize,
    /// Go on with upstream modules rebuilt with other bits than the sweep registered,
    /// recomputing the cells that compose them ([`crate::registration::register_modules`]).
    pub accept_rebuilt_modules: bool,
}

/// Runs `stage` of the experiment in `path`.
pub fn execute(path: &Path, stage: Stage, options: &Options) -> Result<()> {
    let experiment = Experiment::from_file(path)?;
    let suite_text =
        loramix_lora::files::read_to_string(&experiment.suite).map_err(io(&experiment.suite))?;
    let modality = peek_modality(&experiment.suite, &suite_text)?;
    let keys = SuiteKeys::parse(&suite_text, &experiment.suite)?;
    if let ModelSpec::Pretrained(pretrained) = &experiment.model {
        crate::pretrained::prepare(&pretrained.dir, &experiment.data)?;
        eprintln!(
            "loading the pretrained backbone in {}",
            pretrained.dir.display()
        );
    }
    match modality {
        Modality::Image => {
            let suite = Suite::<ImageItem>::from_toml(&suite_text, &experiment.suite)?;
            let shape = suite.image.ok_or_else(|| ExperimentError::Config {
                path: experiment.suite.clone(),
                message: "an image suite needs `image = { channels, height, width }`".into(),
            })?;
            let family = Vision::new(&experiment.model, shape)?;
            go(experiment, suite, keys, family, stage, options)
        }
        Modality::Text => {
            let suite = Suite::<TextItem>::from_toml(&suite_text, &experiment.suite)?;
            match &experiment.model {
                ModelSpec::Pretrained(p) => {
                    let family = BertText::pretrained(&p.dir, p.max_len)?;
                    go(experiment, suite, keys, family, stage, options)
                }
                ModelSpec::Own(own) => {
                    let family = Text::new(own)?;
                    go(experiment, suite, keys, family, stage, options)
                }
            }
        }
    }
}

fn peek_modality(path: &Path, text: &str) -> Result<Modality> {
    #[derive(Deserialize)]
    struct Peek {
        modality: Modality,
    }
    let peek: Peek = toml::from_str(text).map_err(|e| ExperimentError::Config {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(peek.modality)
}

fn go<F: Family>(
    experiment: Experiment,
    suite: Suite<F::Item>,
    suite_keys: SuiteKeys,
    family: F,
    stage: Stage,
    options: &Options,
) -> Result<()> {
    let base_identity = family
        .pretrained()
        .map(loramix_lora::AdapterHost::fingerprint);
    let plan = Plan::new(experiment, &suite, suite_keys, base_identity, &options.runs)?;
    if stage == Stage::Report {
        return timed(&plan, "report", || report::write(&plan).map(|_| ()));
    }
    eprintln!(
        "{}: {} upstream modules, {} downstream tasks, backend {} ({} parts per batch)",
        plan.experiment.name,
        plan.upstream.len(),
        plan.downstream.len(),
        loramix_backend::NAME,
        options.parts
    );
    let started = Instant::now();
    let mut ctx = Context::new(plan, suite, family, options.parts)?;
    eprintln!("data loaded in {:.1}s", started.elapsed().as_secs_f64());
    if stage == Stage::Check {
        eprintln!(
            "{}: ok (suite, data, shot counts{}), nothing trained",
            ctx.plan.experiment.name,
            if ctx.family.pretrained().is_some() {
                ", pretrained backbone"
            } else {
                ""
            }
        );
        return Ok(());
    }
    stages(&mut ctx, stage, options)
}

/// The training stages up to `stage`, each reusing what an earlier run made.
fn stages<F: Family>(ctx: &mut Context<F>, stage: Stage, options: &Options) -> Result<()> {
    let Some((base, adapters)) = base_and_modules(ctx, stage, options.shard)? else {
        return Ok(());
    };
    // Similarity alone checks the modules too: its file is named by the registered set.
    if matches!(stage, Stage::Transfer | Stage::Run | Stage::Similarity) {
        let accept = options.accept_rebuilt_modules;
        ctx.plan.modules = register_modules(&ctx.plan.run, &adapters, accept)?;
    }
    let plan = &ctx.plan;
    if matches!(stage, Stage::Transfer | Stage::Run) {
        if loramix_backend::COMPILES_KERNELS {
            timed(plan, "warm-up", || {
                transfer::warm_up(ctx, &base, &adapters, options.shard).map(|_| ())
            })?;
        }
        timed(plan, "transfer", || {
            transfer::transfer(ctx, &base, &adapters, options.shard)
        })?;
    }
    if matches!(stage, Stage::Similarity | Stage::Run) {
        timed(plan, "similarity", || {
            similarity::similarity(ctx, &base, &adapters, options.shard).map(|_| ())
        })?;
    }
    if stage == Stage::Run {
        if options.shard.count > 1 {
            eprintln!(
                "shard {}/{} done; run `loramix report` once every shard has finished",
                options.shard.index, options.shard.count
            );
        } else {
            timed(plan, "report", || report::write(plan).map(|_| ()))?;
        }
    }
    Ok(())
}

/// The base and the upstream modules, trained unless an earlier run made them; `None` when
/// `stage` ends with them. The upstream stage alone trains only `shard`'s modules: the later
/// stages need the whole library.
fn base_and_modules<F: Family>(
    ctx: &Context<F>,
    stage: Stage,
    shard: Shard,
) -> Result<Option<(F::Frozen, Vec<Adapter>)>> {
    let plan = &ctx.plan;
    if loramix_backend::COMPILES_KERNELS {
        timed(plan, "warm-up", || warmup::warm_up(ctx).map(|_| ()))?;
    }
    let base = timed(plan, "pretrain", || pretrain::pretrain(ctx))?;
    if stage == Stage::Pretrain {
        return Ok(None);
    }
    let adapters = if plan.experiment.needs_modules() || stage == Stage::Upstream {
        let share = if stage == Stage::Upstream {
            shard
        } else {
            Shard::ALL
        };
        timed(plan, "upstream", || upstream::upstream(ctx, &base, share))?
    } else {
        eprintln!("upstream: skipped, no method composes modules and similarity is off");
        Vec::new()
    };
    Ok((stage != Stage::Upstream).then_some((base, adapters)))
}

/// Runs `f` and adds its wall time to the run's `timings.json`.
fn timed<T>(plan: &Plan, stage: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let started = Instant::now();
    let out = f()?;
    Timings::add(&plan.run, stage, started.elapsed().as_secs_f64())?;
    Ok(out)
}
