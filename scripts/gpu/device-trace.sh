#!/usr/bin/env bash
# Runs on the GPU machine: `embd bench` with --batch-trace under each flag set, then each trace's
# summary (scripts/tools/trace_summary.py): device busy and idle time per burst of batches, and
# the host's time around them. Each CONFIG is NAME=FLAGS ("b64k=--batch-tokens 65536").
#   scripts/gpu/device-trace.sh BUNDLE.tar.xz DTYPE WORKLOAD REPEAT CONFIG...
# Logs and traces go to $OUT as one tarball.
set -uo pipefail
bundle=$1; dtype=$2; workload=$3; repeat=$4; shift 4
out=${OUT:-/tmp/out}; logs=/tmp/trace-logs; rm -rf "$logs"; mkdir -p "$out" "$logs"
rm -rf /tmp/embd-trace; mkdir -p /tmp/embd-trace; tar -xJf "$bundle" -C /tmp/embd-trace
export LD_LIBRARY_PATH=/tmp/embd-trace/lib
bin=/tmp/embd-trace/bin
model=/tmp/small-en
here=$(dirname "$0")
source "$here/common.sh"
synthetic_small_en "$bin" "$logs/model.log"
for config in "$@"; do
  name=${config%%=*}; flags=${config#*=}
  log="$logs/${name}_${dtype}_${workload}.txt"; trace="$logs/${name}_${dtype}_${workload}.csv"
  # shellcheck disable=SC2086  # flags are words on purpose
  timeout 300 "$bin/embd" bench --model "$model" --device cuda:0 --dtype "$dtype" --workload "$workload" \
    --repeat "$repeat" --batch-trace "$trace" $flags > "$log" 2>&1
  echo "== $name ($flags)"
  grep -E "^(q16|b32|b512|b8x|b1x|mixed)" "$log"
  python3 "$here/../tools/trace_summary.py" "$trace" ${TRACE_ARGS:-} | tee -a "$log"
done
tar -czf "$out/trace-logs-$workload-${1%%=*}.tar.gz" -C /tmp trace-logs
