use std::path::PathBuf;

/// Why a stage stopped. Every message names the file, task or method involved.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Config { path: PathBuf, message: String },
    #[error("method `{method}`: {message}")]
    Method { method: String, message: String },
    #[error("{0}")]
    Data(#[from] loramix_data::DataError),
    #[error("{0}")]
    Adapter(#[from] loramix_lora::AdapterError),
    #[error("{0}")]
    Compose(#[from] loramix_compose::ComposeError),
    /// A model checkpoint (config.json, model.safetensors) that cannot be read.
    #[error("{0}")]
    Checkpoint(#[from] loramix_models::CheckpointError),
    /// A PEFT adapter that cannot be read or written.
    #[error("{0}")]
    Peft(#[from] loramix_peft::PeftError),
    #[error("{context}: {source}")]
    Train {
        context: String,
        source: loramix_models::TrainError,
    },
    #[error("{}: {message}", path.display())]
    Artifact { path: PathBuf, message: String },
    #[error("{0}")]
    Report(#[from] loramix_report::ReportError),
    /// A model whose features overflow: an update that overwhelms the base shows only in the
    /// forward pass. The caller says which candidate.
    #[error("the model's features of the training examples hold NaN or infinity")]
    NonFiniteFeatures,
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, ExperimentError>;

/// Attach the path to an I/O error.
pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ExperimentError {
    let path = path.into();
    move |source| ExperimentError::Io { path, source }
}
