#!/usr/bin/python3
"""A tiny stand-in for the Hugging Face hub, for embd's download tests (no internet needed).

Serves model folders under the hub's routes on 127.0.0.1 (ephemeral port) and prints
"PORT <n>" on stdout once it listens:

  HEAD/GET /<org>/<name>/resolve/<rev>/<file>   rev = "main" or the repo's commit
      small files: 200 + ETag (git blob sha1) + X-Repo-Commit + Content-Length
      *.safetensors ("LFS"): 302 to /_cdn/... + X-Linked-Etag (sha256) + X-Linked-Size
      absent file: 404 + X-Error-Code: EntryNotFound (+ X-Repo-Commit)
  GET /_cdn/<org>/<name>/<commit>/<file>        the bytes, with Range support (206)
  GET /_stats                                   JSON: every request seen, and the etags

Options: --repo org/name=DIR (repeatable); --token T (hub routes answer 401 without
"Authorization: Bearer T"); --break-file F (the first GET of F on the CDN sends half the bytes,
then drops the connection).
"""
import argparse
import hashlib
import json
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


def commit_of(repo):
    return hashlib.sha1(("commit:" + repo).encode()).hexdigest()


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Hub:
    def __init__(self, repos, token, break_file):
        self.repos = repos  # "org/name" -> folder
        self.token = token
        self.break_file = break_file
        self.broken = False
        self.lock = threading.Lock()
        self.requests = []
        self.etags = {}

    def etag(self, repo, path, data):
        lfs = path.endswith(".safetensors")
        tag = hashlib.sha256(data).hexdigest() if lfs else git_blob_sha1(data)
        with self.lock:
            self.etags.setdefault(repo, {})[path] = tag
        return tag, lfs

    def read(self, repo, path):
        root = os.path.realpath(self.repos[repo])
        full = os.path.realpath(os.path.join(root, path))
        if not full.startswith(root + os.sep) or not os.path.isfile(full):
            return None
        with open(full, "rb") as f:
            return f.read()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub = None

    def log_message(self, fmt, *args):
        pass

    def record(self):
        with self.hub.lock:
            self.hub.requests.append({
                "method": self.command,
                "path": self.path,
                "range": self.headers.get("Range", ""),
                "authorization": self.headers.get("Authorization", ""),
            })

    def reply(self, status, headers=None, body=b""):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.route()

    def do_GET(self):
        self.route()

    def route(self):
        path = urlsplit(self.path).path
        if path == "/_stats":
            with self.hub.lock:
                body = json.dumps({"requests": self.hub.requests, "etags": self.hub.etags}).encode()
            return self.reply(200, {"Content-Type": "application/json"}, body)
        self.record()
        parts = [unquote(p) for p in path.split("/")[1:]]
        if parts and parts[0] == "_cdn" and len(parts) >= 5:
            return self.cdn("/".join(parts[1:3]), "/".join(parts[4:]))
        if len(parts) >= 5 and parts[2] == "resolve":
            return self.resolve("/".join(parts[0:2]), parts[3], "/".join(parts[4:]))
        self.reply(404, {"X-Error-Code": "EntryNotFound"}, b"no such route")

    def resolve(self, repo, rev, path):
        if self.hub.token and self.headers.get("Authorization") != "Bearer " + self.hub.token:
            return self.reply(401, {"X-Error-Code": "RepoNotFound"}, b"Invalid credentials")
        if repo not in self.hub.repos:
            return self.reply(404, {"X-Error-Code": "RepoNotFound"}, b"Repository not found")
        commit = commit_of(repo)
        if rev not in ("main", commit):
            return self.reply(404, {"X-Error-Code": "RevisionNotFound"}, b"Revision not found")
        data = self.hub.read(repo, path)
        if data is None:
            return self.reply(404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}, b"Entry not found")
        tag, lfs = self.hub.etag(repo, path, data)
        if lfs:
            host, port = self.server.server_address[:2]
            location = "http://%s:%d/_cdn/%s/%s/%s" % (host, port, repo, commit, path)
            return self.reply(302, {"Location": location, "X-Repo-Commit": commit,
                                    "X-Linked-Etag": '"%s"' % tag, "X-Linked-Size": str(len(data)),
                                    "ETag": '"redirect-%s"' % tag[:8]})
        self.reply(200, {"ETag": '"%s"' % tag, "X-Repo-Commit": commit}, data)

    def cdn(self, repo, path):
        data = self.hub.read(repo, path) if repo in self.hub.repos else None
        if data is None:
            return self.reply(404, {}, b"no such object")
        start = 0
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[len("bytes="):-1])
            if start >= len(data):
                return self.reply(416, {"Content-Range": "bytes */%d" % len(data)})
        if self.command == "GET" and path == self.hub.break_file and not self.hub.broken:
            self.hub.broken = True
            return self.break_mid_file(data)
        headers = {"Accept-Ranges": "bytes"}
        if start > 0:
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, len(data) - 1, len(data))
        self.reply(206 if start > 0 else 200, headers, data[start:])

    def break_mid_file(self, data):
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", action="append", default=[], help="org/name=DIR")
    parser.add_argument("--token", default="")
    parser.add_argument("--break-file", default="")
    args = parser.parse_args()
    repos = {}
    for spec in args.repo:
        name, _, folder = spec.partition("=")
        repos[name] = folder
    Handler.hub = Hub(repos, args.token, args.break_file)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print("PORT %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
