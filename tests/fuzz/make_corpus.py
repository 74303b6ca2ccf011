#!/usr/bin/env python3
"""Writes the fuzz targets' hand-made seeds (tests/fuzz/corpus/<target>/) from the fixtures.

Each seed starts with the byte its target reads first (what to run, or options), then the
contents. Run from the repository root: python3 tests/fuzz/make_corpus.py. The other files in
the corpus folders (40-hex names) are inputs that fuzzing runs found, kept as a set that covers
what they covered (libFuzzer -set_cover_merge=1).
"""
import hashlib
import base64
import json
import os
import struct

ROOT = os.path.join(os.path.dirname(__file__), "corpus")
FIX = os.path.join(os.path.dirname(__file__), "..", "fixtures")


def write(target, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def j(obj):
    return json.dumps(obj, ensure_ascii=False).encode()


TEI = [
    {"inputs": "What is Deep Learning?"},
    {"inputs": ["a", "b c"], "normalize": False, "truncate": True,
     "truncation_direction": "Left", "dimensions": 8, "priority": "batch"},
    {"inputs": [[101, 2054, 102], [7]]},
    {"inputs": [1, 2, 3]},
    {"inputs": ""},
    {"inputs": ["ok", ""]},
    {"inputs": "x", "dimensions": 1e309},
]
OPENAI = [
    {"input": "x", "model": "m", "encoding_format": "base64", "dimensions": 4, "user": "u"},
    {"input": ["a", "b"], "encoding_format": "float"},
    {"input": [[1, 2, 3], [4]]},
    {"input": [5, 6]},
    {"input": []},
]
TOKENIZE = [
    {"inputs": ["a b", "héllo"], "add_special_tokens": False},
    {"inputs": "unaffable [SEP] text"},
]

for body in TEI:
    write("request_codec_fuzz", b"\x00" + j(body))
    write("http_server_fuzz", b"\x01" + j(body))
for body in OPENAI:
    write("request_codec_fuzz", b"\x01" + j(body))
    write("http_server_fuzz", b"\x02" + j(body))
for body in TOKENIZE:
    write("request_codec_fuzz", b"\x02" + j(body))
    write("http_server_fuzz", b"\x03" + j(body))
write("request_codec_fuzz", b"\x03" + "plain \"quoted\" \\ \x01 é 中 🙂".encode() + b"\xff\xc3")

RAW = [
    b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /info HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n10\r\n{\"inputs\": \"ab\"}\r\n0\r\n\r\n",
    b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
    b"Content-Length: 14\r\n\r\n{\"input\": \"a\"}",
    b"POST /embed HTTP/1.1\r\nHost: x\r\nx-priority: query\r\nContent-Length: 15\r\n\r\n"
    b"{\"inputs\":\"a\"}POST /tokenize HTTP/1.0\r\nContent-Length: 15\r\n\r\n{\"inputs\":\"b\"}",
    b"DELETE /embed HTTP/1.1\r\n\r\n",
    b"GET /nope?x=1 HTTP/1.1\r\nHost: x\r\n\r\n",
]
for raw in RAW:
    write("http_server_fuzz", b"\x00" + raw)

with open(os.path.join(FIX, "goldens", "tokenizer.jsonl"), encoding="utf-8") as f:
    texts = [json.loads(line)["text"] for line in f][:310:7]
for i, text in enumerate(texts):
    flags = [0, 1, 2 | 1, 4, 0xf8, 0xf8 | 4 | 1][i % 6]
    write("tokenizer_fuzz", bytes([flags, 5 + i % 20]) + text.encode("utf-8"))

for model in ("tiny-jina", "tiny-jina-6h", "tiny-bert", "tiny-xlmr", "tiny-roberta", "tiny-mpnet",
              "tiny-distilbert"):
    with open(os.path.join(FIX, "models", model, "config.json"), "rb") as f:
        write("model_files_fuzz", b"\x00" + f.read())

# A small tokenizer.json: the fixture's, with the vocabulary cut to what a few words need.
with open(os.path.join(FIX, "models", "tiny-jina", "tokenizer.json"), encoding="utf-8") as f:
    tok = json.load(f)
keep = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", ",", "world", "!", "un", "##aff",
        "##able", "run", "##ning", "a", "##b", "中"}
tok["model"]["vocab"] = {t: i for t, i in tok["model"]["vocab"].items() if t in keep}
write("model_files_fuzz", b"\x01" + j(tok))

# Small byte-level BPE tokenizer.json files: the BPE fixtures with their first 40 merges, the
# tokens those need, the 256 byte characters and the specials.
for name in ("roberta-bpe", "bpe-prefix-lower"):
    with open(os.path.join(FIX, "tokenizers", name, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    merges = tok["model"]["merges"][:40]
    pairs = [m.split(" ") if isinstance(m, str) else m for m in merges]
    keep = {t["content"] for t in tok["added_tokens"]}
    keep |= {a for a, _ in pairs} | {b for _, b in pairs} | {a + b for a, b in pairs}
    vocab = tok["model"]["vocab"]
    keep |= {t for t in vocab if len(t) == 1}
    tok["model"]["vocab"] = {t: i for t, i in vocab.items() if t in keep}
    tok["model"]["merges"] = merges
    write("model_files_fuzz", b"\x01" + j(tok))

# Small Unigram tokenizer.json files: the Unigram fixtures with their first 60 pieces, their
# normalizers, and in place of the fixtures' charsmap (300 KB of base64, over the input size
# limit) a hand-built one: a darts trie mapping "a" to "b" and "\uff41" (fullwidth a) to "a", as
# PrecompiledCharsmap.HandBuiltTrie builds it.
def tiny_charsmap():
    units = [0] * 600
    units[0] = 256 << 10                            # root offset 256
    units[256 ^ 0x61] = (1 << 10) | (1 << 8) | 0x61  # "a": leaf at (256 ^ 0x61) ^ 1
    units[(256 ^ 0x61) ^ 1] = 0x80000000 | 0         # -> replacement at 0 ("b")
    n1 = 256 ^ 0xEF                                  # U+FF41 is EF BD 81
    units[n1] = (32 << 10) | 0xEF
    n2 = (n1 ^ 32) ^ 0xBD
    units[n2] = (64 << 10) | 0xBD
    n3 = (n2 ^ 64) ^ 0x81
    units[n3] = (1 << 10) | (1 << 8) | 0x81
    units[n3 ^ 1] = 0x80000000 | 2                   # -> replacement at 2 ("a")
    blob = struct.pack("<I", 4 * len(units)) + b"".join(struct.pack("<I", u) for u in units)
    return base64.b64encode(blob + b"b\0a\0").decode()


for name in ("xlmr-unigram", "unigram-legacy"):
    with open(os.path.join(FIX, "tokenizers", name, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    tok["model"]["vocab"] = tok["model"]["vocab"][:60]
    tok["added_tokens"] = [t for t in tok["added_tokens"] if t["id"] < 60]
    for n in tok["normalizer"]["normalizers"]:
        if n["type"] == "Precompiled":
            n["precompiled_charsmap"] = tiny_charsmap()
    write("model_files_fuzz", b"\x01" + j(tok))


def safetensors(tensors, metadata=None, misalign=0):
    header, data = {}, b""
    for name, dtype, shape, payload in tensors:
        data += b"\x00" * misalign
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


f32 = struct.pack("<4f", 1, -2, 0.5, 3)
f16 = struct.pack("<4e", 1, -2, 0.5, 3)
write("model_files_fuzz", b"\x02" + safetensors(
    [("w", "F32", [2, 2], f32), ("h", "F16", [4], f16), ("b", "BF16", [2], f16[:4])],
    {"format": "pt"}))
write("model_files_fuzz", b"\x02" + safetensors([("odd", "F32", [4], f32), ("e", "F16", [0], b"")],
                                                misalign=2))

# Sentence-transformers files (the byte after the case picks which file the rest becomes).
for which, body in [(0, [{"type": "sentence_transformers.models.Transformer", "path": ""},
                         {"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"},
                         {"type": "sentence_transformers.models.Normalize", "path": "2_Normalize"}]),
                    (0, [{"type": "sentence_transformers.models.Pooling", "path": "../up"}]),
                    (1, {"word_embedding_dimension": 64, "pooling_mode_cls_token": False,
                         "pooling_mode_mean_tokens": True}),
                    (2, {"max_seq_length": 128, "do_lower_case": False}),
                    (3, {"__version__": {"sentence_transformers": "2.2.2"}, "prompts": {}})]:
    write("model_files_fuzz", b"\x03" + bytes([which]) + j(body))
# A sharded checkpoint's index (its one shard, a.safetensors, is written by the target).
write("model_files_fuzz", b"\x04" + j({"metadata": {"total_size": 8}, "weight_map": {"w": "a.safetensors"}}))
write("model_files_fuzz", b"\x04" + j({"weight_map": {"w": "../a.safetensors", "v": "b.safetensors"}}))
# Hub model ids (a revision after a newline) and file names.
for name in ["jinaai/jina-embeddings-v2-small-en", "org/name@v1.0\nv1.0", "bert-base-uncased@main",
             "1_Pooling/config.json", "../etc/passwd", "a//b\\c"]:
    write("model_files_fuzz", b"\x05" + name.encode())

# The CLI's JSON Lines input (embd embed / tokenize --input): records, blank lines, CRLF, a line
# without its newline, and the errors (not an object, no "text", "text" not a string, bad JSON).
for lines in [[{"text": "What is Deep Learning?"}, {"text": "b", "id": 7}],
              [{"text": "a"}, "", "  \t", {"text": "c\u00e9"}],
              [{"text": ""}, {"text": "line\nbreak inside"}]]:
    write("cli_input_fuzz", b"\n".join(x.encode() if isinstance(x, str) else j(x) for x in lines) + b"\n")
write("cli_input_fuzz", j({"text": "crlf"}) + b"\r\n" + j({"text": "no final newline"}))
for bad in [b"[1, 2]", b'{"id": 1}', b'{"text": 5}', b'{"text": "unterminated', b"\xff\xfe"]:
    write("cli_input_fuzz", j({"text": "ok"}) + b"\n\n" + bad + b"\n" + j({"text": "never read"}) + b"\n")
