// The ops the encoders are written against. Each validates its arguments once (shapes, dtypes,
// strides, whether the backend supports the op in that dtype) and then calls the backend's kernel,
// so kernels can trust their inputs and models never call a backend directly. Errors are
// kInvalidArgument / kUnsupported naming the op and the argument at fault.
#pragma once

#include <vector>

#include "backends/backend.h"

namespace embd::ops {

using backend::Activation;
using backend::Backend;

// y[M, out] = x[M, in] W^T + b, then activation. skip_bias leaves b out (see LinearArgs).
Status linear(Backend& be, const backend::LinearWeight& w, const Mat& x, const Mat& y,
              Activation activation = Activation::kNone, bool skip_bias = false);
Status embed_layernorm(Backend& be, const backend::EmbedLayerNormArgs& args);
// out = LayerNorm(x + bias + residual); bias and residual.data may be null.
Status add_layernorm(Backend& be, const backend::AddLayerNormArgs& args);
// out = LayerNorm(x W^T + b + residual) (see LinearLayerNormArgs): one kernel where the backend
// fuses it, else linear() into args.scratch and add_layernorm().
Status linear_layernorm(Backend& be, const backend::LinearLayerNormArgs& args);
Status glu(Backend& be, const backend::GluArgs& args);
// out = act(gate) * up from x and a weight made by prepare_gated_linear (see GatedLinearArgs):
// in one pass where the backend fuses it, else linear() into args.scratch and glu().
Status gated_linear(Backend& be, const backend::GatedLinearArgs& args);
Status attention(Backend& be, const backend::AttentionArgs& args);
Status pool(Backend& be, const backend::PoolArgs& args);

// ALiBi slopes for any head count (JINABERT.md §4.1): 2^(-8(h+1)/N) for N a power of two;
// otherwise the P = 2^floor(log2 N) list followed by every other slope of the 2P list.
std::vector<float> alibi_slopes(int num_heads);

}  // namespace embd::ops
