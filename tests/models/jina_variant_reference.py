#!/usr/bin/env python3
"""Float64 numpy reference for the two JinaBERT v2 block layouts that have no published fixture:
qk_post_norm (jina-embeddings-v2-base-code) and qk_norm (base-es), JINABERT.md section 3.4.

Writes a tiny random model of the requested layout into OUT_DIR (config.json + model.safetensors,
F32) and OUT_DIR/expected.json with mean-pooled embeddings of a few fixed token sequences.
Usage: jina_variant_reference.py qk_post_norm|qk_norm OUT_DIR
"""
import json
import math
import os
import struct
import sys

import numpy as np

H, L, N, I, V = 48, 2, 6, 64, 200
EPS = 1e-12


def slopes(n):
    p = 2 ** int(math.floor(math.log2(n)))
    s = [2.0 ** (-8.0 * (h + 1) / p) for h in range(p)]
    s += [2.0 ** (-8.0 * (2 * k + 1) / (2 * p)) for k in range(n - p)]
    return np.array(s)


def layernorm(x, g, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + EPS) * g + b


def gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def make_weights(variant, rng):
    w = {}
    def lin(name, out, inp, bias=True):
        w[name + ".weight"] = rng.normal(0, 0.05, (out, inp))
        if bias:
            w[name + ".bias"] = rng.normal(0, 0.02, (out,))
    def ln(name, dim):
        w[name + ".weight"] = 1 + rng.normal(0, 0.1, (dim,))
        w[name + ".bias"] = rng.normal(0, 0.05, (dim,))
    w["embeddings.word_embeddings.weight"] = rng.normal(0, 0.05, (V, H))
    w["embeddings.token_type_embeddings.weight"] = rng.normal(0, 0.05, (2, H))
    ln("embeddings.LayerNorm", H)
    for l in range(L):
        p = f"encoder.layer.{l}."
        for n in ("query", "key", "value"):
            lin(p + "attention.self." + n, H, H)
        ln(p + "attention.self.layer_norm_q", H)
        ln(p + "attention.self.layer_norm_k", H)
        lin(p + "attention.output.dense", H, H)
        ln(p + "attention.output.LayerNorm", H)
        if variant == "qk_post_norm":
            ln(p + "layer_norm_1", H)
            ln(p + "layer_norm_2", H)
            lin(p + "mlp.up_gated_layer", 2 * I, H, bias=False)
            lin(p + "mlp.down_layer", H, I)
        else:
            lin(p + "mlp.gated_layers", 2 * I, H, bias=False)
            lin(p + "mlp.wo", H, I)
            ln(p + "mlp.layernorm", H)
    return w


def forward(variant, w, ids):
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][0]
    x = layernorm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    s = len(ids)
    d = H // N
    dist = np.abs(np.arange(s)[:, None] - np.arange(s)[None, :])
    for l in range(L):
        p = f"encoder.layer.{l}."
        lin = lambda n, t: t @ w[p + n + ".weight"].T + w.get(p + n + ".bias", 0)
        lnp = lambda n, t: layernorm(t, w[p + n + ".weight"], w[p + n + ".bias"])
        q = lnp("attention.self.layer_norm_q", lin("attention.self.query", x))
        k = lnp("attention.self.layer_norm_k", lin("attention.self.key", x))
        v = lin("attention.self.value", x)
        ctx = np.zeros_like(x)
        for h, m in enumerate(slopes(N)):
            sl = slice(h * d, (h + 1) * d)
            scores = q[:, sl] @ k[:, sl].T / math.sqrt(d) - m * dist
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            ctx[:, sl] = (scores / scores.sum(-1, keepdims=True)) @ v[:, sl]
        a = lnp("attention.output.LayerNorm", lin("attention.output.dense", ctx) + x)
        if variant == "qk_post_norm":
            h1 = lnp("layer_norm_1", x + a)
            g = h1 @ w[p + "mlp.up_gated_layer.weight"].T
            u = g[:, :I] * gelu(g[:, I:])            # second half activated
            x = lnp("layer_norm_2", h1 + lin("mlp.down_layer", u))
        else:
            g = a @ w[p + "mlp.gated_layers.weight"].T
            u = gelu(g[:, :I]) * g[:, I:]            # first half activated
            x = lnp("mlp.layernorm", lin("mlp.wo", u) + a)
    return x.mean(0)


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    variant, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7 if variant == "qk_post_norm" else 11)
    w = make_weights(variant, rng)
    # What the engine runs is F32: give the reference the F32-rounded weights.
    w = {k: v.astype(np.float32).astype(np.float64) for k, v in w.items()}
    write_safetensors(os.path.join(out, "model.safetensors"), w)
    impl = {"qk_post_norm": "jinaai/jina-bert-v2-qk-post-norm",
            "qk_norm": "jinaai/jina-bert-v2-qk-devlin-norm-1e-2"}[variant]
    config = {"_name_or_path": impl, "architectures": ["JinaBertForMaskedLM"], "model_type": "bert",
              "hidden_size": H, "num_hidden_layers": L, "num_attention_heads": N, "intermediate_size": I,
              "vocab_size": V, "type_vocab_size": 2, "max_position_embeddings": 8192,
              "position_embedding_type": "alibi", "feed_forward_type": "geglu", "hidden_act": "gelu",
              "layer_norm_eps": EPS, "pad_token_id": 0, "emb_pooler": "mean", "torch_dtype": "float32"}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f)
    seqs = [[1, 5, 2], [1] + list(range(3, 40)) + [2], [7], [1] + [9, 150, 77] * 30 + [2]]
    expected = [{"ids": s, "embedding": forward(variant, w, np.array(s)).tolist()} for s in seqs]
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)


if __name__ == "__main__":
    main()
