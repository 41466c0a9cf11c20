//! Which examples of its source each task uses: labels, part, test split, training pool.

use std::collections::BTreeSet;
use std::ops::Range;

use crate::GivenSplits;
use crate::error::Result;
use crate::sampler::{Draw, ShotSampler, balanced_split, grouped_split};
use crate::suite::item::SourceData;
use crate::suite::{Suite, SuiteItem, TaskSpec};
use loramix_rng::derive_seed;

/// A source's splits in one list, so that a position names one example whatever its split
/// (what the leakage check compares): the given training split first, then the validation
/// split (reserved for validation: in no task), then the given test split.
#[derive(Debug)]
pub(crate) struct SourceItems<I> {
    pub items: Vec<I>,
    pub classes: Vec<String>,
    /// Items `..train` are the given training split.
    pub train: usize,
    pub test: Option<Range<usize>>,
    /// The group of each item, where the source has groups that must not cross a split.
    pub groups: Option<Vec<usize>>,
    /// Examples dropped as copies or near copies of an earlier one.
    pub duplicates: usize,
    /// Images the source left out as blank ([`SourceData::blank`]).
    pub blank: usize,
    /// The shape the images are kept at, when not the suite's ([`SourceData::shape`]).
    pub shape: Option<crate::ImageShape>,
}

impl<I: SuiteItem> From<SourceData<I>> for SourceItems<I> {
    /// Keeps each content once (the first copy, in split order): a duplicate could otherwise
    /// sit in an upstream task's training set and a downstream task's test split at once.
    fn from(data: SourceData<I>) -> Self {
        let GivenSplits { train, val, test } = data.splits;
        let classes = train.classes;
        let mut items = train.items;
        let train = items.len();
        items.extend(val.map(|v| v.items).unwrap_or_default());
        let test = test.map(|t| {
            let start = items.len();
            items.extend(t.items);
            start..items.len()
        });
        let mut seen = BTreeSet::new();
        let keep: Vec<bool> = items.iter().map(|i| seen.insert(i.content_key())).collect();
        let mut source = Self {
            items,
            classes,
            train,
            test,
            groups: data.groups,
            duplicates: 0,
            blank: data.blank,
            shape: data.shape,
        };
        source.retain(&keep);
        source
    }
}

impl<I> SourceItems<I> {
    /// Drops every example that is a near copy of an earlier one it keeps (`pairs` are
    /// `(i, j)`, `i < j`): the near copy of a training example is not in the test split.
    /// Returns where each example went.
    pub fn drop_near_copies(&mut self, pairs: &[(usize, usize)]) -> Vec<Option<usize>> {
        let mut by_later: Vec<(usize, usize)> = pairs.iter().map(|&(i, j)| (j, i)).collect();
        by_later.sort_unstable();
        let mut keep = vec![true; self.items.len()];
        for (later, earlier) in by_later {
            if keep[earlier] {
                keep[later] = false;
            }
        }
        self.retain(&keep)
    }

    /// Keeps the items `keep` marks, with the split boundaries and groups that go with them;
    /// returns the new position of each old one.
    fn retain(&mut self, keep: &[bool]) -> Vec<Option<usize>> {
        let mut kept = 0;
        let moved: Vec<Option<usize>> = (keep.iter())
            .map(|&k| {
                kept += usize::from(k);
                k.then(|| kept - 1)
            })
            .collect();
        let before = |end: usize| keep[..end].iter().filter(|&&k| k).count();
        self.train = before(self.train);
        self.test = self.test.clone().map(|t| before(t.start)..before(t.end));
        self.items = kept_of(std::mem::take(&mut self.items), keep);
        self.groups = self.groups.take().map(|g| kept_of(g, keep));
        self.duplicates += keep.len() - kept;
        moved
    }
}

/// The elements of `all` that `keep` marks.
fn kept_of<T>(all: Vec<T>, keep: &[bool]) -> Vec<T> {
    all.into_iter()
        .zip(keep)
        .filter_map(|(x, &k)| k.then_some(x))
        .collect()
}

/// Examples of a task: their positions in its source, with their task labels.
pub(crate) type Picks = Vec<(usize, usize)>;

/// A task's examples as positions in its source, with their task labels.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub classes: Vec<String>,
    pub train: Picks,
    pub test: Picks,
    /// Examples left out as copies of trained ones ([`TaskSpec::drop_leaked`]).
    pub leaked: usize,
}

/// Task label of each source class (`None`: not in the task), and the task's class names.
fn label_map<I: SuiteItem>(
    suite: &Suite<I>,
    task: &TaskSpec<I>,
    source_classes: &[String],
) -> Result<(Vec<Option<usize>>, Vec<String>)> {
    let lookup = |name: &str| {
        source_classes
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| {
                suite.task_error(
                    &task.name,
                    format!(
                        "no class `{name}` in the source (classes: {})",
                        source_classes.join(", ")
                    ),
                )
            })
    };
    let mut map = vec![None; source_classes.len()];
    let classes: Vec<String> = if !task.groups.is_empty() {
        for (id, members) in task.groups.values().enumerate() {
            for name in members {
                let c = lookup(name)?;
                if map[c].replace(id).is_some() {
                    return Err(
                        suite.task_error(&task.name, format!("class `{name}` is in two groups"))
                    );
                }
            }
        }
        task.groups.keys().cloned().collect()
    } else if !task.classes.is_empty() {
        for (id, name) in task.classes.iter().enumerate() {
            map[lookup(name)?] = Some(id);
        }
        task.classes.clone()
    } else {
        map.iter_mut().enumerate().for_each(|(c, m)| *m = Some(c));
        source_classes.to_vec()
    };
    Ok((map, classes))
}

/// The task's examples: its classes' examples of its part of the source, less `leaked` (see
/// [`TaskSpec::drop_leaked`]), split into the test split (the given one, else class-balanced,
/// by whole groups where the source has them) and the training pool (capped).
pub(crate) fn plan<I: SuiteItem>(
    suite: &Suite<I>,
    task: &TaskSpec<I>,
    source: &SourceItems<I>,
    leaked: &BTreeSet<usize>,
) -> Result<Plan> {
    let (map, classes) = label_map(suite, task, &source.classes)?;
    let labelled = |positions: Range<usize>| -> Picks {
        (positions.filter_map(|i| {
            map.get(source.items[i].label())
                .copied()
                .flatten()
                .map(|l| (i, l))
        }))
        .collect()
    };
    let mut candidates = labelled(0..source.train);
    // A source with groups (the glyphs' font families) is parted by whole groups, so no group
    // has examples in two parts.
    let unit = |i: usize| source.groups.as_ref().map_or(i, |g| g[i]);
    candidates.retain(|&(i, _)| task.part.is_none_or(|p| unit(i) % p.of == p.index));
    let mut given = source.test.clone().map(labelled);
    let before = candidates.len() + given.as_ref().map_or(0, Vec::len);
    candidates.retain(|(i, _)| !leaked.contains(i));
    given
        .iter_mut()
        .for_each(|t| t.retain(|(i, _)| !leaked.contains(i)));
    let dropped = before - candidates.len() - given.as_ref().map_or(0, Vec::len);
    let seed = derive_seed(suite.split_seed, &format!("split/{}", task.name));
    let (pool, test) = match given {
        Some(test) if test.is_empty() => {
            return Err(suite.task_error(
                &task.name,
                "the given test split holds none of the task's classes",
            ));
        }
        Some(test) => (candidates, test),
        None => split(suite, task, source, candidates, &classes, seed)?,
    };
    let pool_labels: Vec<usize> = pool.iter().map(|&(_, l)| l).collect();
    let mut kept = ShotSampler::new(&pool_labels, &classes, seed).sample(Draw::Pool {
        cap: task.max_train,
    })?;
    kept.sort_unstable();
    Ok(Plan {
        train: kept.iter().map(|&i| pool[i]).collect(),
        test,
        classes,
        leaked: dropped,
    })
}

/// The training pool and the test split of a task whose data gives no test split.
fn split<I: SuiteItem>(
    suite: &Suite<I>,
    task: &TaskSpec<I>,
    source: &SourceItems<I>,
    candidates: Picks,
    classes: &[String],
    seed: u64,
) -> Result<(Picks, Picks)> {
    let labels: Vec<usize> = candidates.iter().map(|&(_, l)| l).collect();
    let test_per_class = match task.test_per_class.or(suite.test_per_class) {
        Some(n) => n,
        None => default_test_per_class(suite, task, &labels, classes)?,
    };
    let split = match &source.groups {
        Some(groups) => {
            let of: Vec<usize> = candidates.iter().map(|&(i, _)| groups[i]).collect();
            grouped_split(&labels, &of, classes, test_per_class, seed)
        }
        None => balanced_split(&labels, classes, test_per_class, seed),
    }
    .map_err(|e| suite.task_error(&task.name, e.to_string()))?;
    let at = |positions: Vec<usize>| positions.into_iter().map(|i| candidates[i]).collect();
    Ok((at(split.train), at(split.test)))
}

/// Half the smallest class's examples, at most 100: a test split that small data allows,
/// leaving as many examples to train on.
fn default_test_per_class<I: SuiteItem>(
    suite: &Suite<I>,
    task: &TaskSpec<I>,
    labels: &[usize],
    classes: &[String],
) -> Result<usize> {
    let mut counts = vec![0; classes.len()];
    labels.iter().for_each(|&l| counts[l] += 1);
    match counts.iter().enumerate().min_by_key(|&(_, n)| n) {
        Some((class, &n)) if n < 2 => Err(suite.task_error(
            &task.name,
            format!(
                "class `{}` has {n} examples: at least 2 are needed to test and train on",
                classes[class]
            ),
        )),
        smallest => Ok(smallest.map_or(0, |(_, &n)| (n / 2).min(100))),
    }
}

/// Number of examples of `downstream` (train and test) that `trained` trains on.
pub(crate) fn overlap(trained: &Plan, downstream: &Plan) -> usize {
    let used: BTreeSet<usize> = downstream
        .train
        .iter()
        .chain(&downstream.test)
        .map(|&(i, _)| i)
        .collect();
    trained
        .train
        .iter()
        .filter(|(i, _)| used.contains(i))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ImageItem;
    use std::path::Path;

    /// Eight examples of classes a and b in four groups of two (0 0 1 1 2 2 3 3), with tasks
    /// on parts 0 and 1 of 2.
    #[test]
    fn a_source_with_groups_is_parted_by_whole_groups() {
        let toml = r#"
name = "groups"
modality = "image"
image = { channels = 1, height = 1, width = 1 }
split_seed = 1
test_per_class = 1

[pretrain]
name = "even"
source = "glyph-letters"
part = { index = 0, of = 2 }

[[upstream]]
name = "also-even"
source = "glyph-letters"
part = { index = 0, of = 2 }

[[downstream]]
name = "odd"
source = "glyph-letters"
part = { index = 1, of = 2 }
shift = "covariate"
"#;
        let suite = Suite::<ImageItem>::from_toml(toml, Path::new("g.toml")).unwrap();
        let items = (0..8)
            .map(|i| ImageItem {
                pixels: vec![i as f32 / 8.0],
                label: i % 2,
            })
            .collect();
        let source = SourceItems {
            items,
            classes: vec!["a".into(), "b".into()],
            train: 8,
            test: None,
            groups: Some(vec![0, 0, 1, 1, 2, 2, 3, 3]),
            duplicates: 0,
            blank: 0,
            shape: None,
        };
        let groups_of = |task: &TaskSpec<ImageItem>| -> BTreeSet<usize> {
            let plan = plan(&suite, task, &source, &BTreeSet::new()).unwrap();
            (plan.train.iter().chain(&plan.test))
                .map(|&(i, _)| i / 2)
                .collect()
        };
        let tasks: Vec<&TaskSpec<ImageItem>> = suite.tasks().map(|(_, t)| t).collect();
        assert_eq!(groups_of(tasks[0]), BTreeSet::from([0, 2]));
        assert_eq!(groups_of(tasks[2]), BTreeSet::from([1, 3]));
    }
}
