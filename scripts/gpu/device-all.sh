#!/usr/bin/env bash
# Runs on the GPU machine, in two phases that each fit one device call (10 minutes):
#   check: every GPU test and sanitizer (device-check.sh tests), plus the kernel benchmark
#   bench: embd against PyTorch in the same run (device-bench.sh), per-op profiles of whole
#          batches (forward_profile), mixed4096 at other batch budgets, `embd serve` under load
#          on the GPU (server_load_bench) and, where nsys exists, a kernel profile.
# Everything lands in one archive, $OUT/gpu-<phase>.tgz (the device tool returns few files).
#   scripts/gpu/device-all.sh BUNDLE.tar.xz check|bench|all [DTYPE...]   (default: f16 bf16 f32)
set -uo pipefail
bundle=$1; phase=${2:-all}; shift 2 || shift $#
dtypes=("$@"); [[ ${#dtypes[@]} -eq 0 ]] && dtypes=(f16 bf16 f32)
final=${OUT:-/tmp/final}; export OUT=/tmp/gpu-run; rm -rf "$OUT"; mkdir -p "$OUT"
if [[ $phase == check || $phase == all ]]; then
  bash scripts/gpu/device-check.sh "$bundle" all > "$OUT/check.txt" 2>&1
  grep -E "^== |rc=|PASSED|FAILED|ERROR SUMMARY|RACECHECK SUMMARY|golden-gpu|8192-gpu" "$OUT/check.txt"
fi
if [[ $phase == bench || $phase == all ]]; then
  bash scripts/gpu/device-bench.sh "$bundle" "${dtypes[@]}" > "$OUT/bench.txt" 2>&1
  cat "$OUT/bench.txt"
  bin=/tmp/embd-gpu/bin; export LD_LIBRARY_PATH=/tmp/embd-gpu/lib
  for dt in f16 bf16; do
    echo "== forward_profile $dt"
    "$bin/forward_profile" --model /tmp/small-en --dtype $dt \
      --shapes 512x128,128x128,mixed,16x4096,1x8192 > "$OUT/forward_profile_$dt.txt" 2>&1
    cat "$OUT/forward_profile_$dt.txt"
  done
  for bt in 32768 65536; do
    echo "== embd f16 mixed4096 --batch-tokens $bt"
    "$bin/embd" bench --model /tmp/small-en --device cuda:0 --dtype f16 --workload mixed4096 \
      --batch-tokens $bt --repeat 3 > "$OUT/embd_f16_mixed_bt$bt.txt" 2>&1; tail -n 1 "$OUT/embd_f16_mixed_bt$bt.txt"
  done
  echo "== server_load_bench, embd serve on cuda:0 f16"
  timeout 200 "$bin/server_load_bench" --model /tmp/small-en --serve "$bin/embd" --device cuda:0 --dtype f16 \
    --requests 1000000 --seconds 1 --warmup 1000 > "$OUT/server_cuda_f16.txt" 2>&1; cat "$OUT/server_cuda_f16.txt"
  nsys=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -n1)
  if [[ -n $nsys ]]; then
    echo "== nsys: mixed4096 f16"
    (cd /tmp && "$nsys" profile -o /tmp/prof --force-overwrite true "$bin/embd" bench --model /tmp/small-en \
       --device cuda:0 --dtype f16 --workload mixed4096 > "$OUT/nsys_run.txt" 2>&1 &&
     "$nsys" stats --report cuda_gpu_kern_sum,cuda_api_sum --format csv -o /tmp/prof_stats /tmp/prof.nsys-rep \
       > "$OUT/nsys_stats.txt" 2>&1; cp /tmp/prof_stats* "$OUT/" 2>/dev/null)
    head -n 30 "$OUT"/prof_stats*kern_sum*.csv 2>/dev/null
  else
    echo "== nsys not found"
  fi
fi
tar -czf "$final/gpu-$phase.tgz" -C "$OUT" .
