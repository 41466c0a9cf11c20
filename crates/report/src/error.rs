//! One error type for the crate; every variant names the file (and line) it is about, so a bad
//! shard can be found without rerunning the sweep.

use std::path::PathBuf;

/// A place in an input file: `path:line` (1-based, as an editor shows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: u64,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)
    }
}

/// One side of a conflict: where a cell was read and what it held there.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub at: Location,
    pub value: String,
}

impl std::fmt::Display for Measurement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} has {}", self.at, self.value)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A row that is truncated, garbled or out of range.
    #[error("{at}: {message}")]
    Parse { at: Location, message: String },
    /// The same cell measured twice with different results (e.g. two shards that disagree).
    #[error("{cell} differs: {first}, {second}")]
    Conflict {
        cell: String,
        first: Box<Measurement>,
        second: Box<Measurement>,
    },
    #[error("{}: {source}", path.display())]
    CsvWrite { path: PathBuf, source: csv::Error },
    /// plotters could not draw a plot.
    #[error("{}: {message}", path.display())]
    Plot { path: PathBuf, message: String },
    /// The analysis plan handed to the report has a bad shape.
    #[error("{0}")]
    Plan(crate::plan::PlanError),
    #[error("{}: {source}", path.display())]
    Image {
        path: PathBuf,
        source: image::ImageError,
    },
}

pub type Result<T> = std::result::Result<T, ReportError>;
