//! `loramix bench`'s table: ratios only against a reference file measured in the same window.

use loramix_experiment::bench::{BenchRow, Reference, table};

fn rows() -> Vec<BenchRow> {
    vec![
        BenchRow {
            method: "full fine-tuning".into(),
            trainable_params: 10,
            runs: vec![90.0, 100.0, 110.0],
            samples_per_sec: 100.0,
            first_step_s: 12.345,
        },
        BenchRow {
            method: "inference b256".into(),
            trainable_params: 0,
            runs: vec![300.0],
            samples_per_sec: 300.0,
            first_step_s: 0.5,
        },
    ]
}

#[test]
fn without_a_reference_there_is_no_ratio_column() {
    let text = table(&rows(), None);
    assert!(!text.contains("ratio"), "{text}");
    assert!(
        text.contains("| full fine-tuning | 10 | 100 | 90, 100, 110 | 12.35 |\n"),
        "{text}"
    );
}

/// `json` read back as a reference file.
fn reference(json: &str) -> Reference {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torch.json");
    std::fs::write(&path, json).unwrap();
    Reference::read(&path).unwrap()
}

#[test]
fn ratios_divide_by_the_reference_row_of_the_same_name() {
    let reference = reference(
        r#"{"tool": "PyTorch 2.15.0", "threads": 2, "rows": [
            {"method": "full fine-tuning", "samples_per_sec": 400.0, "runs": [400.0]}]}"#,
    );
    let text = table(&rows(), Some(&reference));
    assert!(
        text.contains("PyTorch 2.15.0 (2 threads) samples/s | ratio |"),
        "{text}"
    );
    assert!(
        text.contains("| full fine-tuning | 10 | 100 | 90, 100, 110 | 12.35 | 400 | 0.25x |"),
        "{text}"
    );
    assert!(
        text.contains("| inference b256 | - | 300 | 300 | 0.50 | - | - |"),
        "{text}"
    );
}

#[test]
fn a_gpu_reference_is_labelled_by_its_device_not_its_threads() {
    let gpu =
        reference(r#"{"tool": "PyTorch 2.11.0", "threads": 2, "device": "cuda", "rows": []}"#);
    let text = table(&rows(), Some(&gpu));
    assert!(
        text.contains("PyTorch 2.11.0 (cuda) samples/s | ratio |"),
        "{text}"
    );
}

#[test]
fn a_bad_reference_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.json");
    std::fs::write(&path, r#"[{"method": "x", "samples_per_sec": 1.0}]"#).unwrap();
    let err = Reference::read(&path).unwrap_err();
    assert!(err.contains("old.json: not a bench reference"), "{err}");
    std::fs::write(
        &path,
        r#"{"tool": "t", "threads": 2, "rows": [{"method": "x", "samples_per_sec": 0.0, "runs": []}]}"#,
    )
    .unwrap();
    let err = Reference::read(&path).unwrap_err();
    assert!(err.contains("row `x` has 0 samples/s"), "{err}");
}
