#!/usr/bin/env bash
# The CPU rows of `loramix bench` three ways in one window: PyTorch, loramix on flex, loramix on
# libtorch (tch), two rounds, the order of the two loramix builds swapped in round 2. Each
# loramix run reads the PyTorch JSON of its round, so every ratio divides numbers measured
# minutes apart. Needs torch and transformers (`python3 -c "import torch, transformers"`).
#
#   bash benches/three-way.sh FLEX_BINARY TCH_BINARY OUT_DIR
#
# TCH_BINARY is run with LD_LIBRARY_PATH at the torch wheel's lib folder (found from python3).
set -euo pipefail
flex=$1 tch=$2 out=$3
mkdir -p "$out"
minilm=datasets/cache/minilm-l6
torch_lib=$(python3 -c 'import torch, pathlib; print(pathlib.Path(torch.__file__).parent / "lib")')
run_tch() { LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tch" "$@"; }
run_flex() { "$flex" "$@"; }
for round in 1 2; do
  order="flex tch"
  [ "$round" = 2 ] && order="tch flex"
  echo "== round $round: PyTorch, then $order"
  python3 benches/torch_vit.py --threads 2 --json "$out/torch-vit-$round.json" | tee "$out/torch-vit-$round.txt"
  for build in $order; do
    "run_$build" bench --reference "$out/torch-vit-$round.json" | tee "$out/$build-vit-$round.txt"
  done
  python3 benches/torch_minilm.py "$minilm" --threads 2 --json "$out/torch-minilm-$round.json" | tee "$out/torch-minilm-$round.txt"
  for build in $order; do
    "run_$build" bench --minilm "$minilm" --reference "$out/torch-minilm-$round.json" | tee "$out/$build-minilm-$round.txt"
  done
done
