#!/usr/bin/env bash
# Installs the Debian 12 packages embd builds and tests with. Idempotent, non-interactive.
set -euo pipefail
PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libdnnl-dev            # CPU GEMM (oneDNN matmul)
  libutf8proc-dev        # Unicode for the BERT normaliser
  libpcre2-dev           # regex patterns of tokenizer.json Replace normalisers
  libsimdjson-dev        # hot-path JSON (tokenizer.json, requests)
  nlohmann-json3-dev     # config JSON
  libboost-dev           # Boost.Beast + Asio (HTTP server)
  libcurl4-openssl-dev   # Hugging Face hub downloads
  libcli11-dev           # CLI flags
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-numpy  # test helpers (local HTTP server, fixture checks)
  clang libclang-rt-14-dev libomp-dev  # libFuzzer targets (tests/fuzz), built with clang
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
