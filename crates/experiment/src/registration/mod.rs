//! What a sweep registers beside its shards before its first cell: the analysis plan and its
//! hash (`sweep/plan.json`, never overwritten), so a report tells the plan a run was made
//! with from one chosen after its results were seen (a new analysis of old data); and the
//! fingerprint of every upstream module the cells compose (`sweep/modules.json`, [`modules`]),
//! so a sweep resumed on another machine, whose modules were rebuilt, goes on only with the
//! same bits or, when the user accepts the rebuilt ones, recomputes the cells that compose
//! them.

use std::path::{Path, PathBuf};

use loramix_report::{AnalysisPlan, PlanStatus};
use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result, io};
use crate::store::{RunDir, read_json, write_json};

mod modules;
pub use modules::{ModuleSet, Modules, cell_key, module_fingerprint, register_modules};

/// What `sweep/plan.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registered {
    pub hash: String,
    pub plan: AnalysisPlan,
}

fn path(run: &RunDir) -> PathBuf {
    run.sweep().join("plan.json")
}

/// The plan registered with this run's sweep, if any.
pub fn registered(run: &RunDir) -> Result<Option<Registered>> {
    let file = path(run);
    match file.exists() {
        true => read_json(&file).map(Some),
        false => Ok(None),
    }
}

/// Registers `plan` unless a plan is registered already; a different one is kept, with a note
/// that reports of this run will be re-analyses.
pub fn register(run: &RunDir, plan: &AnalysisPlan) -> Result<()> {
    let hash = plan.hash();
    match registered(run)? {
        Some(old) if old.hash == hash => Ok(()),
        Some(old) => {
            eprintln!(
                "transfer: the analysis plan differs from the one registered with this sweep \
                 ({}, hash {}); the registration stays, and its report will say it is a new \
                 analysis of these data",
                path(run).display(),
                &old.hash[..12]
            );
            Ok(())
        }
        None => {
            let sweep = run.sweep();
            std::fs::create_dir_all(&sweep).map_err(io(&sweep))?;
            let plan = plan.clone();
            write_json(&path(run), &Registered { hash, plan })
        }
    }
}

/// Whether `plan` is the plan registered (by its hash), or a re-analysis.
pub fn status(plan: &AnalysisPlan, registered: Option<&str>) -> PlanStatus {
    match registered {
        Some(hash) if hash == plan.hash() => PlanStatus::RegisteredWithRun,
        other => PlanStatus::Reanalysis {
            registered_hash: other.map(str::to_string),
        },
    }
}

/// The `[analysis]` table of a TOML file (an experiment file, or a file holding only that
/// table), checked.
pub fn read_plan(path: &Path) -> Result<AnalysisPlan> {
    let bad = |message: String| ExperimentError::Config {
        path: path.to_path_buf(),
        message,
    };
    let text = loramix_lora::files::read_to_string(path).map_err(io(path))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let analysis = table
        .get("analysis")
        .ok_or_else(|| bad("no [analysis] table to take the plan from".into()))?;
    let plan: AnalysisPlan = analysis
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| bad(format!("[analysis]: {e}")))?;
    plan.validate()
        .map_err(|e| bad(format!("[analysis]: {e}")))?;
    Ok(plan)
}
