// make_synthetic_model: writes a JinaBERT v2 model directory with deterministic random weights
// (default: the exact jina-embeddings-v2-small-en shape, F16 weights as published), for
// benchmarks and tests. See src/io/synthetic_model.h for the tensor layout and initialisation.
//
//   make_synthetic_model --out DIR [--hidden 512] [--layers 4] [--heads 8] [--intermediate 2048]
//                        [--vocab 30528] [--dtype f32|f16|bf16] [--seed S] [--tokenizer PATH]
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "io/safetensors.h"
#include "io/synthetic_model.h"

int main(int argc, char** argv) {
  embd::io::SyntheticModelSpec spec;
  std::string out;
  std::string dtype = "f16";
  std::string tokenizer = std::string(EMBD_SOURCE_DIR) + "/tests/fixtures/models/tiny-jina/tokenizer.json";
  CLI::App app{"Write a JinaBERT v2 model directory with random weights (not a trained model)"};
  app.add_option("--out", out, "output directory")->required();
  app.add_option("--hidden", spec.hidden, "hidden size")->capture_default_str();
  app.add_option("--layers", spec.layers, "encoder layers")->capture_default_str();
  app.add_option("--heads", spec.heads, "attention heads")->capture_default_str();
  app.add_option("--intermediate", spec.intermediate, "GLU intermediate size")->capture_default_str();
  app.add_option("--vocab", spec.vocab, "vocabulary rows")->capture_default_str();
  app.add_option("--dtype", dtype, "stored weight dtype")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}))
      ->capture_default_str();
  app.add_option("--seed", spec.seed, "seed string")->capture_default_str();
  app.add_option("--tokenizer", tokenizer, "tokenizer.json to copy (\"\" = none)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  spec.dtype = embd::parse_dtype(dtype).value();  // IsMember above admits only valid names
  spec.tokenizer = tokenizer;
  const embd::Status st = embd::io::write_synthetic_model(out, spec);
  if (!st.ok()) {
    std::fprintf(stderr, "make_synthetic_model: %s\n", st.to_string().c_str());
    return 1;
  }
  auto weights = embd::io::WeightSet::open_dir(out);  // read back: the file must validate
  if (!weights.ok()) {
    std::fprintf(stderr, "make_synthetic_model: wrote an unreadable model: %s\n",
                 weights.status().to_string().c_str());
    return 1;
  }
  std::printf("%s: %lld parameters, %s weights\n", out.c_str(),
              static_cast<long long>((*weights)->parameter_count()),
              std::string(embd::dtype_name(spec.dtype)).c_str());
  return 0;
}
