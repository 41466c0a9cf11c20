//! ONNX files read without a protobuf compiler or a C library: just what it takes to find a
//! backbone's weights in a graph ([`proto`]) and write them as a Hugging Face checkpoint
//! ([`dinov2`]).

pub mod dinov2;
pub mod proto;

use std::path::{Path, PathBuf};

pub use proto::{Graph, Initializer, Node};

/// What went wrong reading an ONNX file or converting it.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed ONNX protobuf at byte {offset}: {detail}")]
    Malformed { offset: usize, detail: String },
    #[error("unsupported ONNX content: {0}")]
    Unsupported(String),
    #[error("not the expected graph: {0}")]
    Graph(String),
}

/// Reads the graph of the ONNX file at `path`.
pub fn read(path: &Path) -> Result<Graph, OnnxError> {
    let bytes = std::fs::read(path).map_err(|source| OnnxError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    proto::parse_model(&bytes)
}
