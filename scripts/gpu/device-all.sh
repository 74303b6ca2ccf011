#!/usr/bin/env bash
# Runs on the GPU machine: every GPU test and sanitizer (device-check.sh), the benchmarks against
# PyTorch (device-bench.sh), per-op profiles of whole batches (forward_profile), batch-budget
# variants and, where nsys exists, a kernel profile. Everything lands in one archive,
# $OUT/gpu-run.tgz (the device tool returns few files).
#   scripts/gpu/device-all.sh BUNDLE.tar.xz [DTYPE...]   (default: f16 bf16 f32)
set -uo pipefail
bundle=$1; shift
dtypes=("$@"); [[ $# -eq 0 ]] && dtypes=(f16 bf16 f32)
final=${OUT:-/tmp/final}; export OUT=/tmp/gpu-run; rm -rf "$OUT"; mkdir -p "$OUT"
bash scripts/gpu/device-check.sh "$bundle" all > "$OUT/check.txt" 2>&1
grep -E "^== |rc=|PASSED|FAILED|ERROR SUMMARY|RACECHECK SUMMARY|golden-gpu|8192-gpu" "$OUT/check.txt"
bash scripts/gpu/device-bench.sh "$bundle" "${dtypes[@]}" > "$OUT/bench.txt" 2>&1
cat "$OUT/bench.txt"
embd=/tmp/embd-gpu/bin/embd; export LD_LIBRARY_PATH=/tmp/embd-gpu/lib
for dt in f16 bf16; do
  echo "== forward_profile $dt"
  /tmp/embd-gpu/bin/forward_profile --model /tmp/small-en --dtype $dt \
    --shapes 512x128,128x128,128x512,16x4096,1x8192 > "$OUT/forward_profile_$dt.txt" 2>&1
  cat "$OUT/forward_profile_$dt.txt"
done
for bt in 32768 65536; do
  echo "== embd f16 --batch-tokens $bt"
  "$embd" bench --model /tmp/small-en --device cuda:0 --dtype f16 --batch-tokens $bt --repeat 3 \
    > "$OUT/embd_f16_bt$bt.txt" 2>&1; tail -n 7 "$OUT/embd_f16_bt$bt.txt"
done
nsys=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -n1)
if [[ -n $nsys ]]; then
  echo "== nsys: mixed4096 f16"
  (cd /tmp && "$nsys" profile -o /tmp/prof --force-overwrite true "$embd" bench --model /tmp/small-en \
     --device cuda:0 --dtype f16 --workload mixed4096 > "$OUT/nsys_run.txt" 2>&1 &&
   "$nsys" stats --report cuda_gpu_kern_sum,cuda_api_sum --format csv -o /tmp/prof_stats /tmp/prof.nsys-rep \
     > "$OUT/nsys_stats.txt" 2>&1; cp /tmp/prof_stats* "$OUT/" 2>/dev/null)
  head -n 30 "$OUT"/prof_stats*kern_sum*.csv 2>/dev/null
else
  echo "== nsys not found"
fi
tar -czf "$final/gpu-run.tgz" -C "$OUT" .
