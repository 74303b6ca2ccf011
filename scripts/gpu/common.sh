# Sourced by the device scripts (they run on the GPU machine, in the repository root).
# synthetic_small_en BIN_DIR LOG: makes /tmp/small-en (a model of jina-embeddings-v2-small-en's
# exact shape, random F16 weights, the tiny fixture's tokenizer) unless it exists, printing the
# GPU's name, driver and clock to stdout and to gpu.txt next to LOG.
synthetic_small_en() {
  local bin=$1 log=$2
  [[ -f /tmp/small-en/model.safetensors ]] || "$bin/make_synthetic_model" --out /tmp/small-en \
    --dtype f16 --tokenizer tests/fixtures/models/tiny-jina/tokenizer.json > "$log" 2>&1
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$(dirname "$log")/gpu.txt"
}

# profile_forward BIN_DIR [FLAGS...]: forward_profile on /tmp/small-en over the batch shapes the
# device scripts compare (512x128, 128x128, mixed, 1x8192), 5 repeats each, to stdout.
profile_forward() {
  local bin=$1; shift
  timeout 120 "$bin/forward_profile" --model /tmp/small-en --shapes 512x128,128x128,mixed,1x8192 --repeat 5 "$@"
}

# wait_healthy PORT [SECONDS]: waits until a server on 127.0.0.1:PORT answers GET /health with
# 200 (a model loaded), for at most SECONDS (default 60); fails after that.
wait_healthy() {
  local port=$1 tries=$(( ${2:-60} * 2 ))
  for _ in $(seq "$tries"); do
    python3 -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:$port/health').status != 200)" \
      2>/dev/null && return 0
    sleep 0.5
  done
  return 1
}
