//! The few-shot protocol's sampling: a class-balanced test split fixed per task, and k-shot
//! training sets that are exact per class, nested across k and disjoint from the test split.

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
