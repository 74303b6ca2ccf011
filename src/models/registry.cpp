// Maps a config's architecture to its family's loader.
#include "models/bert.h"
#include "models/encoder.h"
#include "models/jina_bert.h"

namespace embd::models {

Result<std::unique_ptr<Encoder>> load_encoder(const io::ModelConfig& config,
                                              const io::WeightSet& weights, backend::Backend& be,
                                              DType dtype) {
  for (auto op : {backend::Op::kLinear, backend::Op::kEmbedLayerNorm, backend::Op::kAddLayerNorm,
                  backend::Op::kAttention, backend::Op::kPool}) {
    if (!be.supports(op, dtype)) {
      return unsupported(std::string(backend::op_name(op)) + " does not run in " +
                         std::string(dtype_name(dtype)) + " on " + be.name());
    }
  }
  switch (config.architecture) {
    case io::Architecture::kJinaBert: return load_jina_bert(config, weights, be, dtype);
    case io::Architecture::kBert: return load_bert(config, weights, be, dtype);
  }
  return unsupported("unknown architecture");
}

}  // namespace embd::models
