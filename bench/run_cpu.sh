#!/usr/bin/env bash
# CPU benchmark of issue 3 on this machine: embd and the PyTorch baseline on the same synthetic
# jina-embeddings-v2-small-en-shaped model, same thread count, same run.
#   bench/run_cpu.sh [THREADS] [OUTDIR]      (needs python3-torch: scripts/install-bench-deps.sh)
set -uo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}; out=${2:-/tmp/embd-cpu-bench}; mkdir -p "$out"
bin=${EMBD_BIN:-build/release/bin}
model=/tmp/small-en
[[ -f $model/model.safetensors ]] || "$bin/make_synthetic_model" --out "$model" --dtype f16
for dt in f32 bf16; do
  for w in q16 b32x128 mixed4096; do
    echo "== embd $dt $w"; "$bin/embd" bench --model "$model" --dtype "$dt" --threads "$threads" --workload "$w" | tail -n 1
  done
  echo "== embd $dt mixed4096 single-batch"
  "$bin/embd" bench --model "$model" --dtype "$dt" --threads "$threads" --workload mixed4096 --mode single-batch | tail -n 1
  for w in q16 b32x128; do
    echo "== torch $dt $w"
    /usr/bin/python3 bench/pytorch/jinabert_torch.py --model "$model" --device cpu --dtype "$dt" \
      --threads "$threads" --workload "$w" | tail -n 1
  done
done 2>&1 | tee "$out/cpu-bench.txt"
