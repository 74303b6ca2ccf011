// Creating backends from a device string. The only place that knows which backends exist.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.h"

namespace embd::backend {

struct BackendOptions {
  int threads = 0;  // CPU threads; 0 = all cores
  std::size_t gpu_streams = 1;  // concurrent streams per GPU (Backend::streams())
};

// "cpu" -> the CPU; "cuda" -> every visible GPU; "cuda:N" -> GPU N. Errors name the device
// string (unknown device, no GPU, index out of range, CUDA not compiled in).
Result<std::vector<std::unique_ptr<Backend>>> create_backends(std::string_view device,
                                                              const BackendOptions& options);
// The query lanes for the same device string: one more backend per GPU, in create_backends()'s
// order, whose work is scheduled ahead of the others' on that GPU (a high-priority CUDA stream).
// Empty for the CPU, which has no such priorities.
Result<std::vector<std::unique_ptr<Backend>>> create_query_lanes(std::string_view device);
// Number of usable CUDA GPUs (0 when CUDA is not compiled in or no driver/GPU is present).
int cuda_device_count();
bool cuda_compiled_in();

}  // namespace embd::backend
