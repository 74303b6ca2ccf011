// The CPU backend's own kernels (everything but the GEMMs). Each parallelises with OpenMP over
// rows / (sequence, head, query block) using the calling thread's OpenMP thread count, computes
// in F32 and rounds once to the output dtype. Arguments were validated by the ops layer.
// Not thread-safe across calls that share `scratch`.
#pragma once

#include <vector>

#include "backends/backend.h"

namespace embd::backend::cpu {

void embed_layernorm_kernel(const EmbedLayerNormArgs& a);
void add_layernorm_kernel(const AddLayerNormArgs& a);
void glu_kernel(const GluArgs& a);
void pool_kernel(const PoolArgs& a);
// `scratch` holds the F32 keys (transposed) and values of every head; O(T * H), never O(L^2).
void attention_kernel(const AttentionArgs& a, std::vector<float>& scratch);

}  // namespace embd::backend::cpu
