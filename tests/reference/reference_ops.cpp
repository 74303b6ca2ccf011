#include "reference/reference_ops.h"

#include <algorithm>
#include <cmath>

namespace embd::reference {

double activate(double x, Act act) {
  switch (act) {
    case Act::kGeluErf: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case Act::kRelu: return x > 0 ? x : 0.0;
    case Act::kNone: break;
  }
  return x;
}

std::vector<double> linear(const std::vector<double>& x, const std::vector<double>& w,
                           const std::vector<double>& bias, std::int64_t m, std::int64_t k,
                           std::int64_t n, Act act) {
  std::vector<double> y(static_cast<std::size_t>(m * n));
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      double s = bias.empty() ? 0.0 : bias[j];
      for (std::int64_t c = 0; c < k; ++c) s += x[i * k + c] * w[j * k + c];
      y[i * n + j] = activate(s, act);
    }
  }
  return y;
}

void layernorm(std::vector<double>& x, std::int64_t rows, std::int64_t h,
               const std::vector<double>& gamma, const std::vector<double>& beta, double eps) {
  for (std::int64_t r = 0; r < rows; ++r) {
    double* v = x.data() + r * h;
    double mean = 0.0, var = 0.0;
    for (std::int64_t i = 0; i < h; ++i) mean += v[i];
    mean /= static_cast<double>(h);
    for (std::int64_t i = 0; i < h; ++i) var += (v[i] - mean) * (v[i] - mean);
    var /= static_cast<double>(h);
    const double rstd = 1.0 / std::sqrt(var + eps);
    for (std::int64_t i = 0; i < h; ++i) v[i] = (v[i] - mean) * rstd * gamma[i] + beta[i];
  }
}

std::vector<double> embed_layernorm(const std::vector<std::int32_t>& ids,
                                    const std::vector<std::int32_t>& type_ids,
                                    const std::vector<std::int32_t>& positions,
                                    const std::vector<double>& word, const std::vector<double>& type,
                                    const std::vector<double>& pos, std::int64_t h,
                                    const std::vector<double>& gamma,
                                    const std::vector<double>& beta, double eps) {
  const auto t_count = static_cast<std::int64_t>(ids.size());
  std::vector<double> out(static_cast<std::size_t>(t_count * h));
  for (std::int64_t t = 0; t < t_count; ++t) {
    for (std::int64_t i = 0; i < h; ++i) {
      double v = word[ids[t] * h + i];
      if (!type.empty()) v += type[(type_ids.empty() ? 0 : type_ids[t]) * h + i];
      if (!pos.empty() && !positions.empty()) v += pos[positions[t] * h + i];
      out[t * h + i] = v;
    }
  }
  layernorm(out, t_count, h, gamma, beta, eps);
  return out;
}

std::vector<double> add_layernorm(const std::vector<double>& x, const std::vector<double>& residual,
                                  std::int64_t rows, std::int64_t h,
                                  const std::vector<double>& gamma,
                                  const std::vector<double>& beta, double eps) {
  std::vector<double> out = x;
  if (!residual.empty()) {
    for (std::size_t i = 0; i < out.size(); ++i) out[i] += residual[i];
  }
  layernorm(out, rows, h, gamma, beta, eps);
  return out;
}

std::vector<double> glu(const std::vector<double>& in, std::int64_t rows, std::int64_t inter,
                        bool activate_first_half, Act act) {
  std::vector<double> out(static_cast<std::size_t>(rows * inter));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t i = 0; i < inter; ++i) {
      const double a = in[r * 2 * inter + i], b = in[r * 2 * inter + inter + i];
      out[r * inter + i] = activate_first_half ? activate(a, act) * b : a * activate(b, act);
    }
  }
  return out;
}

namespace {

void attention_row(const std::vector<double>& qkv, std::int64_t first, std::int64_t len,
                   std::int64_t i, int heads, int d, double scale,
                   const std::vector<double>& slopes, const RelativeBias& rel, double* out) {
  const std::int64_t hidden = static_cast<std::int64_t>(heads) * d, ld = 3 * hidden;
  std::vector<double> logits(static_cast<std::size_t>(len));
  for (int h = 0; h < heads; ++h) {
    const double* q = qkv.data() + (first + i) * ld + h * d;
    double mx = -INFINITY;
    for (std::int64_t j = 0; j < len; ++j) {
      const double* k = qkv.data() + (first + j) * ld + hidden + h * d;
      double s = 0.0;
      for (int c = 0; c < d; ++c) s += q[c] * k[c];
      s *= scale;
      if (!slopes.empty()) s -= slopes[h] * static_cast<double>(std::llabs(i - j));
      if (!rel.table.empty()) {
        const std::int64_t r = std::clamp<std::int64_t>(j - i, -rel.reach, rel.reach);
        s += rel.table[static_cast<std::size_t>(h * (2 * rel.reach + 1) + rel.reach + r)];
      }
      logits[j] = s;
      mx = std::max(mx, s);
    }
    double sum = 0.0;
    for (auto& l : logits) sum += (l = std::exp(l - mx));
    for (int c = 0; c < d; ++c) {
      double acc = 0.0;
      for (std::int64_t j = 0; j < len; ++j) {
        acc += logits[j] * qkv[(first + j) * ld + 2 * hidden + h * d + c];
      }
      out[h * d + c] = acc / sum;
    }
  }
}

}  // namespace

std::vector<double> attention(const std::vector<double>& qkv, const std::vector<std::int32_t>& cu,
                              int heads, int head_dim, double scale,
                              const std::vector<double>& slopes,
                              const std::vector<std::int64_t>& rows,
                              const RelativeBias& relative) {
  const std::int64_t hidden = static_cast<std::int64_t>(heads) * head_dim;
  const std::int64_t tokens = cu.back();
  std::vector<double> out(static_cast<std::size_t>(tokens * hidden), 0.0);
  std::vector<std::int64_t> todo = rows;
  if (todo.empty()) {
    for (std::int64_t t = 0; t < tokens; ++t) todo.push_back(t);
  }
  for (std::int64_t t : todo) {
    const auto seq = std::upper_bound(cu.begin(), cu.end(), t) - cu.begin() - 1;
    const std::int64_t first = cu[seq], len = cu[seq + 1] - first;
    attention_row(qkv, first, len, t - first, heads, head_dim, scale, slopes, relative,
                  out.data() + t * hidden);
  }
  return out;
}

std::vector<double> pool(const std::vector<double>& hidden, const std::vector<std::int32_t>& cu,
                         std::int64_t h, bool mean) {
  const std::int64_t batch = static_cast<std::int64_t>(cu.size()) - 1;
  std::vector<double> out(static_cast<std::size_t>(batch * h), 0.0);
  for (std::int64_t b = 0; b < batch; ++b) {
    const std::int64_t first = cu[b], len = cu[b + 1] - first;
    if (len == 0) continue;
    for (std::int64_t i = 0; i < h; ++i) {
      if (!mean) {
        out[b * h + i] = hidden[first * h + i];
        continue;
      }
      double s = 0.0;
      for (std::int64_t t = first; t < first + len; ++t) s += hidden[t * h + i];
      out[b * h + i] = s / static_cast<double>(len);
    }
  }
  return out;
}

std::vector<float> alibi_slopes(int num_heads) {
  auto power_of_two_slopes = [](int n) {
    std::vector<double> s;
    for (int h = 0; h < n; ++h) s.push_back(std::pow(2.0, -8.0 * (h + 1) / n));
    return s;
  };
  int p = 1;
  while (p * 2 <= num_heads) p *= 2;
  std::vector<double> slopes = power_of_two_slopes(p);
  const std::vector<double> extra = power_of_two_slopes(2 * p);
  for (int k = 0; static_cast<int>(slopes.size()) < num_heads; ++k) slopes.push_back(extra[2 * k]);
  return {slopes.begin(), slopes.end()};
}

}  // namespace embd::reference
