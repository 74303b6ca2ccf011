// A small blocking HTTP client over libcurl: HEAD/GET into memory and resumable GET into a file.
//
// Ownership: each call owns its own curl handle; nothing is shared between calls.
// Thread-safety: every function may be called from any thread at once (libcurl's global init
// runs once, behind std::call_once).
// Errors: transport failures (DNS, connect, timeout, connection dropped) are kNetworkError
// naming the URL and curl's reason. HTTP error statuses are NOT errors here: the caller gets the
// response and decides (the hub maps 404 to kNotFound, 401/403 to a token hint).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace embd::io {

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value" lines
  bool head = false;                 // HEAD instead of GET
  bool follow_redirects = true;
  long connect_timeout_s = 15;
  long timeout_s = 0;          // whole transfer; 0 = none (large downloads use the stall limit)
  long stall_timeout_s = 60;   // abort when fewer than 1 byte/s arrive for this long
};

struct HttpResponse {
  long status = 0;
  // Headers of the last response in the redirect chain, names lower-cased.
  std::map<std::string, std::string> headers;
  std::string body;  // in-memory requests only (and error bodies of downloads, truncated)
  std::string effective_url;

  // The header's value or "" when absent (`name` lower-case).
  std::string header(const std::string& name) const;
};

// Bytes written so far (resume offset included) and the total, 0 when unknown.
using HttpProgress = std::function<void(std::uint64_t done, std::uint64_t total)>;

// Sends the request and returns the response with its body in memory.
Result<HttpResponse> http_fetch(const HttpRequest& request);

// GETs request.url into `file`. When `resume_from` > 0 the file already holds that many bytes:
// a Range request asks for the rest and a 206 answer is appended; a 200 answer (server ignores
// ranges) rewrites the file from the start. The body of a non-2xx answer never reaches the file.
// A transfer cut short is a kNetworkError; the bytes received so far stay in the file.
Result<HttpResponse> http_download(const HttpRequest& request, const std::filesystem::path& file,
                                   std::uint64_t resume_from, const HttpProgress& progress);

// Percent-encodes `text` (RFC 3986 unreserved characters kept; '/' kept when keep_slash).
std::string url_escape(const std::string& text, bool keep_slash);

}  // namespace embd::io
