// Internal helpers around the public Status/Result: early-return macros and invariant checks.
#pragma once

#include <cstdio>
#include <cstdlib>

#include "embd/status.hpp"

// Returns the Status of `expr` from the enclosing function when it is not OK.
#define EMBD_TRY(expr)                              \
  do {                                              \
    ::embd::Status embd_try_status_ = (expr);       \
    if (!embd_try_status_.ok()) return embd_try_status_; \
  } while (0)

#define EMBD_CONCAT_INNER(a, b) a##b
#define EMBD_CONCAT(a, b) EMBD_CONCAT_INNER(a, b)

// EMBD_ASSIGN_OR_RETURN(auto x, make_x()): binds the value or returns the error.
#define EMBD_ASSIGN_OR_RETURN(lhs, expr) \
  EMBD_ASSIGN_OR_RETURN_IMPL(EMBD_CONCAT(embd_result_, __LINE__), lhs, expr)
#define EMBD_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()

// A broken invariant (a bug, never user input): abort with file and line in every build.
#define EMBD_CHECK(cond)                                                                    \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "embd: check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)

namespace embd {

inline Status invalid_argument(std::string msg) { return {ErrorCode::kInvalidArgument, std::move(msg)}; }
inline Status invalid_model(std::string msg) { return {ErrorCode::kInvalidModel, std::move(msg)}; }
inline Status not_found(std::string msg) { return {ErrorCode::kNotFound, std::move(msg)}; }
inline Status unsupported(std::string msg) { return {ErrorCode::kUnsupported, std::move(msg)}; }
inline Status io_error(std::string msg) { return {ErrorCode::kIoError, std::move(msg)}; }
inline Status internal_error(std::string msg) { return {ErrorCode::kInternal, std::move(msg)}; }
inline Status device_error(std::string msg) { return {ErrorCode::kDeviceError, std::move(msg)}; }

}  // namespace embd
