// Linear, LayerNorm, GLU, the gated projection, Linear + LayerNorm and pooling on every backend x dtype
// against the double reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/backend_test_util.h"
#include "ops/ops.h"
#include "reference/reference_ops.h"

namespace embd::testing {
namespace {

using backend::Activation;
using backend::Op;
namespace ref = embd::reference;

ref::Act to_ref(Activation a) {
  switch (a) {
    case Activation::kGeluErf: return ref::Act::kGeluErf;
    case Activation::kRelu: return ref::Act::kRelu;
    case Activation::kNone: break;
  }
  return ref::Act::kNone;
}

struct LinearCase {
  std::vector<std::int64_t> ms;  // row counts run with the same prepared weight
  std::int64_t k, n;
  Activation act;
  bool bias;
  std::int64_t x_pad, y_pad;  // extra row-stride elements
  DType stored;               // weight dtype as stored in the file
};

TEST_P(BackendOpTest, Linear) {
  EMBD_REQUIRE_OP(Op::kLinear);
  const std::vector<LinearCase> cases = {
      {{1, 2}, 8, 8, Activation::kNone, false, 0, 0, DType::kF32},
      {{3, 1, 7}, 17, 5, Activation::kGeluErf, true, 0, 0, DType::kF32},
      {{16, 33}, 512, 1536, Activation::kNone, true, 0, 0, DType::kF32},
      {{37, 128}, 64, 96, Activation::kGeluErf, true, 16, 5, DType::kF16},
      {{5}, 2048, 64, Activation::kRelu, true, 0, 3, DType::kBF16},
      {{129}, 100, 300, Activation::kRelu, false, 1, 0, DType::kF32},
      // Varying M, as batches come: CUDA shares one cuBLASLt plan per M bucket (1000, 1023 and
      // 1024 share one; 97 and 100 another) and must still write exactly M rows.
      {{1000, 97, 1023, 1024, 1100, 100, 1537, 777, 1000}, 64, 128, Activation::kNone, true, 0, 0, DType::kF32},
  };
  for (const LinearCase& c : cases) {
    SCOPED_TRACE("k=" + std::to_string(c.k) + " n=" + std::to_string(c.n));
    // Weight values as stored, then as the compute dtype sees them (rounded once more).
    const float wscale = 1.0f / std::sqrt(static_cast<float>(c.k));
    std::vector<float> w = random_as(static_cast<std::size_t>(c.n * c.k), -wscale, wscale, c.stored);
    std::vector<std::uint8_t> stored_bytes(w.size() * dtype_size(c.stored));
    convert(w.data(), DType::kF32, stored_bytes.data(), c.stored, w.size());
    const HostTensor wt{"w", c.stored, {c.n, c.k}, stored_bytes.data()};
    const std::vector<float> bias = random_as(static_cast<std::size_t>(c.n), -0.5f, 0.5f, DType::kF32);
    const HostTensor bt{"b", DType::kF32, {c.n}, bias.data()};
    auto prepared = backend_->prepare_linear(wt, c.bias ? &bt : nullptr, dtype());
    ASSERT_TRUE(prepared.ok()) << prepared.status().to_string();
    const std::vector<double> w_ref = to_double(round_to(w, dtype()));
    const std::vector<double> b_ref = c.bias ? to_double(bias) : std::vector<double>{};
    for (std::int64_t m : c.ms) {
      SCOPED_TRACE("m=" + std::to_string(m));
      const std::vector<float> x = random(static_cast<std::size_t>(m * c.k), -1.0f, 1.0f);
      DevMat xd = make_mat(m, c.k, c.k + c.x_pad, x);
      DevMat yd = make_mat(m, c.n, c.n + c.y_pad, {});
      backend::LinearArgs args{prepared.value().get(), xd.mat, yd.mat, c.act};
      ASSERT_TRUE(backend_->linear(args).ok());
      const auto got = download(yd.mat, "linear y");
      const auto want = ref::linear(to_double(x), w_ref, b_ref, m, c.k, c.n, to_ref(c.act));
      EXPECT_LT(rel_l2(got, want), tolerance(dtype()));
      if (c.bias && c.act == Activation::kNone && backend_->defers_linear_bias(*prepared.value())) {
        // The bias left for the next LayerNorm (AddLayerNorm covers adding it there).
        args.skip_bias = true;
        ASSERT_TRUE(backend_->linear(args).ok());
        const auto unbiased = ref::linear(to_double(x), w_ref, {}, m, c.k, c.n, ref::Act::kNone);
        EXPECT_LT(rel_l2(download(yd.mat, "linear y"), unbiased), tolerance(dtype()));
        args.skip_bias = false;
      }
    }
  }
}

TEST_P(BackendOpTest, LinearRejectsBadShapes) {
  EMBD_REQUIRE_OP(Op::kLinear);
  const std::vector<float> w(12, 0.5f);
  const HostTensor w3{"layer.0.w", DType::kF32, {2, 3, 2}, w.data()};
  auto r = backend_->prepare_linear(w3, nullptr, dtype());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("layer.0.w"), std::string::npos) << r.status().to_string();
  const HostTensor w2{"w", DType::kF32, {4, 3}, w.data()};
  const HostTensor b{"layer.0.b", DType::kF32, {3}, w.data()};
  auto rb = backend_->prepare_linear(w2, &b, dtype());
  ASSERT_FALSE(rb.ok());
  EXPECT_NE(rb.status().message().find("layer.0.b"), std::string::npos);
}

TEST_P(BackendOpTest, EmbedLayerNorm) {
  EMBD_REQUIRE_OP(Op::kEmbedLayerNorm);
  struct Case {
    std::int64_t tokens, h;
    bool type_table, type_ids, positions;
    float eps;
    std::int64_t out_pad;  // out row stride = h + out_pad (see AddLayerNorm)
  };
  const std::vector<Case> cases = {{1, 8, true, true, false, 1e-12f, 3},
                                   {19, 48, true, false, false, 1e-12f, 3},
                                   {300, 512, true, true, true, 1e-5f, 3},
                                   {7, 33, false, false, true, 1e-12f, 3},
                                   {300, 512, true, true, true, 1e-5f, 0},
                                   {41, 384, false, false, true, 1e-12f, 4},
                                   {5, 1024, true, false, false, 1e-12f, 0}};
  const std::int64_t vocab = 40, types = 2, max_pos = 300;
  for (const Case& c : cases) {
    SCOPED_TRACE("tokens=" + std::to_string(c.tokens) + " h=" + std::to_string(c.h));
    std::vector<std::int32_t> ids, tids, pos;
    for (std::int64_t t = 0; t < c.tokens; ++t) {
      ids.push_back(static_cast<std::int32_t>(rng_() % vocab));
      if (c.type_ids) tids.push_back(static_cast<std::int32_t>(rng_() % types));
      if (c.positions) pos.push_back(static_cast<std::int32_t>(t % max_pos));
    }
    const auto word = random(static_cast<std::size_t>(vocab * c.h), -1.0f, 1.0f);
    const auto type = c.type_table ? random(static_cast<std::size_t>(types * c.h), -0.5f, 0.5f)
                                   : std::vector<float>{};
    const auto ptab = c.positions ? random(static_cast<std::size_t>(max_pos * c.h), -0.5f, 0.5f)
                                  : std::vector<float>{};
    const auto gamma = random_as(static_cast<std::size_t>(c.h), 0.5f, 1.5f, DType::kF32);
    const auto beta = random_as(static_cast<std::size_t>(c.h), -0.5f, 0.5f, DType::kF32);
    DevMat wd = make_mat(vocab, c.h, c.h, word);
    DevMat td = c.type_table ? make_mat(types, c.h, c.h, type) : DevMat{};
    DevMat pd = c.positions ? make_mat(max_pos, c.h, c.h, ptab) : DevMat{};
    auto ids_d = upload_vec(ids), tids_d = upload_vec(tids), pos_d = upload_vec(pos);
    auto g_d = upload_vec(gamma), b_d = upload_vec(beta);
    DevMat out = make_mat(c.tokens, c.h, c.h + c.out_pad, {});
    backend::EmbedLayerNormArgs a;
    a.ids = ids_d.as<std::int32_t>();
    a.type_ids = c.type_ids ? tids_d.as<std::int32_t>() : nullptr;
    a.positions = c.positions ? pos_d.as<std::int32_t>() : nullptr;
    a.tokens = c.tokens;
    a.word_table = wd.mat;
    a.type_table = td.mat;
    a.position_table = pd.mat;
    a.gamma = g_d.as<float>();
    a.beta = b_d.as<float>();
    a.eps = c.eps;
    a.out = out.mat;
    ASSERT_TRUE(backend_->embed_layernorm(a).ok());
    const auto got = download(out.mat, "embed_layernorm out");
    const auto want = ref::embed_layernorm(ids, tids, pos, to_double(word), to_double(type),
                                           to_double(ptab), c.h, to_double(gamma),
                                           to_double(beta), c.eps);
    EXPECT_LT(rel_l2(got, want), tolerance(dtype()));
  }
}

enum class Alias { kNone, kX, kResidual };

TEST_P(BackendOpTest, AddLayerNorm) {
  EMBD_REQUIRE_OP(Op::kAddLayerNorm);
  struct Case {
    std::int64_t rows, h;
    bool residual;
    Alias alias;
    std::int64_t pad;  // row stride = h + pad (CUDA: widths 128k <= 1024 with strides 4k take
                       // the warp-per-row kernel, the rest the block-per-row one)
    bool bias = false;  // a Linear's deferred F32 bias, added to x
  };
  const std::vector<Case> cases = {{1, 8, true, Alias::kNone, 2},       {13, 512, true, Alias::kX, 2},
                                   {64, 48, true, Alias::kResidual, 2}, {5, 31, false, Alias::kNone, 2},
                                   {300, 64, false, Alias::kX, 2},      {257, 512, true, Alias::kNone, 0},
                                   {33, 384, true, Alias::kX, 4},       {9, 1024, true, Alias::kResidual, 0},
                                   {70, 768, false, Alias::kNone, 4},   {3, 1152, true, Alias::kNone, 0},
                                   {41, 512, true, Alias::kX, 0, true}, {7, 48, true, Alias::kNone, 2, true},
                                   {5, 384, false, Alias::kNone, 4, true}};
  for (const Case& c : cases) {
    SCOPED_TRACE("rows=" + std::to_string(c.rows) + " h=" + std::to_string(c.h));
    const auto x = random(static_cast<std::size_t>(c.rows * c.h), -2.0f, 2.0f);
    const auto r = c.residual ? random(x.size(), -2.0f, 2.0f) : std::vector<float>{};
    const auto gamma = random_as(static_cast<std::size_t>(c.h), 0.5f, 1.5f, DType::kF32);
    const auto beta = random_as(static_cast<std::size_t>(c.h), -0.5f, 0.5f, DType::kF32);
    DevMat xd = make_mat(c.rows, c.h, c.h + c.pad, x);
    DevMat rd = c.residual ? make_mat(c.rows, c.h, c.h + c.pad, r) : DevMat{};
    DevMat od = c.alias == Alias::kNone ? make_mat(c.rows, c.h, c.h + (c.pad == 0 ? 0 : 1), {}) : DevMat{};
    auto g_d = upload_vec(gamma), b_d = upload_vec(beta);
    const auto bias = c.bias ? random(static_cast<std::size_t>(c.h), -1.0f, 1.0f) : std::vector<float>{};
    auto bias_d = upload_vec(bias);
    const Mat out = c.alias == Alias::kX ? xd.mat : c.alias == Alias::kResidual ? rd.mat : od.mat;
    backend::AddLayerNormArgs a{xd.mat, rd.mat, c.bias ? bias_d.as<float>() : nullptr, g_d.as<float>(),
                                b_d.as<float>(), 1e-12f, out};
    ASSERT_TRUE(backend_->add_layernorm(a).ok());
    const auto got = download(out, "add_layernorm out");
    // The reference adds the bias to x in double; x itself is what the device holds (rounded).
    std::vector<double> x_ref = to_double(round_to(x, dtype()));
    for (std::size_t i = 0; c.bias && i < x_ref.size(); ++i) x_ref[i] += bias[i % static_cast<std::size_t>(c.h)];
    const auto want = ref::add_layernorm(x_ref, to_double(r), c.rows, c.h,
                                         to_double(gamma), to_double(beta), 1e-12);
    EXPECT_LT(rel_l2(got, want), tolerance(dtype()));
  }
}

// The q/k-norm variant normalises the Q (or K) column slice of a packed qkv matrix in place.
TEST_P(BackendOpTest, AddLayerNormOnColumnSliceInPlace) {
  EMBD_REQUIRE_OP(Op::kAddLayerNorm);
  const std::int64_t rows = 21, h = 40;
  const auto qkv = random(static_cast<std::size_t>(rows * 3 * h), -2.0f, 2.0f);
  const auto gamma = random_as(static_cast<std::size_t>(h), 0.5f, 1.5f, DType::kF32);
  const auto beta = random_as(static_cast<std::size_t>(h), -0.5f, 0.5f, DType::kF32);
  DevMat qd = make_mat(rows, 3 * h, 3 * h, qkv);
  auto g_d = upload_vec(gamma), b_d = upload_vec(beta);
  const Mat k_cols = qd.mat.columns(h, h);
  backend::AddLayerNormArgs a{k_cols, Mat{}, nullptr, g_d.as<float>(), b_d.as<float>(), 1e-12f, k_cols};
  ASSERT_TRUE(backend_->add_layernorm(a).ok());
  const auto got = download(qd.mat, "qkv");
  std::vector<double> k_in(static_cast<std::size_t>(rows * h));
  for (std::int64_t t = 0; t < rows; ++t)
    for (std::int64_t i = 0; i < h; ++i) k_in[t * h + i] = qkv[t * 3 * h + h + i];
  const auto k_want = ref::add_layernorm(k_in, {}, rows, h, to_double(gamma), to_double(beta), 1e-12);
  std::vector<double> want = to_double(qkv);
  for (std::int64_t t = 0; t < rows; ++t)
    for (std::int64_t i = 0; i < h; ++i) want[t * 3 * h + h + i] = k_want[t * h + i];
  EXPECT_LT(rel_l2(got, want), tolerance(dtype()));
  // Q and V columns must be bit-identical to the input.
  for (std::int64_t t = 0; t < rows; ++t) {
    for (std::int64_t i = 0; i < h; ++i) {
      ASSERT_EQ(got[t * 3 * h + i], qkv[t * 3 * h + i]);
      ASSERT_EQ(got[t * 3 * h + 2 * h + i], qkv[t * 3 * h + 2 * h + i]);
    }
  }
}

TEST_P(BackendOpTest, Glu) {
  EMBD_REQUIRE_OP(Op::kGlu);
  struct Case {
    std::int64_t rows, inter;
    bool first;
    Activation act;
  };
  const std::vector<Case> cases = {{1, 8, true, Activation::kGeluErf},
                                   {9, 33, false, Activation::kGeluErf},
                                   {64, 2048, true, Activation::kGeluErf},
                                   {5, 100, true, Activation::kRelu},
                                   {17, 24, false, Activation::kRelu}};
  for (const Case& c : cases) {
    SCOPED_TRACE("rows=" + std::to_string(c.rows) + " inter=" + std::to_string(c.inter));
    const auto in = random(static_cast<std::size_t>(c.rows * 2 * c.inter), -3.0f, 3.0f);
    DevMat id = make_mat(c.rows, 2 * c.inter, 2 * c.inter + 4, in);
    DevMat od = make_mat(c.rows, c.inter, c.inter + 1, {});
    backend::GluArgs a{id.mat, od.mat, c.first, c.act};
    ASSERT_TRUE(backend_->glu(a).ok());
    const auto got = download(od.mat, "glu out");
    const auto want = ref::glu(to_double(in), c.rows, c.inter, c.first, to_ref(c.act));
    EXPECT_LT(rel_l2(got, want), tolerance(dtype()));
  }
}

// A gated MLP's input projection and GLU through ops::gated_linear: one fused kernel where the
// backend has it (CUDA on Hopper, F16/BF16, K % 64 == 0, I % 128 == 0), else linear + glu.
TEST_P(BackendOpTest, GatedLinear) {
  EMBD_REQUIRE_OP(Op::kLinear);
  EMBD_REQUIRE_OP(Op::kGlu);
  struct Case {
    std::vector<std::int64_t> ms;  // row counts run with the same prepared weight
    std::int64_t k, inner;
    bool first;
    Activation act;
    std::int64_t x_pad, out_pad;
    DType stored;
    bool fusable;  // by the Hopper kernel
  };
  const std::vector<Case> cases = {
      // jina-embeddings-v2-small-en's shape: partial, single and multi-tile row counts.
      {{1, 7, 128, 129, 520}, 512, 2048, true, Activation::kGeluErf, 0, 0, DType::kF32, true},
      {{8192}, 64, 128, true, Activation::kGeluErf, 0, 0, DType::kF16, true},
      // Several tiles per block on Hopper (the stage ring wraps inside and across tiles), and a
      // last 64-row tile whose cluster partner lies wholly past the rows.
      {{2100}, 128, 1024, true, Activation::kGeluErf, 0, 0, DType::kF16, true},
      {{3, 300}, 768, 384, false, Activation::kRelu, 8, 2, DType::kBF16, true},
      {{5, 64}, 64, 256, false, Activation::kGeluErf, 0, 6, DType::kF32, true},
      {{9}, 100, 33, true, Activation::kGeluErf, 1, 1, DType::kF32, false},
  };
  const bool hopper = backend_->name().rfind("cuda", 0) == 0 &&
                      backend_->description().find("(sm_90,") != std::string::npos;
  for (const Case& c : cases) {
    SCOPED_TRACE("k=" + std::to_string(c.k) + " inner=" + std::to_string(c.inner));
    const float wscale = 1.0f / std::sqrt(static_cast<float>(c.k));
    const std::int64_t n = 2 * c.inner;
    std::vector<float> w = random_as(static_cast<std::size_t>(n * c.k), -wscale, wscale, c.stored);
    std::vector<std::uint8_t> stored_bytes(w.size() * dtype_size(c.stored));
    convert(w.data(), DType::kF32, stored_bytes.data(), c.stored, w.size());
    const HostTensor wt{"mlp.gated_layers.weight", c.stored, {n, c.k}, stored_bytes.data()};
    auto prepared = backend_->prepare_gated_linear(wt, c.first, dtype());
    ASSERT_TRUE(prepared.ok()) << prepared.status().to_string();
    const backend::LinearWeight& pw = *prepared.value();
    EXPECT_EQ(pw.activates_first_half, c.first);
    EXPECT_EQ(backend_->fuses_gated_linear(pw, c.act), hopper && c.fusable && dtype() != DType::kF32)
        << backend_->description();
    const std::vector<double> w_ref = to_double(round_to(w, dtype()));
    for (std::int64_t m : c.ms) {
      SCOPED_TRACE("m=" + std::to_string(m));
      const std::vector<float> x = random(static_cast<std::size_t>(m * c.k), -1.0f, 1.0f);
      DevMat xd = make_mat(m, c.k, c.k + c.x_pad, x);
      DevMat scratch = make_mat(m, n, n, {});
      const auto proj = ref::linear(to_double(x), w_ref, {}, m, c.k, n, ref::Act::kNone);
      const auto want = ref::glu(proj, m, c.inner, c.first, to_ref(c.act));
      // With scratch the backend may pick two passes for short batches; without, it must fuse.
      for (const bool with_scratch : {true, false}) {
        if (!with_scratch && !backend_->fuses_gated_linear(pw, c.act)) continue;
        SCOPED_TRACE(with_scratch ? "with scratch" : "fused only");
        DevMat od = make_mat(m, c.inner, c.inner + c.out_pad, {});
        const Status st = ops::gated_linear(*backend_, {&pw, xd.mat, od.mat, c.act, with_scratch ? scratch.mat : Mat{}});
        ASSERT_TRUE(st.ok()) << st.to_string();
        EXPECT_LT(rel_l2(download(od.mat, "gated_linear out"), want), tolerance(dtype()));
      }
    }
  }
}

TEST_P(BackendOpTest, GatedLinearRejectsBadArguments) {
  EMBD_REQUIRE_OP(Op::kLinear);
  const std::vector<float> w(3 * 64, 0.25f);
  const HostTensor odd{"w", DType::kF32, {3, 64}, w.data()};
  auto prepared = backend_->prepare_linear(odd, nullptr, dtype());
  ASSERT_TRUE(prepared.ok());
  DevMat x = make_mat(2, 64, 64, random(128, -1.0f, 1.0f));
  DevMat out = make_mat(2, 1, 1, {});
  const Status st = ops::gated_linear(*backend_, {prepared.value().get(), x.mat, out.mat, Activation::kGeluErf, {}});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("even row count"), std::string::npos) << st.to_string();
}

// A Linear layer and the residual LayerNorm after it through ops::linear_layernorm: one kernel
// where the backend fuses it (CUDA on Hopper: F16/BF16, 512 outputs, K % 64 == 0, rows TMA can
// address; by default only K <= 512 and batches of at least 1024 rows when there is scratch), else
// linear() into the scratch and add_layernorm(). On CUDA every case also runs on a backend that
// fuses at every K and batch size and on one with the fused kernel turned off.
TEST_P(BackendOpTest, LinearLayerNorm) {
  EMBD_REQUIRE_OP(Op::kLinear);
  EMBD_REQUIRE_OP(Op::kAddLayerNorm);
  struct Case {
    std::vector<std::int64_t> ms;  // row counts run with the same weights
    std::int64_t k, n;
    bool bias, residual;
    bool out_is_residual;  // out aliases the residual, as the models call it
    float eps;
    std::int64_t x_pad, residual_pad, out_pad;  // extra row-stride elements
    DType stored;
    bool fusable;  // by the Hopper kernel, where the strides let it
  };
  const std::vector<Case> cases = {
      // jina-embeddings-v2-small-en's attention output projection as the model calls it: partial,
      // whole and several 64-row tiles, and 2100 rows.
      {{1, 63, 64, 65, 127, 2100}, 512, 512, true, true, true, 1e-12f, 0, 0, 0, DType::kF16, true},
      // Its MLP down projection: 32 k-blocks per tile, the stage ring wrapping within each tile.
      {{129, 300}, 2048, 512, true, true, true, 1e-12f, 0, 0, 0, DType::kF16, true},
      // 3 k-blocks, not a multiple of the stages; at 9000 rows more tiles than clusters, so both
      // consumer warpgroups take tiles. A separate output (the residual must stay as it was).
      {{4099, 9000}, 192, 512, true, true, false, 1e-5f, 0, 0, 0, DType::kBF16, true},
      // One k-block per tile and several tiles per cluster: the ring wraps across tiles.
      {{16384}, 64, 512, false, true, true, 1e-12f, 0, 0, 0, DType::kF16, true},
      // No residual (bias only), and neither.
      {{1, 65, 300}, 512, 512, true, false, false, 1e-5f, 0, 0, 0, DType::kF32, true},
      {{70}, 128, 512, false, false, false, 1e-12f, 0, 0, 0, DType::kF16, true},
      // Padded rows, strides still multiples of 16 bytes: the padding must stay unwritten.
      {{7, 300}, 512, 512, true, true, false, 1e-12f, 8, 16, 8, DType::kF16, true},
      // An output row stride of 515 elements, which TMA cannot address: unfused (scratch given).
      {{65, 2100}, 512, 512, true, true, false, 1e-12f, 0, 0, 3, DType::kF16, true},
      // Shapes only the unfused path takes: other widths, K not a multiple of 64.
      {{1, 64, 129, 2100}, 512, 384, true, true, true, 1e-12f, 0, 0, 0, DType::kF16, false},
      {{33}, 64, 768, true, true, false, 1e-5f, 0, 2, 4, DType::kBF16, false},
      {{17}, 100, 512, true, true, true, 1e-12f, 0, 0, 0, DType::kF32, false},
  };
  const bool cuda = backend_->name().rfind("cuda", 0) == 0;
  const bool hopper = cuda && backend_->description().find("(sm_90,") != std::string::npos;
  struct Variant {
    const char* name;
    std::unique_ptr<backend::Backend> be;  // null: this instance's backend_
    bool may_fuse;
    std::int64_t max_k;  // the largest K it fuses
  };
  std::vector<Variant> variants;
  constexpr std::int64_t every_k_max = 1 << 20;
  variants.push_back({"default options", nullptr, true, 512});
#ifdef EMBD_HAVE_CUDA
  if (cuda) {
    backend::cuda::CudaBackendOptions every_k;
    every_k.linear_layernorm_max_k = every_k_max;
    every_k.linear_layernorm_fused_min_rows = 0;
    variants.push_back({"fused at every K and size", make_cuda_backend(every_k), true, every_k.linear_layernorm_max_k});
    backend::cuda::CudaBackendOptions off;
    off.fused_linear_layernorm = false;
    variants.push_back({"fused_linear_layernorm off", make_cuda_backend(off), false, 0});
    ASSERT_TRUE(variants[1].be && variants[2].be);
  }
#endif
  // Under compute-sanitizer EMBD_TEST_SHORT=1 keeps the batches of at most 2048 rows (every path
  // but the second consumer warpgroup of the Hopper kernel, which needs more tiles than clusters).
  const bool short_only = std::getenv("EMBD_TEST_SHORT") != nullptr;
  // EMBD_TEST_FUSED_ONLY=1 runs only what the fused kernel computes: racecheck then checks it and
  // not cuBLAS's kernels (the unfused path), which it flags.
  const bool fused_only = std::getenv("EMBD_TEST_FUSED_ONLY") != nullptr;
  // Residual-stream values ~ N(0.5, 1) and a bias of mean 0.25: the LayerNorm's input has a mean
  // of its own, so a wrong mean or variance shows.
  auto normal = [&](std::size_t count) {
    std::normal_distribution<float> dist(0.5f, 1.0f);
    std::vector<float> v(count);
    for (auto& e : v) e = dist(rng_);
    return round_to(v, dtype());
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("k=" + std::to_string(c.k) + " n=" + std::to_string(c.n) + (c.bias ? " bias" : "") +
                 (c.residual ? (c.out_is_residual ? " residual=out" : " residual") : ""));
    const float wscale = 1.0f / std::sqrt(static_cast<float>(c.k));
    const std::vector<float> w = random_as(static_cast<std::size_t>(c.n * c.k), -wscale, wscale, c.stored);
    std::vector<std::uint8_t> stored_bytes(w.size() * dtype_size(c.stored));
    convert(w.data(), DType::kF32, stored_bytes.data(), c.stored, w.size());
    const HostTensor wt{"attention.output.dense.weight", c.stored, {c.n, c.k}, stored_bytes.data()};
    const std::vector<float> bias = random_as(static_cast<std::size_t>(c.n), -0.5f, 1.0f, DType::kF32);
    const HostTensor bt{"attention.output.dense.bias", DType::kF32, {c.n}, bias.data()};
    const auto gamma = random_as(static_cast<std::size_t>(c.n), 0.5f, 1.5f, DType::kF32);
    const auto beta = random_as(static_cast<std::size_t>(c.n), -0.5f, 0.5f, DType::kF32);
    const std::vector<double> w_ref = to_double(round_to(w, dtype()));
    const std::vector<double> b_ref = c.bias ? to_double(bias) : std::vector<double>{};
    // Whether the Hopper kernel can address x, residual and out (16-byte row strides at 16 bits).
    const auto tma_stride = [](std::int64_t ld) { return ld * 2 % 16 == 0; };
    const std::int64_t out_ld = c.n + (c.out_is_residual ? c.residual_pad : c.out_pad);
    const bool aligned =
        tma_stride(c.k + c.x_pad) && tma_stride(out_ld) && (!c.residual || tma_stride(c.n + c.residual_pad));
    for (const std::int64_t m : c.ms) {
      if (short_only && m > 2048) continue;
      SCOPED_TRACE("m=" + std::to_string(m));
      const std::vector<float> x = random(static_cast<std::size_t>(m * c.k), -1.0f, 1.0f);
      const std::vector<float> residual = c.residual ? normal(static_cast<std::size_t>(m * c.n)) : std::vector<float>{};
      const auto proj = ref::linear(to_double(x), w_ref, b_ref, m, c.k, c.n, ref::Act::kNone);
      const auto want = ref::add_layernorm(proj, to_double(residual), m, c.n, to_double(gamma), to_double(beta), c.eps);
      for (Variant& v : variants) {
        // The default options run short batches unfused even where they fuse.
        if (fused_only && v.max_k != every_k_max) continue;
        SCOPED_TRACE(v.name);
        const auto body = [&] {
          auto prepared = backend_->prepare_linear(wt, c.bias ? &bt : nullptr, dtype());
          ASSERT_TRUE(prepared.ok()) << prepared.status().to_string();
          const backend::LinearWeight& pw = *prepared.value();
          const bool fuses = backend_->fuses_linear_layernorm(pw);
          EXPECT_EQ(fuses, hopper && v.may_fuse && c.fusable && c.k <= v.max_k && dtype() != DType::kF32)
              << backend_->description();
          auto g_d = upload_vec(gamma), b_d = upload_vec(beta);
          DevMat xd = make_mat(m, c.k, c.k + c.x_pad, x);
          // With scratch the backend may take two passes (short batches, rows the kernel cannot
          // address); without, it must fuse.
          for (const bool with_scratch : {true, false}) {
            if ((!with_scratch || fused_only) && !(fuses && aligned)) continue;
            SCOPED_TRACE(with_scratch ? "with scratch" : "no scratch");
            DevMat rd = c.residual ? make_mat(m, c.n, c.n + c.residual_pad, residual) : DevMat{};
            DevMat od = c.out_is_residual ? DevMat{} : make_mat(m, c.n, c.n + c.out_pad, {});
            DevMat scratch = with_scratch ? make_mat(m, c.n, c.n, {}) : DevMat{};
            backend::LinearLayerNormArgs a;
            a.weight = &pw;
            a.x = xd.mat;
            a.residual = rd.mat;
            a.gamma = g_d.as<float>();
            a.beta = b_d.as<float>();
            a.eps = c.eps;
            a.out = c.out_is_residual ? rd.mat : od.mat;
            a.scratch = scratch.mat;
            const Status st = ops::linear_layernorm(*backend_, a);
            ASSERT_TRUE(st.ok()) << st.to_string();
            EXPECT_LT(rel_l2(download(a.out, "linear_layernorm out"), want), tolerance(dtype()));
            if (c.residual && !c.out_is_residual) {
              EXPECT_TRUE(download(rd.mat, "linear_layernorm residual") == residual) << "the residual was written";
            }
          }
        };
        if (v.be) {
          with_backend(v.be, body);
        } else {
          body();
        }
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST_P(BackendOpTest, LinearLayerNormRejectsBadArguments) {
  EMBD_REQUIRE_OP(Op::kLinear);
  EMBD_REQUIRE_OP(Op::kAddLayerNorm);
  const std::int64_t rows = 4, h = 512;  // [512, 512]: the Hopper kernel's shape
  const std::vector<float> w = random_as(static_cast<std::size_t>(h * h), -0.05f, 0.05f, DType::kF32);
  const HostTensor wt{"w", DType::kF32, {h, h}, w.data()};
  auto prepared = backend_->prepare_linear(wt, nullptr, dtype());
  ASSERT_TRUE(prepared.ok()) << prepared.status().to_string();
  const backend::LinearWeight& pw = *prepared.value();
  const std::vector<float> gamma(static_cast<std::size_t>(h), 1.0f), beta(static_cast<std::size_t>(h), 0.0f);
  auto g_d = upload_vec(gamma), b_d = upload_vec(beta);
  DevMat x = make_mat(rows, h, h, random(static_cast<std::size_t>(rows * h), -1.0f, 1.0f));
  DevMat res = make_mat(rows, h, h, random(static_cast<std::size_t>(rows * h), -1.0f, 1.0f));
  DevMat out = make_mat(rows, h, h, {});
  DevMat scratch = make_mat(rows, h, h, {});
  backend::LinearLayerNormArgs good;
  good.weight = &pw;
  good.x = x.mat;
  good.residual = res.mat;
  good.gamma = g_d.as<float>();
  good.beta = b_d.as<float>();
  good.out = out.mat;
  good.scratch = scratch.mat;
  const Status first = ops::linear_layernorm(*backend_, good);
  ASSERT_TRUE(first.ok()) << first.to_string();

  const DType other = dtype() == DType::kF32 ? DType::kF16 : DType::kF32;
  struct Bad {
    const char* what;
    backend::LinearLayerNormArgs args;
    const char* message;  // part of the error's text
  };
  std::vector<Bad> bad;
  const auto with = [&](const char* what, const char* message, auto change) {
    backend::LinearLayerNormArgs a = good;
    change(a);
    bad.push_back({what, a, message});
  };
  with("no weight", "no weight", [](auto& a) { a.weight = nullptr; });
  with("input of other width", "input is [4, 448]", [&](auto& a) { a.x = x.mat.columns(0, h - 64); });
  with("input of other dtype", "input is", [&](auto& a) { a.x.dtype = other; });
  with("output of other width", "output is [4, 384]", [&](auto& a) { a.out = out.mat.columns(0, 384); });
  with("output of other rows", "output is [3, 512]", [&](auto& a) { a.out = out.mat.row_range(0, 3); });
  with("residual of other rows", "residual is [3, 512]", [&](auto& a) { a.residual = res.mat.row_range(0, 3); });
  with("scratch of other width", "scratch is [4, 256]", [&](auto& a) { a.scratch = scratch.mat.columns(0, 256); });
  with("output aliases x", "aliases the input", [&](auto& a) { a.out = x.mat; });
  with("residual aliases x", "aliases the input", [&](auto& a) { a.residual = x.mat; });
  with("scratch aliases x", "aliases the input", [&](auto& a) { a.scratch = x.mat; });
  with("scratch aliases out", "scratch aliases", [&](auto& a) { a.scratch = out.mat; });
  with("scratch aliases residual", "scratch aliases", [&](auto& a) { a.scratch = res.mat; });
  with("no gamma", "missing LayerNorm parameters", [](auto& a) { a.gamma = nullptr; });
  with("no beta", "missing LayerNorm parameters", [](auto& a) { a.beta = nullptr; });
  if (!backend_->fuses_linear_layernorm(pw)) {
    with("no scratch", "scratch room", [](auto& a) { a.scratch = Mat{}; });
  }
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.what);
    const Status st = ops::linear_layernorm(*backend_, b.args);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << st.to_string();
    EXPECT_NE(st.message().find(b.message), std::string::npos) << st.to_string();
  }

  // A weight no backend fuses (64 outputs) needs scratch everywhere.
  const HostTensor narrow{"w", DType::kF32, {64, h}, w.data()};
  auto narrow_w = backend_->prepare_linear(narrow, nullptr, dtype());
  ASSERT_TRUE(narrow_w.ok()) << narrow_w.status().to_string();
  EXPECT_FALSE(backend_->fuses_linear_layernorm(*narrow_w.value()));
  DevMat out64 = make_mat(rows, 64, 64, {});
  backend::LinearLayerNormArgs a = good;
  a.weight = narrow_w.value().get();
  a.residual = Mat{};
  a.out = out64.mat;
  a.scratch = Mat{};
  const Status no_scratch = ops::linear_layernorm(*backend_, a);
  ASSERT_FALSE(no_scratch.ok());
  EXPECT_NE(no_scratch.message().find("scratch room"), std::string::npos) << no_scratch.to_string();

  if (backend_->fuses_linear_layernorm(pw)) {
    // Without scratch, rows the fused kernel cannot address are an error, not a crash.
    DevMat odd = make_mat(rows, h, h + 3, {});
    a = good;
    a.out = odd.mat;
    a.scratch = Mat{};
    const Status st = ops::linear_layernorm(*backend_, a);
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("scratch"), std::string::npos) << st.to_string();
  }

  // No rows: nothing to do, whatever the pointers.
  a = good;
  a.x = x.mat.row_range(0, 0);
  a.residual = res.mat.row_range(0, 0);
  a.out = out.mat.row_range(0, 0);
  a.scratch = scratch.mat.row_range(0, 0);
  const Status empty = ops::linear_layernorm(*backend_, a);
  EXPECT_TRUE(empty.ok()) << empty.to_string();
}

TEST_P(BackendOpTest, Pool) {
  EMBD_REQUIRE_OP(Op::kPool);
  const std::vector<std::vector<std::int32_t>> batches = {{1}, {3, 1, 7}, {1, 1, 1}, {100, 1, 50}};
  for (const auto& lens : batches) {
    for (const std::int64_t h : {8, 40}) {
      for (const bool mean : {true, false}) {
        SCOPED_TRACE("batch=" + std::to_string(lens.size()) + " h=" + std::to_string(h) +
                     (mean ? " mean" : " cls"));
        std::vector<std::int32_t> cu{0};
        for (auto l : lens) cu.push_back(cu.back() + l);
        const std::int64_t tokens = cu.back(), batch = static_cast<std::int64_t>(lens.size());
        const auto hidden = random(static_cast<std::size_t>(tokens * h), -4.0f, 4.0f);
        DevMat hd = make_mat(tokens, h, h + 3, hidden);
        auto cu_d = upload_vec(cu);
        DevMat od = make_mat(batch, h, h, {}, DType::kF32);
        backend::PoolArgs a{hd.mat, cu_d.as<std::int32_t>(), cu.data(), batch,
                            mean ? backend::PoolMode::kMean : backend::PoolMode::kCls,
                            od.mat.data ? static_cast<float*>(od.mat.data) : nullptr};
        ASSERT_TRUE(backend_->pool(a).ok());
        const auto got = download(od.mat, "pool out");
        const auto want = ref::pool(to_double(hidden), cu, h, mean);
        // Pooling runs in F32 whatever the dtype; the inputs were rounded already.
        EXPECT_LT(rel_l2(got, want), tolerance(DType::kF32));
      }
    }
  }
}

}  // namespace
}  // namespace embd::testing
