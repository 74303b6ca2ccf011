#!/usr/bin/env bash
# Runs on the GPU machine: checks and times the fused gated-MLP kernel (gated_gemm_sm90a.cu)
# against cuBLASLt + the GLU kernel in the same run. Logs go to $OUT.
#   scripts/gpu/device-gated.sh BUNDLE.tar.xz [check|profile|all]
set -uo pipefail
bundle=$1; what=${2:-all}
out=${OUT:-/tmp/out}; mkdir -p "$out"
stage=/tmp/embd-gpu; rm -rf "$stage"; mkdir -p "$stage"; tar -xJf "$bundle" -C "$stage"
[[ -e /work/main ]] || { mkdir -p /work && ln -s "$PWD" /work/main; }
export LD_LIBRARY_PATH="$stage/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin=$stage/bin
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
run() { local name=$1; shift; echo "== $name"; "$@" > "$out/$name.log" 2>&1; local rc=$?; tail -n 6 "$out/$name.log"; echo "rc=$rc"; return $rc; }
if [[ $what == check || $what == all ]]; then
  run gated_ops timeout 120 "$bin/backend_ops_tests" --gtest_brief=1 --gtest_filter='*Gated*:*Glu*:*Linear*' || exit 1
  cs=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  [[ -x $cs ]] && run gated_memcheck timeout 200 "$cs" --tool memcheck --error-exitcode 9 "$bin/backend_ops_tests" \
    --gtest_brief=1 --gtest_filter='*GatedLinear*/cuda*'
  run gated_bench timeout 200 "$bin/gpu_ops_bench" --gated-only
  grep -E "^(gated|peak)" "$out/gated_bench.log"
fi
if [[ $what == profile || $what == all ]]; then
  model=/tmp/small-en
  [[ -f $model/model.safetensors ]] || "$bin/make_synthetic_model" --out "$model" --dtype f16 \
    --tokenizer tests/fixtures/models/tiny-jina/tokenizer.json > "$out/model.log" 2>&1
  for dt in f16 bf16; do
    for fused in 1 0; do
      echo "== forward_profile $dt fused-glu $fused"
      timeout 120 "$bin/forward_profile" --model "$model" --dtype $dt --shapes 512x128,mixed,1x8192 \
        --fused-glu $fused > "$out/forward_profile_${dt}_fused$fused.txt" 2>&1
      grep -E "^(==|gated|linear 512->4096|glu)" "$out/forward_profile_${dt}_fused$fused.txt"
    done
  done
fi
