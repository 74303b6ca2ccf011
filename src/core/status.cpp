#include "core/status.h"

#include <string>

namespace embd {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "Ok";
    case ErrorCode::kInvalidArgument: return "InvalidArgument";
    case ErrorCode::kNotFound: return "NotFound";
    case ErrorCode::kInvalidModel: return "InvalidModel";
    case ErrorCode::kUnsupported: return "Unsupported";
    case ErrorCode::kInputTooLong: return "InputTooLong";
    case ErrorCode::kOverloaded: return "Overloaded";
    case ErrorCode::kCancelled: return "Cancelled";
    case ErrorCode::kDeadlineExceeded: return "DeadlineExceeded";
    case ErrorCode::kDeviceError: return "DeviceError";
    case ErrorCode::kOutOfMemory: return "OutOfMemory";
    case ErrorCode::kIoError: return "IoError";
    case ErrorCode::kNetworkError: return "NetworkError";
    case ErrorCode::kUnavailable: return "Unavailable";
    case ErrorCode::kInternal: return "Internal";
  }
  return "Unknown";
}

std::string Status::to_string() const {
  if (ok()) return "Ok";
  return std::string(error_code_name(code_)) + ": " + message_;
}

Status Status::with_context(std::string_view context) const {
  if (ok()) return *this;
  return Status(code_, std::string(context) + ": " + message_);
}

}  // namespace embd
