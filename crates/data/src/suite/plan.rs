//! Which examples of its source each task uses: labels, part, test split, training pool.

use std::collections::BTreeSet;
use std::ops::Range;

use crate::GivenSplits;
use crate::error::Result;
use crate::sampler::{Draw, ShotSampler, balanced_split};
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
    /// Examples dropped as copies of an earlier one.
    pub duplicates: usize,
}

impl<I: SuiteItem> From<GivenSplits<I>> for SourceItems<I> {
    /// Keeps each content once (the first copy, in split order): a duplicate could otherwise
    /// sit in an upstream task's training set and a downstream task's test split at once.
    fn from(splits: GivenSplits<I>) -> Self {
        let mut seen = BTreeSet::new();
        let mut duplicates = 0;
        let mut keep = |items: Vec<I>| -> Vec<I> {
            let before = items.len();
            let kept: Vec<I> = (items.into_iter())
                .filter(|item| seen.insert(item.content_key()))
                .collect();
            duplicates += before - kept.len();
            kept
        };
        let mut items = keep(splits.train.items);
        let train = items.len();
        let val = splits.val.map(|v| keep(v.items)).unwrap_or_default();
        items.extend(val);
        let test = splits.test.map(|t| {
            let start = items.len();
            items.extend(keep(t.items));
            start..items.len()
        });
        Self {
            items,
            classes: splits.train.classes,
            train,
            test,
            duplicates,
        }
    }
}

/// A task's examples as positions in its source, with their task labels.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub classes: Vec<String>,
    pub train: Vec<(usize, usize)>,
    pub test: Vec<(usize, usize)>,
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

pub(crate) fn plan<I: SuiteItem>(
    suite: &Suite<I>,
    task: &TaskSpec<I>,
    source: &SourceItems<I>,
) -> Result<Plan> {
    let (map, classes) = label_map(suite, task, &source.classes)?;
    let labelled = |positions: Range<usize>| {
        positions.filter_map(|i| {
            map.get(source.items[i].label())
                .copied()
                .flatten()
                .map(|l| (i, l))
        })
    };
    let candidates: Vec<(usize, usize)> = labelled(0..source.train)
        .filter(|(i, _)| task.part.is_none_or(|p| i % p.of == p.index))
        .collect();
    let seed = derive_seed(suite.split_seed, &format!("split/{}", task.name));
    let (pool, test): (Vec<_>, Vec<_>) = match &source.test {
        Some(given) => {
            let test: Vec<_> = labelled(given.clone()).collect();
            if test.is_empty() {
                return Err(suite.task_error(
                    &task.name,
                    "the given test split holds none of the task's classes",
                ));
            }
            (candidates, test)
        }
        None => {
            let labels: Vec<usize> = candidates.iter().map(|&(_, l)| l).collect();
            let test_per_class = match task.test_per_class.or(suite.test_per_class) {
                Some(n) => n,
                None => default_test_per_class(suite, task, &labels, &classes)?,
            };
            let split = balanced_split(&labels, &classes, test_per_class, seed)
                .map_err(|e| suite.task_error(&task.name, e.to_string()))?;
            let at = |positions: Vec<usize>| positions.into_iter().map(|i| candidates[i]).collect();
            (at(split.train), at(split.test))
        }
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
    })
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
