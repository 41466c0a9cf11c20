//! Reading and merging the pipeline's CSV shards, and writing the merged results.
//!
//! A sweep may be split over machines, each writing its own shard; shards can overlap when a
//! job was rerun. A *cell* is one measurement (for results: task, method, k, seed). A row that
//! repeats a cell with the same measured value is dropped; one that disagrees is an error that
//! names both places, because silently keeping either would bias the report.

use crate::error::{Location, Measurement, ReportError, Result};
use crate::rows::{ResultRow, SimilarityRow, WeightRow};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A row type the reader can check and merge.
pub trait Row: DeserializeOwned {
    /// Names the measurement; rows with the same key describe the same cell.
    fn key(&self) -> String;
    /// What must agree between two rows of one cell, as shown in a conflict.
    fn measured(&self) -> String;
    /// Out-of-range values, reported with the row's line.
    fn check(&self) -> std::result::Result<(), String>;
}

impl Row for ResultRow {
    fn key(&self) -> String {
        format!(
            "result (task {}, method {}, k {}, seed {})",
            self.task, self.method, self.k, self.seed
        )
    }

    /// Timings may differ between reruns of one cell; accuracy, shift and size may not.
    fn measured(&self) -> String {
        format!(
            "accuracy {} ({} shift, {} trainable params)",
            self.accuracy,
            self.shift.name(),
            self.trainable_params
        )
    }

    fn check(&self) -> std::result::Result<(), String> {
        if !(0.0..=1.0).contains(&self.accuracy) {
            return Err(format!("accuracy {} is not in [0, 1]", self.accuracy));
        }
        for (name, v) in [
            ("train_seconds", self.train_seconds),
            ("samples_per_sec", self.samples_per_sec),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name} {v} is not a finite, non-negative number"));
            }
        }
        Ok(())
    }
}

impl Row for WeightRow {
    fn key(&self) -> String {
        format!(
            "weight (task {}, method {}, k {}, seed {}, layer {}, module {})",
            self.task, self.method, self.k, self.seed, self.layer, self.module
        )
    }

    fn measured(&self) -> String {
        self.weight.to_string()
    }

    fn check(&self) -> std::result::Result<(), String> {
        finite("weight", self.weight)
    }
}

impl Row for SimilarityRow {
    fn key(&self) -> String {
        format!("similarity (task {}, module {})", self.task, self.module)
    }

    fn measured(&self) -> String {
        self.cka.to_string()
    }

    fn check(&self) -> std::result::Result<(), String> {
        finite("cka", self.cka)?;
        self.cka_debiased
            .map_or(Ok(()), |v| finite("cka_debiased", v))
    }
}

fn finite(name: &str, v: f64) -> std::result::Result<(), String> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(format!("{name} {v} is not finite"))
    }
}

/// Reads and merges `results.csv` shards, keeping rows in file order (the order of first
/// appearance is the method order of the report).
pub fn read_results(paths: &[PathBuf]) -> Result<Vec<ResultRow>> {
    read_merged(paths)
}

/// Reads and merges `learned_weights.csv` shards.
pub fn read_weights(paths: &[PathBuf]) -> Result<Vec<WeightRow>> {
    read_merged(paths)
}

/// Reads and merges `similarity.csv` files.
pub fn read_similarity(paths: &[PathBuf]) -> Result<Vec<SimilarityRow>> {
    read_merged(paths)
}

/// Writes merged results sorted by task, method, k (numeric, `full` last) and seed, so the
/// file does not depend on shard order.
pub fn write_results(path: &Path, rows: &[ResultRow]) -> Result<()> {
    let mut sorted: Vec<&ResultRow> = rows.iter().collect();
    sorted
        .sort_by(|a, b| (&a.task, &a.method, a.k, a.seed).cmp(&(&b.task, &b.method, b.k, b.seed)));
    let fail = |source| ReportError::CsvWrite {
        path: path.to_path_buf(),
        source,
    };
    let mut writer = csv::Writer::from_path(path).map_err(fail)?;
    for row in sorted {
        writer.serialize(row).map_err(fail)?;
    }
    writer.flush().map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_merged<R: Row>(paths: &[PathBuf]) -> Result<Vec<R>> {
    let mut located = Vec::new();
    for path in paths {
        located.extend(read_file::<R>(path)?);
    }
    merge(located)
}

/// Merges rows read from anywhere (each with where it was read): a repeat of a cell with the
/// same measurement is dropped, a disagreeing one is an error naming both places. The one merge
/// rule of every shard and resume, for this crate's readers and the pipeline's report stage.
pub fn merge<R: Row>(located: impl IntoIterator<Item = (R, Location)>) -> Result<Vec<R>> {
    let mut first_seen: HashMap<String, (usize, Location)> = HashMap::new();
    let mut rows: Vec<R> = Vec::new();
    for (row, at) in located {
        let key = row.key();
        match first_seen.get(&key) {
            Some((i, first)) => {
                let (kept, new) = (rows[*i].measured(), row.measured());
                if kept != new {
                    return Err(ReportError::Conflict {
                        cell: key,
                        first: Box::new(Measurement {
                            at: first.clone(),
                            value: kept,
                        }),
                        second: Box::new(Measurement { at, value: new }),
                    });
                }
            }
            None => {
                first_seen.insert(key, (rows.len(), at));
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

fn read_file<R: Row>(path: &Path) -> Result<Vec<(R, Location)>> {
    let bytes = std::fs::read(path).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    // csv's own line count skips blank lines; counting newlines before the record's first byte
    // gives the line an editor shows.
    let at = |position: Option<&csv::Position>| {
        let start = position.map_or(0, |p| p.byte() as usize).min(bytes.len());
        let skipped = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        let newlines = bytes[..start + skipped]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        Location {
            path: path.to_path_buf(),
            line: newlines as u64 + 1,
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes.as_slice());
    let headers = reader
        .headers()
        .map_err(|e| parse_error(&e, at(e.position()), None))?
        .clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| parse_error(&e, at(e.position()), None))?;
        let here = at(record.position());
        let row: R = record
            .deserialize(Some(&headers))
            .map_err(|e| parse_error(&e, here.clone(), Some(&headers)))?;
        row.check().map_err(|message| ReportError::Parse {
            at: here.clone(),
            message,
        })?;
        rows.push((row, here));
    }
    Ok(rows)
}

/// Turns csv's message into one that names the column, without repeating the position.
fn parse_error(e: &csv::Error, at: Location, headers: Option<&csv::StringRecord>) -> ReportError {
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("expected {expected_len} fields, found {len} (truncated or garbled row)"),
        csv::ErrorKind::Deserialize { err, .. } => {
            // csv knows the column of a bad number; `shift` and `k` name theirs in the message.
            let column = err
                .field()
                .and_then(|i| headers.and_then(|h| h.get(i as usize)));
            match column {
                Some(name) => format!("column `{name}`: {}", err.kind()),
                None => err.kind().to_string(),
            }
        }
        _ => e.to_string(),
    };
    ReportError::Parse { at, message }
}
