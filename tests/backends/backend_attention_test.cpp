// Padding-free attention (with ALiBi, a relative-position table or neither) on every backend x
// dtype against the double reference, its argument checks, the CPU kernel's memory bound at 8192
// tokens, and the reference ALiBi slopes.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>

#include "backends/backend_test_util.h"
#include "backends/cpu/cpu_backend.h"
#include "ops/ops.h"
#include "reference/reference_ops.h"

namespace embd::testing {
namespace {

using backend::Op;
namespace ref = embd::reference;

struct AttnCase {
  std::vector<std::int32_t> lengths;
  int heads, head_dim;
  bool alibi;
  std::int64_t qkv_pad, out_pad;
  int sampled_rows;  // 0: check every row, else this many rows (long sequences)
  // qkv without its bias; the kernel gets the Q and V parts (q_bias / v_bias) and the reference
  // the whole bias, K's part included (softmax cancels it).
  bool qv_bias = false;
  // A random relative-position table (AttentionArgs::relative_bias) of this reach; 0: none.
  int relative_reach = 0;
};

std::string describe(const AttnCase& c) {
  std::string s = "lengths=";
  for (std::size_t i = 0; i < c.lengths.size() && i < 8; ++i) s += std::to_string(c.lengths[i]) + ",";
  if (c.lengths.size() > 8) s += "... (" + std::to_string(c.lengths.size()) + " sequences)";
  return s + " heads=" + std::to_string(c.heads) + " d=" + std::to_string(c.head_dim) +
         (c.alibi ? " alibi" : "") + (c.qv_bias ? " qv_bias" : "") +
         (c.relative_reach > 0 ? " relative_reach=" + std::to_string(c.relative_reach) : "");
}

TEST_P(BackendOpTest, Attention) {
  EMBD_REQUIRE_OP(Op::kAttention);
  std::vector<AttnCase> cases = {
      {{1}, 4, 8, true, 0, 0, 0},
      {{5, 1, 17, 64, 65, 1}, 6, 16, true, 8, 0, 0},
      {{130, 3, 1}, 12, 32, false, 0, 0, 0},
      {{200, 77}, 8, 64, true, 0, 5, 0},
      {{129}, 8, 8, true, 3, 3, 0},
      {{1, 300, 2}, 4, 16, false, 0, 0, 0},
      {{700, 3, 1000}, 12, 16, true, 0, 0, 0},  // steep slopes: far key blocks are skipped
      {{37, 5}, 3, 6, true, 2, 1, 0},            // head_dim not a multiple of 4 (scalar P.V)
      {{70, 1}, 2, 128, true, 0, 0, 0},          // head_dim above one register tile
      {{8192}, 2, 32, true, 0, 0, 96},
      {{8192}, 2, 32, false, 0, 0, 96},
      // head_dim 64 (the tensor-core kernel on CUDA) with ALiBi: steep heads skip far key tiles,
      // shallow ones reach everything; 12 heads = non-power-of-two slopes.
      {{2500, 64, 900}, 8, 64, true, 0, 0, 64},
      {{1500, 9}, 12, 64, true, 0, 0, 48},
      // The QKV bias folded into attention: short, odd, padded, and long enough to skip tiles.
      {{1}, 4, 8, true, 0, 0, 0, true},
      {{5, 1, 17, 64, 65, 1}, 6, 16, true, 8, 0, 0, true},
      {{200, 77}, 8, 64, true, 8, 5, 0, true},
      {{37, 5}, 3, 6, false, 2, 1, 0, true},
      {{2500, 64, 900}, 8, 64, true, 0, 0, 64, true},
      // A relative-position table (MPNet) instead of ALiBi: one token, reaches shorter and longer
      // than the sequences, the tensor-core head_dim 64 with and without the folded bias, 8192.
      {{1}, 4, 8, false, 0, 0, 0, false, 4},
      {{5, 1, 17, 64, 65, 1}, 6, 16, false, 8, 0, 0, false, 128},
      {{37, 5}, 3, 6, false, 2, 1, 0, true, 1},
      {{200, 77}, 8, 64, false, 8, 5, 0, true, 128},
      {{2500, 64, 900}, 12, 64, false, 0, 0, 64, false, 256},
      {{8192}, 2, 32, false, 0, 0, 96, false, 128},
  };
  // head_dim 64 (the tensor-core kernel on CUDA) with short sequences only, as in batches of
  // queries: odd lengths, one token, partial key tiles, padded rows with an odd output stride,
  // many sequences; the mixed cases stay under 2048 tokens for racecheck.
  {
    std::vector<std::int32_t> mixed;
    for (int total = 0; total + 128 <= 2000;) {
      for (std::int32_t l : {65, 1, 128, 64, 17, 100}) {
        mixed.push_back(l);
        total += l;
      }
    }
    cases.push_back({{1}, 8, 64, true, 0, 0, 0});
    cases.push_back({{5, 1, 17, 64, 65, 1, 128, 127, 63}, 12, 64, true, 8, 3, 0, true});
    // Output rows 4-byte but not 16-byte aligned: the tensor-core kernel's paired stores, not its
    // 16-byte ones (odd strides above take the 16-bit stores).
    cases.push_back({{129, 7, 64}, 8, 64, true, 0, 2, 0, true});
    cases.push_back({mixed, 16, 64, true, 0, 0, 0, true});
    cases.push_back({mixed, 6, 64, false, 0, 0, 0});
    cases.push_back({std::vector<std::int32_t>(600, 128), 8, 64, true, 0, 0, 256, true});
    cases.push_back({{5, 1, 17, 64, 65, 1, 128, 127, 63}, 3, 64, false, 8, 3, 0, true, 128});
    cases.push_back({{129, 7, 64}, 3, 64, false, 0, 2, 0, true, 90});
    cases.push_back({mixed, 12, 64, false, 0, 0, 0, false, 128});
  }
  // More sequences than one CUDA grid y/z dimension would hold (65535).
  if (backend_->name().rfind("cuda", 0) == 0) {
    std::vector<std::int32_t> many(70000, 1);
    many[0] = 130;
    many[69998] = 65;
    cases.push_back({many, 8, 64, true, 0, 0, 64});
  }
  // Under compute-sanitizer (racecheck is ~1000x slower) EMBD_TEST_SHORT=1 keeps the cases of
  // at most 2048 tokens, which still reach every kernel path.
  const bool short_only = std::getenv("EMBD_TEST_SHORT") != nullptr;
  auto run_cases = [&](const std::string& variant) {
    for (const AttnCase& c : cases) {
      SCOPED_TRACE(variant + ": " + describe(c));
      std::vector<std::int32_t> cu{0};
      for (auto l : c.lengths) cu.push_back(cu.back() + l);
      if (short_only && cu.back() > 2048) continue;
      const std::int64_t tokens = cu.back(), hidden = std::int64_t{c.heads} * c.head_dim;
      const auto qkv = random(static_cast<std::size_t>(tokens * 3 * hidden), -2.0f, 2.0f);
      DevMat qd = make_mat(tokens, 3 * hidden, 3 * hidden + c.qkv_pad, qkv);
      DevMat od = make_mat(tokens, hidden, hidden + c.out_pad, {});
      const std::vector<float> slopes = ref::alibi_slopes(c.heads);
      auto slopes_d = upload_vec(slopes);
      auto cu_d = upload_vec(cu);
      backend::AttentionArgs a;
      a.qkv = qd.mat;
      a.out = od.mat;
      a.cu_seqlens = cu_d.as<std::int32_t>();
      a.cu_seqlens_host = cu.data();
      a.batch = static_cast<std::int64_t>(c.lengths.size());
      a.max_seqlen = *std::max_element(c.lengths.begin(), c.lengths.end());
      a.num_heads = c.heads;
      a.head_dim = c.head_dim;
      a.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
      a.alibi_slopes = c.alibi ? slopes_d.as<float>() : nullptr;
      std::vector<double> qkv_ref = to_double(qkv);
      const auto bias = random_as(static_cast<std::size_t>(3 * hidden), -1.0f, 1.0f, DType::kF32);
      auto bias_d = upload_vec(bias);
      if (c.qv_bias) {
        a.q_bias = bias_d.as<float>();
        a.v_bias = bias_d.as<float>() + 2 * hidden;
        for (std::size_t i = 0; i < qkv_ref.size(); ++i) qkv_ref[i] += bias[i % bias.size()];
      }
      ref::RelativeBias relative_ref;
      const auto relative = random_as(static_cast<std::size_t>(c.heads * (2 * c.relative_reach + 1)), -4.0f,
                                      4.0f, DType::kF32);
      auto relative_d = upload_vec(relative);
      if (c.relative_reach > 0) {
        a.relative_bias = relative_d.as<float>();
        a.relative_reach = c.relative_reach;
        relative_ref = {to_double(relative), c.relative_reach};
      }
      ASSERT_TRUE(backend_->attention(a).ok());
      const auto got = download(od.mat, "attention out");
      std::vector<std::int64_t> rows;
      if (c.sampled_rows > 0) {
        rows = {0, tokens - 1};
        for (int i = 0; i < c.sampled_rows; ++i) rows.push_back(static_cast<std::int64_t>(rng_() % tokens));
      }
      const std::vector<double> slopes_ref =
          c.alibi ? std::vector<double>(slopes.begin(), slopes.end()) : std::vector<double>{};
      const auto want = ref::attention(qkv_ref, cu, c.heads, c.head_dim, a.scale, slopes_ref, rows, relative_ref);
      if (rows.empty()) {
        EXPECT_LT(rel_l2(got, want), tolerance(dtype()));
      } else {
        std::vector<float> got_rows;
        std::vector<double> want_rows;
        for (auto r : rows) {
          for (std::int64_t i = 0; i < hidden; ++i) {
            got_rows.push_back(got[r * hidden + i]);
            want_rows.push_back(want[r * hidden + i]);
          }
        }
        EXPECT_LT(rel_l2(got_rows, want_rows), tolerance(dtype()));
      }
    }
  };
  run_cases(backend_->name());
#ifdef EMBD_HAVE_CUDA
  // On Hopper the default runs the tensor-core kernel's products with wgmma; the mma.sync kernel
  // (every other GPU's) must stay right there too.
  if (backend_->description().find("(sm_90,") != std::string::npos) {
    backend::cuda::CudaBackendOptions mma_sync;
    mma_sync.hopper_attention = false;
    auto other = make_cuda_backend(mma_sync);
    ASSERT_NE(other, nullptr);
    with_backend(other, [&] { run_cases("mma.sync attention"); });
  }
#endif
}

// ops::attention refuses a relative-position table next to ALiBi slopes, or of a reach outside
// 1..kMaxRelativeReach, naming the argument, before any kernel runs.
TEST_P(BackendOpTest, AttentionRejectsBadPositionBias) {
  EMBD_REQUIRE_OP(Op::kAttention);
  const std::vector<std::int32_t> cu{0, 3};
  DevMat qd = make_mat(3, 3 * 8, 3 * 8, random(3 * 3 * 8, -1.0f, 1.0f));
  DevMat od = make_mat(3, 8, 8, {});
  auto cu_d = upload_vec(cu);
  auto table_d = upload_vec(std::vector<float>(2 * (2 * backend::kMaxRelativeReach + 1), 0.5f));
  auto slopes_d = upload_vec(std::vector<float>{0.5f, 0.25f});
  backend::AttentionArgs a;
  a.qkv = qd.mat;
  a.out = od.mat;
  a.cu_seqlens = cu_d.as<std::int32_t>();
  a.cu_seqlens_host = cu.data();
  a.batch = 1;
  a.max_seqlen = 3;
  a.num_heads = 2;
  a.head_dim = 4;
  a.relative_bias = table_d.as<float>();
  for (int reach : {0, -1, backend::kMaxRelativeReach + 1}) {
    a.relative_reach = reach;
    const Status s = ops::attention(*backend_, a);
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << reach;
    EXPECT_NE(s.message().find("relative_reach " + std::to_string(reach)), std::string::npos) << s.to_string();
  }
  a.relative_reach = backend::kMaxRelativeReach;
  EXPECT_TRUE(ops::attention(*backend_, a).ok());
  a.alibi_slopes = slopes_d.as<float>();
  const Status both = ops::attention(*backend_, a);
  EXPECT_EQ(both.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(both.message().find("exclusive"), std::string::npos) << both.to_string();
}

// Peak resident memory now, in bytes. Resets the kernel's high-water mark first when allowed
// (Linux >= 4.0: "5" > /proc/self/clear_refs), so earlier tests do not hide growth.
bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  return static_cast<bool>(f.flush());
}

std::int64_t peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<std::int64_t>(u.ru_maxrss) * 1024;
}

std::int64_t current_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return -1;
}

TEST(CpuAttentionMemory, LongSequenceNeverMaterialisesScores) {
  const std::int64_t len = 8192;
  const int heads = 2, d = 32;
  const std::int64_t hidden = heads * d;
  auto b = backend::cpu::make_cpu_backend(0);
  std::vector<float> qkv(static_cast<std::size_t>(len * 3 * hidden));
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (auto& x : qkv) x = dist(rng);
  std::vector<float> out(static_cast<std::size_t>(len * hidden), 0.0f);
  const std::vector<std::int32_t> cu{0, static_cast<std::int32_t>(len)};
  const std::vector<float> slopes = reference::alibi_slopes(heads);
  backend::AttentionArgs a;
  a.qkv = Mat::of(qkv.data(), DType::kF32, len, 3 * hidden);
  a.out = Mat::of(out.data(), DType::kF32, len, hidden);
  a.cu_seqlens = cu.data();
  a.cu_seqlens_host = cu.data();
  a.batch = 1;
  a.max_seqlen = len;
  a.num_heads = heads;
  a.head_dim = d;
  a.scale = 0.25f;
  a.alibi_slopes = slopes.data();
  const bool reset = reset_peak_rss();
  const std::int64_t before = reset ? current_rss_bytes() : peak_rss_bytes();
  ASSERT_TRUE(b->attention(a).ok());
  const std::int64_t growth = peak_rss_bytes() - before;
  const std::int64_t one_score_matrix = len * len * 4;  // 256 MiB
  // Staged K/V are O(T * H) = 4 MiB here; one L x L F32 matrix would be 256 MiB.
  EXPECT_LT(growth, one_score_matrix / 16) << "peak RSS grew by " << growth << " bytes"
                                           << (reset ? "" : " (peak not resettable here)");
  for (float v : out) ASSERT_TRUE(std::isfinite(v));
}

TEST(ReferenceAlibi, SlopesMatchTheJinaBertTable) {
  const auto s8 = reference::alibi_slopes(8);
  ASSERT_EQ(s8.size(), 8u);
  for (int h = 0; h < 8; ++h) EXPECT_FLOAT_EQ(s8[h], std::pow(2.0f, -(h + 1.0f)));
  const auto s12 = reference::alibi_slopes(12);
  ASSERT_EQ(s12.size(), 12u);
  for (int h = 0; h < 8; ++h) EXPECT_FLOAT_EQ(s12[h], std::pow(2.0f, -(h + 1.0f)));
  const float tail[4] = {0.70710678f, 0.35355339f, 0.1767767f, 0.08838835f};
  for (int k = 0; k < 4; ++k) EXPECT_NEAR(s12[8 + k], tail[k], 1e-7f);
  const auto s6 = reference::alibi_slopes(6);  // P = 4: 2^-2, 2^-4, 2^-6, 2^-8, then 2^-1, 2^-3
  const float want6[6] = {0.25f, 0.0625f, 0.015625f, 0.00390625f, 0.5f, 0.125f};
  for (int h = 0; h < 6; ++h) EXPECT_FLOAT_EQ(s6[h], want6[h]);
  const auto s16 = reference::alibi_slopes(16);
  for (int h = 0; h < 16; ++h) EXPECT_FLOAT_EQ(s16[h], std::pow(2.0f, -0.5f * (h + 1)));
}

}  // namespace
}  // namespace embd::testing
