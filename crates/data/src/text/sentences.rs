//! One sentence per line, one file per class (`<class>.txt`): the layout of the Lingua
//! language-identification sentences the fetch step extracts.

use std::path::Path;

use crate::error::{Result, invalid, list_files};
use crate::text::{class_of, read_text};
use crate::{LabelledDataset, TextItem};

/// Every non-blank line of every `.txt` file in `dir`, trimmed, labelled by the file's stem
/// (classes: sorted stems). Other files (the `LICENSE`) are skipped.
pub fn load_sentence_files(dir: &Path) -> Result<LabelledDataset<TextItem>> {
    let files = list_files(dir, |p| {
        p.is_file() && p.extension().is_some_and(|e| e == "txt")
    })?;
    if files.is_empty() {
        return Err(invalid(dir, "no `.txt` sentence files"));
    }
    let mut items = Vec::new();
    let mut classes = Vec::new();
    for (label, path) in files.iter().enumerate() {
        let text = read_text(path)?;
        let before = items.len();
        items.extend(
            (text.lines().map(str::trim).filter(|l| !l.is_empty())).map(|line| TextItem {
                text: line.to_owned(),
                label,
            }),
        );
        if items.len() == before {
            return Err(invalid(path, "holds no sentence"));
        }
        classes.push(class_of(path));
    }
    Ok(LabelledDataset::new(items, classes))
}
