//! WordNet 3.0 synset glosses (`data.noun`, `data.verb` of Debian `wordnet-base`), labelled by
//! lexicographer file: 26 noun and 15 verb semantic categories (`noun.animal`, `verb.motion`, ...).

use std::path::Path;

use crate::dataset::{class_id, sorted_classes};
use crate::error::{Result, line_error};
use crate::text::read_text;
use crate::{LabelledDataset, TextItem};

/// Lexicographer file names by number, from WordNet's `lexnames(5WN)` (not shipped by the
/// Debian package, and fixed since WordNet 2.0).
const LEXNAMES: [&str; 45] = [
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
];

/// The gloss (text after `|`) of every synset in a WordNet `data.*` file, labelled by lexname
/// (classes: the sorted lexnames present). Licence lines (indented) are skipped.
pub fn load_wordnet_glosses(path: &Path) -> Result<LabelledDataset<TextItem>> {
    let mut rows = Vec::new();
    for (i, line) in read_text(path)?.lines().enumerate() {
        if line.starts_with(' ') || line.trim().is_empty() {
            continue;
        }
        let bad = |m: &str| line_error(path, i as u64 + 1, m.to_owned());
        let (fields, gloss) = line
            .split_once('|')
            .ok_or_else(|| bad("no `|` before the gloss"))?;
        let lexname = fields
            .split_whitespace()
            .nth(1)
            .and_then(|f| f.parse::<usize>().ok())
            .and_then(|n| LEXNAMES.get(n))
            .ok_or_else(|| bad("second field is not a lexicographer file number (00-44)"))?;
        rows.push((gloss.trim().to_owned(), *lexname));
    }
    let classes = sorted_classes(rows.iter().map(|(_, l)| *l));
    let items = rows
        .into_iter()
        .map(|(text, lexname)| TextItem {
            text,
            label: class_id(&classes, lexname).unwrap_or_default(),
        })
        .collect();
    Ok(LabelledDataset::new(items, classes))
}
