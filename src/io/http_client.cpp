// libcurl behind HttpRequest/HttpResponse. See http_client.h for the contract.
#include "io/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory>
#include <mutex>

namespace embd::io {
namespace {

constexpr std::size_t kMaxErrorBody = 4096;

void global_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* s) const { curl_slist_free_all(s); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

std::string trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

// Collects headers; a status line starts a new response (redirects), so only the last
// response's headers remain.
std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* response = static_cast<HttpResponse*>(user);
  std::string line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) {
    response->headers.clear();
  } else if (auto colon = line.find(':'); colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    response->headers[trim(name)] = trim(line.substr(colon + 1));
  }
  return size * count;
}

std::size_t on_body_to_string(char* data, std::size_t size, std::size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

// State of a download into a file: the file opens on the first body byte of a 2xx answer.
struct FileSink {
  CURL* curl = nullptr;
  std::filesystem::path path;
  std::uint64_t resume_from = 0;
  std::uint64_t written = 0;  // bytes in the file (resume offset included)
  std::FILE* file = nullptr;
  bool error_body = false;
  std::string body;  // non-2xx body, truncated
  std::string failure;
  const HttpProgress* progress = nullptr;
  const HttpResponse* response = nullptr;
  std::uint64_t base = 0;  // bytes in the file before this transfer's first byte
  std::uint64_t reported = ~std::uint64_t{0};

  ~FileSink() {
    if (file != nullptr) std::fclose(file);
  }
};

bool open_sink(FileSink& sink) {
  long status = 0;
  curl_easy_getinfo(sink.curl, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status >= 300) {
    sink.error_body = true;
    return true;
  }
  // 206 continues the partial file; any other 2xx is the whole file from byte 0.
  const bool append = status == 206 && sink.resume_from > 0;
  if (append) {
    // "bytes START-END/TOTAL": a range that does not start where the file ends would corrupt it.
    const std::string range = sink.response->header("content-range");
    const std::string expected = "bytes " + std::to_string(sink.resume_from) + "-";
    if (range.rfind(expected, 0) != 0) {
      sink.failure = "server answered Range request with Content-Range '" + range + "', expected '" +
                     expected + "...' for " + sink.path.string();
      return false;
    }
  }
  sink.file = std::fopen(sink.path.c_str(), append ? "ab" : "wb");
  if (sink.file == nullptr) {
    sink.failure = "cannot open " + sink.path.string() + " for writing";
    return false;
  }
  sink.written = append ? sink.resume_from : 0;
  sink.base = sink.written;
  return true;
}

std::size_t on_body_to_file(char* data, std::size_t size, std::size_t count, void* user) {
  auto& sink = *static_cast<FileSink*>(user);
  const std::size_t n = size * count;
  if (sink.file == nullptr && !sink.error_body && !open_sink(sink)) return 0;
  if (sink.error_body) {
    if (sink.body.size() < kMaxErrorBody) sink.body.append(data, std::min(n, kMaxErrorBody));
    return n;
  }
  if (std::fwrite(data, 1, n, sink.file) != n) {
    sink.failure = "write to " + sink.path.string() + " failed (disk full?)";
    return 0;
  }
  sink.written += n;
  return n;
}

int on_progress(void* user, curl_off_t dltotal, curl_off_t, curl_off_t, curl_off_t) {
  auto& sink = *static_cast<FileSink*>(user);
  // curl calls this many times a second even when idle: report only new bytes.
  if (sink.progress != nullptr && *sink.progress && sink.file != nullptr &&
      sink.written != sink.reported) {
    sink.reported = sink.written;
    const std::uint64_t total = dltotal > 0 ? static_cast<std::uint64_t>(dltotal) + sink.base : 0;
    (*sink.progress)(sink.written, total);
  }
  return 0;
}

Result<CurlPtr> make_handle(const HttpRequest& request, HttpResponse& response, SlistPtr& headers) {
  global_init_once();
  CurlPtr curl(curl_easy_init());
  if (!curl) return Status(ErrorCode::kNetworkError, "curl_easy_init failed for " + request.url);
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM: safe in threads
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, request.follow_redirects ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, request.connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, request.timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, request.stall_timeout_s);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "embd/0.1 (libcurl)");
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &response);
  if (request.head) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  for (const auto& h : request.headers) {
    curl_slist* next = curl_slist_append(headers.get(), h.c_str());
    if (next == nullptr) return Status(ErrorCode::kNetworkError, "out of memory building headers");
    headers.release();
    headers.reset(next);
  }
  if (headers) curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  return curl;
}

Status perform(CURL* c, const HttpRequest& request, HttpResponse& response, const char* errbuf,
               const std::string& sink_failure) {
  const CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  char* effective = nullptr;
  curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &effective);
  response.effective_url = effective != nullptr ? effective : request.url;
  if (rc == CURLE_OK) return ok_status();
  if (!sink_failure.empty()) return io_error(sink_failure + " (downloading " + request.url + ")");
  std::string reason = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
  return Status(ErrorCode::kNetworkError,
                (request.head ? "HEAD " : "GET ") + request.url + " failed: " + reason);
}

}  // namespace

std::string HttpResponse::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

Result<HttpResponse> http_fetch(const HttpRequest& request) {
  HttpResponse response;
  SlistPtr headers;
  EMBD_ASSIGN_OR_RETURN(CurlPtr curl, make_handle(request, response, headers));
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, on_body_to_string);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &response.body);
  EMBD_TRY(perform(curl.get(), request, response, errbuf, ""));
  return response;
}

Result<HttpResponse> http_download(const HttpRequest& request, const std::filesystem::path& file,
                                   std::uint64_t resume_from, const HttpProgress& progress) {
  HttpResponse response;
  SlistPtr headers;
  HttpRequest ranged = request;
  ranged.head = false;
  if (resume_from > 0) ranged.headers.push_back("Range: bytes=" + std::to_string(resume_from) + "-");
  EMBD_ASSIGN_OR_RETURN(CurlPtr curl, make_handle(ranged, response, headers));
  CURL* c = curl.get();
  FileSink sink;
  sink.curl = c;
  sink.path = file;
  sink.resume_from = resume_from;
  sink.written = resume_from;
  sink.progress = &progress;
  sink.response = &response;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body_to_file);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &sink);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  const Status status = perform(c, ranged, response, errbuf, sink.failure);
  if (sink.file != nullptr && std::fclose(sink.file) != 0 && status.ok()) {
    sink.file = nullptr;
    return io_error("closing " + file.string() + " failed (disk full?)");
  }
  sink.file = nullptr;
  if (!status.ok()) return status;
  response.body = std::move(sink.body);
  return response;
}

std::string url_escape(const std::string& text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace embd::io
