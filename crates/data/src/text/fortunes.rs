//! Fortune cookie files (Debian `fortunes`, `fortunes-min`): one file per category, records
//! separated by lines holding only `%`.

use std::path::Path;

use crate::error::{Result, invalid, list_files};
use crate::text::{class_of, read_text};
use crate::{LabelledDataset, TextItem};

/// Every record of every category file in `dir` (files with an extension, such as the `.dat`
/// indexes, are skipped), labelled by category (classes: sorted file names).
pub fn load_fortunes(dir: &Path) -> Result<LabelledDataset<TextItem>> {
    let files = list_files(dir, |p| p.is_file() && p.extension().is_none())?;
    if files.is_empty() {
        return Err(invalid(dir, "no category files"));
    }
    let mut items = Vec::new();
    let mut classes = Vec::new();
    for (label, path) in files.iter().enumerate() {
        items.extend(
            records(&read_text(path)?)
                .into_iter()
                .map(|text| TextItem { text, label }),
        );
        classes.push(class_of(path));
    }
    Ok(LabelledDataset::new(items, classes))
}

fn records(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines().chain(std::iter::once("%")) {
        if line.trim() == "%" {
            let record = current.trim();
            if !record.is_empty() {
                out.push(record.to_owned());
            }
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::records;

    #[test]
    fn splits_on_percent_lines() {
        let text = "A penny saved.\n%\n\tTwo\n\tlines\n%\n%\nlast, 100% sure";
        assert_eq!(
            records(text),
            vec!["A penny saved.", "Two\n\tlines", "last, 100% sure"]
        );
    }
}
