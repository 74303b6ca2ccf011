// The text-to-ids tokenizer of BERT-family models, exactly as Hugging Face `tokenizers` (Rust)
// does it: added/special tokens matched in the raw text, then either BERT's pipeline
// (BertNormalizer, BertPreTokenizer, WordPiece; wordpiece_tokenizer.h) or GPT-2 / RoBERTa's
// (byte-level BPE; bpe_tokenizer.h), then the template's specials ([CLS] $A [SEP], <s> $A </s>).
//
// Thread-safety: a loaded Tokenizer is immutable; encode() and encode_batch() may be called from
// any number of threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "embd/options.hpp"

namespace embd::tokenizer {

// Batches with at least this much text are worth a pool (the Engine hands it over then). On a
// pool, encode_batch() also cuts long texts into pieces when it has few texts (exact: cut at
// whitespace), so one long document does not tokenise on one thread.
constexpr std::size_t kParallelTextBytes = 16u << 10;

struct EncodeOptions {
  // Maximum number of ids including the special tokens; 0 = no limit.
  std::size_t max_length = 0;
  TruncationDirection direction = TruncationDirection::kRight;
  bool add_special_tokens = true;
  // Also report where each token came from (Encoding::offsets). Slower: such texts are never
  // split over a pool.
  bool offsets = false;
};

// Bytes [begin, end) of the input text a token came from; {0, 0} for the template's specials.
struct TokenOffsets {
  std::size_t begin = 0;
  std::size_t end = 0;
  bool operator==(const TokenOffsets&) const = default;
};

struct Encoding {
  std::vector<std::int32_t> ids;
  std::vector<TokenOffsets> offsets;  // one per id with EncodeOptions::offsets, else empty
  // Number of ids before truncation (specials included); == ids.size() when not truncated.
  std::size_t untruncated_length = 0;
  bool truncated() const { return untruncated_length > ids.size(); }
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // tokenizer.json in `dir`, else vocab.txt (BERT uncased defaults). Errors name the file and
  // the field at fault (unsupported normalizer/model types are rejected by name).
  static Result<std::unique_ptr<Tokenizer>> load(const std::filesystem::path& dir);
  static Result<std::unique_ptr<Tokenizer>> from_json(std::string_view json, std::string_view source);

  // Invalid UTF-8 is an error naming the byte offset.
  virtual Result<Encoding> encode(std::string_view text, const EncodeOptions& options) const = 0;
  // One result per text, in order; uses `pool` when given (else the calling thread).
  virtual std::vector<Result<Encoding>> encode_batch(std::span<const std::string> texts,
                                                     const EncodeOptions& options,
                                                     ThreadPool* pool) const = 0;
  std::vector<Result<Encoding>> encode_batch(const std::vector<std::string>& texts,
                                             const EncodeOptions& options, ThreadPool* pool) const {
    return encode_batch(std::span<const std::string>(texts), options, pool);
  }

  virtual std::size_t vocab_size() const = 0;
  // "" for ids outside the vocabulary.
  virtual std::string id_to_token(std::int32_t id) const = 0;
  // -1 when absent.
  virtual std::int32_t token_to_id(std::string_view token) const = 0;
  // Ids of the template's specials: [CLS]-like first, [SEP]-like last, pad.
  virtual std::int32_t cls_id() const = 0;
  virtual std::int32_t sep_id() const = 0;
  virtual std::int32_t pad_id() const = 0;
  // A one-line description, e.g. "WordPiece, 30522 tokens, lowercase, [CLS] $A [SEP]" or
  // "BPE (byte-level), 61056 tokens, 60795 merges, <s> $A </s>".
  virtual std::string summary() const = 0;
};

}  // namespace embd::tokenizer
