//! `write_report`: the one entry point that turns merged rows into summary.md and plots.

use crate::aggregate::first_appearance;
use crate::error::{ReportError, Result};
use crate::plan::{AnalysisPlan, PlanError, PlanStatus};
use crate::rows::{ResultRow, SimilarityRow, WeightRow};
use crate::{plot, summary};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// Which method (by its name in the runs) plays each part in DESIGN.md's claims. The experiment
/// knows each method's kind and fills this in, so a renamed method is still judged; the
/// default is the names methods get when a config does not rename them (their kinds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRoles {
    pub uniform: Option<String>,
    pub learned: Option<String>,
    pub full: Option<String>,
    pub lora: Option<String>,
}

impl Default for ClaimRoles {
    fn default() -> Self {
        let name = |n: &str| Some(n.to_string());
        ClaimRoles {
            uniform: name("uniform"),
            learned: name("learned"),
            full: name("full"),
            lora: name("lora"),
        }
    }
}

impl ClaimRoles {
    /// The head-to-head pairs claims 1 and 2 rest on: each composition against full
    /// fine-tuning and LoRA, then learned against uniform; pairs missing a role are left out.
    pub fn comparisons(&self) -> Vec<(String, String)> {
        let (uniform, learned) = (&self.uniform, &self.learned);
        let (full, lora) = (&self.full, &self.lora);
        [
            (uniform, full),
            (uniform, lora),
            (learned, full),
            (learned, lora),
            (learned, uniform),
        ]
        .into_iter()
        .filter_map(|(a, b)| Some((a.clone()?, b.clone()?)))
        .collect()
    }
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
}

/// Writes `out_dir/summary.md` and `out_dir/plots/*.{svg,png}`; returns the files written, the
/// summary first, then each plot's SVG and PNG.
/// A plan with a bad shape is an error ([`ReportError::Plan`]); an empty one is not.
pub fn write_report(inputs: &ReportInputs, out_dir: &Path) -> Result<Vec<PathBuf>> {
    match inputs.plan.validate() {
        Ok(()) | Err(PlanError::Empty) => {}
        Err(e) => return Err(ReportError::Plan(e)),
    }
    let plots_dir = out_dir.join("plots");
    std::fs::create_dir_all(&plots_dir).map_err(|source| ReportError::Io {
        path: plots_dir.clone(),
        source,
    })?;
    let order = first_appearance(inputs.results.iter().map(|r| r.method.as_str()));
    let plots = plot::write_all(inputs, &order, &plots_dir)?;
    let names: Vec<String> = plots
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    let path = out_dir.join("summary.md");
    std::fs::write(&path, summary::render(inputs, &order, &names)).map_err(|source| {
        ReportError::Io {
            path: path.clone(),
            source,
        }
    })?;
    Ok(std::iter::once(path).chain(plots).collect())
}
