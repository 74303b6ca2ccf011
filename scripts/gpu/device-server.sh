#!/usr/bin/env bash
# Runs on the GPU machine: `embd serve` on cuda:0 under server_load_bench (which also times the
# library on the same inputs in the same run), with the machine-sized I/O threads and with more.
# Unpacks the bundle unless device-check.sh / device-bench.sh already did. Logs go to $OUT.
#   scripts/gpu/device-server.sh BUNDLE.tar.xz [IO_THREADS...]   (default: 0 8 16; 0 = machine-sized)
set -uo pipefail
bundle=$1; shift
io_list=("$@"); [[ ${#io_list[@]} -eq 0 ]] && io_list=(0 8 16)
out=${OUT:-/tmp/out}; mkdir -p "$out"
stage=/tmp/embd-gpu; bin=$stage/bin
[[ -x $bin/embd ]] || { rm -rf "$stage"; mkdir -p "$stage"; tar -xJf "$bundle" -C "$stage"; }
export LD_LIBRARY_PATH="$stage/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
model=/tmp/small-en
[[ -f $model/model.safetensors ]] || "$bin/make_synthetic_model" --out "$model" --dtype f16 \
  --tokenizer tests/fixtures/models/tiny-jina/tokenizer.json > "$out/model.log" 2>&1
for io in "${io_list[@]}"; do
  echo "== server_load_bench f16 cuda:0 --io-threads $io"
  timeout 180 "$bin/server_load_bench" --model "$model" --serve "$bin/embd" --device cuda:0 --dtype f16 \
    --requests 20000 --batch-requests 2000 --io-threads "$io" > "$out/server_io$io.txt" 2>&1
  cat "$out/server_io$io.txt"
done
