use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

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

/// The file's bytes, gunzipped when they start with the gzip magic.
pub(crate) fn read_decompressed(path: &Path) -> Result<Vec<u8>> {
    let raw = read(path)?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut out = Vec::new();
    GzDecoder::new(raw.as_slice())
        .read_to_end(&mut out)
        .map_err(|e| DataError::Format {
            path: path.to_path_buf(),
            offset: out.len() as u64,
            message: format!(
                "corrupt or truncated gzip stream after this many decompressed bytes: {e}"
            ),
        })?;
    Ok(out)
}

/// The files in `dir` that `keep` accepts, sorted by path.
pub(crate) fn list_files(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    let mut files = std::fs::read_dir(dir)
        .and_then(|entries| {
            entries
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<Vec<_>>>()
        })
        .map_err(|source| DataError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    files.retain(|p| keep(p));
    files.sort();
    Ok(files)
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
