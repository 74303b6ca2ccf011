#!/usr/bin/env bash
# Extra Debian packages for the benchmarks' PyTorch baseline (not needed to build or test).
set -euo pipefail
bash "$(dirname "$0")/install-deps.sh"
export DEBIAN_FRONTEND=noninteractive
dpkg-query -W -f='${Status}' python3-torch 2>/dev/null | grep -q "install ok installed" ||
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-torch; }
