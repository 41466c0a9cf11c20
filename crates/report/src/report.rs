//! `write_report`: the one entry point that turns merged rows into summary.md and plots.

use crate::aggregate::first_appearance;
use crate::error::{ReportError, Result};
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
    /// Pairs `(a, b)` compared head to head: `a` minus `b`, paired on (task, k, seed). Pairs
    /// naming a method without results are left out.
    pub comparisons: Vec<(String, String)>,
    /// Facts per task name. A shift's accuracy plot gets a chance line, and its `full` tick a
    /// size, only when every task of the shift is here; otherwise they are left out.
    pub tasks: BTreeMap<String, TaskFacts>,
}

/// Writes `out_dir/summary.md` and `out_dir/plots/*.{svg,png}`; returns the files written, the
/// summary first, then each plot's SVG and PNG.
pub fn write_report(inputs: &ReportInputs, out_dir: &Path) -> Result<Vec<PathBuf>> {
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
