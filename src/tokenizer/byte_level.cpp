// Byte-level pre-tokenisation: see byte_level.h. The pattern is matched by hand, not by a regex
// engine: one pass over byte tables for ASCII, utf8proc's categories for the rest.
#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/unicode_text.h"

namespace embd::tokenizer::byte_level {
namespace {

enum class CharClass : std::uint8_t { kLetter, kNumber, kSpace, kOther };

constexpr std::array<CharClass, 128> make_ascii_classes() {
  std::array<CharClass, 128> t{};
  for (int c = 0; c < 128; ++c) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) {
      t[c] = CharClass::kLetter;
    } else if (c >= '0' && c <= '9') {
      t[c] = CharClass::kNumber;
    } else if (c == ' ' || (c >= '\t' && c <= '\r')) {  // \s: White_Space
      t[c] = CharClass::kSpace;
    } else {
      t[c] = CharClass::kOther;
    }
  }
  return t;
}
constexpr std::array<CharClass, 128> kAsciiClass = make_ascii_classes();

// The class of the character at text[i]; `next` is set past it.
CharClass class_at(std::string_view text, std::size_t i, std::size_t& next) {
  const auto b = static_cast<unsigned char>(text[i]);
  if (b < 0x80) {
    next = i + 1;
    return kAsciiClass[b];
  }
  next = i;
  const char32_t c = unicode::decode_utf8(text, next);
  if (unicode::is_whitespace(c)) return CharClass::kSpace;
  if (unicode::is_letter(c)) return CharClass::kLetter;
  if (unicode::is_number(c)) return CharClass::kNumber;
  return CharClass::kOther;
}

// The end of the run of `cls` characters that starts at text[i].
std::size_t run_end(std::string_view text, std::size_t i, CharClass cls) {
  while (i < text.size()) {
    std::size_t next;
    if (class_at(text, i, next) != cls) break;
    i = next;
  }
  return i;
}

constexpr bool stands_for_itself(int b) {
  return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

constexpr std::array<char32_t, 256> make_byte_chars() {
  std::array<char32_t, 256> t{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) t[b] = stands_for_itself(b) ? static_cast<char32_t>(b) : next++;
  return t;
}
constexpr std::array<char32_t, 256> kByteChars = make_byte_chars();

// Inverse of kByteChars for U+0100..U+0143.
constexpr std::array<std::uint8_t, 68> make_shifted_bytes() {
  std::array<std::uint8_t, 68> t{};
  for (int b = 0; b < 256; ++b) {
    if (!stands_for_itself(b)) t[kByteChars[b] - 256] = static_cast<std::uint8_t>(b);
  }
  return t;
}
constexpr std::array<std::uint8_t, 68> kShiftedBytes = make_shifted_bytes();

}  // namespace

std::size_t pretoken_end(std::string_view text, std::size_t pos) {
  const std::size_t n = text.size();
  const char first = text[pos];
  // 's 't 're 've 'm 'll 'd (case-sensitive, as in GPT-2)
  if (first == '\'' && pos + 1 < n) {
    const char c1 = text[pos + 1];
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return pos + 2;
    if (pos + 2 < n) {
      const char c2 = text[pos + 2];
      if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
        return pos + 3;
      }
    }
  }
  std::size_t next;
  const CharClass cls = class_at(text, pos, next);
  // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": one plain space may lead a run.
  if (first == ' ' && next < n) {
    std::size_t after;
    const CharClass following = class_at(text, next, after);
    if (following != CharClass::kSpace) return run_end(text, after, following);
  }
  if (cls != CharClass::kSpace) return run_end(text, next, cls);
  // "\s+(?!\S)": a whitespace run at the end of the text, or all but its last character when
  // a non-space follows (that character then leads the next match); else "\s+" (one character).
  std::size_t last = pos;
  std::size_t end = next;
  while (end < n) {
    std::size_t after;
    if (class_at(text, end, after) != CharClass::kSpace) break;
    last = end;
    end = after;
  }
  if (end == n) return end;
  return last > pos ? last : end;
}

char32_t byte_char(std::uint8_t byte) { return kByteChars[byte]; }

bool decode_token(std::string_view token, std::string& bytes) {
  bytes.clear();
  std::size_t i = 0;
  while (i < token.size()) {
    const char32_t c = unicode::decode_utf8(token, i);
    if (c < 256 && stands_for_itself(static_cast<int>(c))) {
      bytes.push_back(static_cast<char>(c));
    } else if (c >= 256 && c < 256 + kShiftedBytes.size()) {
      bytes.push_back(static_cast<char>(kShiftedBytes[c - 256]));
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace embd::tokenizer::byte_level
