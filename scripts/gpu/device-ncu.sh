#!/usr/bin/env bash
# Runs on the GPU machine after device-configs.sh or device-check.sh unpacked a bundle (bin in
# $BIN, default /tmp/embd-cfg/bin): Nsight Compute's view of one kernel in whole batches, and its SASS.
#   scripts/gpu/device-ncu.sh KERNEL_REGEX [FORWARD_PROFILE_FLAGS...]
# KERNEL_REGEX must match the demangled name (ncu) and the mangled one (cuobjdump), e.g.
# 'attention_tiles_kernel.*half.*Wgmma'.
# Runs `forward_profile --shapes mixed,512x128` under ncu (two launches of the kernel, the
# launch, occupancy, scheduler, warp-state, instruction and memory sections) and writes the report
# text and the SASS of the matching kernels (cuobjdump) to $OUT.
set -uo pipefail
regex=$1; shift
bin=${BIN:-/tmp/embd-cfg/bin}; out=${OUT:-/tmp/out}; mkdir -p "$out"
export LD_LIBRARY_PATH=$(dirname "$bin")/lib
ncu=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
tag=$(echo "$regex $*" | tr -c 'A-Za-z0-9' '_')
"$ncu" --kernel-name-base demangled --kernel-name "regex:$regex" --launch-count 2 --section LaunchStats --section Occupancy \
  --section SchedulerStats --section WarpStateStats --section InstructionStats --section ComputeWorkloadAnalysis \
  --section MemoryWorkloadAnalysis --section SpeedOfLight \
  "$bin/forward_profile" --model /tmp/small-en --dtype f16 --shapes mixed,512x128 --repeat 1 "$@" \
  > "$out/ncu_$tag.txt" 2>&1
tail -n 5 "$out/ncu_$tag.txt"
cuobjdump=$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)
"$cuobjdump" -sass "$bin/forward_profile" 2>/dev/null |
  awk -v re="$regex" '/Function :/ {keep = ($0 ~ re)} keep' > "$out/sass_$tag.txt"
wc -l "$out/sass_$tag.txt"
# The device tool returns few files: one tarball of everything ncu and cuobjdump wrote.
tar -czf "$out/ncu-$tag.tar.gz" -C "$out" "ncu_$tag.txt" "sass_$tag.txt" && rm -f "$out/ncu_$tag.txt" "$out/sass_$tag.txt"
