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
