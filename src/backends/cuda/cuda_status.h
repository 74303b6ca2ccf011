// Converts CUDA runtime and cuBLAS status codes into embd::Status (kDeviceError, or
// kOutOfMemory for allocation failures), naming the operation that failed. Host code only.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <string>

#include "core/status.h"

namespace embd::backend::cuda {

inline Status cuda_status(cudaError_t err, const std::string& what) {
  if (err == cudaSuccess) return ok_status();
  const std::string msg = what + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
  if (err == cudaErrorMemoryAllocation) return {ErrorCode::kOutOfMemory, msg};
  return device_error(msg);
}

inline Status cublas_status(cublasStatus_t st, const std::string& what) {
  if (st == CUBLAS_STATUS_SUCCESS) return ok_status();
  const std::string msg = what + ": cuBLAS status " + std::to_string(static_cast<int>(st)) + " (" +
                          cublasLtGetStatusName(st) + ")";
  if (st == CUBLAS_STATUS_ALLOC_FAILED) return {ErrorCode::kOutOfMemory, msg};
  if (st == CUBLAS_STATUS_NOT_SUPPORTED) return unsupported(msg);
  return device_error(msg);
}

}  // namespace embd::backend::cuda

#define EMBD_CUDA_TRY(expr, what) EMBD_TRY(::embd::backend::cuda::cuda_status((expr), (what)))
#define EMBD_CUBLAS_TRY(expr, what) EMBD_TRY(::embd::backend::cuda::cublas_status((expr), (what)))
