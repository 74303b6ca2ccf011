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

Result<std::vector<std::unique_ptr<Backend>>> create_backends(std::string_view device,
                                                              const BackendOptions& options) {
  std::vector<std::unique_ptr<Backend>> out;
  if (device == "cpu") {
    out.push_back(cpu::make_cpu_backend(options.threads));
    return out;
  }
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
  int first = 0, last = count;
  if (device.size() > 4) {
    if (device[4] != ':') return invalid_argument("unknown device '" + std::string(device) + "'");
    int index = -1;
    const char* b = device.data() + 5;
    const char* e = device.data() + device.size();
    auto [ptr, ec] = std::from_chars(b, e, index);
    if (ec != std::errc() || ptr != e || index < 0 || index >= count) {
      return invalid_argument("device '" + std::string(device) + "': GPU index out of range (" +
                              std::to_string(count) + " visible)");
    }
    first = index;
    last = index + 1;
  }
#ifdef EMBD_HAVE_CUDA
  for (int i = first; i < last; ++i) {
    EMBD_ASSIGN_OR_RETURN(auto b, cuda::make_cuda_backend(i));
    out.push_back(std::move(b));
  }
#else
  (void)first;
  (void)last;
#endif
  return out;
}

}  // namespace embd::backend
