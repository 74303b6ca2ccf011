// `embd info`: loads a model and prints what it is (Engine::info()) as one JSON object.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "commands.h"
#include "embd/engine.hpp"

namespace embd::cli {
namespace {

nlohmann::ordered_json info_json(const ModelInfo& info) {
  nlohmann::ordered_json j;
  j["model_id"] = info.model_id;
  j["model_dir"] = info.model_dir;
  j["architecture"] = info.architecture;
  j["variant"] = info.variant;
  j["stored_dtype"] = info.stored_dtype;
  j["compute_dtype"] = info.compute_dtype;
  j["pooling"] = info.pooling;
  j["normalize_default"] = info.normalize_default;
  j["hidden_size"] = info.hidden_size;
  j["num_layers"] = info.num_layers;
  j["num_heads"] = info.num_heads;
  j["intermediate_size"] = info.intermediate_size;
  j["vocab_size"] = info.vocab_size;
  j["max_length"] = info.max_length;
  j["parameters"] = info.parameters;
  j["devices"] = info.devices;
  j["query_lanes"] = info.query_lanes;
  j["concurrent_batches"] = info.concurrent_batches;
  j["tokenizer"] = info.tokenizer_summary;
  return j;
}

}  // namespace

CommandRun add_info_command(CLI::App& root) {
  auto* cmd = root.add_subcommand("info", "print a model's architecture, sizes, dtypes and tokenizer as JSON");
  auto flags = std::make_shared<ModelFlags>();
  add_model_flags(*cmd, *flags, /*compute=*/false);
  return [flags]() -> int {
    auto engine = load_engine(*flags);
    if (!engine.ok()) return print_error("info", engine.status());
    std::string text =
        info_json((*engine)->info()).dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    std::printf("%s\n", text.c_str());
    return 0;
  };
}

}  // namespace embd::cli
