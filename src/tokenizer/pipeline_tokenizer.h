// The steps every tokenizer here shares, around a model (WordPiece, BPE, Unigram) that subclasses
// supply: added tokens matched in the raw text, the normaliser (BertNormalizer, Lowercase or a
// SentencePiece-style chain), added tokens matched in the normalised text, then the model on the
// text between them; the
// template's specials and truncation; batches over a pool, with long texts cut into pieces that
// encode apart exactly as the whole text does.
//
// Ownership: owns its spec and vocabulary. Thread-safety: immutable after build_common();
// per-call scratch buffers are thread_local, so encode() may run on any number of threads.
// Errors: encode() rejects invalid UTF-8 (naming the byte offset) and a max_length too small
// for the template's specials.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/added_token_matcher.h"
#include "tokenizer/normalizer_chain.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_spec.h"
#include "tokenizer/vocab_map.h"

namespace embd::tokenizer {

class PipelineTokenizer : public Tokenizer {
 public:
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

  // Appends the ids of `text` (valid UTF-8, no specials, no truncation) to `out`, and with
  // `offsets` each id's source bytes in `text`.
  virtual void encode_body(std::string_view text, std::vector<std::int32_t>& out,
                           std::vector<TokenOffsets>* offsets = nullptr) const;

 protected:
  explicit PipelineTokenizer(TokenizerSpec spec) : spec_(std::move(spec)) {}

  // The vocabulary map and id table, the normaliser chain, the added-token matchers and the
  // template's ids.
  Status build_common();

  // The model on `segment`, normalised text between added tokens: appends its ids and, with
  // `offsets`, each id's bytes in `segment` shifted by `base`. `text_start`: the segment starts
  // the input text (Metaspace's prepend_scheme "first").
  virtual void encode_segment(std::string_view segment, bool text_start, std::vector<std::int32_t>& out,
                              std::vector<TokenOffsets>* offsets, std::size_t base) const = 0;

  // The first offset >= `from` where `text` may be cut so that the pieces encode apart exactly
  // as the whole text does; npos when there is none (or cutting is never exact).
  virtual std::size_t next_cut(std::string_view text, std::size_t from) const = 0;

  // The id of model.unk_token, or an error naming it when model.vocab lacks it.
  Result<std::int32_t> unk_token_id() const;
  // ", [CLS] $A [SEP]" (the template) or ", no specials": the end of summary().
  std::string template_summary() const;

  // True when some added token contains whitespace or strips it on its right: cuts at
  // whitespace could then split or change a match.
  bool added_tokens_block_cuts() const { return added_tokens_block_cuts_; }

  const NormalizerChain& normalizer_chain() const { return chain_; }

  // Per-thread scratch keeps its capacity between words, but not the megabytes one huge word took.
  template <typename Buffer>
  static void release_if_large(Buffer& buffer) {
    if (buffer.capacity() * sizeof(buffer[0]) > (1u << 20)) Buffer().swap(buffer);
  }

  TokenizerSpec spec_;
  VocabMap vocab_;
  std::vector<std::string> id_to_token_;

 private:
  // Specials and truncation around an encoded body.
  Result<Encoding> finish(const std::vector<std::int32_t>& body,
                          const std::vector<TokenOffsets>* body_offsets,
                          const EncodeOptions& options) const;
  // The steps below append ids to `out` and, when `offsets` is given, each id's bytes in the
  // text they were handed, shifted by `base`.
  void encode_normalized(std::string_view text, std::vector<std::int32_t>& out,
                         std::vector<TokenOffsets>* offsets, std::size_t base) const;
  // encode_normalized with offsets: knows which source character every normalised byte came
  // from (BertNormalizer and Lowercase map each character on its own; the chain tracks it).
  void encode_normalized_with_offsets(std::string_view text, std::vector<std::int32_t>& out,
                                      std::vector<TokenOffsets>& offsets, std::size_t base) const;
  // Normalised added tokens, then the model, on normalised text (`text_start`: it starts the input).
  void split_normalized(std::string_view view, bool text_start, std::vector<std::int32_t>& out,
                        std::vector<TokenOffsets>* offsets) const;
  // Offsets {0, ..., text.size()} that cut `text` into pieces of about kPieceBytes at next_cut().
  std::vector<std::size_t> piece_cuts(std::string_view text) const;

  NormalizerChain chain_;
  AddedTokenMatcher raw_added_;
  AddedTokenMatcher normalized_added_;
  std::int32_t cls_id_ = -1;
  std::int32_t sep_id_ = -1;
  std::int32_t pad_id_ = -1;
  bool added_tokens_block_cuts_ = false;
};

}  // namespace embd::tokenizer
