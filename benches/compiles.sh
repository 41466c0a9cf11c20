#!/usr/bin/env bash
# Kernels compiled over a whole `loramix run`, counted from cubecl's compilation log:
#
#   benches/compiles.sh path/to/loramix path/to/experiment.toml
#
# Needs a binary built with `--features wgpu` (or cuda) and a Vulkan driver (on a CPU-only
# machine Mesa's lavapipe). Runs the experiment in a scratch folder whose cubecl.toml turns the
# compilation logger on and keeps no kernel cache, so every kernel the run needs is compiled in
# it; each line the run prints is shown after the number of kernels compiled by the time it
# appeared (sampled every 0.2 s, so a stage's share is approximate; the total is exact).
set -eu
bin=$(realpath "$1")
config=$(realpath "$2")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf '[compilation]\nlogger = { level = "basic", file = "compiled.log" }\n' >"$dir/cubecl.toml"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
cd "$dir"
touch compiled.log run.log
"$bin" run "$config" --runs runs >run.log 2>&1 &
pid=$!
shown=0
report() {
    local lines
    lines=$(wc -l <run.log)
    while [ "$shown" -lt "$lines" ]; do
        shown=$((shown + 1))
        printf '%5d | %s\n' "$(wc -l <compiled.log)" "$(sed -n "${shown}p" run.log)"
    done
}
while kill -0 "$pid" 2>/dev/null; do
    report
    sleep 0.2
done
wait "$pid" || echo "loramix exited with $?"
report
echo "$(wc -l <compiled.log) kernels compiled in all"
