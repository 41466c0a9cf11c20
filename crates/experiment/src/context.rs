//! A plan with its data loaded and checked: what the training stages share.

use std::borrow::Cow;
use std::time::Instant;

use burn::module::AutodiffModule;
use indicatif::ProgressBar;
use loramix_backend::Device;
use loramix_data::{Draw, LoadedSuite, Suite, SuiteItem, Task};
use loramix_models::{Learner, TrainError};
use loramix_rng::derive_seed;

use crate::config::{Convergence, TransferSpec};
use crate::error::{ExperimentError, Result};
use crate::family::Family;
use crate::fit::{
    EarlyStop, Schedule, Stopped, TrainSet, accuracy, features, fit_stopped, head_score,
};
use crate::plan::Plan;
use crate::progress;

/// A plan with its data loaded: what the training stages share.
pub struct Context<F: Family> {
    pub plan: Plan,
    pub suite: LoadedSuite<F::Item>,
    pub family: F,
    pub device: Device,
    /// The downstream (evaluation) tasks, loaded and checked against every shot count.
    pub downstream: Vec<Task<F::Item>>,
    /// The tuning tasks the sweep chooses its rates on (empty unless it does), checked alike.
    pub tuning: Vec<Task<F::Item>>,
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
        for (source, dropped) in suite.duplicates() {
            eprintln!(
                "  {source}: {dropped} copies or near copies of earlier examples dropped (kept once)"
            );
        }
        for (source, blank) in suite.blank() {
            eprintln!("  {source}: {blank} blank images left out (nearly all one colour)");
        }
        for (task, leaked) in suite.leaked() {
            eprintln!(
                "  {task}: {leaked} near copies of upstream or pretraining examples left out (drop_leaked)"
            );
        }
        let load = |names: &[String]| -> Result<Vec<Task<F::Item>>> {
            names
                .iter()
                .map(|name| transfer_task(&suite, &plan, name))
                .collect()
        };
        let (tuning, downstream) = (load(&plan.tuning)?, load(&plan.downstream)?);
        Ok(Self {
            plan,
            suite,
            family,
            device: loramix_backend::device(),
            downstream,
            tuning,
            parts,
        })
    }
}

/// A downstream or tuning task, loaded, described in one line and checked against every shot
/// count of the sweep.
fn transfer_task<I: SuiteItem>(suite: &LoadedSuite<I>, plan: &Plan, name: &str) -> Result<Task<I>> {
    let task = suite.task(name)?;
    let mut per_class = vec![0; task.train.classes.len()];
    task.train
        .items
        .iter()
        .for_each(|i| per_class[i.label()] += 1);
    eprintln!(
        "  {name}{}: {} classes, training pool {}..{} per class, {} test examples",
        if plan.tuning.iter().any(|t| t == name) {
            " (tuning)"
        } else {
            ""
        },
        per_class.len(),
        per_class.iter().min().unwrap_or(&0),
        per_class.iter().max().unwrap_or(&0),
        task.test.items.len()
    );
    check_shots(&plan.experiment.transfer, &task)?;
    Ok(task)
}

/// Every k of the sweep fits every class of `task`, with the validation examples the tuning
/// sets aside.
fn check_shots<I: SuiteItem>(transfer: &TransferSpec, task: &Task<I>) -> Result<()> {
    let full = transfer.full_per_class;
    for &shot in &transfer.shots {
        let draw = Draw::of(shot, full, task.train.classes.len());
        match &transfer.tuning {
            Some(tuning) => {
                task.shots_and_validation(draw, tuning.validation_per_class(shot), 0)?;
            }
            None => {
                task.shots(draw, 0)?;
            }
        }
    }
    Ok(())
}

/// A model trained on a task's training pool, with its test accuracy and how far it trained.
pub struct Trained<M> {
    pub model: M,
    pub accuracy: f64,
    pub seconds: f64,
    pub steps: usize,
    /// On the validation examples held out for convergence (none without).
    pub val_accuracy: Option<f64>,
    /// Stopped because validation stopped improving, before the step cap.
    pub converged: bool,
}

impl<F: Family> Context<F> {
    /// `steps` AdamW steps on batches of `batch` at `lr` (the head too), with this run's
    /// parts per batch.
    pub fn schedule(&self, steps: usize, batch: usize, lr: f64) -> Schedule {
        Schedule {
            steps,
            batch,
            lr,
            head_lr: None,
            parts: self.parts,
        }
    }

    /// Trains `model` on `task`'s training pool (minibatch order seeded by `batches`), with
    /// `converge` until validation examples held out of the pool stop improving, tests it, and
    /// prints one line for the `stage`: how the base and the upstream modules are made.
    pub fn train_on_task(
        &self,
        model: F::Trained,
        task: &Task<F::Item>,
        schedule: Schedule,
        (stage, batches): (&str, &str),
        converge: Option<&Convergence>,
    ) -> Result<Trained<F::Frozen>> {
        let name = &task.name;
        let started = Instant::now();
        let seed = derive_seed(0, batches);
        let (items, validation) = match converge {
            None => (Cow::Borrowed(&task.train.items[..]), Vec::new()),
            Some(c) => {
                let pool = Draw::Pool { cap: None };
                let (items, validation) =
                    task.shots_and_validation(pool, c.validation_per_class, seed)?;
                (Cow::Owned(items), validation)
            }
        };
        let bar = progress::bar(schedule.steps, &format!("{stage} {name}"));
        let stopped = self
            .fit_converging(model, &items, (&validation, converge), schedule, seed, &bar)
            .map_err(|source| ExperimentError::Train {
                context: format!("{stage} task `{name}`"),
                source,
            })?;
        let model = stopped.model.valid();
        let seconds = started.elapsed().as_secs_f64();
        let eval_batch = self.plan.experiment.transfer.eval_batch;
        let test = &task.test.items;
        let accuracy = accuracy(&self.family, &model, test, eval_batch, self.parts);
        bar.finish_and_clear();
        let stopped_early = match (stopped.score, stopped.converged) {
            (Some(s), true) => format!(", validation {:.1}% (converged)", 100.0 * s.accuracy),
            (Some(s), false) => format!(", validation {:.1}% (step cap)", 100.0 * s.accuracy),
            (None, _) => String::new(),
        };
        eprintln!(
            "{stage}: {name}, {} examples, {} of {} steps in {seconds:.0}s{stopped_early}, test accuracy {:.1}% (chance {:.1}%)",
            items.len(),
            stopped.steps,
            schedule.steps,
            100.0 * accuracy,
            100.0 / task.train.classes.len().max(1) as f64
        );
        Ok(Trained {
            model,
            accuracy,
            seconds,
            steps: stopped.steps,
            val_accuracy: stopped.score.map(|s| s.accuracy),
            converged: stopped.converged,
        })
    }

    /// Trains `model` on `items`; with a convergence rule, checks `validation` every
    /// `converge.every` steps, keeps the best model and stops once `patience` checks in a row
    /// have not beaten it. Without one, every step runs and the last model is kept.
    pub fn fit_converging(
        &self,
        model: F::Trained,
        items: &[F::Item],
        (validation, converge): (&[F::Item], Option<&Convergence>),
        schedule: Schedule,
        seed: u64,
        bar: &ProgressBar,
    ) -> std::result::Result<Stopped<F::Trained>, TrainError> {
        let set = TrainSet::new(&self.family, items, &self.device);
        let eval_batch = self.plan.experiment.transfer.eval_batch;
        let score = |model: &F::Trained| {
            let model = model.valid();
            let x = features(&self.family, &model, validation, eval_batch, self.parts);
            Some(head_score(model.head(), x, validation))
        };
        let stop = converge.map(|c| EarlyStop {
            every: c.every,
            score: &score,
            patience: Some(c.patience),
        });
        fit_stopped::<F, _>(model, &set, schedule, seed, bar, stop.as_ref())
    }
}
