#!/usr/bin/env bash
# Quick start 2: install dependencies, build everything and run every test.
#   1. ASan+UBSan build: the parsers, tokenizer and kernels on hostile input.
#   2. TSan build: the scheduler, engine and server concurrency tests.
#   3. Fuzz build (clang, libFuzzer + ASan + UBSan): every fuzz target for a fixed number of
#      inputs from its seed corpus (tests/fuzz).
#   4. Release build (CUDA targets compiled when nvcc is present): the whole suite via CTest.
#      GPU tests report themselves as skipped where no GPU is visible.
# SKIP_SANITIZERS=1 runs step 4 alone.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
JOBS="${JOBS:-$(nproc)}"
start=$(date +%s)
stamp() { echo "== [$(( $(date +%s) - start ))s] $*"; }

if [[ "${SKIP_SANITIZERS:-0}" != 1 ]]; then
  stamp "ASan+UBSan build"
  cmake --preset asan >/dev/null
  asan_tests=(core_tests io_tests tokenizer_tests tokenizer_golden_tests ops_tests backend_ops_tests)
  cmake --build build/asan -j "$JOBS" --target "${asan_tests[@]}"
  for t in "${asan_tests[@]}"; do
    exe=$(find build/asan/tests -type f -name "$t" | head -n1)
    stamp "asan: $t"
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 "$exe" --gtest_brief=1 \
      --gtest_filter="${ASAN_FILTER:-*}"
  done
  stamp "TSan build"
  cmake --preset tsan >/dev/null
  tsan_tests=(core_tests tokenizer_tests runtime_scheduler_tests runtime_stress_tests engine_tests server_e2e_tests)
  cmake --build build/tsan -j "$JOBS" --target "${tsan_tests[@]}"
  for t in "${tsan_tests[@]}"; do
    exe=$(find build/tsan/tests -type f -name "$t" | head -n1)
    stamp "tsan: $t"
    # One CPU kernel thread: libgomp is not TSan-instrumented (see tests/engine/engine_test.cpp).
    EMBD_TEST_THREADS=1 TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" "$exe" --gtest_brief=1 \
      --gtest_filter="${TSAN_FILTER:-*}"
  done
  stamp "fuzz build"
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz -j "$JOBS"
  stamp "fuzz"
  ctest --preset fuzz -j "$JOBS"
fi

stamp "release build"
cmake --preset release >/dev/null
cmake --build --preset release -j "$JOBS"
stamp "ctest"
ctest --preset release -j "$JOBS"
stamp "done"
