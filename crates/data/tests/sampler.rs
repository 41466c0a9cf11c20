use std::collections::BTreeSet;

use loramix_data::{DataError, Draw, ShotSampler, balanced_split};

fn labels() -> (Vec<usize>, Vec<String>) {
    // 3 classes with 40, 30 and 30 examples, interleaved.
    let labels: Vec<usize> = (0..95)
        .map(|i| match i {
            i if i < 60 => i % 2,
            i if i < 70 => 0,
            _ => 2,
        })
        .collect();
    let labels = labels
        .into_iter()
        .chain(std::iter::repeat_n(2, 5))
        .collect();
    (labels, vec!["a".into(), "b".into(), "c".into()])
}

fn count(labels: &[usize], picks: &[usize], class: usize) -> usize {
    picks.iter().filter(|&&i| labels[i] == class).count()
}

#[test]
fn split_is_balanced_disjoint_and_fixed_by_seed() {
    let (labels, classes) = labels();
    let split = balanced_split(&labels, &classes, 10, 7).unwrap();
    assert_eq!(split.test.len(), 30);
    for c in 0..3 {
        assert_eq!(count(&labels, &split.test, c), 10);
    }
    let test: BTreeSet<_> = split.test.iter().collect();
    assert!(split.train.iter().all(|i| !test.contains(i)));
    assert_eq!(split.train.len() + split.test.len(), labels.len());
    assert_eq!(split, balanced_split(&labels, &classes, 10, 7).unwrap());
    assert_ne!(split, balanced_split(&labels, &classes, 10, 8).unwrap());
}

#[test]
fn shots_exact_nested_deterministic() {
    let (labels, classes) = labels();
    let sampler = ShotSampler::new(&labels, &classes, 3);
    let mut previous = BTreeSet::new();
    for k in [1, 2, 5, 10, 20] {
        let picks = sampler.sample(Draw::PerClass(k)).unwrap();
        assert_eq!(picks.len(), 3 * k);
        for c in 0..3 {
            assert_eq!(count(&labels, &picks, c), k);
        }
        let set: BTreeSet<_> = picks.iter().copied().collect();
        assert_eq!(set.len(), picks.len(), "no duplicates");
        assert!(
            previous.is_subset(&set),
            "{k}-shot contains the smaller sets"
        );
        previous = set;
    }
    let again = ShotSampler::new(&labels, &classes, 3);
    assert_eq!(
        sampler.sample(Draw::PerClass(5)).unwrap(),
        again.sample(Draw::PerClass(5)).unwrap()
    );
    let other = ShotSampler::new(&labels, &classes, 4);
    assert_ne!(
        sampler.sample(Draw::PerClass(5)).unwrap(),
        other.sample(Draw::PerClass(5)).unwrap()
    );
}

#[test]
fn shots_from_training_pool_never_touch_test() {
    let (labels, classes) = labels();
    let split = balanced_split(&labels, &classes, 10, 1).unwrap();
    let train_labels: Vec<usize> = split.train.iter().map(|&i| labels[i]).collect();
    let picks = ShotSampler::new(&train_labels, &classes, 9)
        .sample(Draw::PerClass(15))
        .unwrap();
    let test: BTreeSet<_> = split.test.iter().collect();
    assert!(picks.iter().all(|&p| !test.contains(&split.train[p])));
}

#[test]
fn too_few_examples_names_class_and_counts() {
    let (labels, classes) = labels();
    let err = ShotSampler::new(&labels, &classes, 0)
        .sample(Draw::PerClass(31))
        .unwrap_err();
    assert!(
        matches!(&err, DataError::TooFewExamples { class, available: 30, needed: 31, .. } if class == "b"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "training split: class `b` has 30 examples, 31 needed"
    );
}

#[test]
fn full_takes_everything_or_a_balanced_cap() {
    let (labels, classes) = labels();
    let sampler = ShotSampler::new(&labels, &classes, 2);
    let all = sampler.sample(Draw::Pool { cap: None }).unwrap();
    assert_eq!(all.len(), labels.len());
    let capped = sampler.sample(Draw::Pool { cap: Some(30) }).unwrap();
    assert_eq!(capped.len(), 30);
    for c in 0..3 {
        assert_eq!(count(&labels, &capped, c), 10);
    }
    assert_eq!(capped[..15], sampler.sample(Draw::PerClass(5)).unwrap()[..]);
}

#[test]
fn validation_is_balanced_disjoint_and_keeps_the_training_sets() {
    let (labels, classes) = labels();
    let sampler = ShotSampler::new(&labels, &classes, 3);
    let (validation, rest) = sampler.split_validation(5).unwrap();
    assert_eq!(validation.len(), 15);
    for c in 0..3 {
        assert_eq!(count(&labels, &validation, c), 5);
    }
    let held: BTreeSet<_> = validation.iter().collect();
    for k in [1, 5, 20] {
        let train = rest.sample(Draw::PerClass(k)).unwrap();
        assert!(train.iter().all(|i| !held.contains(i)), "k={k} overlaps");
        // Every class has room for k + 5: the training set is the one drawn without validation.
        assert_eq!(train, sampler.sample(Draw::PerClass(k)).unwrap(), "k={k}");
    }
    let pool = rest.sample(Draw::Pool { cap: None }).unwrap();
    assert_eq!(pool.len(), labels.len() - 15);
    assert!(pool.iter().all(|i| !held.contains(i)));
    // Room for 25 training examples of the 30-example classes, not 26.
    assert!(rest.sample(Draw::PerClass(25)).is_ok());
    assert!(matches!(
        rest.sample(Draw::PerClass(26)),
        Err(DataError::TooFewExamples {
            available: 25,
            needed: 26,
            ..
        })
    ));
    assert!(matches!(
        sampler.split_validation(31),
        Err(DataError::TooFewExamples { ref split, available: 30, needed: 31, .. })
            if split == "validation split"
    ));
}
