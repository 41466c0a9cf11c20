//! `write_report`: the one entry point that turns merged rows into summary.md and plots.

use crate::aggregate::first_appearance;
use crate::error::{ReportError, Result};
use crate::inputs::ReportInputs;
use crate::plan::PlanError;
use crate::{plot, summary};
use std::path::{Path, PathBuf};

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

/// The summary's "In brief" section alone: what the run composed, ran, shows and cannot show.
pub fn in_brief(inputs: &ReportInputs) -> String {
    let primary = crate::primary::evaluate(&inputs.plan, inputs);
    let mut md = String::new();
    crate::brief::write(&mut md, inputs, &primary);
    md
}
