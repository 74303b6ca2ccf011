// Plain BERT encoders. See encoder.h for the contract.
#pragma once

#include "models/encoder.h"

namespace embd::models {

Result<std::unique_ptr<Encoder>> load_bert(const io::ModelConfig& config,
                                           const io::WeightSet& weights, backend::Backend& be,
                                           DType dtype);

}  // namespace embd::models
