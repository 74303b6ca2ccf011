#!/usr/bin/env python3
"""A Unigram tokenizer.json with a vocabulary of XLM-RoBERTa's size, for speed and parity runs.

    python3 bench/tokenizer/make_big_unigram.py OUT_DIR [--pieces 250000]

The xlmr-unigram fixture's 1,948 pieces are few: its trie is narrow and its pieces short. A real
XLM-R vocabulary has 250,002. This script keeps the fixture's pipeline and pieces and adds the
most frequent character n-grams (1 to 16 characters, words prefixed with "▁" as Metaspace
writes them) of the fixtures' texts (those tokenizer_bench reads, and the tokenizer goldens'),
scored log(count / total), until the vocabulary has --pieces entries or the n-grams run out
(121,740 pieces with these texts: every n-gram of their words is then a piece, so the lattice is
as dense as it gets). The ids of the fixture's pieces, specials included, do not move. Plain
Python, deterministic: the same input gives the same file.
"""
import argparse
import collections
import json
import math
import os

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "tests", "fixtures")


def bench_texts():
    texts = []
    for name in ("tokenizer.jsonl", "tiny-jina.fp64.jsonl", "bpe-roberta.jsonl", "unigram-xlmr.jsonl"):
        with open(os.path.join(FIXTURES, "goldens", name), encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f if line.strip()]
    return sorted(set(texts))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir")
    p.add_argument("--pieces", type=int, default=250000)
    args = p.parse_args()
    with open(os.path.join(FIXTURES, "tokenizers", "xlmr-unigram", "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    vocab = tok["model"]["vocab"]
    have = {piece for piece, _ in vocab}
    counts = collections.Counter()
    for text in bench_texts():
        for word in text.split():
            w = "\u2581" + word
            for i in range(len(w)):
                for n in range(1, min(16, len(w) - i) + 1):
                    counts[w[i:i + n]] += 1
    total = sum(counts.values())
    ranked = sorted(((c, g) for g, c in counts.items() if g not in have), key=lambda x: (-x[0], x[1]))
    for c, g in ranked[:max(0, args.pieces - len(vocab))]:
        vocab.append([g, math.log(c / total)])
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    print("pieces", len(vocab), "from", len(counts), "n-grams")


if __name__ == "__main__":
    main()
