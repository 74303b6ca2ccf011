#!/usr/bin/env python3
"""PyTorch baseline for MPNet (all-mpnet-base-v2's architecture) in embd's benchmarks.

The model is transformers' own MPNetModel, as sentence-transformers runs it: padded batches with
an attention mask, the relative-position bias computed by transformers for each batch, mean
pooling over real tokens in float32. The attention implementation is transformers' default for
the class (printed; MPNet's bias needs its eager path).

Modes
  bench (default): the DESIGN.md workloads that fit the model (q16, b32x128, b512x128, mixed4096
    with lengths clipped to the model's 512), on the same synthetic ids as jinabert_torch.py
    (tokenisation not timed), printing the metrics of `embd bench`.
  --make-model DIR: writes an all-mpnet-base-v2-shaped model (MPNetConfig's defaults: hidden 768,
    12 layers, 12 heads, vocab 30527, 514 positions; random weights, stored F32) with
    --tokenizer-from's tokenizer.json and sentence-transformers mean pooling + Normalize, and exits.
  --golden FILE: embeds the golden file's ids in --dtype and prints the worst relative L2 error of
    the raw mean-pooled vector against the float64 "embedding" (PyTorch's own error in that dtype).

Examples
  python3 mpnet_torch.py --make-model /tmp/mpnet-base --tokenizer-from tests/fixtures/models/tiny-mpnet
  python3 mpnet_torch.py --model /tmp/mpnet-base --device cuda --dtype f16 --repeat 3
  python3 mpnet_torch.py --model tests/fixtures/models/tiny-mpnet --device cuda --dtype bf16 \\
      --golden tests/fixtures/goldens/tiny-mpnet.fp64.jsonl
"""

import argparse
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jinabert_torch import DEFAULT_SEED, DTYPES, WORKLOADS, IdFactory, run_workload  # noqa: E402

FITTING = ["q16", "b32x128", "b512x128", "mixed4096"]


class MeanPooled(torch.nn.Module):
    """MPNetModel + mean pooling in float32, called as model(ids, mask) like jinabert_torch's."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids, mask):
        x = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.to(torch.float32)[..., None]
        return (x.to(torch.float32) * m).sum(1) / m.sum(1).clamp(min=1e-9)


def make_model(out_dir, tokenizer_from):
    import transformers

    torch.manual_seed(1203)
    config = transformers.MPNetConfig()  # all-mpnet-base-v2's shape
    model = transformers.MPNetModel(config, add_pooling_layer=False).eval()
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    shutil.copy(os.path.join(tokenizer_from, "tokenizer.json"), out_dir)
    for name in ("modules.json", "sentence_bert_config.json"):
        shutil.copy(os.path.join(tokenizer_from, name), out_dir)
    os.makedirs(os.path.join(out_dir, "1_Pooling"), exist_ok=True)
    with open(os.path.join(out_dir, "1_Pooling/config.json"), "w") as f:
        json.dump({"word_embedding_dimension": config.hidden_size, "pooling_mode_mean_tokens": True}, f)
    print(out_dir, sum(p.numel() for p in model.parameters()), "parameters")


def load(model_dir, dtype, device):
    import transformers

    model = transformers.MPNetModel.from_pretrained(model_dir, dtype=dtype, add_pooling_layer=False)
    impl = getattr(model.config, "_attn_implementation", "eager")
    return MeanPooled(model.to(device).eval()), model.config, impl


def golden_error(args):
    model, _, impl = load(args.model, DTYPES[args.dtype], args.device)
    worst = 0.0
    with torch.inference_mode():
        for line in open(args.golden, encoding="utf-8"):
            rec = json.loads(line)
            ids = torch.tensor([rec["ids"]], device=args.device)
            got = model(ids, torch.ones_like(ids))[0].double().cpu()
            want = torch.tensor(rec["embedding"], dtype=torch.float64)
            worst = max(worst, float((got - want).norm() / want.norm()))
    print(f"pytorch {torch.__version__} {args.dtype} on {args.device} ({impl} attention): "
          f"max rel L2 {worst:.2e} over {args.golden}")


def bench(args):
    model, config, impl = load(args.model, DTYPES[args.dtype], args.device)
    max_length = config.max_position_embeddings - config.pad_token_id - 1
    print(f"model {args.model} (pytorch {torch.__version__}, transformers MPNetModel, {impl} attention, "
          f"{args.dtype} on {args.device})")
    print(f"{'workload':<10} {'mode':<18} {'texts':>8} {'tokens':>10} {'seconds':>9} {'tokens/s':>12} "
          f"{'embeds/s':>12} {'p50 ms':>10} {'p99 ms':>10}")
    names = FITTING if args.workload == "all" else [args.workload]
    with torch.inference_mode():
        for name in names:
            factory = IdFactory(args.model, config.vocab_size, args.seed + WORKLOADS.index(name))
            factory.cls, factory.sep, factory.pad = 0, 2, config.pad_token_id  # <s>, </s>, <pad>
            r = run_workload(name, model, factory, max_length, args)
            print(f"{name:<10} {r['mode']:<18} {r['texts']:>8} {r['tokens']:>10} {r['seconds']:>9.3f} "
                  f"{r['tokens_per_s']:>12.1f} {r['embeddings_per_s']:>12.2f} {r['p50_ms']:>10.3f} "
                  f"{r['p99_ms']:>10.3f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model directory")
    parser.add_argument("--dtype", choices=list(DTYPES), default="f16")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--workload", choices=FITTING + ["all"], default="all")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--pad-multiple", type=int, default=8)
    parser.add_argument("--make-model", metavar="DIR")
    parser.add_argument("--tokenizer-from", default="tests/fixtures/models/tiny-mpnet")
    parser.add_argument("--golden", metavar="FILE")
    args = parser.parse_args()
    if args.make_model:
        make_model(args.make_model, args.tokenizer_from)
    elif args.golden:
        golden_error(args)
    else:
        bench(args)


if __name__ == "__main__":
    main()
