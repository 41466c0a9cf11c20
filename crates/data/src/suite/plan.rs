//! Which examples of its source each task uses: labels, part, test split, training pool.

use std::collections::BTreeSet;

use crate::LabelledDataset;
use crate::error::Result;
use crate::sampler::{ShotSampler, Shots, balanced_split};
use crate::suite::{Suite, SuiteItem, TaskSpec};
use loramix_rng::derive_seed;

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
    source: &LabelledDataset<I>,
) -> Result<Plan> {
    let (map, classes) = label_map(suite, task, &source.classes)?;
    let candidates: Vec<(usize, usize)> = source
        .items
        .iter()
        .enumerate()
        .filter(|(i, _)| task.part.is_none_or(|p| i % p.of == p.index))
        .filter_map(|(i, item)| map.get(item.label()).copied().flatten().map(|l| (i, l)))
        .collect();
    let labels: Vec<usize> = candidates.iter().map(|&(_, l)| l).collect();
    let test_per_class = task.test_per_class.unwrap_or(suite.test_per_class);
    let seed = derive_seed(suite.split_seed, &format!("split/{}", task.name));
    let split = balanced_split(&labels, &classes, test_per_class, seed)
        .map_err(|e| suite.task_error(&task.name, e.to_string()))?;
    let train_labels: Vec<usize> = split.train.iter().map(|&i| labels[i]).collect();
    let mut kept = ShotSampler::new(&train_labels, &classes, seed).sample(Shots::Full {
        cap: task.max_train,
    })?;
    kept.sort_unstable();
    Ok(Plan {
        train: kept.iter().map(|&i| candidates[split.train[i]]).collect(),
        test: split.test.iter().map(|&i| candidates[i]).collect(),
        classes,
    })
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
