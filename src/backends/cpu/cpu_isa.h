// Runtime CPU feature detection for the CPU backend's own kernels. The build never uses
// -march=native: each hot kernel is compiled several times with __attribute__((target(...)))
// and one variant is picked here from cpuid at run time. Thread-safe (computed once).
#pragma once

namespace embd::backend::cpu {

enum class Isa { kScalar, kAvx2, kAvx512 };

struct CpuFeatures {
  Isa isa = Isa::kScalar;  // best vector ISA for our kernels
  bool avx512_bf16 = false;
  bool f16c = false;
};

// Detected once; EMBD_CPU_ISA=scalar|avx2|avx512 caps the choice (for tests and benchmarks).
const CpuFeatures& cpu_features();
const char* isa_name(Isa isa);

}  // namespace embd::backend::cpu
