use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use thiserror::Error;

use crate::role::Role;

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
        "leakage: {role} task `{task}` trains on {overlap} examples of {of_role} task `{downstream}`"
    )]
    Leakage {
        role: Role,
        /// Downstream or tuning: the role of the task whose examples leaked.
        of_role: Role,
        task: String,
        downstream: String,
        overlap: usize,
    },
    /// Downstream examples that are near copies (not exact ones) of examples another source
    /// gives a pretraining or upstream task; `rule` says when two examples are near copies.
    #[error(
        "leakage: {count} examples of {of_role} task `{downstream}` are near copies of examples {role} task `{task}` trains on ({rule}), e.g. {example}; `drop_leaked = true` on the {of_role} task leaves them out of it"
    )]
    NearCopies {
        role: Role,
        of_role: Role,
        task: String,
        downstream: String,
        count: usize,
        rule: &'static str,
        example: String,
    },
    #[error("task `{task}` has no training examples (check its classes, part and max_train)")]
    EmptyTraining { task: String },
    #[error("suite `{suite}`, task `{task}`: {message}")]
    Task {
        suite: String,
        task: String,
        message: String,
    },
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Reads a whole file, naming it in the error. Only regular files are read: a FIFO would
/// block forever and a device such as `/dev/zero` never ends.
pub(crate) fn read(path: &std::path::Path) -> Result<Vec<u8>> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    if !std::fs::metadata(path).map_err(io)?.is_file() {
        return Err(invalid(
            path,
            "not a regular file (a folder, FIFO or device); give a data file",
        ));
    }
    std::fs::read(path).map_err(io)
}

/// The most bytes a gzip file may inflate to, unless `LORAMIX_MAX_DECOMPRESSED_BYTES` says
/// otherwise: far above every fetched file (Fashion-MNIST's largest inflates to 47 MB), far
/// below what a small "gzip bomb" would exhaust memory with.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 1 << 30;

/// The environment variable that overrides [`DEFAULT_MAX_DECOMPRESSED_BYTES`].
pub const MAX_DECOMPRESSED_VAR: &str = "LORAMIX_MAX_DECOMPRESSED_BYTES";

fn max_decompressed() -> u64 {
    std::env::var(MAX_DECOMPRESSED_VAR)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_MAX_DECOMPRESSED_BYTES)
}

/// The file's bytes, gunzipped when they start with the gzip magic; a stream that inflates
/// beyond the limit ([`DEFAULT_MAX_DECOMPRESSED_BYTES`]) is refused, not read to the end.
pub(crate) fn read_decompressed(path: &Path) -> Result<Vec<u8>> {
    read_decompressed_at_most(path, max_decompressed())
}

fn read_decompressed_at_most(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let raw = read(path)?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut out = Vec::new();
    GzDecoder::new(raw.as_slice())
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| DataError::Format {
            path: path.to_path_buf(),
            offset: out.len() as u64,
            message: format!(
                "corrupt or truncated gzip stream after this many decompressed bytes: {e}"
            ),
        })?;
    if out.len() as u64 > limit {
        return Err(DataError::Format {
            path: path.to_path_buf(),
            offset: limit,
            message: format!(
                "inflates to more than {limit} bytes; refused (raise {MAX_DECOMPRESSED_VAR} if the file is genuine)"
            ),
        });
    }
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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_gzip_stream_that_inflates_beyond_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bomb.gz");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![0u8; 2_000_000]).unwrap();
        std::fs::write(&path, encoder.finish().unwrap()).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() < 10_000);

        let err = read_decompressed_at_most(&path, 1000)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bomb.gz") && err.contains("inflates to more than 1000 bytes"),
            "{err}"
        );
        assert_eq!(
            read_decompressed_at_most(&path, 2_000_000).unwrap().len(),
            2_000_000
        );
    }
}
