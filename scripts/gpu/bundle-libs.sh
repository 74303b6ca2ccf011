#!/usr/bin/env bash
# Copies the shared libraries that the given binaries link and that a stock CUDA machine may
# lack (oneDNN, utf8proc, simdjson, curl and its dependencies, ...) into DEST, so binaries built
# on Debian 12 run on the GPU machine with LD_LIBRARY_PATH=DEST. glibc, libstdc++/libgcc (newer
# there) and the CUDA libraries (the driver's and the toolkit's) are left to the target.
#   scripts/gpu/bundle-libs.sh DEST BINARY...
set -euo pipefail
dest=$1; shift
mkdir -p "$dest"
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|libpthread\.|librt\.|libstdc\+\+|libgcc_s|libcuda|libcublas|libcudart|libnvidia)'
for bin in "$@"; do
  ldd "$bin" | awk '/=> \// {print $1, $3}' | while read -r name path; do
    [[ $name =~ $skip ]] && continue
    cp -Lu "$path" "$dest/$name"
  done
done
ls "$dest"
