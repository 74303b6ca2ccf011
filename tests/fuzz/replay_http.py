#!/usr/bin/env python3
"""Replays the HTTP fuzz corpus against a running server (e.g. `embd serve` on a GPU).

http_server_fuzz runs its server in-process with the engine on the CPU; this sends the same
inputs to any server, so the CUDA engine behind `embd serve` meets them too. Corpus files are
read as http_server_fuzz reads them (first byte: 0 raw bytes, 1-3 a framed POST of the rest to
/embed, /v1/embeddings, /tokenize); request_codec_fuzz's corpus can be given with --codec (first
byte: 0 /embed, 1 /v1/embeddings, 2 /tokenize, 3 skipped).
Checks, as the fuzz target does: no 500, an answer (or a close) within the deadline, one response
to a framed request, valid JSON in a 200, and after every input a normal request still answered
with its two rows, the same as before any input (within --tolerance). With --jobs N, N clients
send at once, so hostile inputs share the engine's batches with the normal requests. Exit status
1 on any failure.

  python3 tests/fuzz/replay_http.py --port 8080 tests/fuzz/corpus/http_server_fuzz \\
      --codec tests/fuzz/corpus/request_codec_fuzz
"""
import argparse
import collections
import concurrent.futures
import json
import os
import socket
import sys
import time

ROUTES = ["/embed", "/v1/embeddings", "/tokenize"]
DEADLINE = 20.0


def framed(route, body):
    head = (f"POST {route} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    return head + body


def parse_responses(data):
    """The whole responses at the start of data, framed by Content-Length."""
    out = []
    while True:
        end = data.find(b"\r\n\r\n")
        if end < 0 or not data.startswith(b"HTTP/"):
            return out
        lines = data[:end].split(b"\r\n")
        status = int(lines[0][9:12])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        length = int(headers.get("content-length", "0"))
        if len(data) < end + 4 + length:
            return out
        out.append((status, headers, data[end + 4:end + 4 + length]))
        data = data[end + 4 + length:]


def exchange(port, payload, half_close):
    """(responses, sent, closed) for one connection."""
    s = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sent = True
    try:
        s.sendall(payload)
        if half_close:
            s.shutdown(socket.SHUT_WR)
    except OSError:
        sent = False
    data, closed = b"", False
    deadline = time.monotonic() + DEADLINE
    if sent:
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except OSError:  # reset after the response: the server closed
                closed = True
                break
            if not chunk:
                closed = True
                break
            data += chunk
    s.close()
    return parse_responses(data), sent, closed


def normal_rows(port):
    """The rows of a normal request, or None when it is not answered 200 with two rows."""
    body = json.dumps({"inputs": ["a normal request", "two"]}).encode()
    responses, _, _ = exchange(port, framed("/embed", body), False)
    if len(responses) != 1 or responses[0][0] != 200:
        return None
    rows = json.loads(responses[0][2])
    return rows if len(rows) == 2 and all(len(r) > 0 for r in rows) else None


def same_rows(a, b, tolerance):
    return len(a) == len(b) and all(
        len(x) == len(y) and max(abs(p - q) for p, q in zip(x, y)) <= tolerance for x, y in zip(a, b))


def check(port, name, payload, raw, reference, tolerance):
    """The statuses and problems of one input's exchange and of the normal request after it."""
    responses, sent, closed = exchange(port, payload, half_close=raw)
    problems = []
    if sent and not closed:
        problems.append("no close within %.0f s" % DEADLINE)
    for status, headers, body in responses:
        if status == 500:
            problems.append("500: " + body[:200].decode("utf-8", "replace"))
        if status == 200 and "json" in headers.get("content-type", ""):
            try:
                json.loads(body)
            except ValueError:
                problems.append("a 200 with invalid JSON")
    if not raw and sent and len(responses) != 1:
        problems.append("%d responses to one request" % len(responses))
    rows = normal_rows(port)
    if rows is None:
        problems.append("a normal request failed afterwards")
    elif not same_rows(rows, reference, tolerance):
        problems.append("a normal request's rows changed")
    return name, [r[0] for r in responses], problems


def corpus(folder):
    """(name, bytes) of every non-empty file in a corpus folder."""
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as f:
            data = f.read()
        if data:
            yield name, data


def inputs(args):
    for name, data in corpus(args.corpus):
        form = data[0] % 4
        yield name, (data[1:] if form == 0 else framed(ROUTES[form - 1], data[1:])), form == 0
    if args.codec:
        for name, data in corpus(args.codec):
            if data[0] % 4 < 3:
                yield "codec/" + name, framed(ROUTES[data[0] % 4], data[1:]), False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus", help="http_server_fuzz's corpus folder")
    ap.add_argument("--codec", help="request_codec_fuzz's corpus folder")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--jobs", type=int, default=1,
                    help="clients at once (then hostile inputs share batches with the normal ones)")
    ap.add_argument("--tolerance", type=float, default=5e-3,
                    help="largest change allowed in the normal request's unit-length rows")
    args = ap.parse_args()
    reference = normal_rows(args.port)
    if reference is None:
        print("the server does not answer a normal request")
        return 1
    statuses = collections.Counter()
    start = time.monotonic()
    work = list(inputs(args))
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda w: check(args.port, *w, reference, args.tolerance), work))
    for _, seen, _ in results:
        statuses.update(seen)
    failures = [(name, problems) for name, _, problems in results if problems]
    for name, problems in failures:
        print("FAIL", name, "; ".join(problems))
    print("replayed %d inputs in %.1f s with %d clients; statuses %s" %
          (len(work), time.monotonic() - start, args.jobs, dict(sorted(statuses.items()))))
    print("%d passed, %d failed" % (len(work) - len(failures), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
