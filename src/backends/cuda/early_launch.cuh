// Programmatic dependent launch ("early launch", sm_90+): a kernel that launch_maybe_early()
// launches early may be scheduled while the kernel ahead of it on the stream is still running,
// so its launch and its blocks' placement overlap that kernel's last wave instead of following it.
// Every such kernel calls wait_for_previous_kernels() before it touches global memory: that waits
// for the kernels ahead to finish and their writes to be visible (and returns at once when the
// kernel was launched normally), then lets the next early-launched kernel start in turn. So the
// order of memory effects is the stream's; what overlaps is launch latency and block scheduling.
// Kernel files only.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

namespace embd::backend::cuda {

__device__ __forceinline__ void wait_for_previous_kernels() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Launches kernel<<<grid, block, smem, stream>>>(args...), early when `early` (the device must be
// sm_90+; the backend decides), with up to one more attribute (e.g. a cluster shape) in `extra`.
template <typename... Params, typename... Args>
cudaError_t launch_maybe_early(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t smem, cudaStream_t stream,
                               bool early, const cudaLaunchAttribute* extra, Args&&... args) {
  cudaLaunchAttribute attrs[2];
  unsigned count = 0;
  if (extra != nullptr) attrs[count++] = *extra;
  if (early) {
    attrs[count].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attrs[count].val.programmaticStreamSerializationAllowed = 1;
    ++count;
  }
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = attrs;
  config.numAttrs = count;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace embd::backend::cuda
