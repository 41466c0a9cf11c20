//! The run directory `runs/<name>/` and its append-only CSV files.
//!
//! Layout: `base-<hash>/` (pretrained model), `upstream-<hash>/<task>/` (adapters),
//! `sweep/<shard>.csv` and `sweep/<shard>.weights.csv` (finished cells, appended one line at a
//! time), `sweep/tuning/<shard>.csv` and `.candidates.csv` (the tuning tasks' cells and every
//! factor they tried, when rates are chosen on them), `similarity-<hash>.csv`, then what `report` writes: `results.csv`, `summary.md`,
//! `plots/`, `learned_weights.csv`, `manifest.json`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use loramix_report::TaskFacts;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ExperimentError, Result, io};

/// Which part of the sweep this process runs: cells `i`, `i + n`, `i + 2n`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    pub fn contains(&self, cell: usize) -> bool {
        cell % self.count == self.index
    }

    /// File stem of this shard's results.
    pub fn stem(&self) -> String {
        if self.count == 1 {
            "all".into()
        } else {
            format!("shard-{}-of-{}", self.index, self.count)
        }
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `i/n` with `0 <= i < n`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let parse = |v: &str| v.trim().parse::<usize>().ok();
        match s.split_once('/').map(|(i, n)| (parse(i), parse(n))) {
            Some((Some(index), Some(count))) if index < count => Ok(Shard { index, count }),
            _ => Err(format!(
                "expected `i/n` with 0 <= i < n (e.g. `0/4`), not `{s}`"
            )),
        }
    }
}

/// Paths of one experiment's artifacts.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(runs: &Path, name: &str) -> Self {
        Self {
            root: runs.join(name),
        }
    }

    pub fn base(&self, hash: &str) -> PathBuf {
        self.root.join(format!("base-{hash}"))
    }

    pub fn upstream(&self, hash: &str) -> PathBuf {
        self.root.join(format!("upstream-{hash}"))
    }

    pub fn similarity(&self, hash: &str) -> PathBuf {
        self.root.join(format!("similarity-{hash}.csv"))
    }

    pub fn sweep(&self) -> PathBuf {
        self.root.join("sweep")
    }

    pub fn results(&self, shard: Shard) -> PathBuf {
        self.sweep().join(format!("{}.csv", shard.stem()))
    }

    pub fn weights(&self, shard: Shard) -> PathBuf {
        self.sweep().join(format!("{}.weights.csv", shard.stem()))
    }

    /// The folder of the tuning tasks' cells (`transfer.tuning.select = "tuning-tasks"`).
    pub fn tuning(&self) -> PathBuf {
        self.sweep().join("tuning")
    }

    /// The shard's tuning cells, one row each.
    pub fn tuning_cells(&self, shard: Shard) -> PathBuf {
        self.tuning().join(format!("{}.csv", shard.stem()))
    }

    /// Every rate factor each of the shard's tuning cells tried, with its validation score.
    pub fn tuning_candidates(&self, shard: Shard) -> PathBuf {
        self.tuning()
            .join(format!("{}.candidates.csv", shard.stem()))
    }

    /// Every shard's file of one kind (`.csv` results or `.weights.csv`).
    pub fn shard_files(&self, weights: bool) -> Result<Vec<PathBuf>> {
        files_ending(&self.sweep(), ".csv", ".weights.csv", weights)
    }

    /// Every shard's tuning files of one kind (`.csv` cells or `.candidates.csv`).
    pub fn tuning_files(&self, candidates: bool) -> Result<Vec<PathBuf>> {
        files_ending(&self.tuning(), ".csv", ".candidates.csv", candidates)
    }
}

/// The files of `dir` (none if it does not exist) whose names end with `kind`, and with
/// `special` exactly when `special_wanted`, sorted.
fn files_ending(
    dir: &Path,
    kind: &str,
    special: &str,
    special_wanted: bool,
) -> Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(kind) && name.ends_with(special) == special_wanted
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Every row of `files`, in order.
pub fn read_all<T: DeserializeOwned>(files: &[PathBuf]) -> Result<Vec<T>> {
    let mut rows = Vec::new();
    for file in files {
        rows.extend(read_rows(file)?);
    }
    Ok(rows)
}

/// Rows of a CSV file (empty if it does not exist); a bad row is an error naming the line.
/// A last line without its newline is a row still being written (by an interrupted process,
/// or by another shard right now) and is not read.
pub fn read_rows<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = fs::read(path).map_err(io(path))?;
    let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    csv::Reader::from_reader(&text[..whole])
        .deserialize()
        .map(|row| {
            row.map_err(|e| ExperimentError::Artifact {
                path: path.to_path_buf(),
                message: format!("unreadable row ({e}); delete the row or the file to redo it"),
            })
        })
        .collect()
}

/// An append-only CSV file. Each row is written with one `write` and synced, so an interrupted
/// process leaves whole rows plus at most one partial line, which [`Appender::open`] removes.
pub struct Appender {
    file: File,
    path: PathBuf,
    /// The file holds no whole line yet: the first rows written bring the header.
    needs_header: bool,
    /// The file's header line, checked against the rows' columns on the first append.
    header: Option<String>,
}

impl Appender {
    /// Opens (creating it empty) and cuts a trailing partial line.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io(path))?;
        let mut text = Vec::new();
        file.read_to_end(&mut text).map_err(io(path))?;
        if !text.is_empty() && text.last() != Some(&b'\n') {
            let keep = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            eprintln!(
                "{}: dropping a partly written last row (an interrupted run); it will be redone",
                path.display()
            );
            file.set_len(keep as u64).map_err(io(path))?;
            file.seek(SeekFrom::End(0)).map_err(io(path))?;
            file.sync_data().map_err(io(path))?;
        }
        Ok(Self {
            file,
            path: path.to_path_buf(),
            needs_header: text.iter().all(|&b| b != b'\n'),
            header: (text.split(|&b| b == b'\n').next())
                .map(|line| String::from_utf8_lossy(line).into_owned()),
        })
    }

    /// Appends `rows` as one write (after the header, in an empty file), then syncs. A file
    /// written by a loramix whose rows had other columns is first rewritten with these
    /// columns (the ones it lacks left empty), so every row stays readable.
    pub fn append<T: Serialize + DeserializeOwned>(&mut self, rows: &[T]) -> Result<()> {
        if let Some(first) = rows.first()
            && let Some(header) = self.header.take()
            && !self.needs_header
            && header != columns(first, &self.path)?
        {
            let kept: Vec<T> = read_rows(&self.path)?;
            write_csv(&self.path, &kept)?;
            *self = Self::open(&self.path)?;
            self.header = None;
        }
        let bytes = csv_bytes(rows, self.needs_header, &self.path)?;
        self.file.write_all(&bytes).map_err(io(&self.path))?;
        self.needs_header &= rows.is_empty();
        self.file.sync_data().map_err(io(&self.path))
    }
}

/// The CSV header line of `row`'s type.
fn columns<T: Serialize>(row: &T, path: &Path) -> Result<String> {
    let bytes = csv_bytes(std::slice::from_ref(row), true, path)?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(text.lines().next().unwrap_or_default().to_string())
}

/// `rows` as CSV text, with their header line first if `headers`; errors name `path`.
fn csv_bytes<T: Serialize>(rows: &[T], headers: bool, path: &Path) -> Result<Vec<u8>> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(headers)
        .from_writer(Vec::new());
    for row in rows {
        writer.serialize(row).map_err(csv_error(path))?;
    }
    writer.into_inner().map_err(|e| ExperimentError::Artifact {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn csv_error(path: &Path) -> impl FnOnce(csv::Error) -> ExperimentError {
    let path = path.to_path_buf();
    move |e| ExperimentError::Artifact {
        path,
        message: e.to_string(),
    }
}

/// Writes `rows` as a CSV file with a header, atomically (see [`write_atomic`]).
pub fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    write_atomic(path, &csv_bytes(rows, true, path)?)
}

/// Writes `bytes` to `path` through a temporary file and a rename, so readers never see half.
/// The temporary name is per process, so shards writing the same file do not collide.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    fs::write(&tmp, bytes).map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))
}

/// A JSON artifact written by [`write_json`].
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&text).map_err(|e| ExperimentError::Artifact {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Writes `value` as pretty JSON, whole or not at all.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_vec_pretty(value).expect("artifacts serialise");
    write_atomic(path, &text)
}

/// Seconds each stage took, accumulated over invocations (`timings.json` in the run folder).
#[derive(Debug, Default, Serialize, serde::Deserialize)]
pub struct Timings {
    pub seconds: BTreeMap<String, f64>,
}

impl Timings {
    /// The run's timings so far (none before the first stage ends).
    pub fn read(run: &RunDir) -> Result<Self> {
        let path = run.root.join("timings.json");
        match path.exists() {
            true => read_json(&path),
            false => Ok(Self::default()),
        }
    }

    /// Adds `seconds` to `stage` in the run's `timings.json`: a stage's figure sums the
    /// processes that ran it (shards side by side count each). The file is replaced whole, so
    /// it is never torn, and the read-add-write holds `.timings.lock`, so two shards ending
    /// at once both count.
    pub fn add(run: &RunDir, stage: &str, seconds: f64) -> Result<()> {
        fs::create_dir_all(&run.root).map_err(io(&run.root))?;
        let lock_path = run.root.join(".timings.lock");
        let lock = File::create(&lock_path).map_err(io(&lock_path))?;
        lock.lock().map_err(io(&lock_path))?;
        let mut timings = Self::read(run)?;
        *timings.seconds.entry(stage.to_string()).or_default() += seconds;
        write_json(&run.root.join("timings.json"), &timings)
    }
}

/// `tasks.json`: what the report's plots need to know of each downstream task (classes, and
/// the size of `full`), written by the sweep, which has the data loaded.
fn task_facts_path(run: &RunDir) -> PathBuf {
    run.root.join("tasks.json")
}

pub fn write_task_facts(run: &RunDir, facts: &BTreeMap<String, TaskFacts>) -> Result<()> {
    fs::create_dir_all(&run.root).map_err(io(&run.root))?;
    write_json(&task_facts_path(run), facts)
}

/// The facts the sweep wrote, or none (the plots then leave out chance lines and sizes).
pub fn read_task_facts(run: &RunDir) -> Result<BTreeMap<String, TaskFacts>> {
    let path = task_facts_path(run);
    match path.exists() {
        true => read_json(&path),
        false => Ok(BTreeMap::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Row {
        a: u32,
        #[serde(default)]
        b: Option<String>,
    }

    #[test]
    fn rows_with_new_columns_rewrite_an_older_file_and_keep_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.csv");
        fs::write(&path, "a\n1\n2\n").unwrap();
        let mut appender = Appender::open(&path).unwrap();
        // A cell that chose no weights appends nothing; the check waits for a row.
        appender.append::<Row>(&[]).unwrap();
        let new = Row {
            a: 3,
            b: Some("x".into()),
        };
        appender.append(std::slice::from_ref(&new)).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "a,b\n1,\n2,\n3,x\n");
        let rows: Vec<Row> = read_rows(&path).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2], new);
        // The same columns: appended as they are.
        appender.append(&[Row { a: 4, b: None }]).unwrap();
        assert!(fs::read_to_string(&path).unwrap().ends_with("3,x\n4,\n"));
    }

    #[test]
    fn stage_times_added_at_once_by_many_processes_all_count() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path(), "study");
        // Threads open the lock file apart, so they contend as shard processes do.
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..25 {
                        Timings::add(&run, "transfer", 0.5).unwrap();
                    }
                });
            }
        });
        assert_eq!(Timings::read(&run).unwrap().seconds["transfer"], 100.0);
    }
}
