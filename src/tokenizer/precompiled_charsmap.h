// SentencePiece's precompiled normaliser (tokenizer.json's "Precompiled" normalizer, e.g.
// XLM-RoBERTa's nmt_nfkc rules): a darts-clone double-array trie of source strings plus the
// NUL-terminated replacements it points into. Applied as Hugging Face applies it: per extended
// grapheme cluster, the whole cluster when it is shorter than 6 bytes and the trie holds a prefix
// of it (HF then replaces the whole cluster by that prefix's replacement), else character by
// character.
//
// Ownership: owns the blob. Thread-safety: immutable after parse(); normalize() may run from any
// number of threads. Errors: parse() rejects a blob whose sizes are inconsistent or whose
// replacements are not UTF-8; a trie walk that leaves the array is a miss, never a crash.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "tokenizer/aligned_text.h"

namespace embd::tokenizer {

class PrecompiledCharsmap {
 public:
  // `blob`: the decoded precompiled_charsmap (little-endian u32 trie size in bytes, the trie's
  // units, then the replacements). `field` names it in errors.
  static Result<PrecompiledCharsmap> parse(std::string_view blob, std::string_view field);

  // The replacement of the shortest trie key that is a prefix of `chunk` (stopping at a NUL
  // byte), or nullopt when no key is.
  std::optional<std::string_view> lookup(std::string_view chunk) const;

  // Normalises `t` in place.
  void normalize(AlignedText& t) const;

 private:
  // Where lookup() found a replacement: [begin, end) of replacements_ (offsets, not views, so
  // that moving the object, whose string may be short enough to live inline, keeps them valid).
  struct Found {
    std::uint32_t begin = 0;
    std::uint32_t end = 0;
    bool found = false;
  };
  Found find(std::string_view chunk) const;
  std::optional<std::string_view> view(Found f) const;

  std::vector<std::uint32_t> units_;
  std::string replacements_;
  // find() of each one-byte ASCII string: ASCII text is one byte per grapheme (but CR LF).
  std::vector<Found> ascii_;
};

}  // namespace embd::tokenizer
