// The WordPiece model of BERT-family tokenizers, on PipelineTokenizer's steps: BertPreTokenizer
// (or WhitespaceSplit) splits each segment into words, and each word becomes its longest
// vocabulary pieces ("##" continuations), or [UNK] when one piece is missing.
//
// Ownership: owns its vocabulary. Thread-safety: immutable after construction; encode() may run
// on any number of threads at once.
#pragma once

#include <memory>

#include "tokenizer/pipeline_tokenizer.h"

namespace embd::tokenizer {

class WordPieceTokenizer final : public PipelineTokenizer {
 public:
  static Result<std::unique_ptr<WordPieceTokenizer>> create(TokenizerSpec spec);

  std::string summary() const override;

 private:
  explicit WordPieceTokenizer(TokenizerSpec spec) : PipelineTokenizer(std::move(spec)) {}
  Status build();
  // Pre-tokenisation, then word_piece() on each word.
  void encode_segment(std::string_view text, bool text_start, std::vector<std::int32_t>& out,
                      std::vector<TokenOffsets>* offsets, std::size_t base) const override;
  // Just after ASCII whitespace: it ends every word and belongs to no token.
  std::size_t next_cut(std::string_view text, std::size_t from) const override;
  void word_piece(std::string_view word, std::vector<std::int32_t>& out,
                  std::vector<TokenOffsets>* offsets, std::size_t base) const;

  VocabMap continuation_;  // tokens that start with the prefix, keyed without it
  const VocabMap* continuation_map_ = &continuation_;
  std::int32_t unk_id_ = -1;
};

}  // namespace embd::tokenizer
