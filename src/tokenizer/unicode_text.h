// Character classes and transforms the tokenizers need, matching Hugging Face `tokenizers`
// (Rust): White_Space, "control" (Cc/Cf/Co, unassigned code points kept), punctuation (ASCII
// punctuation or P*), BERT's CJK ranges, NFD without Mn, and Rust's per-char full lowercase.
// ASCII is answered from tables; other code points go to utf8proc.
//
// Thread-safety: pure functions over constant tables. Errors: validate_utf8 reports the byte
// offset of the first invalid sequence; every other function expects valid input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace embd::tokenizer::unicode {

// Offset of the first byte that does not start a valid UTF-8 sequence (overlong forms,
// surrogates and code points above U+10FFFF are invalid), or npos when `text` is valid.
std::size_t validate_utf8(std::string_view text);

// A byte inside a multi-byte character (10xxxxxx).
inline bool is_continuation_byte(char b) { return (static_cast<unsigned char>(b) & 0xC0) == 0x80; }

// The start of the character that holds byte text[i].
inline std::size_t char_start(std::string_view text, std::size_t i) {
  while (i > 0 && is_continuation_byte(text[i])) --i;
  return i;
}

// The end of the character that holds byte text[i].
inline std::size_t char_end(std::string_view text, std::size_t i) {
  ++i;
  while (i < text.size() && is_continuation_byte(text[i])) ++i;
  return i;
}

// Decodes the code point at text[i] (text must be valid UTF-8) and advances i past it.
inline char32_t decode_utf8(std::string_view text, std::size_t& i) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  unsigned char b = s[i];
  if (b < 0x80) { ++i; return b; }
  if (b < 0xE0) { char32_t c = ((b & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu); i += 2; return c; }
  if (b < 0xF0) {
    char32_t c = ((b & 0x0Fu) << 12) | ((s[i + 1] & 0x3Fu) << 6) | (s[i + 2] & 0x3Fu);
    i += 3;
    return c;
  }
  char32_t c = ((b & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12) | ((s[i + 2] & 0x3Fu) << 6) |
               (s[i + 3] & 0x3Fu);
  i += 4;
  return c;
}

inline void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    char b[2] = {static_cast<char>(0xC0 | (c >> 6)), static_cast<char>(0x80 | (c & 0x3F))};
    out.append(b, 2);
  } else if (c < 0x10000) {
    char b[3] = {static_cast<char>(0xE0 | (c >> 12)), static_cast<char>(0x80 | ((c >> 6) & 0x3F)),
                 static_cast<char>(0x80 | (c & 0x3F))};
    out.append(b, 3);
  } else {
    char b[4] = {static_cast<char>(0xF0 | (c >> 18)), static_cast<char>(0x80 | ((c >> 12) & 0x3F)),
                 static_cast<char>(0x80 | ((c >> 6) & 0x3F)), static_cast<char>(0x80 | (c & 0x3F))};
    out.append(b, 4);
  }
}

// Rust char::is_whitespace (the Unicode White_Space property).
bool is_whitespace(char32_t c);
// BertNormalizer's control test: Cc, Cf or Co, except \t \n \r (which are whitespace).
bool is_control(char32_t c);
// ASCII punctuation or Unicode P*.
bool is_punctuation(char32_t c);
// The CJK ideograph ranges of HF's BertNormalizer.
bool is_cjk(char32_t c);
// \w of the regex crate, for single_word added tokens: alphabetic, marks, Nd, Pc, joiners.
bool is_word_char(char32_t c);
// General category L* (\p{L}) and N* (\p{N}), for the GPT-2 pre-tokenizer pattern.
bool is_letter(char32_t c);
bool is_number(char32_t c);

// Options of BertNormalizer.
struct NormalizeFlags {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  bool strip_accents = true;
  bool lowercase = true;
};

// Appends the BertNormalizer output of `text` (valid UTF-8) to `out`.
void normalize_bert(std::string_view text, const NormalizeFlags& flags, std::string& out);

}  // namespace embd::tokenizer::unicode
