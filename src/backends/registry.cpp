#include "backends/registry.h"

#include <charconv>
#include <string>

#include "backends/cpu/cpu_backend.h"
#ifdef EMBD_HAVE_CUDA
#include "backends/cuda/cuda_backend.h"
#endif

namespace embd::backend {

bool cuda_compiled_in() {
#ifdef EMBD_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

int cuda_device_count() {
#ifdef EMBD_HAVE_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

namespace {

struct GpuRange {
  int first = 0;
  int last = 0;  // exclusive
};

// The GPUs a "cuda" / "cuda:N" device string names.
Result<GpuRange> gpu_range(std::string_view device) {
  if (device.substr(0, 4) != "cuda") {
    return invalid_argument("unknown device '" + std::string(device) +
                            "' (expected cpu, cuda or cuda:N)");
  }
  if (!cuda_compiled_in()) {
    return unsupported("device '" + std::string(device) +
                       "': this build of embd has no CUDA backend");
  }
  const int count = cuda_device_count();
  if (count == 0) return unsupported("device '" + std::string(device) + "': no CUDA GPU is visible");
  if (device.size() == 4) return GpuRange{0, count};
  if (device[4] != ':') return invalid_argument("unknown device '" + std::string(device) + "'");
  int index = -1;
  const char* b = device.data() + 5;
  const char* e = device.data() + device.size();
  auto [ptr, ec] = std::from_chars(b, e, index);
  if (ec != std::errc() || ptr != e || index < 0 || index >= count) {
    return invalid_argument("device '" + std::string(device) + "': GPU index out of range (" +
                            std::to_string(count) + " visible)");
  }
  return GpuRange{index, index + 1};
}

Result<std::vector<std::unique_ptr<Backend>>> create_gpus(std::string_view device,
                                                          bool high_priority, std::size_t streams) {
  EMBD_ASSIGN_OR_RETURN(const GpuRange range, gpu_range(device));
  std::vector<std::unique_ptr<Backend>> out;
#ifdef EMBD_HAVE_CUDA
  cuda::CudaBackendOptions options;
  options.high_priority_stream = high_priority;
  options.streams = streams;
  for (int i = range.first; i < range.last; ++i) {
    EMBD_ASSIGN_OR_RETURN(auto b, cuda::make_cuda_backend(i, options));
    out.push_back(std::move(b));
  }
#else
  (void)range;
  (void)high_priority;
  (void)streams;
#endif
  return out;
}

}  // namespace

Result<std::vector<std::unique_ptr<Backend>>> create_backends(std::string_view device,
                                                              const BackendOptions& options) {
  if (device == "cpu") {
    std::vector<std::unique_ptr<Backend>> out;
    out.push_back(cpu::make_cpu_backend(options.threads));
    return out;
  }
  return create_gpus(device, /*high_priority=*/false, options.gpu_streams);
}

Result<std::vector<std::unique_ptr<Backend>>> create_query_lanes(std::string_view device) {
  if (device == "cpu") return std::vector<std::unique_ptr<Backend>>{};
  return create_gpus(device, /*high_priority=*/true, /*streams=*/1);
}

}  // namespace embd::backend
