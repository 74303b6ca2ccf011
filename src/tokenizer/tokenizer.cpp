// Tokenizer::load / from_json: pick the file, parse it into a TokenizerSpec, build the encoder
// its model names (WordPiece, BPE or Unigram).
#include "tokenizer/tokenizer.h"

#include <fstream>
#include <sstream>

#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/tokenizer_spec.h"
#include "tokenizer/unigram_tokenizer.h"
#include "tokenizer/wordpiece_tokenizer.h"

namespace embd::tokenizer {
namespace {

Result<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error(path.string() + ": cannot open for reading");
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return io_error(path.string() + ": read failed");
  return std::move(buf).str();
}

Result<std::unique_ptr<Tokenizer>> build(Result<TokenizerSpec> spec) {
  if (!spec.ok()) return spec.status();
  if (spec->model == ModelKind::kUnigram) {
    EMBD_ASSIGN_OR_RETURN(auto tokenizer, UnigramTokenizer::create(std::move(spec).value()));
    return std::unique_ptr<Tokenizer>(std::move(tokenizer));
  }
  if (spec->model == ModelKind::kBpe) {
    EMBD_ASSIGN_OR_RETURN(auto tokenizer, BpeTokenizer::create(std::move(spec).value()));
    return std::unique_ptr<Tokenizer>(std::move(tokenizer));
  }
  EMBD_ASSIGN_OR_RETURN(auto tokenizer, WordPieceTokenizer::create(std::move(spec).value()));
  return std::unique_ptr<Tokenizer>(std::move(tokenizer));
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::load(const std::filesystem::path& dir) {
  std::error_code ec;
  const auto json_path = dir / "tokenizer.json";
  if (std::filesystem::is_regular_file(json_path, ec)) {
    EMBD_ASSIGN_OR_RETURN(std::string json, read_file(json_path));
    return from_json(json, json_path.string());
  }
  const auto vocab_path = dir / "vocab.txt";
  if (std::filesystem::is_regular_file(vocab_path, ec)) {
    EMBD_ASSIGN_OR_RETURN(std::string text, read_file(vocab_path));
    return build(parse_vocab_txt(text, vocab_path.string()));
  }
  return not_found(dir.string() + ": neither tokenizer.json nor vocab.txt found");
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_json(std::string_view json,
                                                        std::string_view source) {
  return build(parse_tokenizer_json(json, source));
}

}  // namespace embd::tokenizer
