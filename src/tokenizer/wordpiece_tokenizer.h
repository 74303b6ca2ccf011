// The Tokenizer implementation for BERT-family files: added-token split on the raw text,
// BertNormalizer, BertPreTokenizer (or WhitespaceSplit), WordPiece, template specials and
// truncation.
//
// Ownership: owns its vocabulary. Thread-safety: immutable after construction; per-call scratch
// buffers are thread_local, so encode() may run on any number of threads at once.
// Errors: encode() rejects invalid UTF-8 (naming the byte offset) and a max_length too small
// for the template's specials.
#pragma once

#include <array>
#include <memory>

#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_spec.h"
#include "tokenizer/vocab_map.h"

namespace embd::tokenizer {

// Added tokens of one kind (raw or normalised), matched leftmost-longest like HF's Aho-Corasick.
class AddedTokenMatcher {
 public:
  struct Match {
    std::size_t begin;
    std::size_t end;
    std::int32_t id;
  };
  void add(const AddedTokenSpec& token, std::string pattern);
  bool empty() const { return tokens_.empty(); }
  // Appends the matches in `text`, in order and non-overlapping, to `out`.
  void find(std::string_view text, std::vector<Match>& out) const;

 private:
  struct Token {
    std::string pattern;
    AddedTokenSpec spec;
  };
  std::vector<Token> tokens_;
  std::array<bool, 256> first_byte_{};
};

class WordPieceTokenizer final : public Tokenizer {
 public:
  static Result<std::unique_ptr<WordPieceTokenizer>> create(TokenizerSpec spec);

  Result<Encoding> encode(std::string_view text, const EncodeOptions& options) const override;
  using Tokenizer::encode_batch;
  std::vector<Result<Encoding>> encode_batch(std::span<const std::string> texts,
                                             const EncodeOptions& options,
                                             ThreadPool* pool) const override;
  std::size_t vocab_size() const override { return id_to_token_.size(); }
  std::string id_to_token(std::int32_t id) const override;
  std::int32_t token_to_id(std::string_view token) const override;
  std::int32_t cls_id() const override { return cls_id_; }
  std::int32_t sep_id() const override { return sep_id_; }
  std::int32_t pad_id() const override { return pad_id_; }
  std::string summary() const override;

  // Appends the ids of `text` (valid UTF-8, no specials, no truncation) to `out`, and with
  // `offsets` each id's source bytes in `text`.
  void encode_body(std::string_view text, std::vector<std::int32_t>& out,
                   std::vector<TokenOffsets>* offsets = nullptr) const;

 private:
  explicit WordPieceTokenizer(TokenizerSpec spec) : spec_(std::move(spec)) {}
  Status build();
  // Specials and truncation around an encoded body.
  Result<Encoding> finish(const std::vector<std::int32_t>& body, const std::vector<TokenOffsets>* body_offsets,
                          const EncodeOptions& options) const;
  // The steps below append ids to `out` and, when `offsets` is given, each id's bytes in the
  // text they were handed, shifted by `base`.
  void encode_normalized(std::string_view text, std::vector<std::int32_t>& out,
                         std::vector<TokenOffsets>* offsets, std::size_t base) const;
  // encode_normalized with offsets: normalises character by character (BertNormalizer maps
  // each character on its own) to know which source character every normalised byte came from.
  void encode_normalized_with_offsets(std::string_view text, std::vector<std::int32_t>& out,
                                      std::vector<TokenOffsets>& offsets, std::size_t base) const;
  // Normalised added tokens, then pre-tokenisation and WordPiece, on normalised text.
  void split_normalized(std::string_view view, std::vector<std::int32_t>& out,
                        std::vector<TokenOffsets>* offsets) const;
  void pre_tokenize(std::string_view text, std::vector<std::int32_t>& out, std::vector<TokenOffsets>* offsets,
                    std::size_t base) const;
  void word_piece(std::string_view word, std::vector<std::int32_t>& out, std::vector<TokenOffsets>* offsets,
                  std::size_t base) const;

  TokenizerSpec spec_;
  VocabMap vocab_;
  VocabMap continuation_;  // tokens that start with the prefix, keyed without it
  const VocabMap* continuation_map_ = &continuation_;
  AddedTokenMatcher raw_added_;
  AddedTokenMatcher normalized_added_;
  std::vector<std::string> id_to_token_;
  std::int32_t unk_id_ = -1;
  std::int32_t cls_id_ = -1;
  std::int32_t sep_id_ = -1;
  std::int32_t pad_id_ = -1;
  bool whitespace_in_added_ = false;  // some added token contains whitespace: no cutting at it
};

}  // namespace embd::tokenizer
