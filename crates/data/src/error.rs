use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong while loading, sampling or materialising data. Parse errors name
/// the file and the byte offset or line where the input stopped making sense.
#[derive(Debug, Error)]
pub enum DataError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Binary input (IDX, gzip) that is truncated, corrupt or of the wrong kind. `offset` counts
    /// decompressed bytes for gzip files.
    #[error("{}: byte {offset}: {message}", path.display())]
    Format {
        path: PathBuf,
        offset: u64,
        message: String,
    },
    /// Text input (CSV, JSON, corpora) with a bad record; `line` is 1-based.
    #[error("{}: line {line}: {message}", path.display())]
    Line {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{}: {source}", path.display())]
    Image {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    /// Input that parses but cannot be used (no classes, unknown column, ...).
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("{split}: class `{class}` has {available} examples, {needed} needed")]
    TooFewExamples {
        split: String,
        class: String,
        available: usize,
        needed: usize,
    },
    #[error(
        "leakage: {role} task `{task}` trains on {overlap} examples of downstream task `{downstream}`"
    )]
    Leakage {
        role: String,
        task: String,
        downstream: String,
        overlap: usize,
    },
    #[error("suite `{suite}`, task `{task}`: {message}")]
    Task {
        suite: String,
        task: String,
        message: String,
    },
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Reads a whole file, naming it in the error.
pub(crate) fn read(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn invalid(path: &std::path::Path, message: impl Into<String>) -> DataError {
    DataError::Invalid {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

pub(crate) fn line_error(
    path: &std::path::Path,
    line: u64,
    message: impl Into<String>,
) -> DataError {
    DataError::Line {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}
