#!/usr/bin/env bash
# Runs on the GPU machine: one `embd serve` from the bundle (scripts/gpu/make-bundle.sh) under
# ROUNDS rounds of mixed traffic, each the HTTP fuzz corpora (tests/fuzz/replay_http.py, $JOBS
# clients, default 16) and then load (server_load_bench against the running server: q16 from 256
# connections and b32x128 from 16, $SECONDS_PER_ROW each, default 5). After every round it
# samples the server's resident memory and its peak, threads, open descriptors and the GPU's
# used memory, so that any growth shows as a trend. $MODEL (default the small-en shape),
# $DEVICE (default cuda:0), $DTYPE (default f16). Logs in $OUT; the table goes to stdout.
#   scripts/gpu/device-soak.sh BUNDLE.tar.xz [ROUNDS]
set -uo pipefail
bundle=$1; rounds=${2:-8}
out=${OUT:-/tmp/out}; mkdir -p "$out"
stage=/tmp/embd-soak; rm -rf "$stage"; mkdir -p "$stage"; tar -xJf "$bundle" -C "$stage"
export LD_LIBRARY_PATH="$stage/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin=$stage/bin
source "$(dirname "$0")/common.sh"
model=${MODEL:-/tmp/small-en}
[[ $model == /tmp/small-en ]] && synthetic_small_en "$bin" "$out/model.log" > /dev/null
device=${DEVICE:-cuda:0}; gpu=${device#cuda:}; [[ $gpu == cuda ]] && gpu=0
port=18556
"$bin/embd" serve --model "$model" --device "$device" --dtype "${DTYPE:-f16}" --host 127.0.0.1 --port $port \
  > "$out/soak.server.log" 2>&1 &
server=$!
wait_healthy "$port" 120 || { echo "the server did not become healthy"; tail -n 5 "$out/soak.server.log"; exit 1; }
sample() {  # round, then the columns of the table
  local rss hwm threads fds gpu_used
  rss=$(awk '/^VmRSS/ {print $2}' /proc/$server/status); hwm=$(awk '/^VmHWM/ {print $2}' /proc/$server/status)
  threads=$(awk '/^Threads/ {print $2}' /proc/$server/status); fds=$(ls /proc/$server/fd | wc -l)
  gpu_used=$(nvidia-smi --id="$gpu" --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null || echo -)
  awk -v r="$1" -v rss="$rss" -v hwm="$hwm" -v t="$threads" -v f="$fds" -v g="$gpu_used" \
    'BEGIN { printf "%-6s %10.1f %10.1f %8s %6s %12s\n", r, rss / 1024, hwm / 1024, t, f, g }'
}
printf '%-6s %10s %10s %8s %6s %12s\n' round "RSS MiB" "peak MiB" threads fds "GPU MiB"
sample ready
status=0
for round in $(seq "$rounds"); do
  python3 tests/fuzz/replay_http.py --port $port tests/fuzz/corpus/http_server_fuzz \
    --codec tests/fuzz/corpus/request_codec_fuzz --jobs "${JOBS:-16}" --tolerance 2e-2 \
    > "$out/soak-replay-$round.txt" 2>&1 || { status=1; echo "round $round: replay failed"; tail -n 3 "$out/soak-replay-$round.txt"; }
  "$bin/server_load_bench" --model "$model" --port $port --no-library 1 --requests 100000000 \
    --seconds "${SECONDS_PER_ROW:-5}" --warmup 1000 --only q16:256,b32x128:16 > "$out/soak-load-$round.txt" 2>&1 ||
    { status=1; echo "round $round: load failed"; tail -n 3 "$out/soak-load-$round.txt"; }
  kill -0 $server 2>/dev/null || { echo "round $round: the server is gone"; exit 1; }
  sample "$round"
done
grep -h "passed" "$out"/soak-replay-*.txt | sort | uniq -c
for round in $(seq "$rounds"); do
  grep -hE "^server +(q16|b32x128) " "$out/soak-load-$round.txt" |
    awk -v r="$round" '{ printf "round %s %s %s: %s req/s, %s failed, p50 %s ms, p99 %s ms\n", r, $2, $3, $8, $6, $12, $15 }'
done
kill -TERM $server; wait $server; echo "server exit $?"; tail -n 2 "$out/soak.server.log"
exit $status
