set -u
bin=/tmp/loramix; out=$OUT/r; mkdir -p $out; caches=/tmp/c; rm -rf $caches
export XDG_RUNTIME_DIR=/tmp
nvidia-smi --query-gpu=timestamp,utilization.gpu --format=csv,noheader -lms 250 > $out/util.csv 2>&1 &
u=$!
step() {
    local name=$1 limit=$2; shift 2
    echo "$name start $EPOCHREALTIME" >> $out/steps.txt
    timeout -k 3 "$limit" "$@" > "$out/$name.txt" 2>&1
    echo "$name: exit $? end $EPOCHREALTIME" >> $out/steps.txt
}
ref=target/gpu/torch-b64.json
export LORAMIX_KERNEL_CACHE=$caches/fused
step bench-cold 90 $bin bench --step-times --reference $ref --json $out/bench-cold.json
find $caches -type f | xargs wc -l > $out/cache-lines-cold.txt 2>&1
step bench-warm 35 $bin bench --reference $ref --json $out/bench-warm.json
step torch-b1024 20 python3 benches/torch_vit.py --device cuda --batch 1024 --infer-batch 4096 --json $out/torch-b1024.json
step bench-b1024 35 $bin bench --step-times --batch 1024 --infer-batch 4096 --reference $out/torch-b1024.json --json $out/bench-b1024.json
LORAMIX_KERNEL_CACHE=$caches/unfused step bench-no-fusion 22 $bin bench --no-fusion --step-times --only "full fine" --reference $ref
kill $u
du -sh $caches/* > $out/cache-sizes.txt; find $caches -type f | xargs wc -l >> $out/cache-sizes.txt
cd $OUT && tar czf r.tgz r && rm -rf r
