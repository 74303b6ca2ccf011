#!/usr/bin/env python3
"""HF `tokenizers` (Rust) throughput on exactly the pieces tokenizer_bench uses.

    build/<dir>/bench/tokenizer/tokenizer_bench --write-input /tmp/pieces.jsonl
    python3 bench/tokenizer/hf_tokenizers_bench.py --input-file /tmp/pieces.jsonl

Prints tokens/s and MB/s single-threaded (TOKENIZERS_PARALLELISM=false) and multi-threaded
(encode_batch on RAYON_NUM_THREADS=--threads threads), then a JSON line with the same keys as
tokenizer_bench, including an id checksum computed the same way (compare it for parity).
"""
import argparse
import json
import os
import sys
import time


def parse_args():
    here = os.path.dirname(os.path.abspath(__file__))
    default_model = os.path.join(here, "..", "..", "tests", "fixtures", "models", "tiny-jina")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input-file", required=True, help="JSONL from tokenizer_bench --write-input")
    p.add_argument("--model-dir", default=default_model, help="directory holding tokenizer.json")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeat", type=int, default=3)
    return p.parse_args()


def checksum(encodings):
    h = 0
    mask = (1 << 64) - 1
    for enc in encodings:
        for i in enc.ids:
            h = (h * 1000003 + i) & mask
    return h


def best_of(repeat, fn):
    best = None
    out = None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        best = dt if best is None or dt < best else best
    return best, out


def main():
    args = parse_args()
    # rayon sizes its global pool once, on first use: set the thread count before importing.
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    from tokenizers import Tokenizer, __version__

    tok = Tokenizer.from_file(os.path.join(args.model_dir, "tokenizer.json"))
    with open(args.input_file, encoding="utf-8") as f:
        pieces = [json.loads(line)["text"] for line in f if line.strip()]
    nbytes = sum(len(p.encode("utf-8")) for p in pieces)
    mbytes = nbytes / 1e6
    print(f"tokenizers {__version__}: {len(pieces)} pieces, {mbytes:.2f} MB")

    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # read on every call by tokenizers
    single_s, single = best_of(args.repeat, lambda: tok.encode_batch(pieces, add_special_tokens=True))
    tokens = sum(len(e.ids) for e in single)
    print(f"1 thread:  {tokens / single_s:.0f} tokens/s, {mbytes / single_s:.2f} MB/s "
          f"({tokens} tokens in {single_s:.3f} s)")

    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    multi_s, multi = best_of(args.repeat, lambda: tok.encode_batch(pieces, add_special_tokens=True))
    print(f"{args.threads} threads: {tokens / multi_s:.0f} tokens/s, {mbytes / multi_s:.2f} MB/s "
          f"({multi_s:.3f} s)")
    sum_single = checksum(single)
    print(f"id checksum: {sum_single:016x}")
    if checksum(multi) != sum_single:
        print("multi-threaded ids differ from single-threaded ids", file=sys.stderr)
        return 1
    print(json.dumps({
        "bench": "tokenizer", "impl": f"hf-tokenizers-{__version__}", "pieces": len(pieces),
        "bytes": nbytes, "tokens": tokens, "checksum": sum_single, "threads": args.threads,
        "single_tokens_per_s": tokens / single_s, "single_mb_per_s": mbytes / single_s,
        "multi_tokens_per_s": tokens / multi_s, "multi_mb_per_s": mbytes / multi_s,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
