//! A plan with its data loaded and checked: what the training stages share.

use std::time::Instant;

use burn::module::AutodiffModule;
use loramix_backend::Device;
use loramix_data::{Draw, Labelled, LoadedSuite, Suite, SuiteItem, Task};
use loramix_rng::derive_seed;

use crate::config::TransferSpec;
use crate::error::{ExperimentError, Result};
use crate::family::Family;
use crate::fit::{Schedule, TrainSet, accuracy, fit};
use crate::plan::Plan;
use crate::progress;

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
        for (source, dropped) in suite.duplicates() {
            eprintln!(
                "  {source}: {dropped} copies or near copies of earlier examples dropped (kept once)"
            );
        }
        for (task, leaked) in suite.leaked() {
            eprintln!(
                "  {task}: {leaked} near copies of upstream or pretraining examples left out (drop_leaked)"
            );
        }
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
            check_shots(&plan.experiment.transfer, &task)?;
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

/// A model trained on a task's whole training pool, with its test accuracy.
pub struct Trained<M> {
    pub model: M,
    pub accuracy: f64,
    pub seconds: f64,
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

    /// Trains `model` on all of `task`'s training pool (minibatch order seeded by `batches`), tests
    /// it, and prints one line for the `stage`: how the base and the upstream modules are made.
    pub fn train_on_task(
        &self,
        model: F::Trained,
        task: &Task<F::Item>,
        schedule: Schedule,
        stage: &str,
        batches: &str,
    ) -> Result<Trained<F::Frozen>> {
        let name = &task.name;
        let started = Instant::now();
        let set = TrainSet::new(&self.family, &task.train.items, &self.device);
        let bar = progress::bar(schedule.steps, &format!("{stage} {name}"));
        let model = fit::<F, _>(model, &set, schedule, derive_seed(0, batches), &bar).map_err(
            |source| ExperimentError::Train {
                context: format!("{stage} task `{name}`"),
                source,
            },
        )?;
        let model = model.valid();
        let seconds = started.elapsed().as_secs_f64();
        let eval_batch = self.plan.experiment.transfer.eval_batch;
        let accuracy = accuracy(
            &self.family,
            &model,
            &task.test.items,
            eval_batch,
            self.parts,
        );
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
}
