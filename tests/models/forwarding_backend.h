// A Backend that forwards everything to another one, for test doubles that change one behaviour
// (refuse large allocations, record work) and keep the real kernels.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "backends/backend.h"

namespace embd::testing {

class ForwardingBackend : public backend::Backend {
 public:
  explicit ForwardingBackend(std::unique_ptr<backend::Backend> inner) : inner_(std::move(inner)) {}
  std::string name() const override { return "test-" + inner_->name(); }
  std::string description() const override { return inner_->description(); }
  bool supports(backend::Op op, DType t) const override { return inner_->supports(op, t); }
  DType preferred_dtype(DType t) const override { return inner_->preferred_dtype(t); }
  Result<backend::DeviceMemory> allocate(std::size_t bytes) override { return inner_->allocate(bytes); }
  Status upload(void* d, const void* s, std::size_t n) override { return inner_->upload(d, s, n); }
  Status download(void* d, const void* s, std::size_t n) override { return inner_->download(d, s, n); }
  Status synchronize() override { return inner_->synchronize(); }
  Result<std::unique_ptr<backend::LinearWeight>> prepare_linear(const HostTensor& w, const HostTensor* b,
                                                                DType t) override {
    return inner_->prepare_linear(w, b, t);
  }
  Result<std::unique_ptr<backend::LinearWeight>> prepare_gated_linear(const HostTensor& w, bool first,
                                                                      DType t) override {
    return inner_->prepare_gated_linear(w, first, t);
  }
  bool fuses_gated_linear(const backend::LinearWeight& w, backend::Activation act) const override {
    return inner_->fuses_gated_linear(w, act);
  }
  Status gated_linear(const backend::GatedLinearArgs& a) override { return inner_->gated_linear(a); }
  Status linear(const backend::LinearArgs& a) override { return inner_->linear(a); }
  Status embed_layernorm(const backend::EmbedLayerNormArgs& a) override { return inner_->embed_layernorm(a); }
  Status add_layernorm(const backend::AddLayerNormArgs& a) override { return inner_->add_layernorm(a); }
  Status glu(const backend::GluArgs& a) override { return inner_->glu(a); }
  Status attention(const backend::AttentionArgs& a) override { return inner_->attention(a); }
  Status pool(const backend::PoolArgs& a) override { return inner_->pool(a); }

 protected:
  void release(void*) override {}  // memory is owned (and released) by inner_

  std::unique_ptr<backend::Backend> inner_;
};

}  // namespace embd::testing
