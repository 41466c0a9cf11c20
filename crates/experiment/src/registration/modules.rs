//! `sweep/modules.json`: the fingerprint of every upstream module a sweep's cells compose. A
//! sweep resumed on another machine rebuilds its modules, and the cells already in count on
//! only if the rebuilt modules are the same bits. The registered set also joins the hash of
//! every cell of a method that composes modules ([`cell_key`]), so rebuilt modules the user
//! accepts make exactly those cells run again, while the cells of head-only, full fine-tuning
//! and LoRA, which never read a module, keep counting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::hash_of;
use crate::error::{ExperimentError, Result, io};
use crate::store::{RunDir, read_json, write_json};

/// One registered set of upstream modules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleSet {
    /// The backend that registered them.
    pub backend: String,
    /// The CPU and libtorch code paths of the machine that registered them, normally the one
    /// that trained them (absent in registrations made before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_on: Option<String>,
    /// A SHA-256 of each module's factors ([`module_fingerprint`]), by upstream task.
    pub modules: BTreeMap<String, String>,
}

/// What `sweep/modules.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Modules {
    #[serde(flatten)]
    pub current: ModuleSet,
    /// Whether the set joins the hash of the cells that compose modules; false in
    /// registrations made before it did, whose cells keep the hashes they were written with.
    #[serde(default)]
    pub names_cells: bool,
    /// Sets registered before, each replaced by rebuilt modules a run accepted, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced: Vec<ModuleSet>,
}

/// A SHA-256 of an adapter's factors (A then B of every layer, little-endian f32).
pub fn module_fingerprint(adapter: &loramix_lora::Adapter) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for layer in &adapter.layers {
        for value in layer.a.iter().chain(&layer.b) {
            hasher.update(value.to_le_bytes());
        }
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn file(run: &RunDir) -> std::path::PathBuf {
    run.sweep().join("modules.json")
}

/// What the registered modules add to the hash of a cell that composes them: `None` before
/// any registration, and for registrations that predate it.
pub fn cell_key(run: &RunDir) -> Result<Option<String>> {
    let file = file(run);
    if !file.exists() {
        return Ok(None);
    }
    let registered: Modules = read_json(&file)?;
    Ok(registered.key())
}

impl Modules {
    fn key(&self) -> Option<String> {
        (self.names_cells).then(|| hash_of(&[&"modules/1", &self.current.modules]))
    }
}

/// Registers the modules' fingerprints with the sweep, or checks them against the set
/// registered: a module rebuilt with other bits would make the cells before and after it
/// disagree, so the sweep stops and says which, unless `accept_rebuilt`. Then the rebuilt set
/// replaces the registered one (kept under `replaced`) and the cells that compose modules get
/// new hashes: they run again. Returns the registration's [`cell_key`].
pub fn register_modules(
    run: &RunDir,
    adapters: &[loramix_lora::Adapter],
    accept_rebuilt: bool,
) -> Result<Option<String>> {
    let file = file(run);
    let now = ModuleSet {
        backend: loramix_backend::NAME.to_string(),
        registered_on: Some(this_machine()),
        modules: (adapters.iter())
            .map(|a| (a.manifest.task.clone(), module_fingerprint(a)))
            .collect(),
    };
    if !file.exists() {
        std::fs::create_dir_all(run.sweep()).map_err(io(&run.sweep()))?;
        // Cells written before sweeps registered their modules keep their hashes.
        let has_rows = !(run.shard_files(false)?.is_empty() && run.tuning_files(false)?.is_empty());
        let registered = Modules {
            current: now,
            names_cells: !has_rows,
            replaced: Vec::new(),
        };
        write_json(&file, &registered)?;
        return Ok(registered.key());
    }
    let mut registered: Modules = read_json(&file)?;
    let changed: Vec<&str> = (now.modules.iter())
        .filter(|(task, new)| {
            (registered.current.modules.get(*task)).is_some_and(|old| old != *new)
        })
        .map(|(task, _)| task.as_str())
        .collect();
    if changed.is_empty() {
        // Modules new to the registration (a composing method added to a sweep that had
        // none): no cell composed them yet, and from now on they are checked too.
        let known = &registered.current.modules;
        if now.modules.keys().any(|task| !known.contains_key(task)) {
            (registered.current.modules).extend(now.modules);
            write_json(&file, &registered)?;
        }
        return Ok(registered.key());
    }
    if !accept_rebuilt {
        return Err(rebuilt_differently(
            &file,
            &registered.current,
            &now,
            &changed,
        ));
    }
    eprintln!(
        "transfer: {} of {} upstream modules differ from those registered in {}; the rebuilt set \
         replaces it (the old one stays under `replaced`), and the cells of the methods that \
         compose modules run again with it",
        changed.len(),
        now.modules.len(),
        file.display()
    );
    let old = std::mem::replace(&mut registered.current, now);
    registered.replaced.push(old);
    registered.names_cells = true;
    write_json(&file, &registered)?;
    Ok(registered.key())
}

fn rebuilt_differently(
    file: &std::path::Path,
    then: &ModuleSet,
    now: &ModuleSet,
    changed: &[&str],
) -> ExperimentError {
    let first = changed[0];
    let machine = |set: &ModuleSet| {
        let on = set.registered_on.as_deref();
        format!(
            "`{}` on {}",
            set.backend,
            on.unwrap_or("a machine not recorded")
        )
    };
    ExperimentError::Invalid(format!(
        "{}: {} of {} upstream modules are not the ones this sweep's cells were computed with \
         (`{first}`'s factors hash to {}, registered {}): they were rebuilt differently. The \
         sweep registered them on {}; this is {}. Rebuild them as the sweep's were, start a new \
         run folder, or run again with --accept-rebuilt-modules: the cells of the methods that \
         compose modules then run again with these, and the cells of those that do not \
         (head-only, full fine-tuning, LoRA) keep counting",
        file.display(),
        changed.len(),
        now.modules.len(),
        &now.modules[first][..12],
        &then.modules[first][..12.min(then.modules[first].len())],
        machine(then),
        machine(now),
    ))
}

/// This machine's CPU and the libtorch code paths chosen ([`loramix_backend::CPU_CODE_PATHS`]),
/// in words: what makes a rebuilt module differ in bits.
fn this_machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        (cpuinfo.lines())
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let flags = field("flags").unwrap_or_default();
    let has = |flag: &str| flags.split(' ').any(|f| f == flag);
    let isa = match (has("avx512f"), has("avx2")) {
        (true, _) => "AVX-512",
        (false, true) => "AVX2",
        (false, false) => "no AVX2",
    };
    let model = field("model name").unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let paths: Vec<String> = (loramix_backend::CPU_CODE_PATHS.iter())
        .map(|(name, _)| match std::env::var(name) {
            Ok(value) => format!("{name}={value}"),
            Err(_) => format!("{name} unset"),
        })
        .collect();
    format!("{model} ({isa}), {}", paths.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_with_cells_but_no_registration_keeps_its_cell_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path(), "old");
        std::fs::create_dir_all(run.sweep()).unwrap();
        std::fs::write(run.sweep().join("all.csv"), "task\n").unwrap();
        assert_eq!(register_modules(&run, &[], false).unwrap(), None);
        assert_eq!(cell_key(&run).unwrap(), None);
        let fresh = RunDir::new(dir.path(), "new");
        let key = register_modules(&fresh, &[], false).unwrap();
        assert!(key.is_some() && cell_key(&fresh).unwrap() == key);
    }

    #[test]
    fn a_registration_from_before_the_cell_key_reads_without_one() {
        let old = r#"{"backend": "tch", "modules": {"a": "00ff"}}"#;
        let modules: Modules = serde_json::from_str(old).unwrap();
        assert_eq!(modules.current.registered_on, None);
        assert!(!modules.names_cells && modules.replaced.is_empty());
        assert_eq!(modules.key(), None, "its cells keep their hashes");
        let named = Modules {
            names_cells: true,
            ..modules.clone()
        };
        let mut other = named.clone();
        other.current.modules.insert("a".into(), "0100".into());
        assert!(named.key().is_some() && named.key() != other.key());
    }
}
