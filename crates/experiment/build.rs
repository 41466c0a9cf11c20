//! Records the git revision loramix is built from (`LORAMIX_REVISION`), so that a run's manifest
//! names the code that made it, not whatever repository the run happens to start in.

use std::path::Path;
use std::process::{Command, Stdio};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let git = |args: &[&str]| {
        git(&root, args, None).map(|out| String::from_utf8_lossy(&out).trim().to_string())
    };
    let revision = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) => match uncommitted_digest(&root) {
            Some(digest) => format!("{rev}-dirty-{digest}"),
            None => rev,
        },
        None => "unknown (not built from a git checkout)".into(),
    };
    println!("cargo:rustc-env=LORAMIX_REVISION={revision}");
    // Rebuilt when the commit or any source changes, so the recorded state stays true.
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={git_dir}/HEAD");
        println!("cargo:rerun-if-changed={git_dir}/index");
        // A commit moves the branch HEAD names, not HEAD itself.
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={git_dir}/{branch}");
        }
        println!("cargo:rerun-if-changed={git_dir}/packed-refs");
    }
    for source in SOURCES {
        println!("cargo:rerun-if-changed={}", root.join(source).display());
    }
}

/// The sources that make the binary: what a revision must pin.
const SOURCES: [&str; 3] = ["crates", "Cargo.toml", "Cargo.lock"];

/// A digest of the uncommitted changes to [`SOURCES`] (the diff against HEAD and the untracked
/// files' names and contents), or `None` on a clean tree: two dirty builds with the same digest
/// were built from the same code, so results made by one can be traced to it.
fn uncommitted_digest(root: &Path) -> Option<String> {
    let mut changes = git(
        root,
        &[&["diff", "HEAD", "--binary", "--"][..], &SOURCES[..]].concat(),
        None,
    )?;
    let untracked = git(
        root,
        &[
            &["ls-files", "--others", "--exclude-standard", "--"][..],
            &SOURCES[..],
        ]
        .concat(),
        None,
    )?;
    for file in String::from_utf8_lossy(&untracked).lines() {
        changes.extend_from_slice(file.as_bytes());
        changes.extend(std::fs::read(root.join(file)).unwrap_or_default());
    }
    if changes.is_empty() {
        return None;
    }
    let digest = git(root, &["hash-object", "--stdin"], Some(&changes))?;
    Some(
        String::from_utf8_lossy(&digest)
            .trim()
            .chars()
            .take(12)
            .collect(),
    )
}

/// The standard output of `git -C root args`, fed `input` on its standard input; `None` when git
/// is missing or fails.
fn git(root: &Path, args: &[&str], input: Option<&[u8]>) -> Option<Vec<u8>> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    std::io::Write::write_all(&mut stdin, input.unwrap_or_default()).ok()?;
    drop(stdin);
    let out = child.wait_with_output().ok()?;
    out.status.success().then_some(out.stdout)
}
