#!/usr/bin/env bash
# Runs here (Debian 12 with nvcc): packs the release build's GPU-relevant binaries and the shared
# libraries the GPU machine lacks (bundle-libs.sh) into .gpu/bundle.tar.xz, to be carried to the
# device tool's machine (`carry: [".gpu/bundle.tar.xz"]`) and unpacked there by device-check.sh / device-bench.sh.
#   cmake --build --preset release && scripts/gpu/make-bundle.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build/release
stage=$root/.gpu/stage
rm -rf "$stage"; mkdir -p "$stage/bin" "$stage/lib"
bins=(
  "$build/bin/embd" "$build/bin/make_synthetic_model"
  "$build/tests/backends/backend_ops_tests" "$build/tests/models/golden_model_tests"
  "$build/tests/models/model_runner_tests" "$build/tests/engine/engine_gpu_tests"
  "$build/tests/backends/backend_registry_tests"
  "$build/bench/gpu/gpu_ops_bench" "$build/bench/gpu/forward_profile" "$build/bin/server_load_bench"
  "$build/bench/server/encode_bench" "$build/bench/tokenizer/tokenizer_bench"
)
for b in "${bins[@]}"; do
  [[ -x $b ]] || b=$(find "$build" -name "$(basename "$b")" -type f -perm -u+x | head -n1)
  [[ -n $b && -x $b ]] || { echo "make-bundle: missing $(basename "$b")" >&2; exit 1; }
  cp "$b" "$stage/bin/"
done
bash "$root/scripts/gpu/bundle-libs.sh" "$stage/lib" "$stage"/bin/* > /dev/null
tar -cJf "$root/.gpu/bundle.tar.xz" -C "$stage" bin lib
rm -rf "$stage"
du -h "$root/.gpu/bundle.tar.xz"
