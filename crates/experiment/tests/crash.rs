//! `loramix run` killed with SIGKILL at random moments (pretraining, upstream, transfer, report,
//! adapter and file writes alike), resumed each time, must end with the files of an unbroken
//! run: results.csv (timing columns aside), learned_weights.csv, the similarity table, the
//! adapters' factors and the base weights (through their fingerprint), bit for bit.
//!
//! `LORAMIX_CRASH_TRIALS` sets the number of killed runs (default 6, what CI runs; 50 by hand).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use loramix_lora::Adapter;
use loramix_rng::Rng;

mod common;
use common::{VISION_EXPERIMENT, VISION_SUITE, rows_without_timings, write_experiment};

fn start(experiment: &Path, runs: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_loramix"))
        .args(["run", &experiment.display().to_string(), "--runs"])
        .arg(runs)
        .env("LORAMIX_BATCH_PARTS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// What a run leaves, minus what records time: the CSV tables (results without their timing
/// columns), and each adapter's factors and manifest (the training time aside). The base
/// weights are compared through the adapters' base fingerprints, a hash of them (burn's record
/// file also holds random parameter ids, different in every process).
#[derive(Debug, PartialEq)]
struct Outcome {
    results: Vec<Vec<String>>,
    tables: Vec<(String, Vec<u8>)>,
    adapters: Vec<(String, Adapter)>,
}

fn outcome(run: &Path) -> Outcome {
    let mut tables = Vec::new();
    let mut adapters = Vec::new();
    for entry in std::fs::read_dir(run).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "learned_weights.csv" || name.starts_with("similarity-") {
            tables.push((name, std::fs::read(&path).unwrap()));
        } else if name.starts_with("upstream-") {
            for task in std::fs::read_dir(&path).unwrap() {
                let task = task.unwrap().path();
                let mut adapter = Adapter::load(&task).unwrap();
                adapter.manifest.metrics.remove("train_seconds");
                adapter.origin = None;
                let label = format!("{name}/{}", task.file_name().unwrap().to_string_lossy());
                adapters.push((label, adapter));
            }
        }
    }
    tables.sort_by(|a, b| a.0.cmp(&b.0));
    adapters.sort_by(|a, b| a.0.cmp(&b.0));
    Outcome {
        results: rows_without_timings(&run.join("results.csv")),
        tables,
        adapters,
    }
}

#[test]
fn runs_killed_at_random_moments_and_resumed_end_as_an_unbroken_one() {
    let trials: usize = std::env::var("LORAMIX_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let dir = tempfile::tempdir().unwrap();
    let experiment = write_experiment(dir.path(), VISION_SUITE, VISION_EXPERIMENT, str::to_string);

    let unbroken = dir.path().join("unbroken");
    let started = Instant::now();
    assert!(start(&experiment, &unbroken).wait().unwrap().success());
    let whole = started.elapsed();
    let want = outcome(&unbroken.join("tiny"));
    assert_eq!(
        want.tables.len(),
        3,
        "learned weights, similarity and its references"
    );
    assert_eq!(want.adapters.len(), 2);

    // Each trial starts afresh and is killed one to three times, each time at a moment drawn
    // over the length of an unbroken run and measured from the restart: early kills land in
    // pretraining, later ones in upstream, transfer and report. Then it resumes to the end.
    let mut rng = Rng::new(20261127);
    let mut landed = 0;
    for trial in 0..trials {
        let broken = dir.path().join(format!("broken-{trial}"));
        let kills = 1 + (rng.unit() * 3.0) as usize % 3;
        for _ in 0..kills {
            let mut child = start(&experiment, &broken);
            std::thread::sleep(whole.mul_f64(f64::from(rng.unit())));
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap();
                landed += 1;
            }
            child.wait().unwrap();
        }
        let resumed = start(&experiment, &broken).wait().unwrap();
        assert!(resumed.success(), "trial {trial}: the resumed run failed");
        assert!(
            outcome(&broken.join("tiny")) == want,
            "trial {trial}: the resumed run differs"
        );
    }
    assert!(landed > 0, "no kill landed (a run takes {whole:?})");
    eprintln!(
        "{landed} kills landed in {trials} trials (an unbroken run takes {whole:?}); every resumed run ended identical"
    );
}
