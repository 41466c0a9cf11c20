//! Text corpora, each returned as labelled items with sorted class names.

mod brown;
mod csv_text;
mod fortunes;
mod sentences;
mod spam;
mod wordnet;

use std::path::Path;

pub use brown::load_brown;
pub use csv_text::{load_csv_splits, load_csv_text, load_tweets};
pub use fortunes::load_fortunes;
pub use sentences::load_sentence_files;
pub use spam::load_spam_assassin;
pub use wordnet::load_wordnet_glosses;

use crate::error::{Result, read};

/// The class a per-class file holds: its name without the extension (`spam-1.jsonl`,
/// `danish.txt`, a fortune file `food`).
fn class_of(path: &Path) -> String {
    path.file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// A file as text; invalid UTF-8 (old corpora have Latin-1 bytes) is replaced, not rejected.
fn read_text(path: &Path) -> Result<String> {
    Ok(String::from_utf8_lossy(&read(path)?).into_owned())
}
