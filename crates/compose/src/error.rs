use loramix_lora::AdapterError;

/// Why a composition could not be built. Nothing is changed on the model when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("a composition needs at least one adapter")]
    NoAdapters,
    #[error("{given} weights given for {modules} adapters")]
    WeightCount { given: usize, modules: usize },
    /// An adapter does not fit the base: another fingerprint, an unknown layer or another shape.
    #[error(transparent)]
    Adapter(#[from] AdapterError),
    #[error("the model carries no low-rank update to {action}")]
    NothingComposed { action: &'static str },
    #[error("{name} must be in {range}, got {value}")]
    OutOfRange {
        name: &'static str,
        range: &'static str,
        value: f64,
    },
}

pub(crate) type Result<T> = std::result::Result<T, ComposeError>;
