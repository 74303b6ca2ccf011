#!/usr/bin/env bash
# Runs on the GPU machine: `embd serve` from the bundle (scripts/gpu/make-bundle.sh) with the
# tiny-jina fixture (or $MODEL, e.g. /tmp/small-en, whose shape runs the Hopper kernels) on cuda:0
# (or $DEVICE), in each dtype given (default f32 f16 bf16), meets the HTTP fuzz corpora
# (tests/fuzz/replay_http.py with $JOBS clients, default 8, $ROUNDS times, default 1: no 500, no
# hang, the server still answers after every input with the rows it gave before, within
# $TOLERANCE, default 5e-3 and 2e-2 for bf16). Logs in $OUT.
#   scripts/gpu/device-fuzz-replay.sh BUNDLE.tar.xz [DTYPE...]
set -uo pipefail
bundle=$1; shift
dtypes=("$@"); ((${#dtypes[@]})) || dtypes=(f32 f16 bf16)
out=${OUT:-/tmp/out}; mkdir -p "$out"
stage=/tmp/embd-gpu; rm -rf "$stage"; mkdir -p "$stage"; tar -xJf "$bundle" -C "$stage"
export LD_LIBRARY_PATH="$stage/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
source "$(dirname "$0")/common.sh"
port=18555
status=0
for dtype in "${dtypes[@]}"; do
  log=$out/fuzz-replay-$dtype
  "$stage/bin/embd" serve --model "${MODEL:-tests/fixtures/models/tiny-jina}" --device "${DEVICE:-cuda:0}" --dtype "$dtype" \
    --host 127.0.0.1 --port "$port" > "$log.server.log" 2>&1 &
  server=$!
  wait_healthy "$port" 60 || echo "$dtype: the server did not become healthy within 60 s"
  echo "== $dtype"
  tolerance=${TOLERANCE:-$([[ $dtype == bf16 ]] && echo 2e-2 || echo 5e-3)}
  for round in $(seq "${ROUNDS:-1}"); do
    python3 tests/fuzz/replay_http.py --port "$port" tests/fuzz/corpus/http_server_fuzz \
      --codec tests/fuzz/corpus/request_codec_fuzz --jobs "${JOBS:-8}" --tolerance "$tolerance" \
      >> "$log.txt" 2>&1 || status=1
  done
  tail -n 2 "$log.txt"
  kill -TERM "$server"; wait "$server"; echo "server exit $?" | tee -a "$log.txt"
  tail -n 3 "$log.server.log"
done
exit $status
