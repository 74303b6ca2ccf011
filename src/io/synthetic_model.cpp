// write_synthetic_model: config.json with the published small-en keys plus random weights.
#include "io/synthetic_model.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <system_error>
#include <utility>
#include <vector>

#include "io/safetensors.h"

namespace embd::io {
namespace {

namespace fs = std::filesystem;

// What a tensor's values are drawn from: mean + N(0, stddev).
struct Init {
  double mean;
  double stddev;
};
constexpr Init kWeight{0.0, 0.05};
constexpr Init kBias{0.0, 0.02};
constexpr Init kGamma{1.0, 0.1};
constexpr Init kBeta{0.0, 0.05};

struct Planned {
  std::string name;
  std::vector<std::int64_t> shape;
  Init init;
};

std::uint64_t fnv1a(const std::string& s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// Box-Muller on mt19937_64 (both fully specified by the standard, unlike
// std::normal_distribution), so the files are identical on every platform.
std::vector<float> draw(const std::string& seed, const Planned& p) {
  std::int64_t n = 1;
  for (auto d : p.shape) n *= d;
  std::vector<float> out(static_cast<std::size_t>(n));
  std::mt19937_64 rng(fnv1a(seed + "/" + p.name));
  const double kTwoPi = 6.283185307179586;
  auto uniform = [&rng] { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53; };
  for (std::size_t i = 0; i < out.size(); i += 2) {
    const double r = std::sqrt(-2.0 * std::log(uniform()));
    const double t = kTwoPi * uniform();
    out[i] = static_cast<float>(p.init.mean + p.init.stddev * r * std::cos(t));
    if (i + 1 < out.size()) out[i + 1] = static_cast<float>(p.init.mean + p.init.stddev * r * std::sin(t));
  }
  return out;
}

void add_linear(std::vector<Planned>& plan, const std::string& name, std::int64_t out,
                std::int64_t in, bool bias) {
  plan.push_back({name + ".weight", {out, in}, kWeight});
  if (bias) plan.push_back({name + ".bias", {out}, kBias});
}

void add_layernorm(std::vector<Planned>& plan, const std::string& name, std::int64_t h) {
  plan.push_back({name + ".weight", {h}, kGamma});
  plan.push_back({name + ".bias", {h}, kBeta});
}

// JINABERT.md §2.1, in the published order: embeddings, layers, pooler.
std::vector<Planned> plan_tensors(const SyntheticModelSpec& s) {
  std::vector<Planned> plan;
  const std::int64_t h = s.hidden;
  plan.push_back({"embeddings.word_embeddings.weight", {s.vocab, h}, kWeight});
  plan.push_back({"embeddings.token_type_embeddings.weight", {s.type_vocab, h}, kWeight});
  add_layernorm(plan, "embeddings.LayerNorm", h);
  for (std::int64_t l = 0; l < s.layers; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    for (const char* qkv : {"query", "key", "value"}) {
      add_linear(plan, p + "attention.self." + qkv, h, h, true);
    }
    add_linear(plan, p + "attention.output.dense", h, h, true);
    add_layernorm(plan, p + "attention.output.LayerNorm", h);
    add_linear(plan, p + "mlp.gated_layers", 2 * s.intermediate, h, false);
    add_linear(plan, p + "mlp.wo", h, s.intermediate, true);
    add_layernorm(plan, p + "mlp.layernorm", h);
  }
  add_linear(plan, "pooler.dense", h, h, true);
  return plan;
}

// ordered_json keeps the published key order.
nlohmann::ordered_json make_config(const SyntheticModelSpec& s) {
  const std::string impl = "jinaai/jina-bert-implementation";
  nlohmann::ordered_json auto_map = {
      {"AutoConfig", impl + "--configuration_bert.JinaBertConfig"},
      {"AutoModelForMaskedLM", impl + "--modeling_bert.JinaBertForMaskedLM"},
      {"AutoModel", impl + "--modeling_bert.JinaBertModel"},
      {"AutoModelForSequenceClassification", impl + "--modeling_bert.JinaBertForSequenceClassification"}};
  return nlohmann::ordered_json{{"_name_or_path", impl},
              {"model_max_length", s.max_position},
              {"architectures", {"JinaBertForMaskedLM"}},
              {"attention_probs_dropout_prob", 0.0},
              {"auto_map", auto_map},
              {"classifier_dropout", nullptr},
              {"gradient_checkpointing", false},
              {"hidden_act", "gelu"},
              {"hidden_dropout_prob", 0.1},
              {"hidden_size", s.hidden},
              {"initializer_range", 0.02},
              {"intermediate_size", s.intermediate},
              {"layer_norm_eps", 1e-12},
              {"max_position_embeddings", s.max_position},
              {"model_type", "bert"},
              {"num_attention_heads", s.heads},
              {"num_hidden_layers", s.layers},
              {"pad_token_id", 0},
              {"position_embedding_type", "alibi"},
              // The published config says float32 over F16 weights (Transformers upcasts).
              {"torch_dtype", "float32"},
              {"transformers_version", "4.26.0"},
              {"type_vocab_size", s.type_vocab},
              {"use_cache", true},
              {"vocab_size", s.vocab},
              {"feed_forward_type", "geglu"},
              {"emb_pooler", "mean"},
              {"_synthetic", {{"generator", "embd make_synthetic_model"},
                              {"seed", s.seed},
                              {"weights", std::string(dtype_name(s.dtype))},
                              {"note", "random weights with the exact architecture; not a trained model"}}}};
}

Status check_spec(const SyntheticModelSpec& s) {
  const std::pair<const char*, std::int64_t> sizes[] = {
      {"hidden", s.hidden}, {"layers", s.layers}, {"heads", s.heads}, {"intermediate", s.intermediate},
      {"vocab", s.vocab}, {"type_vocab", s.type_vocab}, {"max_position", s.max_position}};
  for (const auto& [name, v] : sizes) {
    if (v <= 0 || v > (1 << 22)) {
      return invalid_argument(std::string("synthetic model: ") + name + " " + std::to_string(v) +
                              " is out of range");
    }
  }
  if (s.hidden % s.heads != 0) {
    return invalid_argument("synthetic model: hidden " + std::to_string(s.hidden) +
                            " is not a multiple of heads " + std::to_string(s.heads));
  }
  return ok_status();
}

}  // namespace

Status write_synthetic_model(const fs::path& dir, const SyntheticModelSpec& spec) {
  EMBD_TRY(check_spec(spec));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return io_error(dir.string() + ": cannot create: " + ec.message());
  {
    std::ofstream out(dir / "config.json", std::ios::trunc);
    out << make_config(spec).dump(2) << "\n";
    if (!out) return io_error((dir / "config.json").string() + ": write failed");
  }
  const std::vector<Planned> plan = plan_tensors(spec);
  std::vector<std::vector<std::uint8_t>> storage;
  std::vector<HostTensor> tensors;
  storage.reserve(plan.size());
  for (const Planned& p : plan) {
    const std::vector<float> values = draw(spec.seed, p);
    storage.emplace_back(values.size() * dtype_size(spec.dtype));
    convert(values.data(), DType::kF32, storage.back().data(), spec.dtype, values.size());
    tensors.push_back(HostTensor{p.name, spec.dtype, p.shape, storage.back().data()});
  }
  EMBD_TRY(write_safetensors(dir / "model.safetensors", tensors, {{"format", "pt"}}));
  if (!spec.tokenizer.empty()) {
    fs::copy_file(spec.tokenizer, dir / "tokenizer.json", fs::copy_options::overwrite_existing, ec);
    if (ec) {
      return io_error("copying tokenizer " + spec.tokenizer.string() + " to " + dir.string() + ": " +
                      ec.message());
    }
  }
  return ok_status();
}

}  // namespace embd::io
