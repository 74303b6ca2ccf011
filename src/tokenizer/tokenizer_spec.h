// The parsed, validated description of a tokenizer (from tokenizer.json or vocab.txt): WordPiece,
// byte-level BPE or SentencePiece Unigram, independent of the encoder that runs it.
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

enum class ModelKind { kWordPiece, kBpe, kUnigram };
enum class PreTokenizerKind {
  kBert,
  kWhitespaceSplit,
  kByteLevel,
  kMetaspace,                 // SentencePiece's: spaces become "▁", one word per "▁"
  kWhitespaceSplitMetaspace,  // Sequence [WhitespaceSplit, Metaspace] (older SentencePiece files)
  kNone
};

// One step of a SentencePiece-style normalizer Sequence (Precompiled, Replace, Strip), applied in
// order; BertNormalizer and Lowercase alone go through `TokenizerSpec::normalize` instead.
struct NormalizerStepSpec {
  enum class Kind { kPrecompiled, kReplace, kStrip };
  Kind kind = Kind::kReplace;
  std::string field;     // "normalizer.normalizers[0]", for messages
  std::string charsmap;  // kPrecompiled: the decoded precompiled_charsmap
  std::string pattern;   // kReplace: a literal string, or a regex when `regex`
  bool regex = false;
  std::string content;
  bool strip_left = false;  // kStrip
  bool strip_right = false;
};

// The Metaspace pre-tokenizer: ' ' becomes `replacement`, which also goes before a segment that
// does not start with it (prepend), and each word starts at one (split).
struct MetaspaceSpec {
  enum class Prepend { kAlways, kFirst, kNever };
  std::string replacement = "\u2581";  // one character
  Prepend prepend = Prepend::kAlways;
  bool split = true;
};

struct UnigramSpec {
  std::vector<double> scores;  // by id (the vocabulary's order)
  std::int32_t unk_id = -1;
};

// The ByteLevel pre-tokenizer (GPT-2, RoBERTa): text split with GPT-2's pattern, bytes as tokens.
struct ByteLevelSpec {
  bool add_prefix_space = false;  // a space before every segment that does not start with one
  bool use_regex = true;          // false: each segment is one word
};

struct BpeSpec {
  std::vector<std::pair<std::string, std::string>> merges;  // by rank, highest priority first
  bool ignore_merges = false;  // a word that is a vocabulary entry is that token
  bool fuse_unk = false;       // consecutive unknown bytes give one unk
};

struct TokenizerSpec {
  std::string source;  // file name, for messages
  bool has_normalizer = false;
  unicode::NormalizeFlags normalize;
  std::vector<NormalizerStepSpec> normalizer_steps;  // non-empty: this chain is the normalizer
  PreTokenizerKind pre_tokenizer = PreTokenizerKind::kBert;
  ByteLevelSpec byte_level;
  MetaspaceSpec metaspace;
  ModelKind model = ModelKind::kWordPiece;
  std::vector<std::pair<std::string, std::int32_t>> vocab;
  BpeSpec bpe;
  UnigramSpec unigram;
  std::string unk_token = "[UNK]";  // BPE: empty = none (unknown bytes are dropped, as in HF)
  std::string continuing_subword_prefix = "##";
  std::size_t max_input_chars_per_word = 100;
  std::vector<AddedTokenSpec> added_tokens;
  // Template specials around the single sequence ("[CLS] $A [SEP]": {101}, {102}).
  std::vector<std::int32_t> prefix_ids;
  std::vector<std::int32_t> suffix_ids;
  std::string template_text;  // for summary()
  std::int32_t pad_id = -1;   // -1: look up "[PAD]", then "<pad>"
  // RobertaProcessing / ByteLevel post-processing: token offsets lose their leading and trailing
  // spaces, except (with trim_keeps_prefix_space) a first token's single added prefix space.
  bool trim_offsets = false;
  bool trim_keeps_prefix_space = false;
};

Result<TokenizerSpec> parse_tokenizer_json(std::string_view json, std::string_view source);
// vocab.txt, one token per line (id = line number), with bert-base-uncased's pipeline.
Result<TokenizerSpec> parse_vocab_txt(std::string_view text, std::string_view source);

}  // namespace embd::tokenizer
