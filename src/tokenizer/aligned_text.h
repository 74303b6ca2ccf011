// Text being normalised together with, for every byte, the bytes of the source text it came from:
// the part of Hugging Face's NormalizedString that token offsets need. The edits below move those
// alignments exactly as HF's do (including its quirks), so offsets match HF's byte for byte.
//
// Ownership: plain values. Thread-safety: none (per-call scratch). Errors: none; every function
// expects valid UTF-8 and keeps it valid.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace embd::tokenizer {

struct AlignedText {
  std::string text;
  // Per byte of `text`: the source bytes of the character it belongs to. Empty when not tracked.
  std::vector<TokenOffsets> align;
  bool tracked = false;

  // `source` itself, each byte aligned with its own character when `track`.
  void reset(std::string_view source, bool track);
};

// One character of the new text and how it relates to the old one (HF's `(char, isize)`):
// change 0 takes the next old character's place, +1 is inserted (aligned with the old byte just
// before it), -n takes the next old character's place and also removes the n after it.
struct CharEdit {
  char32_t c;
  int change;
};

// Rewrites `t` as `edits` say, after dropping its first `skip_chars` characters (HF's
// NormalizedString::transform over the whole text).
void apply_edits(AlignedText& t, std::span<const CharEdit> edits, std::size_t skip_chars = 0);

// Replaces each [begin, end) of `matches` (in order, non-overlapping, non-empty) by `content`;
// every new byte is aligned with the last byte of the text it replaced, as HF's replace().
void replace_ranges(AlignedText& t, std::span<const TokenOffsets> matches, std::string_view content);

// Drops leading (`left`) and trailing (`right`) White_Space characters; the rest keep their
// alignments.
void strip(AlignedText& t, bool left, bool right);

}  // namespace embd::tokenizer
