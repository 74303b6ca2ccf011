#!/usr/bin/env bash
# Runs on the GPU machine: `embd serve` on cuda:0 under one server_load_bench scenario at a time
# (q16 c=256, b32x128 c=1, q16 c=1), with perf sampling every CPU meanwhile (system-wide, so the
# load client's share shows too). Prints the split by process and the server's hottest symbols;
# full reports go to $OUT/perf_<scenario>.txt.
#   scripts/gpu/device-server-profile.sh BUNDLE.tar.xz PERF.tar.xz   (make-bundle.sh, make-perf-bundle.sh)
set -uo pipefail
out=${OUT:-/tmp/out}; mkdir -p "$out" /tmp/embd-gpu /tmp/perf
tar -xJf "$1" -C /tmp/embd-gpu; tar -xJf "$2" -C /tmp/perf
perf() { LD_LIBRARY_PATH=/tmp/perf/lib /tmp/perf/bin/perf "$@"; }
export LD_LIBRARY_PATH=/tmp/embd-gpu/lib
b=/tmp/embd-gpu/bin; model=/tmp/small-en; port=18090
[[ -f $model/model.safetensors ]] || "$b/make_synthetic_model" --out "$model" --dtype f16 \
  --tokenizer tests/fixtures/models/tiny-jina/tokenizer.json > /dev/null 2>&1
"$b/embd" serve --model "$model" --device cuda:0 --dtype f16 --port $port --host 127.0.0.1 --offline \
  --max-client-batch-size 64 --max-concurrent-requests 4096 > /dev/null 2>&1 &
pid=$!
for _ in $(seq 60); do curl -sf "localhost:$port/health" > /dev/null 2>&1 && break; sleep 1; done
load() { timeout 100 "$b/server_load_bench" --model "$model" --port $port --device cuda:0 --dtype f16 --no-library 1 "$@"; }
load --only q16:1 --requests 3000 | grep -E "^server"  # warm-up
for scenario in q16:256 b32x128:1 q16:1; do
  n=200000; [[ $scenario == b32x128:1 ]] && n=3000; [[ $scenario == q16:1 ]] && n=15000
  perf record -F 1999 -a -o /tmp/perf.data -- sleep 3.5 > /dev/null 2>&1 &
  recorder=$!
  load --only "$scenario" --requests $n --batch-requests $n | grep -E "^server|headers"
  wait $recorder
  echo "== $scenario: CPU by process"
  perf report -i /tmp/perf.data --stdio --no-children --sort comm 2>/dev/null | grep -E "^ +[0-9]" | head -n 6
  echo "== $scenario: embd serve by symbol"
  perf report -i /tmp/perf.data --stdio --no-children --pid $pid --sort dso,sym 2>/dev/null |
    grep -E "^ +[0-9]" | cut -c1-160 | head -n 30
  perf report -i /tmp/perf.data --stdio --no-children --sort comm,dso,sym 2>/dev/null | head -n 400 \
    > "$out/perf_${scenario/:/_}.txt"
done
kill $pid; wait $pid
