use std::path::PathBuf;

/// The committed fixtures, laid out like the fetch step's cache.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}
