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
    /// A layer's update holds NaN or infinity (weights so large that products overflow, a
    /// non-finite scale): refused before any decomposition, which would never converge on it.
    #[error("layer `{layer}`: the composed update is not finite ({detail})")]
    NotFinite { layer: String, detail: String },
    /// The SVD of a layer's update did not converge within its iteration cap.
    #[error("layer `{layer}`: the SVD did not converge in {iterations} iterations")]
    SvdDiverged { layer: String, iterations: usize },
    #[error("rank {rank} is out of range: 1 to {most} (the widest layer's smaller side)")]
    RankOutOfRange { rank: usize, most: usize },
    /// Adapters that cannot be routed together (Arrow stacks them per layer).
    #[error(
        "{origin}: {problem}; Arrow routes adapters that adapt the same layers at the same ranks"
    )]
    Unroutable { origin: String, problem: String },
    #[error("{name} must be in {range}, got {value}")]
    OutOfRange {
        name: &'static str,
        range: &'static str,
        value: f64,
    },
}

pub(crate) type Result<T> = std::result::Result<T, ComposeError>;
