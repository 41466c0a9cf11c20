//! The `transfer` stage: the sweep of downstream tasks x methods x shots x seeds. Each cell's
//! result row (and the module weights it chose) is appended as it ends, so an interrupted
//! sweep resumes where it stopped, and shards of one sweep can run on several machines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use loramix_backend::Train;
use loramix_data::{Draw, SuiteItem, Task};
use loramix_design::{Shift, Shot};
use loramix_lora::Adapter;
use loramix_report::TaskFacts;
use loramix_rng::derive_seed;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::TransferSpec;
use crate::context::Context;
use crate::error::{ExperimentError, Result};
use crate::family::Family;
use crate::fit::ValScore;
use crate::method::{CellJob, Choice, FrozenCache, MethodSpec, Outcome, Validation, bracketed};
use crate::progress;
use crate::rows::{CandidateRow, CellFacts, CellKey, CellRow, WeightRow};
use crate::store::{Appender, Shard, read_all, read_rows, write_csv, write_task_facts};
use crate::tuning::Tuned;
use loramix_report::ResultRow;

/// One cell of the sweep: a method on a task at k shots with a seed.
struct Cell<'a, I> {
    task: &'a Task<I>,
    method: &'a MethodSpec,
    shot: Shot,
    seed: u64,
    /// The current config's hash of the method on the task, carried by every row the cell
    /// writes.
    config: String,
    /// The rate factors it tries, when the sweep tunes.
    factors: Factors,
}

/// Which rate factors a tuned cell tries.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Factors {
    /// The grid, extended past the edge the cell's best lies on (choice per cell).
    Grid,
    /// The grid extended at both edges: a tuning cell.
    Bracketed,
    /// The one factor the tuning tasks chose: an evaluation cell.
    Chosen(f64),
}

/// Runs the cells of `shard` that are not yet in its files, appending each as it ends. With
/// rates chosen on tuning tasks, the tuning cells of the methods a primary test compares run
/// first, then the evaluation cells of every tuned method, then the other tuning cells and the
/// evaluation cells they free: the primary tests' cells never wait for the slowest method's
/// tuning. Between those other tuning cells the shard looks again at what all shards have
/// tuned, so a method whose last tuning cell another shard finished meanwhile has its
/// evaluation cells run next, not after this shard's remaining tuning (hours on a CPU).
pub fn transfer<F: Family>(
    ctx: &Context<F>,
    base: &F::Frozen,
    adapters: &[Adapter],
    shard: Shard,
) -> Result<()> {
    write_task_facts(&ctx.plan.run, &task_facts(ctx)?)?;
    crate::registration::register(&ctx.plan.run, &ctx.plan.experiment.analysis_plan())?;
    let primary = ctx.plan.experiment.analysis_plan().primary;
    let compared = |m: &MethodSpec| primary.iter().any(|t| t.compares(&m.name));
    let mut evaluate_now = || evaluate(ctx, (base, adapters), shard);
    let mut waiting_now = || read_tuned(ctx).map(|t| waiting_for_tuning(t.as_ref()));
    tune(ctx, (base, adapters), shard, compared, || Ok(()))?;
    let mut waiting = evaluate_now()?;
    tune(
        ctx,
        (base, adapters),
        shard,
        |m| !compared(m),
        || evaluate_if_freed(&mut waiting, &mut evaluate_now, &mut waiting_now).map(drop),
    )?;
    let waiting = evaluate_while_freed(evaluate_now, waiting_now)?;
    if !waiting.is_empty()
        && let Some(methods) = read_tuned(ctx)?.as_ref().and_then(Tuned::waiting_methods)
    {
        eprintln!(
            "transfer: the evaluation cells of {methods} wait for their tuning cells in other \
             shards; run this shard again once those are in"
        );
    }
    Ok(())
}

/// Runs `evaluate` (which returns the methods waiting for tuning cells when it began), then
/// again while other shards have freed some of them meanwhile (`waiting_now` differs);
/// returns the methods still waiting.
fn evaluate_while_freed(
    mut evaluate: impl FnMut() -> Result<BTreeSet<String>>,
    mut waiting_now: impl FnMut() -> Result<BTreeSet<String>>,
) -> Result<BTreeSet<String>> {
    let mut waiting = evaluate()?;
    while evaluate_if_freed(&mut waiting, &mut evaluate, &mut waiting_now)? {}
    Ok(waiting)
}

/// Runs `evaluate` again when some of the methods `waiting` for tuning cells at its last run
/// have been freed since (`waiting_now` differs), and keeps what it returns; says whether it
/// ran.
fn evaluate_if_freed(
    waiting: &mut BTreeSet<String>,
    evaluate: &mut impl FnMut() -> Result<BTreeSet<String>>,
    waiting_now: &mut impl FnMut() -> Result<BTreeSet<String>>,
) -> Result<bool> {
    if waiting.is_empty() || waiting_now()? == *waiting {
        return Ok(false);
    }
    *waiting = evaluate()?;
    Ok(true)
}

/// The rates chosen so far on the tuning tasks, when the sweep has them.
fn read_tuned<F: Family>(ctx: &Context<F>) -> Result<Option<Tuned>> {
    match ctx.tuning.is_empty() {
        true => Ok(None),
        false => crate::tuning::read(&ctx.plan),
    }
}

/// The methods whose evaluation cells wait for tuning cells.
fn waiting_for_tuning(tuned: Option<&Tuned>) -> BTreeSet<String> {
    tuned.map_or_else(BTreeSet::new, |t| t.waiting.keys().cloned().collect())
}

/// Runs the shard's evaluation cells that no shard file holds yet, of the methods whose rates
/// are chosen when it starts; returns the methods that then still waited for tuning cells.
fn evaluate<F: Family>(
    ctx: &Context<F>,
    (base, adapters): (&F::Frozen, &[Adapter]),
    shard: Shard,
) -> Result<BTreeSet<String>> {
    let tuned = read_tuned(ctx)?;
    let waiting = waiting_for_tuning(tuned.as_ref());
    if waiting.len() == ctx.plan.experiment.methods.len() {
        return Ok(waiting);
    }
    let results_path = ctx.plan.run.results(shard);
    // Opening first cuts a row left half-written by an interrupted run.
    let mut results = Appender::open(&results_path)?;
    let done = finished_cells(ctx)?;
    let mut weights = open_companion::<WeightRow>(&ctx.plan.run.weights(shard), &done)?;
    let (todo, in_shard) = cells_to_run(ctx, shard, &done, tuned.as_ref());
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
    run_cells(
        ctx,
        (base, adapters),
        todo,
        "transfer",
        || Ok(()),
        |_, ran| {
            weights.append(&ran.weights)?;
            results.append(&[ran.row])
        },
    )?;
    Ok(waiting)
}

/// Runs `cells` in order under a progress bar named `stage`, calling `before_each` (with the
/// bar hidden) before each, and handing each result to `keep` as it ends (which writes it, so
/// an interrupted run loses at most the cell in progress).
fn run_cells<F: Family>(
    ctx: &Context<F>,
    (base, adapters): (&F::Frozen, &[Adapter]),
    cells: Vec<Cell<F::Item>>,
    stage: &str,
    mut before_each: impl FnMut() -> Result<()>,
    mut keep: impl FnMut(&Cell<F::Item>, Ran) -> Result<()>,
) -> Result<()> {
    let bar = progress::bar(cells.len(), stage);
    let mut frozen = FrozenCache::default();
    for cell in cells {
        bar.suspend(&mut before_each)?;
        bar.set_message(format!(
            "{} {} k={} seed {}",
            cell.task.name, cell.method.name, cell.shot, cell.seed
        ));
        let ran = run_cell(ctx, base, adapters, &cell, &mut frozen, None)?;
        keep(&cell, ran)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

/// Runs the shard's tuning cells of the methods `which` picks that are not yet in
/// `sweep/tuning/` (tuning tasks x methods x shots x seeds, each trying the bracketed grid),
/// into the shard's own files there, so shards never write one file; `before_each` runs
/// before each cell.
fn tune<F: Family>(
    ctx: &Context<F>,
    (base, adapters): (&F::Frozen, &[Adapter]),
    shard: Shard,
    which: impl Fn(&MethodSpec) -> bool,
    before_each: impl FnMut() -> Result<()>,
) -> Result<()> {
    if ctx.tuning.is_empty() {
        return Ok(());
    }
    let run = &ctx.plan.run;
    // Opening first cuts a row left half-written by an interrupted run.
    let mut cells = Appender::open(&run.tuning_cells(shard))?;
    let done: BTreeSet<CellKey> = (read_all::<CellRow>(&run.tuning_files(false)?)?.iter())
        .map(CellRow::key)
        .collect();
    let mut candidates = open_companion::<CandidateRow>(&run.tuning_candidates(shard), &done)?;
    let all = all_cells(ctx, &ctx.tuning, None);
    let total = all.len();
    // Rows of other configs (a replaced module set's, say) are in the files but not in `all`.
    let in_already = (all.iter().flatten())
        .filter(|c| done.contains(&c.key()))
        .count();
    let todo: Vec<Cell<F::Item>> = (all.into_iter().enumerate())
        .filter(|(i, _)| shard.contains(*i))
        .filter_map(|(_, cell)| cell)
        .filter(|cell| which(cell.method) && !done.contains(&cell.key()))
        .collect();
    if !todo.is_empty() {
        eprintln!(
            "transfer: {} tuning cells to run on {} ({} of {total} already in {})",
            todo.len(),
            ctx.plan.tuning.join(", "),
            in_already,
            run.tuning().display()
        );
    }
    run_cells(
        ctx,
        (base, adapters),
        todo,
        "tuning",
        before_each,
        |cell, ran| {
            candidates.append(&candidate_rows(cell, ran.choice))?;
            cells.append(&[ran.row])
        },
    )
}

/// One row per rate factor a tuning cell tried, with its validation score.
fn candidate_rows<I>(cell: &Cell<I>, choice: Option<Choice>) -> Vec<CandidateRow> {
    let tried = choice.map(|c| c.tried).unwrap_or_default();
    (tried.into_iter())
        .map(|(factor, score)| CandidateRow {
            task: cell.task.name.clone(),
            method: cell.method.name.clone(),
            k: cell.shot,
            seed: cell.seed,
            factor,
            val_accuracy: score.map(|s| s.accuracy),
            val_loss: score.map(|s| s.loss),
            config: cell.config.clone(),
        })
        .collect()
}

/// Steps of a warm-up cell: as in the `warm-up` stage, the first compiles, the next ones run
/// what fusion builds once it has seen a step repeat.
const WARM_UP_STEPS: usize = 3;

/// Runs one throwaway cell per task and method of the shard's unfinished cells (the first of
/// each pair, [`WARM_UP_STEPS`] steps, tested on one batch) and keeps nothing. Each task and
/// method run kernels of their own (the head's width is the task's class count; each method
/// trains other tensors), which a GPU backend compiles the first time; this puts that
/// compilation before the sweep, where `loramix run` times it as `warm-up`. Returns the cells
/// it ran.
pub fn warm_up<F: Family>(
    ctx: &Context<F>,
    base: &F::Frozen,
    adapters: &[Adapter],
    shard: Shard,
) -> Result<usize> {
    let started = Instant::now();
    let done = finished_cells(ctx)?;
    let tuned = read_tuned(ctx).ok().flatten();
    let (todo, _) = cells_to_run(ctx, shard, &done, tuned.as_ref());
    let mut seen = BTreeSet::new();
    let firsts: Vec<_> = (todo.iter())
        .filter(|cell| seen.insert((&cell.task.name, &cell.method.name)))
        .collect();
    let mut frozen = FrozenCache::default();
    for cell in &firsts {
        run_cell(ctx, base, adapters, cell, &mut frozen, Some(WARM_UP_STEPS))?;
    }
    if !firsts.is_empty() {
        eprintln!(
            "transfer: warm-up, {} throwaway cells (one per task and method, {WARM_UP_STEPS} steps, one test batch) in {:.1}s",
            firsts.len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(firsts.len())
}

/// Each downstream task's classes and the mean size per class of its `full` training set.
fn task_facts<F: Family>(ctx: &Context<F>) -> Result<BTreeMap<String, TaskFacts>> {
    let full_per_class = ctx.plan.experiment.transfer.full_per_class;
    let mut facts = BTreeMap::new();
    for task in &ctx.downstream {
        let classes = task.train.classes.len();
        let full = task.shots(Draw::of(Shot::Full, full_per_class, classes), 0)?;
        let full_per_class = full.len() / classes.max(1);
        facts.insert(
            task.name.clone(),
            TaskFacts {
                classes,
                full_per_class,
                test_examples: task.test.items.len(),
            },
        );
    }
    Ok(facts)
}

/// Cells finished by any shard: the shard count may change mid-sweep.
fn finished_cells<F: Family>(ctx: &Context<F>) -> Result<BTreeSet<CellKey>> {
    let mut done = BTreeSet::new();
    for file in ctx.plan.run.shard_files(false)? {
        done.extend(read_rows::<CellRow>(&file)?.iter().map(CellRow::key));
    }
    Ok(done)
}

/// A file of rows that belong to cells (a shard's weights, the tuning candidates), opened for
/// appending. A cell writes these rows, then its result row; one interrupted between the two
/// left rows without a result. It runs again, so those rows go first (the rerun writes them).
fn open_companion<R: Companion>(path: &Path, done: &BTreeSet<CellKey>) -> Result<Appender> {
    let written = read_rows::<R>(path)?;
    let (kept, orphans): (Vec<R>, Vec<R>) =
        written.into_iter().partition(|r| done.contains(&r.key()));
    if !orphans.is_empty() {
        eprintln!(
            "transfer: dropping {} rows of interrupted cells from {}",
            orphans.len(),
            path.display()
        );
        write_csv(path, &kept)?;
    }
    Appender::open(path)
}

/// A row written beside a cell's result row, keyed by that cell.
trait Companion: Serialize + DeserializeOwned {
    fn key(&self) -> CellKey;
}

impl Companion for WeightRow {
    fn key(&self) -> CellKey {
        WeightRow::key(self)
    }
}

impl Companion for CandidateRow {
    fn key(&self) -> CellKey {
        CandidateRow::key(self)
    }
}

/// The shard's unfinished evaluation cells, and how many cells the shard has in all. A cell
/// belongs to a shard by its place in the sweep's fixed order (task, method, shot, seed); the
/// cells run in that order too, those a primary test compares first ([`compared_by`]).
fn cells_to_run<'a, F: Family>(
    ctx: &'a Context<F>,
    shard: Shard,
    done: &BTreeSet<CellKey>,
    tuned: Option<&Tuned>,
) -> (Vec<Cell<'a, F::Item>>, usize) {
    let all = all_cells(ctx, &ctx.downstream, tuned);
    let mine: Vec<Cell<'a, F::Item>> = (all.into_iter().enumerate())
        .filter(|(i, _)| shard.contains(*i))
        .filter_map(|(_, cell)| cell)
        .collect();
    let in_shard = mine.len();
    let mut todo: Vec<Cell<'a, F::Item>> = (mine.into_iter())
        .filter(|cell| !done.contains(&cell.key()))
        .collect();
    let primary = ctx.plan.experiment.analysis_plan().primary;
    todo.sort_by_key(|cell| !compared_by(&primary, cell));
    (todo, in_shard)
}

/// Whether a pre-registered primary test compares the cell's method at the cell's shot (a
/// similarity test, which names no shot, reads the method's weights at every shot). Those
/// cells run first (each group still task by task, in the sweep's order), so the primary tests
/// can be answered once they are in while the other methods fill in after; a shard's cells
/// stay its own, and no cell's result depends on when it runs.
fn compared_by<I>(primary: &[loramix_report::PrimaryTest], cell: &Cell<I>) -> bool {
    (primary.iter()).any(|test| test.reads(&cell.method.name, cell.shot))
}

/// Every cell on `tasks` in the sweep's order. Without `tuned` they choose their factors
/// themselves: per cell, or, on tuning tasks, from the bracketed grid. A cell whose method
/// still waits for its tuning cells is `None`: it cannot run yet, and keeps its place, which
/// deals the cells to shards.
fn all_cells<'a, F: Family>(
    ctx: &'a Context<F>,
    tasks: &'a [Task<F::Item>],
    tuned: Option<&Tuned>,
) -> Vec<Option<Cell<'a, F::Item>>> {
    let t = &ctx.plan.experiment.transfer;
    let tuning_tasks = tuned.is_none() && !ctx.tuning.is_empty();
    let seeds = match (tuning_tasks, &t.tuning) {
        (true, Some(tuning)) => tuning.seeds_on_tuning_tasks(t.seeds),
        _ => t.seeds,
    };
    let mut cells = Vec::new();
    for task in tasks {
        for method in &ctx.plan.experiment.methods {
            let config = match tuned {
                Some(tuned) => tuned.cell_hash(&ctx.plan, method, &task.name),
                None => Some(ctx.plan.cell_hash(method, &task.name)),
            };
            for &shot in &t.shots {
                let factors = match (
                    tuned.and_then(|t| t.factor(&method.name, shot)),
                    tuning_tasks,
                ) {
                    (Some(factor), _) => Factors::Chosen(factor),
                    (None, true) => Factors::Bracketed,
                    (None, false) => Factors::Grid,
                };
                for seed in 0..seeds as u64 {
                    cells.push(config.clone().map(|config| Cell {
                        task,
                        method,
                        shot,
                        seed,
                        config,
                        factors,
                    }));
                }
            }
        }
    }
    cells
}

/// Draws the cell's examples, seeds it, lets its method run it, and makes its rows. A warm-up
/// cell trains `warm_up` steps (at most the method's) and tests on one batch.
fn run_cell<F: Family>(
    ctx: &Context<F>,
    base: &F::Frozen,
    adapters: &[Adapter],
    cell: &Cell<F::Item>,
    frozen: &mut FrozenCache<F>,
    warm_up: Option<usize>,
) -> Result<Ran> {
    let t = &ctx.plan.experiment.transfer;
    let (task, method) = (cell.task, cell.method);
    let shift = task.shift.ok_or_else(|| {
        ExperimentError::Invalid(format!("downstream task `{}` has no shift", task.name))
    })?;
    let (items, validation) = cell.examples(t)?;
    let seed = cell.derived_seed();
    loramix_lora::init::seed::<Train>(&ctx.device, seed);
    let steps = warm_up.map_or(method.steps, |w| w.min(method.steps));
    let schedule = ctx.schedule(steps, t.batch, method.lr);
    let test = &task.test.items;
    let test = match warm_up {
        Some(_) => &test[..t.eval_batch.min(test.len())],
        None => test,
    };
    let candidates = validation.as_ref().map_or(1, |v| v.rate_factors.len());
    let processed = candidates * schedule.steps * schedule.batch.min(items.len());
    let job = CellJob {
        family: &ctx.family,
        device: &ctx.device,
        eval_batch: t.eval_batch,
        parts: ctx.parts,
        lora: ctx.plan.lora_config(None, None),
        base,
        adapters,
        task: &task.name,
        classes: task.train.classes.len(),
        test,
        method: &method.name,
        items,
        schedule,
        seed,
        label: cell.label(),
        validation,
    };
    let started = Instant::now();
    let outcome = method.kind.run(&job, frozen)?;
    let seconds = started.elapsed().as_secs_f64() - frozen.take_setup_seconds();
    let samples_per_sec = processed as f64 / seconds.max(1e-9);
    let row = cell.row(shift, &outcome, (seconds, samples_per_sec));
    Ok(Ran {
        row,
        weights: cell.weight_rows(outcome.weights, adapters),
        choice: outcome.choice,
    })
}

impl<I: SuiteItem> Cell<'_, I> {
    /// The seed of the cell's minibatches, initialisation and search: its seed, told apart by
    /// task, method and shot.
    fn derived_seed(&self) -> u64 {
        derive_seed(
            self.seed,
            &format!("cell/{}/{}/{}", self.task.name, self.method.name, self.shot),
        )
    }

    /// Names the cell in errors.
    fn label(&self) -> String {
        format!(
            "task `{}`, method `{}`, k={}, seed {}",
            self.task.name, self.method.name, self.shot, self.seed
        )
    }

    /// The cell's training examples and, when the sweep tunes, its validation examples with
    /// the rate factors it tries.
    fn examples<F: Family<Item = I>>(
        &self,
        t: &TransferSpec,
    ) -> Result<(Vec<I>, Option<Validation<F>>)> {
        let task = self.task;
        let draw = Draw::of(self.shot, t.full_per_class, task.train.classes.len());
        let Some(tuning) = &t.tuning else {
            return Ok((task.shots(draw, self.seed)?, None));
        };
        let per_class = tuning.validation_per_class(self.shot);
        let (items, val) = task.shots_and_validation(draw, per_class, self.seed)?;
        let (rate_factors, extend) = match self.factors {
            Factors::Grid => (tuning.rate_factors.clone(), true),
            Factors::Bracketed => (bracketed(&tuning.rate_factors), false),
            Factors::Chosen(factor) => (vec![factor], false),
        };
        let validation = Validation {
            items: val,
            rate_factors,
            checks: tuning.checks,
            extend,
        };
        Ok((items, Some(validation)))
    }

    /// The cell's result row: what its method reached and chose, and its time.
    fn row(
        &self,
        shift: Shift,
        outcome: &Outcome,
        (seconds, samples_per_sec): (f64, f64),
    ) -> CellRow {
        let choice = outcome.choice.as_ref();
        let result = ResultRow {
            task: self.task.name.clone(),
            shift,
            method: self.method.name.clone(),
            k: self.shot,
            seed: self.seed,
            accuracy: outcome.accuracy,
            trainable_params: outcome.trainable_params as u64,
            train_seconds: seconds,
            samples_per_sec,
        };
        let facts = CellFacts {
            config: self.config.clone(),
            lr: choice.map(|c| c.lr),
            head_lr: choice.and_then(|c| c.head_lr),
            steps: choice.map(|c| c.steps),
            val_accuracy: choice.and_then(|c| c.score).map(|s| s.accuracy),
            candidates: choice.map(candidates_text).unwrap_or_default(),
            extended_to: choice.and_then(|c| c.extended),
        };
        CellRow { result, facts }
    }
}

/// What a cell wrote and chose.
struct Ran {
    row: CellRow,
    weights: Vec<WeightRow>,
    choice: Option<Choice>,
}

/// `0.1=0.625 0.3=0.700 ...`: each factor tried and its validation accuracy (`-` if none).
fn candidates_text(choice: &Choice) -> String {
    let one = |(factor, score): &(f64, Option<ValScore>)| match score {
        Some(s) => format!("{factor}={}", s.accuracy),
        None => format!("{factor}=-"),
    };
    choice.tried.iter().map(one).collect::<Vec<_>>().join(" ")
}

impl<I> Cell<'_, I> {
    fn key(&self) -> CellKey {
        let (task, method) = (self.task.name.clone(), self.method.name.clone());
        (task, method, self.shot, self.seed, self.config.clone())
    }

    /// One row per module weight the method chose, per layer.
    fn weight_rows(&self, chosen: Vec<(String, Vec<f32>)>, adapters: &[Adapter]) -> Vec<WeightRow> {
        let mut rows = Vec::new();
        for (layer, weights) in chosen {
            for (module, weight) in adapters.iter().zip(weights) {
                let weight = loramix_report::WeightRow {
                    task: self.task.name.clone(),
                    method: self.method.name.clone(),
                    k: self.shot,
                    seed: self.seed,
                    layer: layer.clone(),
                    module: module.manifest.task.clone(),
                    weight: weight as f64,
                };
                let config = self.config.clone();
                rows.push(WeightRow { weight, config });
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn set(methods: &[&str]) -> BTreeSet<String> {
        methods.iter().map(|m| m.to_string()).collect()
    }

    /// Plays a shard whose evaluation, each time it runs, sees the tuning files as they were
    /// when it began, while another shard's tuning frees methods between looks.
    fn evaluations(looks: &[&[&str]]) -> (usize, BTreeSet<String>) {
        let looks: Vec<BTreeSet<String>> = looks.iter().map(|l| set(l)).collect();
        let seen = RefCell::new(0);
        let now = || looks[(*seen.borrow()).min(looks.len() - 1)].clone();
        let mut runs = 0;
        let left = evaluate_while_freed(
            || {
                runs += 1;
                let waiting = now();
                *seen.borrow_mut() += 1;
                Ok(waiting)
            },
            || Ok(now()),
        )
        .unwrap();
        (runs, left)
    }

    #[test]
    fn a_method_another_shard_tunes_meanwhile_gets_its_cells_run() {
        // `ties` waits when the evaluation starts; its tuning is in by the time it ends.
        assert_eq!(evaluations(&[&["ties"], &[]]), (2, set(&[])));
        // `dare` is freed first, then `ties`: one more evaluation each.
        let freed_in_turn: &[&[&str]] = &[&["dare", "ties"], &["ties"], &[]];
        assert_eq!(evaluations(freed_in_turn), (3, set(&[])));
    }

    /// Plays a shard tuning other methods that looks, before each of its tuning cells, at what
    /// the tuning files then free (`looks`); returns the looks that ran the evaluation.
    fn catch_ups(waiting: &[&str], looks: &[&[&str]]) -> Vec<usize> {
        let mut waiting = set(waiting);
        let mut ran = Vec::new();
        for (look, now) in looks.iter().map(|l| set(l)).enumerate() {
            let mut evaluate = || {
                ran.push(look);
                Ok(now.clone())
            };
            evaluate_if_freed(&mut waiting, &mut evaluate, &mut || Ok(now.clone())).unwrap();
        }
        ran
    }

    #[test]
    fn a_method_freed_while_the_shard_tunes_others_is_evaluated_before_its_next_cell() {
        // Another shard finishes `learned` before this shard's third tuning cell.
        let learned_freed: &[&[&str]] = &[&["learned"], &["learned"], &[], &[]];
        assert_eq!(catch_ups(&["learned"], learned_freed), vec![2]);
        // `lora` first, then `learned`: an evaluation each, as each is freed.
        let in_turn: &[&[&str]] = &[&["learned", "lora"], &["learned"], &["learned"], &[]];
        assert_eq!(catch_ups(&["learned", "lora"], in_turn), vec![1, 3]);
        // Nothing waits, or nothing is freed: no evaluation between tuning cells.
        assert_eq!(catch_ups(&[], &[&[], &[]]), Vec::<usize>::new());
        let unchanged: &[&[&str]] = &[&["ties"], &["ties"], &["ties"]];
        assert_eq!(catch_ups(&["ties"], unchanged), Vec::<usize>::new());
    }

    #[test]
    fn the_shard_ends_when_nothing_was_freed_or_nothing_waits() {
        assert_eq!(evaluations(&[&["ties"]]), (1, set(&["ties"])));
        assert_eq!(evaluations(&[&[]]), (1, set(&[])));
        let one_of_two: &[&[&str]] = &[&["dare", "ties"], &["ties"], &["ties"]];
        assert_eq!(evaluations(one_of_two), (2, set(&["ties"])));
    }
}
