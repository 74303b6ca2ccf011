// MPNet's relative-position bias (T5's bidirectional buckets): the bucket of a distance, and the
// per-head table by distance that the attention kernels read (AttentionArgs::relative_bias).
#pragma once

#include <cstdint>
#include <vector>

namespace embd::models {

// The buckets MPNet uses: 32, exact below distance 8 on each side, log-spaced up to 128, and
// one bucket per side for everything farther.
constexpr int kRelativeBuckets = 32;
constexpr int kRelativeMaxDistance = 128;

// transformers' MPNetEncoder.relative_position_bucket of relative_position = j - i (key minus
// query), with its float32 logarithm: 0..15 for keys at or before the query, 16..31 after it.
int relative_position_bucket(std::int64_t relative_position);

// The bias table [heads][2 * kRelativeMaxDistance + 1] from `weight` (the stored
// relative_attention_bias, F32 [rows >= kRelativeBuckets][heads]): entry (h, R + r) is the
// weight of bucket(r) for head h, R = kRelativeMaxDistance. Distances beyond R fall in the
// same bucket as +-R, so the kernels clamp to the table's ends.
std::vector<float> relative_bias_table(const std::vector<float>& weight, int heads);

}  // namespace embd::models
