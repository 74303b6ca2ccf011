#!/usr/bin/env bash
# Runs on the GPU machine (the bundle comes from scripts/gpu/make-bundle.sh): unpacks the bundle built here, runs the
# GPU tests, compute-sanitizer and the kernel benchmark, and leaves logs in $OUT.
#   scripts/gpu/device-check.sh BUNDLE.tar.xz [tests|bench|all|gated|attention|layernorm]   (NO_RACECHECK=1: no racecheck)
# gated: the fused gated-MLP kernel alone (its tests, memcheck, racecheck unless NO_RACECHECK is set),
# then gpu_ops_bench --gated-only and whole batches (forward_profile), alternating with the builds
# named in AB="name=bundle.tar.xz ..." for a same-run A/B; for iterating on that kernel.
# attention: the attention kernels alone (their tests, memcheck, racecheck unless NO_RACECHECK is
# set), then gpu_ops_bench --attention-only and whole batches with the wgmma kernel on and off
# (forward_profile --hopper-attention 1|0), two rounds, alternating with the builds named in
# AB="name=bundle.tar.xz ..." (bin/gpu_ops_bench and bin/forward_profile) for a same-run A/B; the
# logs also go out as one attention-logs.tar.gz.
# layernorm: the fused Linear + residual LayerNorm kernel alone (tests, sanitizers as above), then
# gpu_ops_bench --layernorm-only and whole batches with the fusion on and off (forward_profile
# --fused-ln 1|0), two rounds.
set -uo pipefail
bundle=$1; what=${2:-all}
out=${OUT:-/tmp/out}; mkdir -p "$out"
stage=/tmp/embd-gpu; rm -rf "$stage"; mkdir -p "$stage"; tar -xJf "$bundle" -C "$stage"
# The tests find their fixtures at the absolute path they were built with.
[[ -e /work/main ]] || { mkdir -p /work && ln -s "$PWD" /work/main; }
export LD_LIBRARY_PATH="$stage/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin=$stage/bin
source "$(dirname "$0")/common.sh"
cs=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)  # runnable if -x
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; nvcc --version | tail -2; date -u; } > "$out/machine.txt" 2>&1
cat "$out/machine.txt"
run() { local name=$1; shift; echo "== $name"; "$@" > "$out/$name.log" 2>&1; local rc=$?; tail -n 4 "$out/$name.log"; echo "rc=$rc"; }
if [[ $what == tests || $what == all ]]; then
  run ops "$bin/backend_ops_tests" --gtest_brief=1
  run golden "$bin/golden_model_tests" --gtest_brief=1
  run model_runner "$bin/model_runner_tests" --gtest_brief=1
  grep '\[golden\]' "$out/golden.log"
  run engine_gpu "$bin/engine_gpu_tests" --gtest_brief=1
  run registry "$bin/backend_registry_tests" --gtest_brief=1
  grep -E '\[(golden|8192)-gpu\]' "$out/engine_gpu.log"
  if [[ -x $cs ]]; then
    run memcheck timeout 240 "$cs" --tool memcheck --error-exitcode 9 "$bin/backend_ops_tests" --gtest_brief=1 --gtest_filter='*cuda*'
    # The kernels that share memory between threads (cuBLAS is not ours to check: racecheck flags
    # some of its nvjet_* kernels, which LinearLayerNorm's unfused runs would launch, so those are
    # left out; its --kernel-name-exclude crashed the sanitizer); NO_RACECHECK skips it (~6 minutes).
    [[ -z ${NO_RACECHECK:-} ]] && EMBD_TEST_SHORT=1 EMBD_TEST_FUSED_ONLY=1 run racecheck timeout 400 "$cs" --tool racecheck \
      --error-exitcode 9 "$bin/backend_ops_tests" --gtest_brief=1 \
      --gtest_filter='*.Attention/cuda*:*.AddLayerNorm*/cuda*:*.EmbedLayerNorm/cuda*:*.LinearLayerNorm/cuda*:*.Pool/cuda*:*.GatedLinear/cuda*'
  fi
fi
if [[ $what == bench || $what == all ]]; then
  run gpu_ops_bench "$bin/gpu_ops_bench"
  tail -n 60 "$out/gpu_ops_bench.log"
fi
# Other builds to compare with, as NAME=BUNDLE words in $AB (bundles of bin/gpu_ops_bench and
# bin/forward_profile), unpacked for a same-run A/B; prints the sides, this build ("new") last.
ab_sides() {
  local sides="" v name
  for v in ${AB:-}; do
    name=${v%%=*}; mkdir -p "/tmp/embd-$name"; tar -xJf "${v#*=}" -C "/tmp/embd-$name"; sides="$sides $name"
  done
  echo "$sides new"
}
side_bin() { [[ $1 == new ]] && echo "$bin" || echo "/tmp/embd-$1/bin"; }
# The small-en model of common.sh, as $model (its GPU line goes to gpu.txt, not the screen).
synthetic_model() {
  model=/tmp/small-en
  synthetic_small_en "$bin" "$out/model.log" > /dev/null
}
# One kernel's op tests (filter $2), then those matching $3 under memcheck and, unless
# NO_RACECHECK is set, racecheck; logs named after $1.
kernel_checks() {
  local name=$1 tests=$2 sanitized=$3
  run "${name}_ops" timeout 200 "$bin/backend_ops_tests" --gtest_brief=1 --gtest_filter="$tests"
  [[ -x $cs ]] || return 0
  run "${name}_memcheck" timeout 200 "$cs" --tool memcheck --error-exitcode 9 "$bin/backend_ops_tests" \
    --gtest_brief=1 --gtest_filter="$sanitized"
  [[ -n ${NO_RACECHECK:-} ]] && return 0
  # EMBD_TEST_FUSED_ONLY: no cuBLAS kernels (the unfused comparisons), which racecheck flags.
  EMBD_TEST_SHORT=1 EMBD_TEST_FUSED_ONLY=1 run "${name}_racecheck" timeout 300 "$cs" --tool racecheck \
    --error-exitcode 9 "$bin/backend_ops_tests" --gtest_brief=1 --gtest_filter="$sanitized"
}
# profile_forward (common.sh) of the bin folder $1 with flags $4..., into forward_profile_$2.txt;
# prints the lines matching $3.
profile_batches() {
  local dir=$1 name=$2 lines=$3; shift 3
  echo "== forward_profile $name ($*)"
  profile_forward "$dir" "$@" > "$out/forward_profile_$name.txt" 2>&1
  grep -E "$lines" "$out/forward_profile_$name.txt"
}
# Same-run A/B over this build and those in $AB, two rounds: gpu_ops_bench $2 (its lines matching
# $3) and forward_profile in the dtypes $4 (its lines matching $5); logs named after $1.
ab_rounds() {
  local name=$1 bench_args=$2 bench_lines=$3 dtypes=$4 profile_lines=$5 sides round side dir dt
  synthetic_model
  sides=$(ab_sides)
  for round in 1 2; do
    for side in $sides; do
      dir=$(side_bin "$side")
      # shellcheck disable=SC2086  # bench_args is a word list
      timeout 300 "$dir/gpu_ops_bench" $bench_args > "$out/${name}_bench_${side}_r$round.log" 2>&1
      echo "== gpu_ops_bench $bench_args $side round $round"
      grep -E "$bench_lines" "$out/${name}_bench_${side}_r$round.log"
      for dt in $dtypes; do
        profile_batches "$dir" "${dt}_${side}_r$round" "$profile_lines" --dtype "$dt"
      done
    done
  done
}
if [[ $what == gated ]]; then
  kernel_checks gated '*Gated*:*Glu*:*Linear*' '*GatedLinear*/cuda*'
  ab_rounds gated --gated-only '^(gated|peak)' 'f16 bf16' '^(==|gated)'
fi
if [[ $what == attention ]]; then
  kernel_checks attention '*Attention*' '*.Attention/cuda*'
  synthetic_model
  sides=$(ab_sides)
  for round in 1 2; do
    for side in $sides; do
      dir=$(side_bin "$side")
      timeout 300 "$dir/gpu_ops_bench" --attention-only > "$out/attention_bench_${side}_r$round.log" 2>&1
      echo "== gpu_ops_bench --attention-only $side round $round"
      grep -E '^attention \((tensor|mma)' "$out/attention_bench_${side}_r$round.log"
      for wgmma in 1 0; do
        [[ $wgmma == 0 && $side != new ]] && continue
        for dt in f16 bf16; do
          profile_batches "$dir" "${dt}_wgmma${wgmma}_${side}_r$round" '^(==|attention)' --dtype "$dt" \
            --hopper-attention $wgmma
        done
      done
    done
  done
  tar -czf "$out/attention-logs.tar.gz" -C "$out" $(cd "$out" && ls ./*.log ./*.txt)
fi
if [[ $what == layernorm ]]; then
  kernel_checks layernorm '*LinearLayerNorm*:*LayerNorm*:*.Linear*' '*LinearLayerNorm*/cuda*'
  synthetic_model
  for round in 1 2; do
    run "layernorm_bench_r$round" timeout 200 "$bin/gpu_ops_bench" --layernorm-only
    grep -E '^(linear_layernorm|peak)' "$out/layernorm_bench_r$round.log"
    for fused in 1 0; do
      for dt in f16 bf16; do
        profile_batches "$bin" "${dt}_ln${fused}_r$round" '^(==|linear_layernorm|add_layernorm|all kernels|kernels)' \
          --dtype "$dt" --fused-ln $fused
      done
    done
  done
fi
