//! Every sweep file committed under `results/` reads with today's row types and writes back
//! the same text: the studies accumulate across versions, so a change to the rows must never
//! change what a committed row says.

use loramix_experiment::rows::CellRow;
use loramix_experiment::store::{read_rows, write_csv};
use std::path::{Path, PathBuf};

const CELL_HEADER: &str =
    "task,shift,method,k,seed,accuracy,trainable_params,train_seconds,samples_per_sec,config";

/// The committed files of cell rows (merged `sweep.csv` files and shards).
fn cell_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../results");
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "csv")
                && path.to_string_lossy().contains("sweep")
                && std::fs::read_to_string(&path)
                    .unwrap()
                    .starts_with(CELL_HEADER)
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn committed_cell_rows_read_and_write_back_unchanged() {
    let files = cell_files();
    assert!(files.len() >= 3, "committed sweep files: {files:?}");
    let dir = tempfile::tempdir().unwrap();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // Whole lines only: a shard may be appending its next row right now.
        let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        let rows: Vec<CellRow> = read_rows(&file).unwrap();
        assert_eq!(rows.len(), whole.lines().count() - 1, "{}", file.display());
        let copy = dir.path().join("copy.csv");
        write_csv(&copy, &rows).unwrap();
        let written = std::fs::read_to_string(&copy).unwrap();
        let old_header = whole.lines().next().unwrap();
        let new_header = written.lines().next().unwrap();
        assert!(
            new_header.starts_with(old_header),
            "{}: {new_header}",
            file.display()
        );
        let added = new_header.split(',').count() - old_header.split(',').count();
        // Each line the same text, with empty columns for those the file predates.
        for (old, new) in whole.lines().zip(written.lines()).skip(1) {
            assert_eq!(
                format!("{old}{}", ",".repeat(added)),
                new,
                "{}",
                file.display()
            );
        }
        assert_eq!(read_rows::<CellRow>(&copy).unwrap(), rows);
    }
}
