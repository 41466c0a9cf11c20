//! What an experiment will do, decided from its files alone (no data loaded): the tasks in
//! use, and the hashes that name every artifact by what made it, so a rerun reuses them.

use std::collections::BTreeMap;
use std::path::Path;

use loramix_data::{Role, Suite, SuiteItem};
use loramix_lora::LoraConfig;

use crate::config::{Experiment, Selection, hash_of};
use crate::error::{ExperimentError, Result};
use crate::method::MethodSpec;
use crate::store::RunDir;

/// What an experiment will do, decided from its files alone (no data loaded): the tasks in use
/// and the hash that names every artifact.
#[derive(Debug, Clone)]
pub struct Plan {
    pub experiment: Experiment,
    pub suite_keys: SuiteKeys,
    /// The fingerprint of a pretrained base (none for a base loramix pretrains).
    pub base_identity: Option<String>,
    /// Upstream tasks in use, in suite order.
    pub upstream: Vec<String>,
    /// Downstream (evaluation) tasks in use, in suite order.
    pub downstream: Vec<String>,
    /// The suite's tuning tasks when the sweep chooses its rates on them (empty otherwise).
    pub tuning: Vec<String>,
    pub run: RunDir,
    /// What the registered upstream modules add to the hash of a cell that composes them
    /// ([`crate::registration::cell_key`]); read from the run folder, and set again when a
    /// stage registers the modules.
    pub modules: Option<String>,
}

/// The suite's tasks of `role` that `wanted` names (all of them when it names none), in suite
/// order; a name the suite lacks is an error.
fn tasks_in<I: SuiteItem>(
    suite: &Suite<I>,
    role: Role,
    wanted: &[String],
    what: &str,
) -> Result<Vec<String>> {
    let all: Vec<String> = (suite.tasks())
        .filter(|(r, _)| *r == role)
        .map(|(_, t)| t.name.clone())
        .collect();
    if let Some(missing) = wanted.iter().find(|w| !all.contains(w)) {
        return Err(ExperimentError::Invalid(format!(
            "{what} task `{missing}` is not in suite `{}` (it has: {})",
            suite.name,
            all.join(", ")
        )));
    }
    Ok(match wanted.is_empty() {
        true => all,
        false => all.into_iter().filter(|t| wanted.contains(t)).collect(),
    })
}

impl Plan {
    /// Checks task names and method settings against the suite.
    pub fn new<I: SuiteItem>(
        experiment: Experiment,
        suite: &Suite<I>,
        suite_keys: SuiteKeys,
        base_identity: Option<String>,
        runs: &Path,
    ) -> Result<Self> {
        let pick = |role, wanted: &[String], what| tasks_in(suite, role, wanted, what);
        let upstream = pick(Role::Upstream, &experiment.upstream.tasks, "upstream")?;
        let downstream = pick(Role::Downstream, &experiment.transfer.tasks, "downstream")?;
        if upstream.is_empty() || downstream.is_empty() {
            return Err(ExperimentError::Invalid(format!(
                "suite `{}` needs at least one upstream and one downstream task",
                suite.name
            )));
        }
        let on_tasks = (experiment.transfer.tuning.as_ref())
            .is_some_and(|t| t.select == Selection::TuningTasks);
        let tuning = match on_tasks {
            true => pick(Role::Tuning, &[], "tuning")?,
            false => Vec::new(),
        };
        if on_tasks && tuning.is_empty() {
            return Err(ExperimentError::Invalid(format!(
                "transfer.tuning.select = \"tuning-tasks\" needs `[[tuning]]` tasks in suite `{}`",
                suite.name
            )));
        }
        experiment.check_methods(upstream.len())?;
        let run = RunDir::new(runs, &experiment.name);
        let modules = crate::registration::cell_key(&run)?;
        Ok(Self {
            experiment,
            suite_keys,
            base_identity,
            upstream,
            downstream,
            tuning,
            run,
            modules,
        })
    }

    /// A pretrained base is named by its fingerprint (its weights), an own base by what made it:
    /// the suite's shared settings and its pretraining task, not the rest of the suite.
    pub fn base_hash(&self) -> String {
        match &self.base_identity {
            Some(fingerprint) => hash_of(&[&"pretrained/1", fingerprint, &self.experiment.model]),
            None => hash_of(&[
                &"base/2",
                &self.suite_keys.shared,
                &self.suite_keys.task(&self.suite_keys.pretrain),
                &self.experiment.model,
                &self.experiment.pretrain,
            ]),
        }
    }

    /// The base, the upstream settings and the upstream tasks in use.
    pub fn upstream_hash(&self) -> String {
        let tasks: Vec<_> = self
            .upstream
            .iter()
            .map(|t| self.suite_keys.task(t))
            .collect();
        hash_of(&[
            &self.base_hash(),
            &self.suite_keys.shared,
            &tasks,
            &self.experiment.upstream,
        ])
    }

    /// The hash a sweep row of `method` on downstream task `task` must carry to count as done.
    /// (Tuning and the registered modules join the hash only when given, so configs and
    /// registrations without them keep their cells; the modules join only the hashes of the
    /// methods that compose them.)
    pub fn cell_hash(&self, method: &MethodSpec, task: &str) -> String {
        let t = &self.experiment.transfer;
        let (upstream, task) = (self.upstream_hash(), self.suite_keys.task(task));
        let sizes = (t.full_per_class, t.batch, t.eval_batch);
        let mut parts: Vec<&dyn crate::config::erased::Json> =
            vec![&upstream, &self.upstream, &task, &sizes, method];
        if let Some(tuning) = &t.tuning {
            parts.push(tuning);
        }
        if let Some(modules) = self.modules.as_ref().filter(|_| method.kind.uses_modules()) {
            parts.push(modules);
        }
        hash_of(&parts)
    }

    /// The similarity stage's hash.
    pub fn similarity_hash(&self) -> String {
        let tasks: Vec<_> = self
            .downstream
            .iter()
            .map(|t| self.suite_keys.task(t))
            .collect();
        let upstream = self.upstream_hash();
        let mut parts: Vec<&dyn crate::config::erased::Json> = vec![
            // 2: with the base's own row, the baseline of every module's CKA.
            &"similarity/2",
            &upstream,
            &self.upstream,
            &self.downstream,
            &tasks,
            &self.experiment.similarity,
            &self.experiment.transfer.full_per_class,
        ];
        if let Some(modules) = &self.modules {
            parts.push(modules);
        }
        hash_of(&parts)
    }

    pub fn lora_config(&self, rank: Option<usize>, alpha: Option<f32>) -> LoraConfig {
        let up = &self.experiment.upstream;
        LoraConfig::new()
            .with_rank(rank.unwrap_or(up.rank))
            .with_alpha(alpha.unwrap_or(up.alpha))
            .with_targets(up.targets.clone())
    }
}

/// What artifact hashes take from a suite file: its shared settings and each task's table as
/// parsed TOML, without names and descriptions. Comments, formatting, descriptions and tasks an
/// artifact does not use change no hash, so adding a downstream task retrains nothing.
#[derive(Debug, Clone, Default)]
pub struct SuiteKeys {
    shared: BTreeMap<String, toml::Value>,
    tasks: BTreeMap<String, toml::Value>,
    pretrain: String,
}

impl SuiteKeys {
    /// The keys of the suite TOML `text` (read from `path`).
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ExperimentError::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut keys = Self::default();
        for (key, value) in table {
            match key.as_str() {
                "name" | "description" => {}
                "pretrain" => keys.pretrain = keys.insert_task(value),
                "upstream" | "downstream" => {
                    for task in value.as_array().cloned().unwrap_or_default() {
                        keys.insert_task(task);
                    }
                }
                _ => {
                    keys.shared.insert(key, value);
                }
            }
        }
        Ok(keys)
    }

    /// Adds one task table; returns its name.
    fn insert_task(&mut self, mut task: toml::Value) -> String {
        let mut name = String::new();
        if let Some(table) = task.as_table_mut() {
            table.remove("description");
            if let Some(toml::Value::String(n)) = table.remove("name") {
                name = n;
            }
        }
        self.tasks.insert(name.clone(), task);
        name
    }

    fn task(&self, name: &str) -> Option<&toml::Value> {
        self.tasks.get(name)
    }
}
