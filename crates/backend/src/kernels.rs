//! Where the GPU backends keep the kernels they compile and the autotune results they measure.
//!
//! cubecl compiles every kernel at its first launch and autotunes every matmul and reduction
//! shape at its first use. Without a persistent cache a GPU run spends its first steps (tens of
//! seconds) compiling, every time. cubecl only caches compiled kernels when a `cubecl.toml` asks
//! for it, and puts the autotune cache under the `target/` of whatever Cargo project the working
//! directory is in; loramix instead keeps both in one directory per user, unless the user wrote
//! a cubecl config file, which then decides alone.

use std::path::{Path, PathBuf};

/// The environment variable naming the cache directory.
pub const CACHE_VAR: &str = "LORAMIX_KERNEL_CACHE";

/// Config files cubecl reads by itself, in the working directory or any directory above it.
const CUBECL_FILES: [&str; 4] = ["cubecl.toml", "CubeCL.toml", "burn.toml", "Burn.toml"];

/// How the kernel caches were set up.
#[derive(Debug, Clone, PartialEq)]
pub enum KernelCache {
    /// Compiled kernels and autotune results are kept in this directory.
    Dir(PathBuf),
    /// A cubecl config file the user wrote decides (loramix changes nothing).
    UserConfig(PathBuf),
    /// No directory could be named (no `LORAMIX_KERNEL_CACHE`, `XDG_CACHE_HOME` or `HOME`):
    /// kernels are compiled again in every run.
    None,
}

impl std::fmt::Display for KernelCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dir(dir) => write!(
                f,
                "compiled kernels and autotune results are cached in {} (set {CACHE_VAR} to move them)",
                dir.display()
            ),
            Self::UserConfig(file) => {
                write!(f, "kernel caches as {} configures them", file.display())
            }
            Self::None => write!(
                f,
                "no kernel cache (set {CACHE_VAR}): every run compiles its kernels again"
            ),
        }
    }
}

/// The cache directory: `LORAMIX_KERNEL_CACHE`, else `$XDG_CACHE_HOME/loramix/kernels`, else
/// `$HOME/.cache/loramix/kernels` (empty values count as unset, as the XDG spec says).
pub fn cache_dir(
    var: Option<&str>,
    xdg_cache: Option<&str>,
    home: Option<&str>,
) -> Option<PathBuf> {
    let set = |v: Option<&str>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    set(var)
        .or_else(|| set(xdg_cache).map(|d| d.join("loramix").join("kernels")))
        .or_else(|| set(home).map(|d| d.join(".cache").join("loramix").join("kernels")))
}

/// The first cubecl config file in `dir` or a directory above it, as cubecl looks for one.
pub fn user_config(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .flat_map(|d| CUBECL_FILES.iter().map(move |name| d.join(name)))
        .find(|file| file.is_file())
}

/// Points cubecl's kernel and autotune caches at [`cache_dir`], once per process and before
/// any tensor is made; cubecl's own environment variables (`CUBECL_DEBUG_LOG`,
/// `CUBECL_AUTOTUNE_LEVEL`, ...) still apply.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub fn configure() -> KernelCache {
    use cubecl::config::cache::CacheConfig;
    use cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};

    static DONE: std::sync::OnceLock<KernelCache> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let cwd = std::env::current_dir().unwrap_or_default();
        if let Some(file) = user_config(&cwd) {
            return KernelCache::UserConfig(file);
        }
        let var = |name| std::env::var(name).ok();
        let Some(dir) = cache_dir(
            var(CACHE_VAR).as_deref(),
            var("XDG_CACHE_HOME").as_deref(),
            var("HOME").as_deref(),
        ) else {
            return KernelCache::None;
        };
        let mut config = CubeClRuntimeConfig::default().override_from_env();
        config.compilation.cache = Some(CacheConfig::File(dir.clone()));
        config.autotune.cache = CacheConfig::File(dir.clone());
        CubeClRuntimeConfig::set(config);
        KernelCache::Dir(dir)
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dir_prefers_the_variable_then_xdg_then_home() {
        let dir = |v, x, h| cache_dir(v, x, h).map(|d| d.display().to_string());
        assert_eq!(
            dir(Some("/k"), Some("/x"), Some("/h")).as_deref(),
            Some("/k")
        );
        assert_eq!(
            dir(None, Some("/x"), Some("/h")).as_deref(),
            Some("/x/loramix/kernels")
        );
        assert_eq!(
            dir(Some(""), Some(""), Some("/h")).as_deref(),
            Some("/h/.cache/loramix/kernels")
        );
        assert_eq!(dir(None, None, None), None);
    }

    #[test]
    fn a_cubecl_file_above_the_working_directory_is_found() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a").join("b");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(user_config(&deep), None);
        std::fs::write(root.path().join("burn.toml"), "[cubecl]\n").unwrap();
        assert_eq!(user_config(&deep), Some(root.path().join("burn.toml")));
        std::fs::write(deep.join("cubecl.toml"), "").unwrap();
        assert_eq!(user_config(&deep), Some(deep.join("cubecl.toml")));
    }
}
