#!/usr/bin/env bash
# Runs on the GPU machine: writes a synthetic model with the exact jina-embeddings-v2-small-en
# shape, then times `embd bench` and the PyTorch baseline (bench/pytorch/jinabert_torch.py) on
# it in the same run, in F16, BF16 and F32; plus the scheduler workloads. Logs go to $OUT.
#   scripts/gpu/device-bench.sh BUNDLE.tar.xz [f16 bf16 f32]
set -uo pipefail
bundle=$1; shift
dtypes=("${@:-f16 bf16 f32}"); [[ $# -eq 0 ]] && dtypes=(f16 bf16 f32)
out=${OUT:-/tmp/out}; mkdir -p "$out"
stage=/tmp/embd-gpu
[[ -x $stage/bin/embd ]] || { rm -rf "$stage"; mkdir -p "$stage"; tar -xJf "$bundle" -C "$stage"; }
export LD_LIBRARY_PATH="$stage/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
py=/opt/torch/.venv/bin/python3; [[ -x $py ]] || py=python3
model=/tmp/small-en
[[ -f $model/model.safetensors ]] || "$stage/bin/make_synthetic_model" --out "$model" --dtype f16 \
  --tokenizer tests/fixtures/models/tiny-jina/tokenizer.json > "$out/model.log" 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,temperature.gpu --format=csv,noheader > "$out/machine.txt"
for dt in "${dtypes[@]}"; do
  echo "== embd $dt"
  timeout 200 "$stage/bin/embd" bench --model "$model" --device cuda:0 --dtype "$dt" --workload all \
    --repeat 3 > "$out/embd_$dt.txt" 2>&1; tail -n 9 "$out/embd_$dt.txt"
  echo "== torch $dt"
  timeout 200 "$py" bench/pytorch/jinabert_torch.py --model "$model" --device cuda --dtype "$dt" \
    --repeat 3 > "$out/torch_$dt.txt" 2>&1; tail -n 9 "$out/torch_$dt.txt"
done
if [[ " ${dtypes[*]} " == *" f16 "* ]]; then
  for mode in sequential single-batch; do
    echo "== embd f16 mixed4096 $mode"
    timeout 120 "$stage/bin/embd" bench --model "$model" --device cuda:0 --dtype f16 --workload mixed4096 \
      --mode "$mode" --repeat 2 > "$out/embd_f16_mixed_$mode.txt" 2>&1; tail -n 3 "$out/embd_f16_mixed_$mode.txt"
  done
  echo "== embd f16 q16 under a batch backlog"
  timeout 120 "$stage/bin/embd" bench --model "$model" --device cuda:0 --dtype f16 --workload q16 --background \
    > "$out/embd_f16_background.txt" 2>&1; tail -n 3 "$out/embd_f16_background.txt"
fi
