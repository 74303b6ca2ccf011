#!/usr/bin/env bash
# Quick start 1: install dependencies, build embd (release) and run the HTTP server.
#   scripts/serve.sh [extra `embd serve` flags]
# MODEL (default: the bundled tiny-jina fixture; any local dir or Hugging Face id), PORT (8080).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target embd_cli -j "$(nproc)"
exec build/release/bin/embd serve --model "${MODEL:-tests/fixtures/models/tiny-jina}" \
  --port "${PORT:-8080}" "$@"
