set -u
bin=/tmp/loramix; out=$OUT/r; mkdir -p $out; caches=/tmp/c; rm -rf $caches
export XDG_RUNTIME_DIR=/tmp
nvidia-smi --query-gpu=timestamp,utilization.gpu --format=csv,noheader -lms 250 > $out/util.csv 2>&1 &
u=$!
step() {
    local name=$1 limit=$2; shift 2
    echo "$name start $EPOCHREALTIME" >> $out/steps.txt
    timeout -k 5 "$limit" "$@" > "$out/$name.txt" 2>&1
    echo "$name: exit $? end $EPOCHREALTIME" >> $out/steps.txt
}
step torch-b64 25 python3 benches/torch_vit.py --device cuda --json $out/torch-b64.json
trace=$out/trace; mkdir -p $trace
cat > $trace/cubecl.toml <<TOML
[compilation]
cache = { file = "$caches/trace" }
logger = { level = "basic", file = "$trace/compiled.log" }
[autotune]
cache = { file = "$caches/trace" }
logger = { level = "minimal", file = "$trace/autotuned.log" }
[profiling]
logger = { level = "minimal", file = "$trace/launched.log" }
TOML
touch $trace/compiled.log $trace/autotuned.log $trace/launched.log
( while true; do echo "$EPOCHREALTIME $(wc -l < $trace/compiled.log) $(wc -l < $trace/autotuned.log) $(wc -l < $trace/launched.log)"; sleep 0.5; done > $out/counts.txt ) &
c=$!
(cd $trace && step trace-cold 100 $bin bench --only "full fine" --runs 1 --warmup 2 --steps 5 --step-times)
echo "=== warm" >> $trace/compiled.log; echo "=== warm" >> $trace/autotuned.log; echo "=== warm" >> $trace/launched.log
(cd $trace && step trace-warm 35 $bin bench --only "full fine" --runs 1 --warmup 2 --steps 5 --step-times)
kill $c
LORAMIX_KERNEL_CACHE=$caches/unfused step nofusion-cold 50 $bin bench --only "full fine" --no-fusion --runs 1 --warmup 2 --steps 5 --step-times
kill $u
du -sh $caches/* > $out/cache-sizes.txt
cd $OUT && tar czf r.tgz r && rm -rf r
ls -la $OUT
