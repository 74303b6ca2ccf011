#!/usr/bin/env bash
# Runs on the GPU machine: same-run A/B of two builds (BASE: a bundle holding bin/embd, e.g. the
# last commit's; NEW: this tree's full bundle, whose libraries both use), alternating base/new so
# drift hits both: end-to-end workloads through `embd bench` and `embd serve` under
# server_load_bench; plus NEW's per-kernel profile (forward_profile). Logs go to $OUT.
#   scripts/gpu/device-ab.sh BASE.tar.xz NEW.tar.xz [PART...]   (parts: profile e2e server; default all)
#   AB_SERVER_SIDES="base new" for one server run each (default: base new new base)
set -uo pipefail
base_bundle=$1; new_bundle=$2; shift 2
parts=" ${*:-profile e2e server} "
out=${OUT:-/tmp/out}; mkdir -p "$out"
for side in base new; do
  bundle=$base_bundle; [[ $side == new ]] && bundle=$new_bundle
  rm -rf "/tmp/embd-$side"; mkdir -p "/tmp/embd-$side"; tar -xJf "$bundle" -C "/tmp/embd-$side"
done
export LD_LIBRARY_PATH=/tmp/embd-new/lib
bin=/tmp/embd-new/bin
model=/tmp/small-en
source "$(dirname "$0")/common.sh"
synthetic_small_en "$bin" "$out/model.log"
[[ $parts == *" profile "* ]] && for dt in f16 bf16; do
  echo "== forward_profile $dt (new)"
  "$bin/forward_profile" --model "$model" --dtype $dt --shapes 512x128,mixed,1x8192 \
    > "$out/forward_profile_$dt.txt" 2>&1
  grep -E "^(==|linear|glu|attention|add_layernorm)" "$out/forward_profile_$dt.txt" | head -n 24
done
[[ $parts == *" e2e "* ]] && for round in 1 2; do
  for side in base new; do
    for dt in f16 bf16; do
      echo "== $side round $round embd $dt"
      timeout 120 "/tmp/embd-$side/bin/embd" bench --model "$model" --device cuda:0 --dtype $dt \
        --workload all --repeat 3 > "$out/e2e_${side}_${dt}_r$round.txt" 2>&1
      grep -E "^(q16|b32|b512|b8x|b1x|mixed)" "$out/e2e_${side}_${dt}_r$round.txt"
    done
  done
done
if [[ $parts == *" server "* ]]; then
  run=0
  for side in ${AB_SERVER_SIDES:-base new new base}; do
    run=$((run + 1))
    echo "== server_load_bench, $side embd serve (run $run)"
    timeout 200 "$bin/server_load_bench" --model "$model" --serve "/tmp/embd-$side/bin/embd" --device cuda:0 \
      --dtype f16 --requests 1000000 --seconds 2 --warmup 1000 > "$out/server_${run}_$side.txt" 2>&1
    cat "$out/server_${run}_$side.txt"
  done
fi
