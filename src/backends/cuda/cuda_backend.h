// The CUDA backend: cuBLASLt GEMMs and embd's own kernels (varlen flash attention with in-kernel
// ALiBi, fused LayerNorms, GLU, pooling). Every method sets its device first, so the backend may
// be created on one thread and driven by another (never by two at once).
//
// Needs compute capability 8.0 or newer (the kernels are built for sm_80 and sm_90, with PTX for
// newer cards). Kernels run on non-blocking streams: one per backend unless asked for more
// (CudaBackendOptions::streams; see Backend::use_stream()). upload() of up to 8 MiB
// copies the source into a pinned staging buffer and returns without waiting (the copy is ordered
// before later kernels; the caller may reuse its buffer at once); larger uploads and download()
// return when the copy is complete. Errors: kDeviceError for CUDA/cuBLAS failures,
// kOutOfMemory for failed allocations, kUnsupported for shapes the kernels do not handle.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "backends/backend.h"

namespace embd::backend::cuda {

struct CudaBackendOptions {
  // Let F32 GEMMs use TF32 tensor cores (about 1e-3 relative error instead of exact FP32).
  bool allow_tf32 = false;
  // Always use the portable CUDA-core attention kernel, never the tensor-core one (for
  // benchmarks and for cross-checking the two).
  bool portable_attention = false;
  // Let the tensor-core attention kernel skip key tiles that ALiBi makes negligible (weights
  // below 2^-40 of the row's largest; see attention_mma_kernel.cuh). Off only to measure the gain.
  bool alibi_tile_skipping = true;
  // On Hopper, run the tensor-core attention kernel's products with wgmma
  // (attention_wgmma_sm90a.cu) instead of mma.sync. Off only to measure the gain and to test the
  // mma.sync kernel there.
  bool hopper_attention = true;
  // Offer recording (can_record(): CUDA graphs). Off only to measure the gain.
  bool graphs = true;
  // On Hopper, run a gated MLP's input projection and its GLU as one kernel (gated_gemm_sm90a.cu)
  // instead of cuBLASLt + the GLU kernel. Off only to measure the gain.
  bool fused_gated_linear = true;
  // Batches of fewer tokens than this run the gated projection as cuBLASLt + the GLU kernel (on
  // the same interleaved weight) when the caller gives scratch room: the fused kernel's 128-row
  // tiles, 16 across at I = 2048, leave most SMs idle on short batches.
  long long gated_fused_min_rows = 256;
  // On Hopper, run a Linear layer of 512 outputs and the residual LayerNorm after it as one
  // kernel (linear_layernorm_sm90a.cu) instead of cuBLASLt + add_layernorm. Off only to measure
  // the gain.
  bool fused_linear_layernorm = true;
  // ... for weights of at most this many inputs. Up to K = 512 the fused kernel is faster at
  // every batch size (H100: 16 to 65,536 rows, gpu_ops_bench); at K = 2048 its mainloop trails
  // cuBLASLt's by about what the LayerNorm pass costs, so the MLP's down projection stays
  // unfused (BENCHMARKS.md, session 8).
  long long linear_layernorm_max_k = 512;
  // Batches of fewer tokens run it unfused when the caller gives scratch room: queries (16 tokens,
  // replayed as CUDA graphs) were 0.01-0.02 ms slower end to end with the fused cluster kernel
  // (H100, session 8), though it wins at every size launched alone.
  long long linear_layernorm_fused_min_rows = 1024;
  // On sm_90+, let the attention, LayerNorm and Hopper GEMM kernels launch while the kernel ahead
  // of them finishes (programmatic dependent launch, early_launch.cuh). Off only to measure the gain.
  bool early_launch = true;
  // Create the stream at the device's highest priority, so that its blocks are scheduled ahead
  // of other streams' waiting blocks (a query lane beside bulk work; see LoadOptions::query_lane).
  bool high_priority_stream = false;
  // Concurrent streams (Backend::streams(), at most kMaxStreams), each with its own cuBLASLt
  // workspace and attention scratch, so that batches on different streams can run at once.
  std::size_t streams = 1;
};
constexpr std::size_t kMaxStreams = 4;

// Number of visible CUDA devices; 0 (silently) when there is no driver or GPU.
int device_count();
Result<std::unique_ptr<Backend>> make_cuda_backend(int device);
Result<std::unique_ptr<Backend>> make_cuda_backend(int device, const CudaBackendOptions& options);

// The cudaStream_t (as void*) a CUDA backend enqueues its kernels on now, for timing with CUDA
// events in benchmarks; null when `backend` is not a CUDA backend.
void* native_stream(Backend& backend);

// How the last linear() on `backend` ran, for benchmarks: the cuBLASLt epilogue (e.g. "cublasLt
// BIAS (f32 bias)") plus any separate epilogue kernel ("+ epilogue kernel (f32 bias, gelu_erf)").
// Empty when `backend` is not a CUDA backend or has run no linear yet.
std::string linear_path(Backend& backend);

}  // namespace embd::backend::cuda
