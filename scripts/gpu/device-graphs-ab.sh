#!/usr/bin/env bash
# Runs on the GPU machine after device-check.sh unpacked the bundle: same-run A/B of CUDA graphs
# (--graph-tokens 0 against the default) on the small-batch workloads, and of the QKV bias
# folded into attention on whole batches (forward_profile, BF16 and F16). Logs go to $OUT.
#   scripts/gpu/device-graphs-ab.sh
set -uo pipefail
out=${OUT:-/tmp/out}; mkdir -p "$out"
stage=/tmp/embd-gpu; bin=$stage/bin
export LD_LIBRARY_PATH="$stage/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
model=/tmp/small-en
[[ -f $model/model.safetensors ]] || "$bin/make_synthetic_model" --out "$model" --dtype f16 \
  --tokenizer tests/fixtures/models/tiny-jina/tokenizer.json > "$out/model.log" 2>&1
for dt in f16 bf16; do
  for g in 0 1024 0 1024; do
    for wl in q16 b32x128; do
      echo "== embd $dt $wl --graph-tokens $g"
      timeout 100 "$bin/embd" bench --model "$model" --device cuda:0 --dtype $dt --workload $wl \
        --repeat 3 --graph-tokens $g > "$out/ab_${dt}_${wl}_g$g.txt" 2>&1; tail -n 2 "$out/ab_${dt}_${wl}_g$g.txt"
    done
  done
done
for dt in bf16 f16; do
  echo "== forward_profile $dt"
  "$bin/forward_profile" --model "$model" --dtype $dt --shapes 512x128,mixed,1x8192 > "$out/forward_profile_$dt.txt" 2>&1
  grep -E "^(batch|==|total|wall|kernels)|linear|attention" "$out/forward_profile_$dt.txt" | head -n 40
done
