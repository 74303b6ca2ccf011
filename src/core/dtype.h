// Element types of weights and activations. A dtype is data (a model's property), never a
// constant baked into an op; conversions round to nearest even.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "embd/status.hpp"

namespace embd {

enum class DType : std::uint8_t { kF32, kF16, kBF16 };

constexpr std::size_t dtype_size(DType t) { return t == DType::kF32 ? 4 : 2; }
// "f32" | "f16" | "bf16"
std::string_view dtype_name(DType t);
// Accepts f32/float32/F32, f16/float16/half/F16, bf16/bfloat16/BF16.
Result<DType> parse_dtype(std::string_view name);

inline float bf16_to_f32(std::uint16_t h) {
  std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline std::uint16_t f32_to_bf16(float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x40u);  // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even
  return static_cast<std::uint16_t>(bits >> 16);
}

float f16_to_f32(std::uint16_t h);
std::uint16_t f32_to_f16(float f);

// Converts n elements between any two dtypes (src and dst must not overlap unless equal).
// Uses F16C / AVX-512 BF16 instructions when the CPU has them.
void convert(const void* src, DType src_type, void* dst, DType dst_type, std::size_t n);

// Whether the CPU has the F16C conversion instructions (CPUID, as not every compiler's
// __builtin_cpu_supports knows "f16c").
bool cpu_has_f16c();

}  // namespace embd
