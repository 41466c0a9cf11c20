use burn::data::dataset::Dataset;

use crate::Labelled;

/// Items in memory with the names of their classes (`label` indexes `classes`). The whole
/// few-shot protocol works on small, index-addressed sets, so nothing is streamed from disk.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledDataset<I> {
    pub items: Vec<I>,
    pub classes: Vec<String>,
}

impl<I> LabelledDataset<I> {
    pub fn new(items: Vec<I>, classes: Vec<String>) -> Self {
        Self { items, classes }
    }
}

impl<I: Labelled> LabelledDataset<I> {
    /// The same items labelled by the classes `onto`, matched by name (a held-out split read on
    /// its own numbers its classes its own way); a class `onto` lacks is the error `missing`
    /// gives for it.
    pub fn relabelled<E>(self, onto: &[String], missing: impl Fn(&str) -> E) -> Result<Self, E> {
        let ids = self
            .classes
            .iter()
            .map(|c| onto.iter().position(|o| o == c).ok_or_else(|| missing(c)))
            .collect::<Result<Vec<_>, E>>()?;
        let mut items = self.items;
        for item in &mut items {
            item.set_label(ids[item.label()]);
        }
        Ok(Self::new(items, onto.to_vec()))
    }
}

impl<I: Clone + Send + Sync> Dataset<I> for LabelledDataset<I> {
    fn get(&self, index: usize) -> Option<I> {
        self.items.get(index).cloned()
    }

    fn len(&self) -> usize {
        self.items.len()
    }
}

/// A dataset as its owner split it: training items and, where given, validation and test
/// items. All three share `train`'s class names, so a label means the same class in each.
#[derive(Debug, Clone, PartialEq)]
pub struct GivenSplits<I> {
    pub train: LabelledDataset<I>,
    pub val: Option<LabelledDataset<I>>,
    pub test: Option<LabelledDataset<I>>,
}

/// Data without given splits: all of it is training data.
impl<I> From<LabelledDataset<I>> for GivenSplits<I> {
    fn from(train: LabelledDataset<I>) -> Self {
        Self {
            train,
            val: None,
            test: None,
        }
    }
}

/// Class names sorted and deduplicated, and a lookup from name to class id: how every loader
/// that reads labels as strings turns them into ids.
pub(crate) fn sorted_classes<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let set: std::collections::BTreeSet<&str> = names.into_iter().collect();
    set.into_iter().map(str::to_owned).collect()
}

/// The id of `name` in sorted `classes`.
pub(crate) fn class_id(classes: &[String], name: &str) -> Option<usize> {
    classes.binary_search_by(|c| c.as_str().cmp(name)).ok()
}
