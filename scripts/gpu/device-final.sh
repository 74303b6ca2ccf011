#!/usr/bin/env bash
# Runs on the GPU machine: one call's validation of a build (the bundle from make-bundle.sh), the
# most important first, logs tarred after each step (the device tool returns few files):
# the GPU test suites, the attention kernels against the build in $AB_BUNDLE (gpu_ops_bench
# --attention-only and forward_profile, both dtypes), `embd bench` against $BASE_BUNDLE
# (device-configs.sh, $ROUNDS rounds), then memcheck and racecheck over the attention tests.
#   AB_BUNDLE=old.tar.xz BASE_BUNDLE=base.tar.xz scripts/gpu/device-final.sh BUNDLE.tar.xz
set -uo pipefail
bundle=$1; out=${OUT:-/tmp/out}; mkdir -p "$out"; logs=/tmp/final-logs; rm -rf "$logs"; mkdir -p "$logs"
here=$(cd "$(dirname "$0")" && pwd)
stage=/tmp/embd-gpu; rm -rf "$stage"; mkdir -p "$stage"; tar -xJf "$bundle" -C "$stage"
export LD_LIBRARY_PATH="$stage/lib"
bin=$stage/bin
source "$here/common.sh"
synthetic_small_en "$bin" "$logs/model.log"
pack() { tar -czf "$out/final-logs.tar.gz" -C /tmp final-logs; }
run() { local name=$1; shift; echo "== $name"; "$@" > "$logs/$name.log" 2>&1; echo "rc=$? $(tail -n 1 "$logs/$name.log")"; pack; }
run ops_attention "$bin/backend_ops_tests" --gtest_brief=1 --gtest_filter='*Attention*'
run golden "$bin/golden_model_tests" --gtest_brief=1
run model_runner "$bin/model_runner_tests" --gtest_brief=1
run engine_gpu "$bin/engine_gpu_tests" --gtest_brief=1
if [[ -n ${AB_BUNDLE:-} ]]; then
  mkdir -p /tmp/embd-ab; tar -xJf "$AB_BUNDLE" -C /tmp/embd-ab
  for side in new old; do
    dir=$bin; [[ $side == old ]] && dir=/tmp/embd-ab/bin
    run "attention_bench_$side" "$dir/gpu_ops_bench" --attention-only
    for dt in f16 bf16; do
      run "forward_profile_${dt}_$side" profile_forward "$dir" --dtype "$dt"
    done
  done
fi
OUT=$logs bash "$here/device-configs.sh" "$bundle" "${ROUNDS:-3}" "base=" "new=" > "$logs/configs.txt" 2>&1
tail -n 20 "$logs/configs.txt"; pack
cs=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
run memcheck timeout 120 "$cs" --tool memcheck --error-exitcode 9 "$bin/backend_ops_tests" --gtest_brief=1 \
  --gtest_filter='*.Attention/cuda*'
EMBD_TEST_SHORT=1 run racecheck timeout 200 "$cs" --tool racecheck --error-exitcode 9 "$bin/backend_ops_tests" \
  --gtest_brief=1 --gtest_filter='*.Attention/cuda*'
