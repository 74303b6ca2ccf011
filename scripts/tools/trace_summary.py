#!/usr/bin/env python3
"""Summarises an `embd ... --batch-trace FILE` CSV: per executor, the device batches grouped into
bursts (device idle > --burst-gap-ms ends a burst, e.g. between benchmark requests or rounds), with
how long the device computed, how long it sat idle inside the burst waiting for the host, the
host's time after the burst's last batch left the device until its rows were delivered, and how
much device time batches shared (concurrent batches).

Device times come from the device's clock; they are mapped onto the host clock with the smallest
(finished - device_end) over all batches (the executor's wake-up latency when it was waiting).
  python3 scripts/tools/trace_summary.py TRACE.csv [--burst-gap-ms 1.0] [--batches]
"""
import argparse
import collections
import csv
import statistics


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--burst-gap-ms", type=float, default=1.0)
    ap.add_argument("--batches", action="store_true", help="print every batch of the last 2 bursts")
    a = ap.parse_args()
    rows = collections.defaultdict(list)
    with open(a.trace) as f:
        for r in csv.DictReader(f):
            rows[r["executor"]].append(r)
    for executor, batches in rows.items():
        timed = [b for b in batches if b["device_begin_s"] and b["device_end_s"]]
        if not timed:
            print(f"{executor}: {len(batches)} batches, no device timestamps")
            continue
        for b in timed:
            for k in ("taken_s", "enqueued_s", "finished_s", "delivered_s", "device_begin_s", "device_end_s"):
                b[k] = float(b[k])
            b["tokens"] = int(b["tokens"])
        timed.sort(key=lambda b: b["device_begin_s"])
        offset = min(b["finished_s"] - b["device_end_s"] for b in timed)
        # Batches may overlap on the device (concurrent batches on two streams): a burst's busy time
        # is the union of its spans, its gaps are the stretches no batch covers, and `overlap` is
        # the device time two batches shared.
        bursts, cur, end = [], [timed[0]], timed[0]["device_end_s"]
        for b in timed[1:]:
            if (b["device_begin_s"] - end) * 1e3 > a.burst_gap_ms:
                bursts.append(cur)
                cur = []
            cur.append(b)
            end = max(end, b["device_end_s"])
        bursts.append(cur)
        print(f"{executor}: {len(timed)} timed batches in {len(bursts)} bursts")
        summary = collections.defaultdict(list)
        for burst in bursts:
            end = burst[0]["device_end_s"]
            gaps = []
            for b in burst[1:]:
                gaps.append(max(0.0, b["device_begin_s"] - end))
                end = max(end, b["device_end_s"])
            span = end - burst[0]["device_begin_s"]
            busy = span - sum(gaps)
            overlap = sum(b["device_end_s"] - b["device_begin_s"] for b in burst) - busy
            last = max(burst, key=lambda b: b["device_end_s"])
            tail = max(b["delivered_s"] for b in burst) - (last["device_end_s"] + offset)
            lead = burst[0]["device_begin_s"] + offset - burst[0]["taken_s"]
            tokens = sum(b["tokens"] for b in burst)
            key = (len(burst), tokens if tokens < 1000 else round(tokens, -2))  # rounds group alike
            summary[key].append((span, busy, sum(gaps), max(gaps, default=0), lead, tail, overlap))
        print("  batches  tokens   bursts  span_ms  busy_ms  idle_ms  max_gap_ms  lead_ms  tail_ms  overlap_ms  (medians)")
        for key, vals in sorted(summary.items(), key=lambda kv: -len(kv[1])):
            med = [statistics.median(v[i] for v in vals) * 1e3 for i in range(7)]
            print(f"  {key[0]:7d} {int(key[1]):7d} {len(vals):7d} " + " ".join(f"{m:8.3f}" for m in med))
        if a.batches:
            for burst in bursts[-2:]:
                print("  -- burst: tokens seqs maxlen | device begin end (ms, host clock) | taken enqueued finished delivered")
                t0 = burst[0]["taken_s"]
                for b in burst:
                    dev = [(b["device_begin_s"] + offset - t0) * 1e3, (b["device_end_s"] + offset - t0) * 1e3]
                    host = [(b[k] - t0) * 1e3 for k in ("taken_s", "enqueued_s", "finished_s", "delivered_s")]
                    print(f"  {b['tokens']:6d} {b['sequences']:>4s} {b['max_seqlen']:>5s} | "
                          + " ".join(f"{x:8.3f}" for x in dev) + " | " + " ".join(f"{x:8.3f}" for x in host))


if __name__ == "__main__":
    main()
