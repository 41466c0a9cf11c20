//! The one place that maps a cargo feature to a burn backend.
//!
//! Every other crate is generic over `B: Backend`; binaries and tests name [`Inference`] and
//! [`Train`] from here. When several features are enabled the most specialised wins
//! (cuda > wgpu > ndarray > flex), so `--features ndarray` switches away from the default `flex`
//! without `--no-default-features`.

#[cfg(not(any(
    feature = "flex",
    feature = "ndarray",
    feature = "wgpu",
    feature = "cuda"
)))]
compile_error!("loramix-backend: enable one of the features `flex`, `ndarray`, `wgpu`, `cuda`.");

#[cfg(feature = "cuda")]
mod selected {
    pub type Inference = burn::backend::Cuda;
    pub const NAME: &str = "cuda";
}

#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
mod selected {
    pub type Inference = burn::backend::Wgpu;
    pub const NAME: &str = "wgpu";
}

#[cfg(all(feature = "ndarray", not(any(feature = "wgpu", feature = "cuda"))))]
mod selected {
    pub type Inference = burn::backend::NdArray;
    pub const NAME: &str = "ndarray";
}

#[cfg(all(
    feature = "flex",
    not(any(feature = "ndarray", feature = "wgpu", feature = "cuda"))
))]
mod selected {
    pub type Inference = burn::backend::Flex;
    pub const NAME: &str = "flex";
}

/// Backend for inference and frozen-feature extraction (no autodiff graph).
pub type Inference = selected::Inference;

/// Backend for training: [`Inference`] with reverse-mode autodiff.
pub type Train = burn::backend::Autodiff<Inference>;

/// Device type shared by [`Inference`] and [`Train`].
pub type Device = burn::tensor::Device<Inference>;

/// Name of the compiled-in backend, as written in run manifests and benchmark tables.
pub const NAME: &str = selected::NAME;

/// The default device of the compiled-in backend (the first GPU, or the CPU).
pub fn device() -> Device {
    Device::default()
}
