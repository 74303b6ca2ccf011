#include "backends/cpu/cpu_isa.h"

#include <cstdlib>
#include <cstring>

#include "core/dtype.h"

namespace embd::backend::cpu {
namespace {

CpuFeatures detect() {
  __builtin_cpu_init();
  CpuFeatures f;
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                      __builtin_cpu_supports("avx512dq");
  f.isa = avx512 ? Isa::kAvx512 : avx2 ? Isa::kAvx2 : Isa::kScalar;
  f.avx512_bf16 = avx512 && __builtin_cpu_supports("avx512bf16");
  f.f16c = cpu_has_f16c();
  // A cap for testing the lower variants on a machine that has the higher ones.
  if (const char* cap = std::getenv("EMBD_CPU_ISA")) {
    if (std::strcmp(cap, "scalar") == 0) f.isa = Isa::kScalar;
    if (std::strcmp(cap, "avx2") == 0 && f.isa == Isa::kAvx512) f.isa = Isa::kAvx2;
  }
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "?";
}

}  // namespace embd::backend::cpu
