#include "api_error.h"

#include <nlohmann/json.hpp>

namespace embd::server {
namespace {

using Kind = ApiError::Kind;

// Messages may quote client text, which need not be valid UTF-8: replace, never throw.
std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// TEI's ErrorType variants, serialised capitalised as TEI does.
const char* tei_type(Kind kind) {
  switch (kind) {
    case Kind::kMalformed: return "Validation";
    case Kind::kValidation: return "Validation";
    case Kind::kEmpty: return "Empty";
    case Kind::kTooLong: return "Validation";
    case Kind::kTooLarge: return "Validation";
    case Kind::kPayloadTooLarge: return "PayloadTooLarge";
    case Kind::kUnauthorized: return "Unauthorized";
    case Kind::kNotFound: return "NotFound";
    case Kind::kMethodNotAllowed: return "MethodNotAllowed";
    case Kind::kOverloaded: return "Overloaded";
    case Kind::kCancelled: return "Cancelled";
    case Kind::kUnavailable: return "Unhealthy";
    case Kind::kTimeout: return "Timeout";
    case Kind::kBackend: return "Backend";
  }
  return "Backend";
}

// OpenAI's `type` and `code` fields.
std::pair<const char*, const char*> openai_type_code(Kind kind) {
  switch (kind) {
    case Kind::kUnauthorized: return {"invalid_request_error", "invalid_api_key"};
    case Kind::kOverloaded: return {"rate_limit_exceeded", "rate_limit_exceeded"};
    case Kind::kNotFound: return {"invalid_request_error", "unknown_url"};
    case Kind::kUnavailable: return {"server_error", "service_unavailable"};
    case Kind::kTimeout: return {"server_error", "timeout"};
    case Kind::kBackend: return {"server_error", nullptr};
    case Kind::kTooLong: return {"invalid_request_error", "context_length_exceeded"};
    default: return {"invalid_request_error", nullptr};
  }
}

}  // namespace

ApiError make_error(ApiError::Kind kind, std::string message, std::string param) {
  return ApiError{kind, std::move(message), std::move(param)};
}

int http_status(const ApiError& error, ApiFlavor flavor) {
  const bool tei = flavor == ApiFlavor::kTei;
  switch (error.kind) {
    case Kind::kMalformed: return 400;
    case Kind::kValidation: return tei ? 422 : 400;
    case Kind::kEmpty: return 400;
    case Kind::kTooLong: return tei ? 422 : 400;
    case Kind::kTooLarge: return tei ? 422 : 400;
    case Kind::kPayloadTooLarge: return 413;
    case Kind::kUnauthorized: return 401;
    case Kind::kNotFound: return 404;
    case Kind::kMethodNotAllowed: return 405;
    case Kind::kOverloaded: return 429;
    case Kind::kCancelled: return 499;
    case Kind::kUnavailable: return 503;
    case Kind::kTimeout: return 504;
    case Kind::kBackend: return 500;
  }
  return 500;
}

std::string error_body(const ApiError& error, ApiFlavor flavor) {
  if (flavor == ApiFlavor::kTei) {
    return dump({{"error", error.message}, {"error_type", tei_type(error.kind)}});
  }
  auto [type, code] = openai_type_code(error.kind);
  nlohmann::json inner = {{"message", error.message}, {"type", type}};
  inner["param"] = error.param.empty() ? nlohmann::json(nullptr) : nlohmann::json(error.param);
  inner["code"] = code ? nlohmann::json(code) : nlohmann::json(nullptr);
  return dump({{"error", inner}});
}

ApiError from_status(const Status& status, std::string param) {
  Kind kind = Kind::kBackend;
  switch (status.code()) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kUnsupported:
    case ErrorCode::kNotFound: kind = Kind::kValidation; break;
    case ErrorCode::kInputTooLong: kind = Kind::kTooLong; break;
    case ErrorCode::kOverloaded: kind = Kind::kOverloaded; break;
    case ErrorCode::kCancelled: kind = Kind::kCancelled; break;
    case ErrorCode::kDeadlineExceeded: kind = Kind::kTimeout; break;
    case ErrorCode::kOutOfMemory:
    case ErrorCode::kUnavailable: kind = Kind::kUnavailable; break;
    default: kind = Kind::kBackend; break;
  }
  std::string message = status.message();
  if (kind == Kind::kValidation || kind == Kind::kTooLong) {
    message = "Input validation error: " + message;
  }
  return ApiError{kind, std::move(message), std::move(param)};
}

}  // namespace embd::server
