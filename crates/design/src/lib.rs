//! The experiment design's vocabulary, shared by the suite files, the experiment files, the
//! sweep's CSV rows and the report: [`Shift`] (how a downstream task differs from the upstream
//! ones) and [`Shot`] (labelled examples per class). One type each, so a value read from a
//! config reaches `results.csv` and the report without being turned into a string and parsed
//! back.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How a downstream task differs from the upstream tasks. The derived order (covariate, label,
/// task) is the order of the report's sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum Shift {
    /// Same labels, other inputs (transformed, or from another source).
    Covariate,
    /// Same inputs, other classes or another labelling.
    Label,
    /// Another dataset altogether.
    Task,
}

impl Shift {
    pub const ALL: [Shift; 3] = [Shift::Covariate, Shift::Label, Shift::Task];

    /// The name used in configs, CSV files and file names.
    pub fn name(self) -> &'static str {
        match self {
            Shift::Covariate => "covariate",
            Shift::Label => "label",
            Shift::Task => "task",
        }
    }
}

impl fmt::Display for Shift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Shift {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Shift::ALL
            .into_iter()
            .find(|shift| shift.name() == s.trim())
            .ok_or_else(|| format!("shift must be `covariate`, `label` or `task`, not `{s}`"))
    }
}

impl TryFrom<String> for Shift {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Shift> for &'static str {
    fn from(shift: Shift) -> &'static str {
        shift.name()
    }
}

/// Labelled training examples per class: `K(k)` with k >= 1, or `Full`, the task's whole
/// (capped) training pool. The derived order puts every `K` in numeric order and `Full` last,
/// the column order of every table and plot.
///
/// Written as a number or `"full"` in TOML and JSON, and as `1` or `full` in CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawShot", into = "RawShot")]
pub enum Shot {
    K(usize),
    Full,
}

/// What a shot count looks like in a file: a number, or a name (`full`, or a number read as
/// text, as CSV cells are).
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum RawShot {
    K(u64),
    Name(String),
}

impl fmt::Display for Shot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shot::K(k) => write!(f, "{k}"),
            Shot::Full => f.write_str("full"),
        }
    }
}

impl FromStr for Shot {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("shots are a whole number of at least 1 or `full`, not `{s}`");
        match s.trim() {
            "full" => Ok(Shot::Full),
            k => match k.parse::<usize>() {
                Ok(0) | Err(_) => Err(bad()),
                Ok(k) => Ok(Shot::K(k)),
            },
        }
    }
}

impl TryFrom<RawShot> for Shot {
    type Error = String;

    fn try_from(raw: RawShot) -> Result<Self, String> {
        match raw {
            RawShot::K(k) => k.to_string().parse(),
            RawShot::Name(name) => name.parse(),
        }
    }
}

impl From<Shot> for RawShot {
    fn from(shot: Shot) -> Self {
        match shot {
            Shot::K(k) => RawShot::K(k as u64),
            Shot::Full => RawShot::Name("full".into()),
        }
    }
}
