// Naive double-precision reference implementations of the backend ops, for tests only.
// Matrices are dense row-major std::vector<double>. Stateless and thread-safe. They trust their
// arguments (tests build consistent shapes).
#pragma once

#include <cstdint>
#include <vector>

namespace embd::reference {

enum class Act { kNone, kGeluErf, kRelu };

double activate(double x, Act act);

// y[M, N] = x[M, K] w[N, K]^T + bias[N] (bias may be empty), then act.
std::vector<double> linear(const std::vector<double>& x, const std::vector<double>& w,
                           const std::vector<double>& bias, std::int64_t m, std::int64_t k,
                           std::int64_t n, Act act);

// LayerNorm of each row of x[rows, h] in place (biased variance).
void layernorm(std::vector<double>& x, std::int64_t rows, std::int64_t h,
               const std::vector<double>& gamma, const std::vector<double>& beta, double eps);

// out[T, h] = LN(word[ids] + type[type_ids] + pos[positions]); empty tables/ids are skipped
// (empty type_ids with a type table = type 0).
std::vector<double> embed_layernorm(const std::vector<std::int32_t>& ids,
                                    const std::vector<std::int32_t>& type_ids,
                                    const std::vector<std::int32_t>& positions,
                                    const std::vector<double>& word, const std::vector<double>& type,
                                    const std::vector<double>& pos, std::int64_t h,
                                    const std::vector<double>& gamma,
                                    const std::vector<double>& beta, double eps);

// out = LN(x + residual) (residual may be empty).
std::vector<double> add_layernorm(const std::vector<double>& x, const std::vector<double>& residual,
                                  std::int64_t rows, std::int64_t h,
                                  const std::vector<double>& gamma,
                                  const std::vector<double>& beta, double eps);

// in[T, 2I] -> out[T, I].
std::vector<double> glu(const std::vector<double>& in, std::int64_t rows, std::int64_t inter,
                        bool activate_first_half, Act act);

// A relative-position bias per head and distance: score(i, j) of head h gets
// table[h * (2 reach + 1) + reach + clamp(j - i, -reach, reach)]. Empty table: none.
struct RelativeBias {
  std::vector<double> table;
  int reach = 0;
};

// Attention over packed qkv[T, 3H] for the given token rows (all rows when `rows` is empty);
// returns out[T, H] with only the requested rows filled. slopes empty = no ALiBi.
std::vector<double> attention(const std::vector<double>& qkv, const std::vector<std::int32_t>& cu,
                              int heads, int head_dim, double scale,
                              const std::vector<double>& slopes,
                              const std::vector<std::int64_t>& rows = {},
                              const RelativeBias& relative = {});

// Mean (or first-token) pooling of hidden[T, h] per sequence -> [B, h].
std::vector<double> pool(const std::vector<double>& hidden, const std::vector<std::int32_t>& cu,
                         std::int64_t h, bool mean);

// ALiBi slopes of JinaBERT / BLOOM (JINABERT.md §4.1), including non-power-of-two head counts.
std::vector<float> alibi_slopes(int num_heads);

}  // namespace embd::reference
