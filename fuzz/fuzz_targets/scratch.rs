//! A folder of this process where a target writes the fuzzer's bytes as the files a reader
//! expects (every reader takes paths).

use std::path::PathBuf;

/// An emptied scratch folder.
pub fn folder() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loramix-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `bytes` to `name` under `dir` (creating folders) and returns its path.
pub fn file(dir: &std::path::Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}
