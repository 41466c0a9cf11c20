#!/usr/bin/env bash
# The GPU rows of BENCHMARKS.md in one time-boxed pass, on a machine with an NVIDIA GPU, PyTorch
# with CUDA, and a loramix binary built with `--features cuda`:
#
#   benches/gpu.sh path/to/loramix OUT_DIR
#
# Run from the repository root (the PyTorch scripts are in benches/). Each step writes
# OUT_DIR/<step>.txt (and .json where it has rows), is cut off at its limit so that a slow step
# costs a known time, and appends its start and end to OUT_DIR/steps.txt; nvidia-smi samples the
# GPU's busy fraction into OUT_DIR/utilization.csv. The kernel cache (LORAMIX_KERNEL_CACHE)
# starts empty: `bench-cold` is a first run on a machine, `bench-warm` the same rows again in a
# new process, reading what the cold run compiled.
set -u
bin=$(realpath "$1")
mkdir -p "$2"
out=$(cd "$2" && pwd)
caches=$(mktemp -d)
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}

step() {
    local name=$1 limit=$2
    shift 2
    echo "$name start $EPOCHREALTIME" >>"$out/steps.txt"
    timeout -k 3 "$limit" "$@" >"$out/$name.txt" 2>&1
    echo "$name exit $? end $EPOCHREALTIME" >>"$out/steps.txt"
}

{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    echo "cpus: $(nproc)"
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
} >"$out/machine.txt" 2>&1
nvidia-smi --query-gpu=timestamp,utilization.gpu --format=csv,noheader -lms 250 >"$out/utilization.csv" 2>&1 &
sampler=$!

step torch-b64 40 python3 benches/torch_vit.py --device cuda --json "$out/torch-b64.json"
step torch-b1024 40 python3 benches/torch_vit.py --device cuda --batch 1024 --infer-batch 4096 \
    --json "$out/torch-b1024.json"
export LORAMIX_KERNEL_CACHE=$caches/fused
step bench-cold 120 "$bin" bench --step-times --reference "$out/torch-b64.json" --json "$out/bench-cold.json"
step bench-warm 60 "$bin" bench --reference "$out/torch-b64.json" --json "$out/bench-warm.json"
step bench-b1024 60 "$bin" bench --step-times --batch 1024 --infer-batch 4096 \
    --reference "$out/torch-b1024.json" --json "$out/bench-b1024.json"
LORAMIX_KERNEL_CACHE=$caches/unfused step bench-no-fusion 60 \
    "$bin" bench --no-fusion --step-times --only "full fine" --reference "$out/torch-b64.json"
kill "$sampler" 2>/dev/null
du -sh "$caches"/* >"$out/cache-sizes.txt" 2>&1
rm -rf "$caches"
true
