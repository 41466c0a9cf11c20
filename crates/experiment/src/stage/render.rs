//! The `render` command: a committed results folder's summary and plots rewritten from its CSV
//! files by this build, without its runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use loramix_design::Shot;
use loramix_report::{AnalysisPlan, ClaimRoles, ReportInputs, write_report};

use super::report::revision_text;
use crate::error::Result;
use crate::method::claim_roles;
use crate::store::read_rows;
use crate::tuning::TuningLine;

/// Rewrites `summary.md` and `plots/` of a results folder from its CSV files alone
/// (`results.csv`; `learned_weights.csv`, `similarity.csv` and `tasks.json` when present), with
/// this build's statistics and plots: how committed results are brought up to date without
/// their runs.
///
/// The claims are judged by `plan` when given (an analysis chosen now), else by the plan the
/// manifest recorded, else by the default family of the manifest's methods; the summary says
/// whether that plan is the one registered with the run or a new analysis of old data.
pub fn render(dir: &Path, plan: Option<AnalysisPlan>) -> Result<Vec<PathBuf>> {
    let optional = |name: &str| {
        let path = dir.join(name);
        path.exists().then_some(path)
    };
    let mut results = loramix_report::read_results(&[dir.join("results.csv")])?;
    let weights = loramix_report::read_weights(optional("learned_weights.csv").as_slice())?;
    let similarity = loramix_report::read_similarity(optional("similarity.csv").as_slice())?;
    let tasks = match optional("tasks.json") {
        Some(path) => crate::store::read_json(&path)?,
        None => BTreeMap::new(),
    };
    let made_by: Option<MadeBy> = optional("manifest.json")
        .map(|path| crate::store::read_json(&path))
        .transpose()?;
    // Runs made before manifests named their methods' kinds: the default names.
    let methods: Vec<(&str, &str)> = (made_by.iter())
        .flat_map(|m| &m.experiment.method)
        .map(|m| (m.name.as_deref().unwrap_or(&m.kind), m.kind.as_str()))
        .collect();
    let roles = match made_by {
        Some(_) => claim_roles(methods.iter().copied()),
        None => ClaimRoles::default(),
    };
    // Tables and colours follow the config's method order, as in the run's own report
    // (results.csv is sorted by name); methods the manifest does not list go last.
    let rank = |method: &str| methods.iter().position(|(name, _)| *name == method);
    results.sort_by_key(|r| rank(&r.method).unwrap_or(usize::MAX));
    let registered = made_by
        .as_ref()
        .and_then(|m| m.registered_plan_hash.clone());
    let recorded = made_by.as_ref().and_then(|m| m.analysis_plan.clone());
    let shots: Vec<Shot> = (results.iter().map(|r| r.k))
        .collect::<BTreeSet<Shot>>()
        .into_iter()
        .collect();
    let plan = (plan.or(recorded)).unwrap_or_else(|| AnalysisPlan::default_for(&roles, &shots));
    let planned = made_by.as_ref().and_then(|m| m.planned);
    let preamble = preamble(made_by, optional("tuning.csv"))?;
    let name = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let inputs = ReportInputs {
        title: format!("loramix: {name}"),
        reference_method: "head-only".into(),
        results,
        weights,
        similarity,
        modules: Vec::new(), // the run's upstream folder is not among the CSVs
        preamble,
        comparisons: roles.comparisons(),
        roles,
        tasks,
        plan_status: crate::registration::status(&plan, registered.as_deref()),
        plan,
        planned,
    };
    rewrite(&inputs, dir)
}

/// The report written afresh into `dir`: plots of methods no longer there go too.
fn rewrite(inputs: &ReportInputs, dir: &Path) -> Result<Vec<PathBuf>> {
    let plots = dir.join("plots");
    if plots.is_dir() {
        std::fs::remove_dir_all(&plots).map_err(crate::error::io(&plots))?;
    }
    Ok(write_report(inputs, dir)?)
}

/// What the summary says first: which revision rendered it and which made the runs, then the
/// rates chosen on the tuning tasks (`tuning`, the folder's `tuning.csv`, if any).
fn preamble(made_by: Option<MadeBy>, tuning: Option<PathBuf>) -> Result<String> {
    let tuning_section = match tuning {
        Some(path) => {
            let tasks = (made_by.as_ref()).map_or(&[][..], |m| &m.tuning_tasks[..]);
            crate::tuning::markdown(tasks, &read_rows::<TuningLine>(&path)?)
        }
        None => String::new(),
    };
    let made_by = (made_by.and_then(|m| m.loramix_revision))
        .map(|revision| format!(" The runs were made by {}.", revision_text(&revision)))
        .unwrap_or_default();
    Ok(format!(
        "Re-rendered from this folder's CSV files by loramix revision `{}`; `manifest.json` \
         says how the runs were made.{made_by}\n{tuning_section}",
        env!("LORAMIX_REVISION")
    ))
}

/// What `render` reads from a results folder's `manifest.json`: the revision that made the
/// runs, the methods' names and kinds, and the analysis plan (manifests before plans have none).
#[derive(serde::Deserialize)]
struct MadeBy {
    experiment: MadeByExperiment,
    #[serde(alias = "git_revision")]
    loramix_revision: Option<String>,
    #[serde(default)]
    analysis_plan: Option<AnalysisPlan>,
    #[serde(default)]
    registered_plan_hash: Option<String>,
    #[serde(default)]
    tuning_tasks: Vec<String>,
    /// What the sweep planned and had done (manifests before it was recorded have none).
    #[serde(default)]
    planned: Option<loramix_report::Planned>,
}

#[derive(serde::Deserialize)]
struct MadeByExperiment {
    method: Vec<NamedKind>,
}

/// A method as a manifest records it; manifests before names were resolved have `null` for a
/// name that defaults to the kind.
#[derive(serde::Deserialize)]
struct NamedKind {
    name: Option<String>,
    kind: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use loramix_report::{ResultRow, write_results};

    /// A results folder whose manifest renames learned composition `mix` and records LoRA's
    /// name as `null` (manifests before names were resolved).
    #[test]
    fn render_judges_the_methods_the_manifest_names() {
        let dir = std::env::temp_dir().join(format!("loramix-render-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let row = |method: &str, seed: u64, accuracy: f64| ResultRow {
            task: "t".into(),
            shift: loramix_report::Shift::Label,
            method: method.into(),
            k: Shot::K(1),
            seed,
            accuracy,
            trainable_params: 10,
            train_seconds: 1.0,
            samples_per_sec: 1.0,
        };
        let rows: Vec<ResultRow> = (0..3)
            .flat_map(|s| [row("mix", s, 0.6 + 0.01 * s as f64), row("lora", s, 0.5)])
            .collect();
        write_results(&dir.join("results.csv"), &rows).unwrap();
        let manifest = r#"{"experiment": {"method": [
            {"name": "mix", "kind": "learned"}, {"name": null, "kind": "lora"}]},
            "loramix_revision": "abc", "planned": {"runs": 8, "done": 6}}"#;
        std::fs::write(dir.join("manifest.json"), manifest).unwrap();
        render(&dir, None).unwrap();
        let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(md.contains("learned composition `mix`"), "{md}");
        assert!(md.contains("LoRA `lora`"), "{md}");
        assert!(md.contains("`mix − lora`"), "{md}");
        assert!(md.contains("made by revision `abc`"), "{md}");
        assert!(md.contains("6 of 8 planned runs"), "{md}");
        // The manifest's order (mix, then lora), not results.csv's alphabetical one.
        let first = |name: &str| md.find(&format!("| {name} |")).unwrap();
        assert!(first("mix") < first("lora"), "{md}");
    }
}
