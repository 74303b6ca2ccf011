// The byte-level BPE model of GPT-2 / RoBERTa-style tokenizers (jina-embeddings-v2-base-code,
// -de, -es), on PipelineTokenizer's steps: each segment is split with GPT-2's pattern
// (byte_level.h), each piece starts as one symbol per byte, and adjacent symbols merge by rank
// (lowest first, leftmost first among equal ranks) until no listed pair is left. Token offsets
// lose their surrounding spaces as RobertaProcessing's trim_offsets does.
//
// Ownership: owns its vocabulary and merge table. Thread-safety: immutable after construction;
// per-call scratch is thread_local, so encode() may run on any number of threads at once.
// Errors: create() names the merge whose tokens (or whose joined token) are not in model.vocab.
#pragma once

#include <array>
#include <memory>

#include "tokenizer/pipeline_tokenizer.h"
#include "tokenizer/word_cache.h"

namespace embd::tokenizer {

class BpeTokenizer final : public PipelineTokenizer {
 public:
  static Result<std::unique_ptr<BpeTokenizer>> create(TokenizerSpec spec);

  // PipelineTokenizer's body, then (with offsets and trim_offsets) the spaces trimmed off.
  void encode_body(std::string_view text, std::vector<std::int32_t>& out,
                   std::vector<TokenOffsets>* offsets = nullptr) const override;
  std::string summary() const override;

 private:
  struct Merge {
    std::int32_t rank = -1;
    std::int32_t id = -1;  // the joined token
  };
  // (left id, right id) -> Merge, open addressing.
  class MergeTable {
   public:
    void reserve(std::size_t merges);
    void put(std::int32_t left, std::int32_t right, Merge merge);  // a repeated pair: the last wins
    const Merge* find(std::int32_t left, std::int32_t right) const;

   private:
    struct Slot {
      std::uint64_t key = kEmpty;
      Merge merge;
    };
    static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};
    static std::uint64_t key_of(std::int32_t left, std::int32_t right);
    std::vector<Slot> slots_;
    std::size_t mask_ = 0;
  };

  explicit BpeTokenizer(TokenizerSpec spec) : PipelineTokenizer(std::move(spec)) {}
  Status build();
  // The pattern's pieces of `segment` (after the prefix space, when configured), each merged.
  void encode_segment(std::string_view segment, bool text_start, std::vector<std::int32_t>& out,
                      std::vector<TokenOffsets>* offsets, std::size_t base) const override;
  // Just before a plain space that follows an ASCII non-space: every match of the pattern ends
  // there, and the pattern reads nothing behind its start.
  std::size_t next_cut(std::string_view text, std::size_t from) const override;
  // Merges the bytes of `word` (text[begin, end)); appends the ids and, with `offsets`, each
  // id's bytes [begin, end) in `text`. Short words come from this thread's WordCache when they
  // were merged before.
  void merge_word(std::string_view text, std::size_t begin, std::size_t end,
                  std::vector<std::int32_t>& out, std::vector<TokenOffsets>* offsets) const;
  // merge_word() of the whole of `word`, without the cache.
  void merge_uncached(std::string_view word, std::vector<std::int32_t>& out,
                      std::vector<TokenOffsets>* offsets) const;
  // RobertaProcessing's trim_offsets over a whole body (`text` is what the offsets point into).
  void trim_offsets(std::string_view text, std::span<const std::int32_t> ids,
                    std::span<TokenOffsets> offsets) const;

  MergeTable merges_;
  std::array<std::int32_t, 256> byte_ids_{};  // each byte's one-byte token; -1 when absent
  VocabMap byte_vocab_;                       // vocabulary as bytes, for ignore_merges
  std::vector<bool> added_ids_;               // by id: an added token's
  std::int32_t unk_id_ = -1;
  const std::uint64_t cache_owner_ = WordCache::new_owner();
};

}  // namespace embd::tokenizer
