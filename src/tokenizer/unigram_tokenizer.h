// The SentencePiece Unigram model of XLM-RoBERTa-family tokenizers (multilingual-e5, bge-m3,
// paraphrase-multilingual, ...), on PipelineTokenizer's steps: the Metaspace pre-tokenizer turns
// spaces into "▁" and starts a word at each, and each word becomes its most probable segmentation
// into vocabulary pieces (Viterbi over the lattice of pieces, HF's tie-breaking; characters no
// piece covers become the unk id, consecutive ones fused into one).
//
// Ownership: owns its vocabulary, scores and trie. Thread-safety: immutable after construction;
// per-call scratch is thread_local, so encode() may run on any number of threads at once.
// Errors: create() names the field at fault (unk_id outside the vocabulary, a pre-tokenizer that
// does not go with Unigram, a replacement that is not one character).
#pragma once

#include <memory>

#include "tokenizer/byte_trie.h"
#include "tokenizer/pipeline_tokenizer.h"
#include "tokenizer/word_cache.h"

namespace embd::tokenizer {

class UnigramTokenizer final : public PipelineTokenizer {
 public:
  static Result<std::unique_ptr<UnigramTokenizer>> create(TokenizerSpec spec);

  std::string summary() const override;

 private:
  explicit UnigramTokenizer(TokenizerSpec spec) : PipelineTokenizer(std::move(spec)) {}
  Status build();
  // Metaspace (after WhitespaceSplit, when configured), then segment_word() on each word.
  void encode_segment(std::string_view segment, bool text_start, std::vector<std::int32_t>& out,
                      std::vector<TokenOffsets>* offsets, std::size_t base) const override;
  // Just before a space that follows a printable ASCII character the normaliser keeps: words
  // start there, and (unless the normaliser looks across it) nothing else does.
  std::size_t next_cut(std::string_view text, std::size_t from) const override;
  // Metaspace on `piece` (bytes [begin, end) of `segment`; `prepend`: it may get the leading
  // replacement), then each of its words segmented.
  void encode_piece(std::string_view segment, std::size_t begin, std::size_t end, bool prepend,
                    std::vector<std::int32_t>& out, std::vector<TokenOffsets>* offsets,
                    std::size_t base) const;
  // The best segmentation of `word`: appends ids and, with `offsets`, each id's bytes in `word`.
  // Short words come from this thread's WordCache when they were segmented before.
  void segment_word(std::string_view word, std::vector<std::int32_t>& out,
                    std::vector<TokenOffsets>* offsets) const;
  // segment_word() without the cache, offsets always appended.
  void segment_uncached(std::string_view word, std::vector<std::int32_t>& out,
                        std::vector<TokenOffsets>& offsets) const;

  ByteTrie trie_;
  std::vector<double> scores_;
  double unk_score_ = 0;
  std::int32_t unk_id_ = -1;
  const std::uint64_t cache_owner_ = WordCache::new_owner();
};

}  // namespace embd::tokenizer
