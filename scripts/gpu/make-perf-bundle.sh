#!/usr/bin/env bash
# Runs here: packs Debian's perf (linux-perf) and the libraries it links into .gpu/perf.tar.xz, for
# profiling on the GPU machine, which has no perf (device-server-profile.sh unpacks it there).
#   sudo apt-get install -y linux-perf && scripts/gpu/make-perf-bundle.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
perf=$(command -v perf) || { echo "make-perf-bundle: perf not installed (apt-get install linux-perf)" >&2; exit 1; }
stage=$root/.gpu/perf-stage
rm -rf "$stage"; mkdir -p "$stage/bin" "$stage/lib"
cp "$perf" "$stage/bin/perf"
bash "$root/scripts/gpu/bundle-libs.sh" "$stage/lib" "$perf" > /dev/null
tar -cJf "$root/.gpu/perf.tar.xz" -C "$stage" bin lib
rm -rf "$stage"
du -h "$root/.gpu/perf.tar.xz"
