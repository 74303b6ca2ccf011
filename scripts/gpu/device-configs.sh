#!/usr/bin/env bash
# Runs on the GPU machine: end-to-end A/B of `embd bench` flag sets on one build, in alternating
# rounds so that drift hits every set alike. Each CONFIG is NAME=FLAGS ("lane-off=--query-lane off");
# leading VAR=VALUE words of FLAGS are set in the environment instead ("tail=EMBD_X=1 --flag on").
# The device is cuda:0 unless FLAGS name one ("two=CUDA_VISIBLE_DEVICES=0,1 --device cuda").
# With BASE_BUNDLE=base.tar.xz (bin/embd of another build), configs named base* run that binary.
# Per round, set and dtype: `--workload all --repeat 3`, then q16 under a batch backlog.
#   scripts/gpu/device-configs.sh BUNDLE.tar.xz ROUNDS CONFIG...
# Logs go to $OUT as one tarball (the device tool returns few files); medians are printed.
set -uo pipefail
bundle=$1; rounds=$2; shift 2
out=${OUT:-/tmp/out}; logs=/tmp/config-logs; rm -rf "$logs"; mkdir -p "$out" "$logs"
rm -rf /tmp/embd-cfg; mkdir -p /tmp/embd-cfg; tar -xJf "$bundle" -C /tmp/embd-cfg
export LD_LIBRARY_PATH=/tmp/embd-cfg/lib
bin=/tmp/embd-cfg/bin
if [[ -n ${BASE_BUNDLE:-} ]]; then
  rm -rf /tmp/embd-cfg-base; mkdir -p /tmp/embd-cfg-base; tar -xJf "$BASE_BUNDLE" -C /tmp/embd-cfg-base
fi
model=/tmp/small-en
source "$(dirname "$0")/common.sh"
synthetic_small_en "$bin" "$logs/model.log"
for round in $(seq 1 "$rounds"); do
  for config in "$@"; do
    name=${config%%=*}; flags=${config#*=}; envs=()
    while [[ $flags =~ ^([A-Za-z_][A-Za-z0-9_]*=[^ ]*)\ *(.*)$ ]]; do
      envs+=("${BASH_REMATCH[1]}"); flags=${BASH_REMATCH[2]}
    done
    embd=$bin/embd; [[ $name == base* ]] && embd=/tmp/embd-cfg-base/bin/embd
    device=(--device cuda:0); [[ " $flags" == *" --device "* ]] && device=()
    for dt in f16 bf16; do
      log="$logs/${name}_${dt}_r$round.txt"
      # shellcheck disable=SC2086  # flags are words on purpose
      timeout 120 env "${envs[@]}" "$embd" bench --model "$model" "${device[@]}" --dtype $dt --workload all \
        --repeat 3 $flags > "$log" 2>&1
      # shellcheck disable=SC2086
      timeout 60 env "${envs[@]}" "$embd" bench --model "$model" "${device[@]}" --dtype $dt --workload q16 \
        --background --repeat 3 $flags >> "$log" 2>&1
    done
  done
done
python3 - "$logs" "$@" <<'PY'
import glob, os, statistics, sys, collections
logs, names = sys.argv[1], [c.split('=', 1)[0] for c in sys.argv[2:]]
rows = collections.defaultdict(list)
for name in names:
    for dt in ('f16', 'bf16'):
        for f in glob.glob(os.path.join(logs, f'{name}_{dt}_r*.txt')):
            for line in open(f):
                p = line.split()
                if len(p) < 9 or p[0] not in ('q16', 'b32x128', 'b512x128', 'b8x2048', 'b1x8192', 'mixed4096'):
                    continue
                try:
                    if p[1] == 'background':
                        rows[(p[0] + ' backlog p50 ms', dt, name)].append(float(p[7]))
                        rows[(p[0] + ' backlog p99 ms', dt, name)].append(float(p[8]))
                        rows[('backlog Mtok/s', dt, name)].append(float(p[-2]) / 1e6)
                    elif p[0] in ('b32x128', 'mixed4096'):
                        rows[(p[0] + ' Mtok/s', dt, name)].append(float(p[5]) / 1e6)
                    else:
                        rows[(p[0] + ' p50 ms', dt, name)].append(float(p[7]))
                except ValueError:
                    pass
for key in sorted({(k[0], k[1]) for k in rows}):
    cells = []
    for name in names:
        v = rows.get((key[0], key[1], name), [])
        cells.append(f'{name} {statistics.median(v):.3f} ({min(v):.3f}-{max(v):.3f})' if v else f'{name} -')
    print(f'{key[0]:24s} {key[1]:5s} ' + ' | '.join(cells))
PY
tar -czf "$out/config-logs.tar.gz" -C /tmp config-logs
