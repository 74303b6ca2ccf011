// embd's error model: every recoverable failure is a value, never an exception.
//
// Status carries an ErrorCode (which maps one-to-one to an HTTP status in the server) and a
// message that names the input at fault. Result<T> is a T or a non-OK Status.
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace embd {

enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,   // bad request / input (HTTP 400 / 422)
  kNotFound,          // a file, tensor or model that does not exist (404)
  kInvalidModel,      // a model file that is malformed or inconsistent (500-class for the server)
  kUnsupported,       // a valid but unsupported architecture, dtype or device (400)
  kInputTooLong,      // input longer than the model's maximum, truncation off (413 / 422)
  kOverloaded,        // back-pressure: queue full (429)
  kCancelled,         // the caller cancelled the request (499)
  kDeadlineExceeded,  // the request's deadline passed before it ran (504)
  kDeviceError,       // a backend failure (CUDA error, ...) (500)
  kOutOfMemory,       // host or device allocation failed (503)
  kIoError,           // reading or writing a file failed (500)
  kNetworkError,      // a download failed (502)
  kUnavailable,       // shutting down / not ready (503)
  kInternal,          // a bug (500)
};

std::string_view error_code_name(ErrorCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok_status() { return Status(); }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "InvalidArgument: <message>"
  std::string to_string() const;
  // Returns a copy whose message is "<context>: <message>".
  Status with_context(std::string_view context) const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

inline Status ok_status() { return Status(); }

// A value of type T or an error. Accessing value() of an error aborts (a bug, not user input).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : data_(std::move(status)) {  // NOLINT
    if (std::get<Status>(data_).ok()) std::abort();  // an OK status carries no value
  }

  bool ok() const { return std::holds_alternative<T>(data_); }
  explicit operator bool() const { return ok(); }

  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(data_);
  }
  T& value() & { return checked(); }
  const T& value() const& { return const_cast<Result*>(this)->checked(); }
  T&& value() && { return std::move(checked()); }
  T* operator->() { return &checked(); }
  const T* operator->() const { return &const_cast<Result*>(this)->checked(); }
  T& operator*() & { return checked(); }
  const T& operator*() const& { return const_cast<Result*>(this)->checked(); }

 private:
  T& checked() {
    if (!ok()) std::abort();
    return std::get<T>(data_);
  }
  std::variant<T, Status> data_;
};

}  // namespace embd
