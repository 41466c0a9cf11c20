#!/usr/bin/env bash
# Kernels one warm train step launches, and kernels compiled, counted from cubecl's own logs:
#
#   benches/launches.sh path/to/loramix "full fine" [more bench options]
#
# Needs a binary built with `--features wgpu` (or cuda) and a Vulkan driver (on a CPU-only
# machine Mesa's lavapipe: `apt-get install -y mesa-vulkan-drivers`). burn's fusion and
# autodiff are the same code on every cubecl runtime, so the counts carry over to CUDA up to
# runtime-specific kernel choices. Runs `loramix bench --only ROW` for 3 and for 4 steps in a
# scratch folder whose cubecl.toml turns the loggers on; the difference is the 4th step.
set -eu
bin=$(realpath "$1")
row=$2
shift 2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/cubecl.toml" <<'TOML'
[compilation]
logger = { level = "basic", file = "compiled.log" }
[profiling]
logger = { level = "minimal", file = "launched.log" }
TOML
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
cd "$dir"
declare -A compiled launched
for steps in 3 4; do
    rm -f compiled.log launched.log
    "$bin" bench --only "$row" --runs 1 --warmup 0 --steps "$steps" "$@" >/dev/null 2>&1
    compiled[$steps]=$(wc -l <compiled.log)
    launched[$steps]=$(wc -l <launched.log)
done
step=$((launched[4] - launched[3]))
echo "$row: $step kernels launched by the 4th step, $((compiled[4] - compiled[3])) compiled by it, ${compiled[4]} compiled in all"
tail -n "$step" launched.log | sed 's/^Executing //' | cut -d'|' -f1-2 | sed 's/ | [A-Za-z]*Runtime$//; s/ *$//' | sort | uniq -c | sort -rn
