// The parsed, validated description of a WordPiece tokenizer (from tokenizer.json or vocab.txt),
// independent of the encoder that runs it.
//
// Ownership: plain values. Thread-safety: none needed (built once, then moved into a Tokenizer).
// Errors: the parsers return kInvalidModel for malformed files and kUnsupported for pipeline
// components we do not implement, naming the file (`source`) and the field at fault.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "tokenizer/unicode_text.h"

namespace embd::tokenizer {

struct AddedTokenSpec {
  std::string content;
  std::int32_t id = -1;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  // Matched in the normalised text (true) or in the raw text (false).
  bool normalized = false;
  bool special = false;
};

enum class PreTokenizerKind { kBert, kWhitespaceSplit, kNone };

struct TokenizerSpec {
  std::string source;  // file name, for messages
  bool has_normalizer = false;
  unicode::NormalizeFlags normalize;
  PreTokenizerKind pre_tokenizer = PreTokenizerKind::kBert;
  std::vector<std::pair<std::string, std::int32_t>> vocab;
  std::string unk_token = "[UNK]";
  std::string continuing_subword_prefix = "##";
  std::size_t max_input_chars_per_word = 100;
  std::vector<AddedTokenSpec> added_tokens;
  // Template specials around the single sequence ("[CLS] $A [SEP]": {101}, {102}).
  std::vector<std::int32_t> prefix_ids;
  std::vector<std::int32_t> suffix_ids;
  std::string template_text;  // for summary()
  std::int32_t pad_id = -1;   // -1: look up "[PAD]"
};

Result<TokenizerSpec> parse_tokenizer_json(std::string_view json, std::string_view source);
// vocab.txt, one token per line (id = line number), with bert-base-uncased's pipeline.
Result<TokenizerSpec> parse_vocab_txt(std::string_view text, std::string_view source);

}  // namespace embd::tokenizer
