//! The few-shot protocol's sampling: a class-balanced test split fixed per task, and k-shot
//! training sets that are exact per class, nested across k and disjoint from the test split.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{DataError, Result};
use loramix_design::Shot;
use loramix_rng::{Rng, derive_seed};

/// Which training examples a run sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Draw {
    /// Exactly `k` per class.
    PerClass(usize),
    /// The whole training pool, optionally capped (classes are drawn round-robin, so a capped
    /// set stays balanced as long as the classes last).
    Pool { cap: Option<usize> },
}

impl Draw {
    /// The draw behind a shot count: k per class, or `full` as at most `full_per_class` per
    /// class of `classes`.
    pub fn of(shot: Shot, full_per_class: usize, classes: usize) -> Self {
        match shot {
            Shot::K(k) => Draw::PerClass(k),
            Shot::Full => Draw::Pool {
                cap: Some(full_per_class * classes),
            },
        }
    }
}

/// Positions (into the list the split was made from) of the test and training examples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// Draws `test_per_class` examples of every class for testing; the rest is the training pool.
/// Depends only on the labels and the seed, so every method of a sweep tests on the same set.
/// Fails when a class has fewer than `test_per_class` examples.
pub fn balanced_split(
    labels: &[usize],
    classes: &[String],
    test_per_class: usize,
    seed: u64,
) -> Result<Split> {
    let sampler = ShotSampler::new(labels, classes, seed);
    let mut test = sampler.take(test_per_class, "test split")?;
    test.sort_unstable();
    let mut is_test = vec![false; labels.len()];
    test.iter().for_each(|&i| is_test[i] = true);
    let train = (0..labels.len()).filter(|&i| !is_test[i]).collect();
    Ok(Split { train, test })
}

/// A test split as [`balanced_split`] draws it, made of whole groups (`groups[i]` is the group
/// of example `i`, e.g. its font family): groups, in a seeded order, join the test side while
/// a class they hold still lacks test examples; the test split is `test_per_class` examples of
/// each class drawn from them, the training pool every example of the other groups. Examples
/// of test groups beyond the test split are in neither, so no group is on both sides. Fails
/// when the groups cannot fill the test split or leave a class nothing to train on.
pub(crate) fn grouped_split(
    labels: &[usize],
    groups: &[usize],
    classes: &[String],
    test_per_class: usize,
    seed: u64,
) -> Result<Split> {
    let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    (groups.iter().enumerate()).for_each(|(i, &g)| members.entry(g).or_default().push(i));
    let mut order: Vec<usize> = members.keys().copied().collect();
    Rng::new(derive_seed(seed, "groups")).shuffle(&mut order);
    let mut lacking = vec![test_per_class; classes.len()];
    let mut in_test = BTreeSet::new();
    for group in order {
        let members = &members[&group];
        if members.iter().any(|&i| lacking[labels[i]] > 0) {
            members
                .iter()
                .for_each(|&i| lacking[labels[i]] = lacking[labels[i]].saturating_sub(1));
            in_test.insert(group);
        }
    }
    let (test_side, train): (Vec<usize>, Vec<usize>) =
        (0..labels.len()).partition(|&i| in_test.contains(&groups[i]));
    let short = |what: &str, class: usize, available: usize, needed: usize| {
        Err(DataError::TooFewExamples {
            split: format!("{what} (whole groups)"),
            class: classes[class].clone(),
            available,
            needed,
        })
    };
    if let Some(class) = lacking.iter().position(|&n| n > 0) {
        return short(
            "test split",
            class,
            test_per_class - lacking[class],
            test_per_class,
        );
    }
    if let Some(class) = (0..classes.len()).find(|&c| train.iter().all(|&i| labels[i] != c)) {
        return short("training split", class, 0, 1);
    }
    let side_labels: Vec<usize> = test_side.iter().map(|&i| labels[i]).collect();
    let mut test: Vec<usize> = (ShotSampler::new(&side_labels, classes, seed))
        .take(test_per_class, "test split")?
        .into_iter()
        .map(|at| test_side[at])
        .collect();
    test.sort_unstable();
    Ok(Split { train, test })
}

/// A seeded order of the examples of each class; k-shot sets are prefixes of it, which makes
/// them nested across k.
#[derive(Debug, Clone)]
pub struct ShotSampler {
    per_class: Vec<Vec<usize>>,
    classes: Vec<String>,
}

impl ShotSampler {
    /// `labels[i]` is the class of example `i`; each class gets its own stream of `seed`.
    pub fn new(labels: &[usize], classes: &[String], seed: u64) -> Self {
        let mut per_class = vec![Vec::new(); classes.len()];
        for (i, &label) in labels.iter().enumerate() {
            if let Some(members) = per_class.get_mut(label) {
                members.push(i);
            }
        }
        for (c, members) in per_class.iter_mut().enumerate() {
            Rng::new(derive_seed(seed, &format!("class {c}"))).shuffle(members);
        }
        Self {
            per_class,
            classes: classes.to_vec(),
        }
    }

    /// Positions of the examples of a training set, round-robin over classes (so the first
    /// `j * n_classes` are the `j`-shot set).
    pub fn sample(&self, draw: Draw) -> Result<Vec<usize>> {
        match draw {
            Draw::PerClass(k) => self.take(k, "training split"),
            Draw::Pool { cap } => {
                let longest = self.per_class.iter().map(Vec::len).max().unwrap_or(0);
                let all = (0..longest)
                    .flat_map(|rank| self.per_class.iter().filter_map(move |m| m.get(rank)))
                    .copied();
                Ok(all.take(cap.unwrap_or(usize::MAX)).collect())
            }
        }
    }

    /// Sets `per_class` examples of every class aside for validation: the last ones of each
    /// class's order, so the training sets the rest gives are the same prefixes as without
    /// validation wherever a class has room for both. Returns the validation positions
    /// (round-robin over classes) and the sampler of what is left.
    pub fn split_validation(&self, per_class: usize) -> Result<(Vec<usize>, Self)> {
        if let Some((c, members)) =
            (self.per_class.iter().enumerate()).find(|(_, m)| m.len() < per_class)
        {
            return Err(DataError::TooFewExamples {
                split: "validation split".to_owned(),
                class: self.classes[c].clone(),
                available: members.len(),
                needed: per_class,
            });
        }
        let mut rest = self.clone();
        let tails: Vec<Vec<usize>> = (rest.per_class.iter_mut())
            .map(|m| m.split_off(m.len() - per_class))
            .collect();
        let validation = (0..per_class)
            .flat_map(|rank| tails.iter().map(move |t| t[rank]))
            .collect();
        Ok((validation, rest))
    }

    fn take(&self, k: usize, split: &str) -> Result<Vec<usize>> {
        if let Some((c, members)) = self.per_class.iter().enumerate().find(|(_, m)| m.len() < k) {
            return Err(DataError::TooFewExamples {
                split: split.to_owned(),
                class: self.classes[c].clone(),
                available: members.len(),
                needed: k,
            });
        }
        Ok((0..k)
            .flat_map(|rank| self.per_class.iter().map(move |m| m[rank]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(n: usize) -> Vec<String> {
        (0..n).map(|c| c.to_string()).collect()
    }

    /// 12 groups (fonts) of 6 examples: two of each of 3 classes (letters).
    fn letters() -> (Vec<usize>, Vec<usize>) {
        let labels = (0..72).map(|i| i % 3).collect();
        let groups = (0..72).map(|i| i / 6).collect();
        (labels, groups)
    }

    #[test]
    fn a_grouped_split_keeps_every_group_on_one_side() {
        let (labels, groups) = letters();
        for seed in 0..20 {
            let split = grouped_split(&labels, &groups, &classes(3), 3, seed).unwrap();
            let side = |at: &[usize]| at.iter().map(|&i| groups[i]).collect::<BTreeSet<_>>();
            assert!(
                side(&split.test).is_disjoint(&side(&split.train)),
                "seed {seed}"
            );
            let mut per_class = [0; 3];
            split.test.iter().for_each(|&i| per_class[labels[i]] += 1);
            assert_eq!(per_class, [3; 3], "seed {seed}");
            // Two groups fill the test split (one of their six examples left over); ten train.
            assert_eq!((side(&split.test).len(), split.train.len()), (2, 60));
        }
        let once = grouped_split(&labels, &groups, &classes(3), 3, 7).unwrap();
        assert_eq!(
            grouped_split(&labels, &groups, &classes(3), 3, 7).unwrap(),
            once
        );
    }

    #[test]
    fn a_class_in_one_group_only_cannot_be_split() {
        // Styles: each group one class; class 2 has a single group.
        let labels: Vec<usize> = (0..50).map(|i| [0, 1, 0, 1, 2][i / 10]).collect();
        let groups: Vec<usize> = (0..50).map(|i| i / 10).collect();
        let err = grouped_split(&labels, &groups, &classes(3), 5, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "training split (whole groups): class `2` has 0 examples, 1 needed"
        );
        let err = grouped_split(&labels, &groups, &classes(3), 11, 1).unwrap_err();
        assert!(
            err.to_string().starts_with("test split (whole groups)"),
            "{err}"
        );
    }
}
