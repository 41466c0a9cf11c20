//! The readers behind the `loramix` command on arbitrary bytes and on valid files with bytes
//! changed, cut or appended: experiment TOML, adapters (loramix and PEFT, manifest and
//! tensors), sweep CSV rows and the report's CSVs. Each returns a value or an error, never
//! panics. 64 cases per reader on every `cargo test`; `PROPTEST_CASES=20000` by hand.

use std::path::{Path, PathBuf};

use loramix_experiment::config::Experiment;
use loramix_experiment::pipeline::CellRow;
use loramix_experiment::store::read_rows;
use loramix_lora::Adapter;
use loramix_models::hf::BERT;
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
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// A loramix adapter saved by this build, its two files' bytes.
fn loramix_adapter() -> (Vec<u8>, Vec<u8>) {
    let peft = repo("crates/peft/tests/fixtures/tiny-bert-lora-qv");
    let adapter = loramix_peft::read(&peft, &BERT, "fingerprint").unwrap();
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

proptest! {
    #![proptest_config(config())]

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
        let _ = loramix_peft::read(dir.path(), &BERT, "fingerprint");
    }

    #[test]
    fn sweep_and_report_csv(bytes in mutated(SWEEP.to_vec())) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("all.csv");
        std::fs::write(&path, &bytes).unwrap();
        let _ = read_rows::<CellRow>(&path);
        let paths = std::slice::from_ref(&path);
        let _ = loramix_report::read_results(paths);
        let _ = loramix_report::read_weights(paths);
        let _ = loramix_report::read_similarity(paths);
    }
}
