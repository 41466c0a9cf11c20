//! Where `compose`, `predict` and `export-peft` write. An output is built beside its final path
//! and renamed into place only when complete, so a failure never leaves a half-written output;
//! a rename replaces a symbolic link instead of writing through it; and an input is never
//! overwritten. Each is checked before any work starts, so a bad `--out` costs no training.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{ExperimentError, Result, io};

/// An output (a folder or one file) being built in a staging copy beside `target` (a random
/// name, created exclusively, so nothing can be planted there), to replace `target` on
/// [`Staged::commit`]; dropped without a commit, the staging copy is removed.
#[derive(Debug)]
pub struct Staged {
    target: PathBuf,
    staging: Staging,
}

#[derive(Debug)]
enum Staging {
    Folder(tempfile::TempDir),
    File(tempfile::NamedTempFile),
}

/// What an output is: a folder holding only files named in `ours` (what the command writes,
/// so that a rerun may replace an earlier output; folders named with a trailing `/`), or a
/// single file.
#[derive(Debug, Clone, Copy)]
pub enum Kind<'a> {
    Folder { ours: &'a [&'a str] },
    File,
}

fn refuse(target: &Path, why: String) -> ExperimentError {
    ExperimentError::Invalid(format!("--out {}: {why}", target.display()))
}

/// The folder `target` is written in.
fn parent_of(target: &Path) -> PathBuf {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A staging copy for `target` in `parent`, with the permissions an ordinary folder or file
/// gets (a temporary one is private to its owner).
fn stage(target: &Path, parent: &Path, kind: Kind) -> Result<Staging> {
    use std::os::unix::fs::PermissionsExt;
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let prefix = format!(".{name}.partial-");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix);
    Ok(match kind {
        Kind::Folder { .. } => {
            builder.permissions(fs::Permissions::from_mode(0o755));
            Staging::Folder(builder.tempdir_in(parent).map_err(io(parent))?)
        }
        Kind::File => {
            builder.permissions(fs::Permissions::from_mode(0o644));
            Staging::File(builder.tempfile_in(parent).map_err(io(parent))?)
        }
    })
}

/// Checks that `target` can be written as `kind` without touching anything else, before any
/// work: a path that names a file or folder (not `.` or `..`), not a symbolic link, not one
/// of `inputs`, in a folder where files can be created (made if missing), and, if it exists, of
/// the same kind (a folder holding only regular files the command writes).
pub fn check(target: &Path, kind: Kind, inputs: &[&Path]) -> Result<()> {
    let parent = check_path(target, kind, inputs)?;
    stage(target, &parent, kind).map(drop)
}

/// [`check`] but for the staging probe; returns the folder `target` goes in (made if missing).
fn check_path(target: &Path, kind: Kind, inputs: &[&Path]) -> Result<PathBuf> {
    // Path::file_name reads `out/.` as `out`; a rename onto it would not do what it says.
    let text = target.as_os_str().to_string_lossy();
    let dotted = [".", ".."]
        .iter()
        .any(|d| text == *d || text.ends_with(&format!("/{d}")));
    if target.file_name().is_none() || dotted {
        return Err(refuse(target, "names no file or folder".into()));
    }
    if let Ok(found) = fs::canonicalize(target) {
        for input in inputs {
            if fs::canonicalize(input).is_ok_and(|i| i == found) {
                return Err(refuse(
                    target,
                    format!(
                        "is the input {}; writing there would overwrite it",
                        input.display()
                    ),
                ));
            }
        }
    }
    match fs::symlink_metadata(target) {
        Ok(meta) => check_existing(target, &meta, kind)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(target)(e)),
    }
    let parent = parent_of(target);
    fs::create_dir_all(&parent).map_err(io(&parent))?;
    Ok(parent)
}

fn check_existing(target: &Path, meta: &fs::Metadata, kind: Kind) -> Result<()> {
    if meta.file_type().is_symlink() {
        return Err(refuse(
            target,
            "is a symbolic link; give the real path (outputs are never written through links)"
                .into(),
        ));
    }
    match kind {
        Kind::File if meta.is_dir() => Err(refuse(target, "is a folder; give a file name".into())),
        Kind::File => Ok(()),
        Kind::Folder { .. } if !meta.is_dir() => {
            Err(refuse(target, "exists and is not a folder".into()))
        }
        Kind::Folder { ours } => {
            for entry in fs::read_dir(target).map_err(io(target))? {
                let entry = entry.map_err(io(target))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let ours = match entry.file_type() {
                    Ok(t) if t.is_file() => ours.contains(&name.as_str()),
                    Ok(t) if t.is_dir() => ours.contains(&format!("{name}/").as_str()),
                    _ => false,
                };
                if !ours {
                    return Err(refuse(
                        target,
                        format!(
                            "holds `{name}`, which this command does not write; give a new or empty folder (an earlier output of the same command is replaced)"
                        ),
                    ));
                }
            }
            Ok(())
        }
    }
}

impl Staged {
    /// Checks `target` (see [`check`]) and starts its staging copy beside it.
    pub fn begin(target: &Path, kind: Kind, inputs: &[&Path]) -> Result<Self> {
        let parent = check_path(target, kind, inputs)?;
        Ok(Self {
            target: target.to_path_buf(),
            staging: stage(target, &parent, kind)?,
        })
    }

    /// Where to write: the staging folder, or the staging file.
    pub fn path(&self) -> &Path {
        match &self.staging {
            Staging::Folder(dir) => dir.path(),
            Staging::File(file) => file.path(),
        }
    }

    /// Puts the finished output in place of `target` (an earlier output there is replaced).
    pub fn commit(self) -> Result<()> {
        let target = self.target;
        let folder = match self.staging {
            Staging::File(file) => {
                return file
                    .persist(&target)
                    .map(drop)
                    .map_err(|e| io(&target)(e.error));
            }
            Staging::Folder(folder) => folder,
        };
        if !fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
            let staged = folder.keep();
            return fs::rename(&staged, &target).map_err(io(&target));
        }
        // An earlier output: swapped out whole, or (a mount point, a folder whose parent is
        // read-only) replaced file by file, each file by one rename.
        let old = tempfile::Builder::new()
            .prefix(".old-")
            .tempdir_in(parent_of(&target))
            .map_err(io(&target))?;
        let aside = old.path().join("out");
        if fs::rename(&target, &aside).is_ok() {
            let staged = folder.keep();
            if let Err(e) = fs::rename(&staged, &target) {
                let _ = fs::rename(&aside, &target);
                let _ = fs::remove_dir_all(&staged);
                return Err(io(&target)(e));
            }
            return Ok(());
        }
        for entry in fs::read_dir(folder.path()).map_err(io(folder.path()))? {
            let from = entry.map_err(io(folder.path()))?.path();
            let to = target.join(from.file_name().unwrap_or_default());
            fs::rename(&from, &to).map_err(io(&to))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: Kind = Kind::Folder {
        ours: &["a.json", "b.bin"],
    };

    #[test]
    fn a_folder_appears_only_when_committed_and_replaces_an_earlier_output() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let staged = Staged::begin(&out, OURS, &[]).unwrap();
        fs::write(staged.path().join("a.json"), "1").unwrap();
        assert!(!out.exists());
        staged.commit().unwrap();
        assert_eq!(fs::read_to_string(out.join("a.json")).unwrap(), "1");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode, 0o755,
            "an ordinary folder, not a private temporary one"
        );

        let again = Staged::begin(&out, OURS, &[]).unwrap();
        fs::write(again.path().join("b.bin"), "2").unwrap();
        again.commit().unwrap();
        assert!(!out.join("a.json").exists());
        assert_eq!(fs::read_to_string(out.join("b.bin")).unwrap(), "2");
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no staging leftovers");
    }

    #[test]
    fn a_failed_output_leaves_nothing_and_keeps_the_earlier_one() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        fs::write(out.join("a.json"), "old").unwrap();
        {
            let staged = Staged::begin(&out, OURS, &[]).unwrap();
            fs::write(staged.path().join("a.json"), "half").unwrap();
        }
        assert_eq!(fs::read_to_string(out.join("a.json")).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn links_inputs_and_foreign_files_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        fs::write(&victim, "keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = Staged::begin(&link, Kind::File, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");

        let with_link = dir.path().join("with-link");
        fs::create_dir(&with_link).unwrap();
        std::os::unix::fs::symlink(&victim, with_link.join("a.json")).unwrap();
        let err = check(&with_link, OURS, &[]).unwrap_err().to_string();
        assert!(err.contains("`a.json`"), "{err}");

        let input = dir.path().join("input");
        fs::create_dir(&input).unwrap();
        fs::write(input.join("a.json"), "input").unwrap();
        let err = check(&dir.path().join("./input"), OURS, &[&input])
            .unwrap_err()
            .to_string();
        assert!(err.contains("overwrite"), "{err}");

        // Paths that name no file or folder, or lie under a file.
        for bad in [
            dir.path().join("x/."),
            dir.path().join(".."),
            victim.join("sub"),
        ] {
            assert!(check(&bad, OURS, &[]).is_err(), "{}", bad.display());
        }

        fs::write(with_link.join("notes.txt"), "mine").unwrap();
        assert!(check(&dir.path().join("victim.txt"), OURS, &[]).is_err());
        assert!(check(&with_link, Kind::File, &[]).is_err());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
    }
}
