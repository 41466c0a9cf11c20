//! The one place that maps a cargo feature to a burn backend.
//!
//! Every other crate is generic over `B: Backend`; binaries and tests name [`Inference`] and
//! [`Train`] from here. When several features are enabled the most specialised wins
//! (cuda > wgpu > tch > ndarray > flex), so `--features ndarray` switches away from the default
//! `flex` without `--no-default-features`.

#[cfg(not(any(
    feature = "flex",
    feature = "ndarray",
    feature = "tch",
    feature = "wgpu",
    feature = "cuda"
)))]
compile_error!(
    "loramix-backend: enable one of the features `flex`, `ndarray`, `tch`, `wgpu`, `cuda`."
);

pub mod kernels;

#[cfg(feature = "cuda")]
mod selected {
    pub type Inference = burn::backend::Cuda;
    pub type Unfused = burn_cubecl::CubeBackend<cubecl::cuda::CudaRuntime, f32, i32, u8>;
    pub const NAME: &str = "cuda";
    pub const COMPILES_KERNELS: bool = true;
    pub const BATCH_PARTS: usize = 1;

    pub(super) use super::default_device as device;
}

#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
mod selected {
    pub type Inference = burn::backend::Wgpu;
    pub type Unfused = burn_cubecl::CubeBackend<cubecl::wgpu::WgpuRuntime, f32, i32, u32>;
    pub const NAME: &str = "wgpu";
    pub const COMPILES_KERNELS: bool = true;
    pub const BATCH_PARTS: usize = 1;

    pub(super) use super::default_device as device;
}

#[cfg(all(feature = "tch", not(any(feature = "wgpu", feature = "cuda"))))]
mod selected {
    pub type Inference = burn::backend::LibTorch;
    pub const NAME: &str = "tch";
    pub const COMPILES_KERNELS: bool = false;
    /// libtorch splits each operation over its own threads (one per core); more parts only
    /// contend for them (BENCHMARKS.md, "libtorch").
    pub const BATCH_PARTS: usize = 1;

    /// The first CUDA device when the libtorch found has CUDA and sees a GPU, else the CPU.
    pub fn device() -> super::Device {
        if tch::Cuda::is_available() {
            burn_tch::LibTorchDevice::Cuda(0)
        } else {
            burn_tch::LibTorchDevice::Cpu
        }
    }
}

#[cfg(all(
    feature = "ndarray",
    not(any(feature = "tch", feature = "wgpu", feature = "cuda"))
))]
mod selected {
    pub type Inference = burn::backend::NdArray;
    pub const NAME: &str = "ndarray";
    pub const COMPILES_KERNELS: bool = false;
    pub const BATCH_PARTS: usize = 8;

    pub(super) use super::default_device as device;
}

#[cfg(all(
    feature = "flex",
    not(any(
        feature = "ndarray",
        feature = "tch",
        feature = "wgpu",
        feature = "cuda"
    ))
))]
mod selected {
    pub type Inference = burn::backend::Flex;
    pub const NAME: &str = "flex";
    pub const COMPILES_KERNELS: bool = false;
    pub const BATCH_PARTS: usize = 8;

    pub(super) use super::default_device as device;
}

/// Backend for inference and frozen-feature extraction (no autodiff graph).
pub type Inference = selected::Inference;

/// Backend for training: [`Inference`] with reverse-mode autodiff.
pub type Train = burn::backend::Autodiff<Inference>;

/// [`Inference`] without burn's fusion layer (each operation its own kernel), which
/// `loramix bench --no-fusion` measures against the fused default.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub type Unfused = selected::Unfused;

/// Device type shared by [`Inference`] and [`Train`].
pub type Device = burn::tensor::Device<Inference>;

/// Name of the compiled-in backend, as written in run manifests and benchmark tables.
pub const NAME: &str = selected::NAME;

/// The backend compiles a kernel per input shape at run time (cubecl: wgpu, cuda), so inputs
/// are padded to few shapes and each stage is warmed up before it is timed.
pub const COMPILES_KERNELS: bool = selected::COMPILES_KERNELS;

/// The backend runs on a GPU (or another accelerator), so larger inputs are affordable: the
/// default input size of a pretrained ViT is 224 px there, 112 px on the CPU.
pub fn accelerator() -> bool {
    COMPILES_KERNELS || device() != Device::default()
}

/// The backend's own default device: every backend but libtorch runs on it.
#[cfg_attr(
    all(feature = "tch", not(any(feature = "wgpu", feature = "cuda"))),
    allow(dead_code)
)]
fn default_device() -> Device {
    Device::default()
}

/// Sets up the compiled-in backend for this process; call it first thing in a binary, before
/// any tensor is made. On the GPU backends it points the kernel caches at one directory per
/// user ([`kernels::configure`]) and returns a line saying where, for the user.
pub fn init() -> Option<String> {
    #[cfg(any(feature = "cuda", feature = "wgpu"))]
    return Some(format!("{NAME}: {}", kernels::configure()));
    #[cfg(not(any(feature = "cuda", feature = "wgpu")))]
    None
}

/// The variables that choose libtorch's CPU code paths (ATen's vector kernels, MKL, oneDNN),
/// each with the value [`pin_cpu_code_paths`] gives it: AVX2, which every x86 CPU these
/// studies ran on has.
pub const CPU_CODE_PATHS: [(&str, &str); 3] = [
    ("ATEN_CPU_CAPABILITY", "avx2"),
    ("MKL_CBWR", "AVX2"),
    ("ONEDNN_MAX_CPU_ISA", "AVX2"),
];

/// On libtorch, sets each of [`CPU_CODE_PATHS`] the environment leaves unset, so a study's
/// modules trained on one x86 machine are the same bits when rebuilt on another: left to
/// choose, libtorch takes AVX-512 kernels where the CPU has them, and all 24 text modules
/// rebuilt on an AVX2 machine trained alike but differed in their last bits
/// (docs/studies.md). Call it before the first tensor is made; a no-op on other backends.
pub fn pin_cpu_code_paths() {
    #[cfg(all(feature = "tch", target_arch = "x86_64"))]
    for (name, value) in CPU_CODE_PATHS {
        if std::env::var_os(name).is_none() {
            // SAFETY: called from `main` before any other thread exists to read the
            // environment concurrently.
            unsafe { std::env::set_var(name, value) };
        }
    }
}

/// The default device of the compiled-in backend (the first GPU, or the CPU).
pub fn device() -> Device {
    selected::device()
}

/// Parts (threads) each training and inference batch is cut into by default: 8 on the CPU
/// backends, whose kernels parallelise only large operations (measured on 2 cores, BENCHMARKS.md:
/// 8 parts ran the reference train step about 2x faster than 1, and faster than 2 or 4), and 1 on
/// the GPU backends, where one device runs the whole batch, and on libtorch, which threads every
/// operation itself.
pub const DEFAULT_BATCH_PARTS: usize = selected::BATCH_PARTS;

/// The environment variable that overrides [`DEFAULT_BATCH_PARTS`].
pub const BATCH_PARTS_VAR: &str = "LORAMIX_BATCH_PARTS";

/// Parts each batch is cut into: `LORAMIX_BATCH_PARTS` when set, else [`DEFAULT_BATCH_PARTS`].
/// Results depend on it only through float rounding.
pub fn batch_parts() -> Result<usize, String> {
    parse_batch_parts(std::env::var(BATCH_PARTS_VAR).ok().as_deref())
}

/// [`batch_parts`] given the variable's value, if set.
pub fn parse_batch_parts(value: Option<&str>) -> Result<usize, String> {
    match value.map(|v| (v, v.trim().parse::<usize>())) {
        None => Ok(DEFAULT_BATCH_PARTS),
        Some((_, Ok(parts))) if parts >= 1 => Ok(parts),
        Some((value, _)) => Err(format!(
            "{BATCH_PARTS_VAR} must be a whole number of at least 1, not {value:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_parts_default_or_a_positive_whole_number() {
        assert_eq!(parse_batch_parts(None), Ok(DEFAULT_BATCH_PARTS));
        assert_eq!(parse_batch_parts(Some(" 3 ")), Ok(3));
        for bad in ["0", "-1", "two", ""] {
            let err = parse_batch_parts(Some(bad)).unwrap_err();
            assert!(
                err.contains(BATCH_PARTS_VAR) && err.contains("at least 1"),
                "{err}"
            );
        }
    }
}
