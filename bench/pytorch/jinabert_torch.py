#!/usr/bin/env python3
"""PyTorch JinaBERT v2 baseline for embd's benchmarks (JINABERT.md section 3).

The model is written the way users run JinaBERT in PyTorch: word + token-type embeddings and
LayerNorm, per layer separate Q/K/V projections, attention through
F.scaled_dot_product_attention with one additive float mask (key padding + symmetric ALiBi bias,
built for the batch's length and cast to the run dtype), post-LN, GEGLU MLP (first half through
exact-erf GELU, times the second half), and mean pooling over real tokens in float32. Plain BERT
directories (absolute position embeddings, GELU MLP) load too.

Weights: <model>/config.json + <model>/model.safetensors (the `safetensors` package when
installed, else a small numpy reader). Tokenizer: <model>/tokenizer.json through the
`tokenizers` package when installed; otherwise --check needs pre-tokenized input ("ids").

Modes
  bench (default): the DESIGN.md workloads on synthetic token ids (tokenisation is not timed;
    embd's own bench includes it) and prints the metrics of `embd bench --json`:
      q16        100 single 16-token queries, one at a time (latency)
      b32x128    8 requests of 32 x 128 tokens      b512x128  2 requests of 512 x 128
      b8x2048    2 requests of 8 x 2048             b1x8192   2 requests of 1 x 8192
      mixed4096  4096 texts with the same lognormal lengths as embd (median ~120, clipped
                 8..2048, identical generator), length-sorted, in batches of 64 padded to a
                 multiple of --pad-multiple (8) tokens; tokens/s counts real tokens only
  --check: embeds a few texts and prints {"index", "embedding", "tokens"} JSON Lines like
    `embd embed`, so results can be compared with embd; with a golden file (records carrying
    "embedding") the max abs error against it goes to stderr.

Examples
  python3 jinabert_torch.py --model tests/fixtures/models/tiny-jina --device cpu --threads 2 --json
  python3 jinabert_torch.py --model DIR --device cuda --dtype f16 --workload b32x128
  python3 jinabert_torch.py --model tests/fixtures/models/tiny-jina --check \\
      --input tests/fixtures/goldens/tiny-jina.fp64.jsonl --no-normalize
"""

import argparse
import datetime
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}

# name -> (texts per request, tokens per text, requests per round); same as apps/embd/workloads.cpp
SHAPES = {
    "q16": (1, 16, 100),
    "b32x128": (32, 128, 8),
    "b512x128": (512, 128, 2),
    "b8x2048": (8, 2048, 2),
    "b1x8192": (1, 8192, 2),
}
WORKLOADS = ["q16", "b32x128", "b512x128", "b8x2048", "b1x8192", "mixed4096"]
DEFAULT_SEED = 20240501  # embd's BenchConfig::seed
MIXED_BATCH = 64


# ----------------------------------------------------------------------------------------------
# Weights


def read_safetensors_numpy(path):
    """Minimal safetensors reader: {name: float32 numpy array} (F32, F16, BF16 tensors)."""
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    base = 8 + header_len
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        begin, end = meta["data_offsets"]
        raw = data[base + begin : base + end]
        shape = meta["shape"]
        if meta["dtype"] == "F32":
            arr = np.frombuffer(raw, dtype="<f4")
        elif meta["dtype"] == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif meta["dtype"] == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {meta['dtype']}")
        out[name] = torch.from_numpy(arr.reshape(shape).copy())
    return out


def load_weights(model_dir):
    path = os.path.join(model_dir, "model.safetensors")
    try:
        from safetensors.torch import load_file  # type: ignore

        tensors = load_file(path)
    except ImportError:
        tensors = read_safetensors_numpy(path)
    # Accept both "X" and "bert.X" names; the pooler and heads are unused.
    return {(k[5:] if k.startswith("bert.") else k): v for k, v in tensors.items()}


def stored_dtype(model_dir):
    with open(os.path.join(model_dir, "model.safetensors"), "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    for name, meta in header.items():
        if name != "__metadata__":
            return {"F32": "f32", "F16": "f16", "BF16": "bf16"}.get(meta["dtype"], meta["dtype"])
    return "?"


# ----------------------------------------------------------------------------------------------
# Model


def alibi_slopes(n_heads):
    """JINABERT.md 4.1: power-of-two list, then every other slope of the list for 2P."""

    def power_of_two(n):
        start = 2.0 ** (-8.0 / n)
        return [start ** (h + 1) for h in range(n)]

    p = 2 ** int(math.floor(math.log2(n_heads)))
    slopes = power_of_two(p)
    if p < n_heads:
        slopes += power_of_two(2 * p)[0::2][: n_heads - p]
    return torch.tensor(slopes, dtype=torch.float32)


class Encoder(torch.nn.Module):
    def __init__(self, config, weights):
        super().__init__()
        self.config = config
        self.jina = "encoder.layer.0.mlp.gated_layers.weight" in weights
        self.hidden = config["hidden_size"]
        self.heads = config["num_attention_heads"]
        self.layers = config["num_hidden_layers"]
        self.eps = config.get("layer_norm_eps", 1e-12)
        keep = {k: v for k, v in weights.items() if k.startswith(("embeddings.", "encoder."))}
        self.params = torch.nn.ParameterDict(
            {k.replace(".", "__"): torch.nn.Parameter(v, requires_grad=False) for k, v in keep.items()}
        )
        self.register_buffer("slopes", alibi_slopes(self.heads), persistent=False)
        self.has_sdpa = hasattr(F, "scaled_dot_product_attention")

    def w(self, name):
        return self.params[name.replace(".", "__")]

    def layer_norm(self, x, prefix):
        return F.layer_norm(x, (self.hidden,), self.w(prefix + ".weight"), self.w(prefix + ".bias"), self.eps)

    def linear(self, x, prefix, bias=True):
        return F.linear(x, self.w(prefix + ".weight"), self.w(prefix + ".bias") if bias else None)

    def attention_mask(self, mask, seq, dtype):
        """Additive float mask [B, N or 1, S, S]: key padding (finfo.min) plus ALiBi if JinaBERT."""
        pad = (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
        if not self.jina:
            return pad
        pos = torch.arange(seq, device=mask.device)
        dist = (pos[None, :] - pos[:, None]).abs().to(torch.float32)
        alibi = (-self.slopes[:, None, None] * dist[None]).to(dtype)  # built in f32, cast like REF
        return pad + alibi[None]

    def attend(self, q, k, v, bias):
        if self.has_sdpa:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1]) + bias
        return torch.matmul(torch.softmax(scores, dim=-1), v)

    def forward(self, ids, mask):
        b, s = ids.shape
        d = self.hidden // self.heads
        x = self.w("embeddings.word_embeddings.weight")[ids]
        x = x + self.w("embeddings.token_type_embeddings.weight")[0]
        if not self.jina:
            x = x + self.w("embeddings.position_embeddings.weight")[:s][None]
        x = self.layer_norm(x, "embeddings.LayerNorm")
        bias = self.attention_mask(mask, s, x.dtype)
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."

            def heads(t):
                return t.view(b, s, self.heads, d).transpose(1, 2)

            q = heads(self.linear(x, p + "attention.self.query"))
            k = heads(self.linear(x, p + "attention.self.key"))
            v = heads(self.linear(x, p + "attention.self.value"))
            ctx = self.attend(q, k, v, bias).transpose(1, 2).reshape(b, s, self.hidden)
            a = self.layer_norm(self.linear(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            if self.jina:
                g = self.linear(a, p + "mlp.gated_layers", bias=False)
                inter = g.shape[-1] // 2
                u = F.gelu(g[..., :inter]) * g[..., inter:]  # exact erf GELU on the first half
                x = self.layer_norm(self.linear(u, p + "mlp.wo") + a, p + "mlp.layernorm")
            else:
                u = F.gelu(self.linear(a, p + "intermediate.dense"))
                x = self.layer_norm(self.linear(u, p + "output.dense") + a, p + "output.LayerNorm")
        # Mean pooling over real tokens, in float32 as Jina's encode() does.
        m = mask.to(torch.float32)[..., None]
        return (x.to(torch.float32) * m).sum(1) / m.sum(1).clamp(min=1e-9)


def load_model(model_dir, dtype, device):
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    model = Encoder(config, load_weights(model_dir)).to(device=device, dtype=dtype).eval()
    model.slopes = model.slopes.to(torch.float32)
    return model, config


# ----------------------------------------------------------------------------------------------
# Inputs


def specials_for(model_dir):
    """[CLS]/[SEP]/[PAD] ids from tokenizer.json when present, else bert-base-uncased's."""
    cls, sep, pad = 101, 102, 0
    path = os.path.join(model_dir, "tokenizer.json")
    if os.path.exists(path):
        with open(path) as f:
            vocab = json.load(f).get("model", {}).get("vocab", {})
        cls, sep, pad = vocab.get("[CLS]", cls), vocab.get("[SEP]", sep), vocab.get("[PAD]", pad)
    return cls, sep, pad


class IdFactory:
    """Synthetic token-id sequences of exact lengths (specials included), deterministic."""

    def __init__(self, model_dir, vocab_size, seed):
        self.cls, self.sep, self.pad = specials_for(model_dir)
        self.low, self.high = 1000, min(vocab_size, 30000)  # ordinary word pieces
        self.rng = np.random.default_rng(seed)

    def make(self, n):
        body = self.rng.integers(self.low, self.high, size=max(n - 2, 0)).tolist()
        return [self.cls] + body + [self.sep]


def mixed_lengths(count, max_length, seed):
    """The exact generator of apps/embd/workloads.cpp: splitmix64 + Box-Muller lognormal."""
    mask = (1 << 64) - 1
    state = seed & mask

    def unit():
        nonlocal state
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
        return (z >> 11) * 2.0**-53

    mu, sigma, hi = math.log(120.0), 0.8, min(2048, max_length)
    out = []
    for _ in range(count):
        u1, u2 = unit(), unit()
        z = math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(6.283185307179586 * u2)
        x = math.floor(math.exp(mu + sigma * z) + 0.5)
        out.append(int(min(max(x, 8), hi)))
    return out


def pad_batch(seqs, pad_id, device, multiple=1):
    s = max(len(t) for t in seqs)
    s = (s + multiple - 1) // multiple * multiple
    ids = torch.full((len(seqs), s), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), s), dtype=torch.long)
    for i, t in enumerate(seqs):
        ids[i, : len(t)] = torch.tensor(t, dtype=torch.long)
        mask[i, : len(t)] = 1
    return ids.to(device), mask.to(device)


# ----------------------------------------------------------------------------------------------
# Benchmark


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_requests(model, requests, pad_id, device, multiple):
    """Runs each request (a list of id lists) as one padded forward; returns latencies (ms)."""
    latencies = []
    for seqs in requests:
        start = time.perf_counter()
        ids, mask = pad_batch(seqs, pad_id, device, multiple)
        model(ids, mask).cpu()
        sync(device)
        latencies.append((time.perf_counter() - start) * 1e3)
    return latencies


def percentile(values, p):
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100.0 * len(ordered))))
    return ordered[rank - 1]


def workload_requests(name, factory, max_length, seed):
    if name in SHAPES:
        batch, length, count = SHAPES[name]
        return [[factory.make(length) for _ in range(batch)] for _ in range(count)], "sequential"
    lengths = sorted(mixed_lengths(4096, max_length, seed), reverse=True)
    seqs = [factory.make(n) for n in lengths]
    return [seqs[i : i + MIXED_BATCH] for i in range(0, len(seqs), MIXED_BATCH)], f"sorted-padded-{MIXED_BATCH}"


def run_workload(name, model, factory, max_length, args):
    if name in SHAPES and SHAPES[name][1] > max_length:
        return {"name": name, "mode": "sequential", "skipped": True,
                "note": f"longer than the model's maximum length ({max_length} tokens)"}
    requests, mode = workload_requests(name, factory, max_length, args.seed)
    # Warm-up; on CUDA the whole mixed workload once, so every padded shape has met its kernels.
    warm = requests[:5] if name == "q16" else requests[:3]
    if name == "mixed4096" and args.device.startswith("cuda"):
        warm = requests
    multiple = args.pad_multiple if name == "mixed4096" else 1
    time_requests(model, warm, factory.pad, args.device, multiple)
    latencies = []
    start = time.perf_counter()
    for _ in range(args.repeat):
        latencies += time_requests(model, requests, factory.pad, args.device, multiple)
    seconds = time.perf_counter() - start
    texts = sum(len(r) for r in requests) * args.repeat
    tokens = sum(len(t) for r in requests for t in r) * args.repeat
    return {
        "name": name, "mode": mode, "skipped": False, "requests": len(latencies), "texts": texts,
        "tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds,
        "embeddings_per_s": texts / seconds, "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99), "mean_ms": sum(latencies) / len(latencies),
    }


def bench(args, model, config):
    max_length = config.get("max_position_embeddings", 512)
    names = WORKLOADS if args.workload == "all" else [args.workload]
    results = []
    if not args.json:
        print(f"model {args.model} (pytorch {torch.__version__}, {args.dtype} on {args.device}), "
              f"threads {torch.get_num_threads()}")
        print(f"{'workload':<10} {'mode':<18} {'texts':>8} {'tokens':>10} {'seconds':>9} {'tokens/s':>12} "
              f"{'embeds/s':>12} {'p50 ms':>10} {'p99 ms':>10}")
    with torch.inference_mode():
        for name in names:
            factory = IdFactory(args.model, config["vocab_size"], args.seed + WORKLOADS.index(name))
            r = run_workload(name, model, factory, max_length, args)
            results.append(r)
            if args.json:
                continue
            if r["skipped"]:
                print(f"{name:<10} {r['mode']:<18} skipped: {r['note']}")
            else:
                print(f"{name:<10} {r['mode']:<18} {r['texts']:>8} {r['tokens']:>10} {r['seconds']:>9.3f} "
                      f"{r['tokens_per_s']:>12.1f} {r['embeddings_per_s']:>12.2f} {r['p50_ms']:>10.3f} "
                      f"{r['p99_ms']:>10.3f}", flush=True)
    if args.json:
        out = {
            "engine": "pytorch", "version": torch.__version__, "model": args.model,
            "architecture": "jina_bert" if model.jina else "bert", "device": args.device,
            "devices": [torch.cuda.get_device_name(0)] if args.device.startswith("cuda") else ["cpu"],
            "dtype": args.dtype, "stored_dtype": stored_dtype(args.model), "threads": torch.get_num_threads(),
            "hardware_threads": os.cpu_count(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": " ".join(["python3"] + sys.argv), "tokenization": "excluded (synthetic ids)",
            "attention": "sdpa" if model.has_sdpa else "matmul-softmax", "workloads": results,
        }
        print(json.dumps(out, indent=2))


# ----------------------------------------------------------------------------------------------
# Check mode


def check_inputs(args):
    """Records from --input (JSONL with "ids" or "text"), or a few built-in texts."""
    if args.input:
        with open(args.input) as f:
            records = [json.loads(line) for line in f if line.strip()]
    else:
        records = [{"text": t} for t in ["hello world", "The quick brown fox jumps over the lazy dog.",
                                         "", "embd turns text into embedding vectors."]]
    records = records[: args.limit]
    tokenizer = None
    if any("ids" not in r for r in records):
        try:
            from tokenizers import Tokenizer  # type: ignore
        except ImportError:
            sys.exit("jinabert_torch.py: the `tokenizers` package is not installed: give --input "
                     "JSONL records with pre-tokenized \"ids\"")
        tokenizer = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    for r in records:
        if "ids" not in r:
            r["ids"] = tokenizer.encode(r["text"]).ids
    return records


def check(args, model):
    records = check_inputs(args)
    _, _, pad = specials_for(args.model)
    worst, worst_id, compared = 0.0, "", 0
    with torch.inference_mode():
        for i, r in enumerate(records):
            ids, mask = pad_batch([r["ids"]], pad, args.device)
            emb = model(ids, mask)[0]
            if not args.no_normalize:
                emb = emb / emb.norm().clamp(min=1e-12)
            values = emb.cpu().tolist()
            print(json.dumps({"index": i, "embedding": values, "tokens": len(r["ids"])}))
            field = "embedding" if args.no_normalize else "embedding_normalized"
            if field in r:
                err = max(abs(a - b) for a, b in zip(values, r[field]))
                compared += 1
                if err >= worst:
                    worst, worst_id = err, r.get("id", str(i))
    if compared:
        print(f"{compared} records vs golden \"{field}\": max abs err {worst:.3e} (record {worst_id})",
              file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model directory (config.json + model.safetensors)")
    parser.add_argument("--dtype", choices=list(DTYPES), default="f32")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = torch's default)")
    parser.add_argument("--workload", choices=WORKLOADS + ["all"], default="all")
    parser.add_argument("--repeat", type=int, default=1, help="timed rounds per workload (after warm-up)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--json", action="store_true", help="print one JSON object like `embd bench --json`")
    parser.add_argument("--pad-multiple", type=int, default=8,
                        help="mixed4096: pad each batch to a multiple of this many tokens (tensor cores, "
                        "SDPA mask alignment), as tokenizers' pad_to_multiple_of does")
    parser.add_argument("--tf32", action="store_true", help="allow TF32 tensor-core matmuls for f32 on CUDA")
    parser.add_argument("--check", action="store_true", help="print embeddings of a few texts instead")
    parser.add_argument("--input", help="--check input: JSONL with \"text\" or \"ids\" (goldens work)")
    parser.add_argument("--limit", type=int, default=8, help="--check: at most this many records")
    parser.add_argument("--no-normalize", action="store_true", help="--check: raw mean-pooled vectors")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    model, config = load_model(args.model, DTYPES[args.dtype], args.device)
    try:
        if args.check:
            check(args, model)
        else:
            bench(args, model, config)
    except RuntimeError as e:
        if "not implemented for" in str(e):  # e.g. f16 LayerNorm on CPU in older torch
            sys.exit(f"jinabert_torch.py: torch {torch.__version__} cannot run {args.dtype} on {args.device}: {e}")
        raise


if __name__ == "__main__":
    main()
