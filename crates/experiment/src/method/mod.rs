//! The methods of the sweep. Each kind is a type holding only its own settings, with their
//! defaults and ranges (`[[method]]` in an experiment file, tagged by `kind`), that knows how to
//! run a cell: train what it trains, test, and report the module weights it chose. The kinds
//! that compose the modules also make a [`Composition`] through [`Kind::compose`], the code
//! `loramix compose` runs too. Adding a method is one file here and one variant of [`Kind`].

mod arrow;
mod cell;
mod composition;
mod dare;
mod fixed;
mod full;
mod head_only;
mod learned;
mod lora;
mod search;
mod select;
mod ties;
mod uniform;

pub use arrow::Arrow;
pub use cell::{CellJob, Choice, FrozenCache, Outcome, Validation, bracketed};
pub use composition::{Composition, Update};
pub use dare::Dare;
pub use fixed::Fixed;
pub use full::Full;
pub use head_only::HeadOnly;
pub use learned::Learned;
pub use lora::Lora;
pub use search::{Search, SearchObjective};
pub use select::{Select, Then, gradient_scores, top_modules};
pub use ties::Ties;
pub use uniform::Uniform;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::family::Family;

/// What every kind of method does.
pub trait SweepMethod {
    /// The kind's name in experiment files and results (`head-only`, `ties`, ...).
    const KIND: &'static str;

    /// Whether the method builds on the upstream modules (if no method does and similarity is
    /// off, they are not trained).
    fn uses_modules(&self) -> bool;

    /// Checks of the settings alone, when the experiment is read.
    fn check(&self) -> std::result::Result<(), String> {
        Ok(())
    }

    /// Checks that need the number of upstream modules.
    fn check_modules(&self, _modules: usize) -> std::result::Result<(), String> {
        Ok(())
    }

    /// Trains what the method trains on the cell's examples and tests it. Methods with a frozen
    /// backbone build it through `frozen`, once per task.
    fn run<F: Family>(&self, job: &CellJob<F>, frozen: &mut FrozenCache<F>) -> Result<Outcome>;
}

/// One `[[method]]`: its label, how long and how fast it trains (the same at every shot count,
/// as the protocol asks), and its kind with the kind's own settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "toml::Table")]
pub struct MethodSpec {
    /// Label in the results (default: the kind's name); lets one sweep compare variants of a
    /// kind.
    pub name: String,
    pub steps: usize,
    pub lr: f64,
    #[serde(flatten)]
    pub kind: Kind,
}

/// The kinds of method, each with its own settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Kind {
    HeadOnly(HeadOnly),
    Full(Full),
    Lora(Lora),
    Uniform(Uniform),
    Fixed(Fixed),
    Ties(Ties),
    Dare(Dare),
    Learned(Learned),
    Search(Search),
    Select(Select),
    Arrow(Arrow),
}

/// `$body` with `$m` bound to the settings of whichever kind `$kind` is.
macro_rules! each_kind {
    ($kind:expr, $m:ident => $body:expr) => {
        match $kind {
            Kind::HeadOnly($m) => $body,
            Kind::Full($m) => $body,
            Kind::Lora($m) => $body,
            Kind::Uniform($m) => $body,
            Kind::Fixed($m) => $body,
            Kind::Ties($m) => $body,
            Kind::Dare($m) => $body,
            Kind::Learned($m) => $body,
            Kind::Search($m) => $body,
            Kind::Select($m) => $body,
            Kind::Arrow($m) => $body,
        }
    };
}

fn kind_of<M: SweepMethod>(_: &M) -> &'static str {
    M::KIND
}

impl Kind {
    /// The kind's name (`head-only`, `ties`, ...).
    pub fn label(&self) -> &'static str {
        each_kind!(self, m => kind_of(m))
    }

    pub fn uses_modules(&self) -> bool {
        each_kind!(self, m => m.uses_modules())
    }

    pub fn check_modules(&self, modules: usize) -> std::result::Result<(), String> {
        each_kind!(self, m => m.check_modules(modules))
    }

    pub fn run<F: Family>(&self, job: &CellJob<F>, frozen: &mut FrozenCache<F>) -> Result<Outcome> {
        each_kind!(self, m => m.run(job, frozen))
    }

    fn check(&self) -> std::result::Result<(), String> {
        each_kind!(self, m => m.check())
    }
}

/// Reads a `[[method]]` table: `name`, `steps` and `lr` are every kind's; the rest must be
/// settings of its `kind`, in range. Errors name the method.
impl TryFrom<toml::Table> for MethodSpec {
    type Error = String;

    fn try_from(mut table: toml::Table) -> std::result::Result<Self, String> {
        let kind = match table.get("kind") {
            Some(toml::Value::String(kind)) => kind.clone(),
            _ => return Err(format!("a [[method]] needs `kind`, one of {KINDS}")),
        };
        let name = match table.remove("name") {
            None => kind.clone(),
            Some(toml::Value::String(name)) => name,
            Some(other) => {
                return Err(format!("method `{kind}`: `name` must be text, not {other}"));
            }
        };
        let at = |message: String| format!("method `{name}`: {message}");
        let mut take = |key: &str| {
            table
                .remove(key)
                .ok_or_else(|| at(format!("`{key}` is missing")))
        };
        let steps: usize = take("steps")?
            .try_into()
            .map_err(|e: toml::de::Error| at(format!("`steps`: {}", e.message())))?;
        let lr: f64 = take("lr")?
            .try_into()
            .map_err(|e: toml::de::Error| at(format!("`lr`: {}", e.message())))?;
        let kind: Kind = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| at(misplaced(e.message(), &kind)))?;
        if steps == 0 {
            return Err(at("steps must be at least 1".into()));
        }
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(at(format!("lr must be positive, not {lr}")));
        }
        kind.check().map_err(at)?;
        Ok(Self {
            name,
            steps,
            lr,
            kind,
        })
    }
}

const KINDS: &str =
    "head-only, full, lora, uniform, fixed, ties, dare, learned, search, select, arrow";

/// serde's "unknown field `x`, expected ..." said as a setting of another kind.
fn misplaced(message: &str, kind: &str) -> String {
    match message.strip_prefix("unknown field ") {
        Some(rest) => {
            let (field, expected) = rest.split_once(", ").unwrap_or((rest, ""));
            format!("{field} does not apply to kind `{kind}` ({expected})")
        }
        None => message.to_string(),
    }
}

/// A learning rate given for the head: positive and finite.
fn check_rate(name: &str, lr: Option<f64>) -> std::result::Result<(), String> {
    match lr {
        Some(lr) if !(lr > 0.0 && lr.is_finite()) => {
            Err(format!("`{name}` must be positive, not {lr}"))
        }
        _ => Ok(()),
    }
}

/// One weight per upstream module, each finite.
fn check_module_weights(weights: &[f32], modules: usize) -> std::result::Result<(), String> {
    if weights.len() != modules {
        return Err(format!(
            "{} weights given for {modules} upstream modules",
            weights.len()
        ));
    }
    match weights.iter().find(|w| !w.is_finite()) {
        Some(w) => Err(format!("`weights` must be finite numbers, not {w}")),
        None => Ok(()),
    }
}

/// A setting in its range, or an error naming it, the range and the value.
fn in_range(
    name: &str,
    value: f64,
    range: &str,
    ok: impl Fn(f64) -> bool,
) -> std::result::Result<(), String> {
    match value.is_finite() && ok(value) {
        true => Ok(()),
        false => Err(format!("`{name}` must be {range}, not {value}")),
    }
}

/// Which method plays each part of DESIGN.md's claims: the first method of each kind, by
/// the name the config gives it.
pub fn claim_roles<'a>(
    methods: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
) -> loramix_report::ClaimRoles {
    let named = |kind: &str| {
        (methods.clone().into_iter())
            .find(|(_, k)| *k == kind)
            .map(|(name, _)| name.to_string())
    };
    loramix_report::ClaimRoles {
        uniform: named(Uniform::KIND),
        learned: named(Learned::KIND),
        full: named(Full::KIND),
        lora: named(Lora::KIND),
    }
}
