//! What a report is made from: the merged rows, the task facts, which method plays which part
//! of the claims, and the analysis plan. Every module that renders reads these; none of them
//! is defined where the rendering is.

use crate::plan::{AnalysisPlan, ClaimRoles, PlanStatus};
use crate::rows::{ResultRow, SimilarityRow, WeightRow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the plots need to know about a downstream task beyond its runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaskFacts {
    /// Number of classes: the chance line of the accuracy plots is at 1/classes.
    pub classes: usize,
    /// Mean training examples per class of the task's full training set: the size of `k = full`.
    pub full_per_class: usize,
    /// Size of the task's test split, which every run is scored on; 0 when not recorded
    /// (files written before it was): the per-task intervals then leave its sampling out.
    #[serde(default)]
    pub test_examples: usize,
}

/// An upstream module's score on its own task, for the summary's opening lines: composing
/// modules that learned nothing would show nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleFacts {
    pub task: String,
    /// Accuracy on the module's own test split, in [0, 1].
    pub test_accuracy: f64,
    /// Classes of the module's task (chance is 1/classes); `None` when not recorded.
    pub classes: Option<usize>,
}

/// Everything the report shows.
#[derive(Debug, Clone, Default)]
pub struct ReportInputs {
    pub title: String,
    /// The method every other is compared against, paired per (task, k, seed): `head-only`.
    pub reference_method: String,
    /// Merged runs; the order methods first appear in is the order of every table and legend.
    pub results: Vec<ResultRow>,
    pub weights: Vec<WeightRow>,
    pub similarity: Vec<SimilarityRow>,
    /// The upstream modules composed, in the order they were trained.
    pub modules: Vec<ModuleFacts>,
    /// Markdown placed after the title: config, machine, timings.
    pub preamble: String,
    /// Pairs `(a, b)` compared head to head, exploratory: `a` minus `b`, paired on (task, k,
    /// seed). Pairs naming a method without results are left out.
    pub comparisons: Vec<(String, String)>,
    /// Which method plays each part of DESIGN.md's claims, named in the Claims section (the
    /// verdicts judge the methods the plan names; [`AnalysisPlan::default_for`] takes these).
    pub roles: ClaimRoles,
    /// Facts per task name. A shift's accuracy plot gets a chance line, and its `full` tick a
    /// size, only when every task of the shift is here; otherwise they are left out.
    pub tasks: BTreeMap<String, TaskFacts>,
    /// The pre-registered primary tests the claims are judged by (Holm within them only).
    /// Empty: no claim is judged and every comparison is exploratory.
    pub plan: AnalysisPlan,
    /// Whether `plan` is the one the run was made with; the default says it is not.
    pub plan_status: PlanStatus,
    /// How many of the runs the sweep plans `results` holds, where known: while some are
    /// missing, the summary calls its verdicts interim.
    pub planned: Option<Planned>,
}

/// The runs a sweep plans (every downstream task, method, shot and seed), and how many of
/// them are done. Counted cell by cell: rows outside the plan (a shot since dropped) count for
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Planned {
    pub runs: usize,
    pub done: usize,
    /// The compute the missing cells will take, where the sweep knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left: Option<Left>,
}

/// The compute a sweep's missing cells (evaluation and tuning) will take, from the cells done.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Left {
    /// Thread-hours of the missing cells, each at the mean training time of the done cells of
    /// its method and shot (of its kind: tuning cells try several rates), or of an earlier
    /// config's cells where none is done.
    pub thread_hours: f64,
    /// The part of `thread_hours` the primary tests wait for: the evaluation cells a primary
    /// test reads and the tuning cells of the methods one compares (the sweep runs them first).
    /// Manifests from before it was counted read as 0.
    #[serde(default)]
    pub primary_thread_hours: f64,
    /// Missing cells of a method and shot never timed; not in `thread_hours`.
    pub untimed: usize,
}

impl Planned {
    pub fn unfinished(&self) -> bool {
        self.done < self.runs
    }
}

impl ReportInputs {
    /// The sweep's plan and progress, while some of its planned runs are missing.
    pub(crate) fn unfinished(&self) -> Option<Planned> {
        self.planned.filter(Planned::unfinished)
    }
}
