// Character classes and normalisation; see unicode_text.h.
#include "tokenizer/unicode_text.h"

#include <utf8proc.h>

#include <array>
#include <cstring>
#include <vector>

namespace embd::tokenizer::unicode {
namespace {

enum AsciiClass : std::uint8_t { kWs = 1, kCtrl = 2, kPunct = 4 };

constexpr std::array<std::uint8_t, 128> make_ascii_classes() {
  std::array<std::uint8_t, 128> t{};
  for (int c = 0; c < 32; ++c) t[c] = kCtrl;
  t[127] = kCtrl;
  for (int c : {'\t', '\n', '\r'}) t[c] = kWs;
  t[0x0B] = kWs | kCtrl;  // VT and FF are White_Space but, being Cc, clean_text drops them
  t[0x0C] = kWs | kCtrl;
  t[' '] = kWs;
  for (int c = 0x21; c <= 0x7E; ++c) {
    bool alnum = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    if (!alnum) t[c] = kPunct;
  }
  return t;
}
constexpr std::array<std::uint8_t, 128> kAscii = make_ascii_classes();

utf8proc_category_t category(char32_t c) {
  return static_cast<utf8proc_category_t>(utf8proc_category(static_cast<utf8proc_int32_t>(c)));
}

int combining_class(char32_t c) {
  return utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->combining_class;
}

// Stable insertion sort of each run of combining marks by combining class (canonical ordering).
void canonical_order(std::vector<char32_t>& cps) {
  for (std::size_t i = 1; i < cps.size(); ++i) {
    int cc = combining_class(cps[i]);
    if (cc == 0) continue;
    std::size_t j = i;
    while (j > 0) {
      int prev = combining_class(cps[j - 1]);
      if (prev <= cc) break;
      std::swap(cps[j - 1], cps[j]);
      --j;
    }
  }
}

void append_lower(std::string& out, char32_t c, bool lowercase) {
  if (!lowercase) return append_utf8(out, c);
  if (c == 0x130) {  // the one unconditional multi-char lowercase mapping (SpecialCasing.txt)
    out.push_back('i');
    return append_utf8(out, 0x307);
  }
  append_utf8(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
}

// Normalises a run of non-ASCII text (text[begin, end)).
void normalize_run(std::string_view text, std::size_t begin, std::size_t end,
                   const NormalizeFlags& flags, std::string& out) {
  thread_local std::vector<char32_t> cps;
  thread_local std::vector<char32_t> decomposed;
  cps.clear();
  for (std::size_t i = begin; i < end;) {
    char32_t c = decode_utf8(text, i);
    if (flags.clean_text) {
      if (c == 0xFFFD || is_control(c)) continue;
      if (is_whitespace(c)) c = ' ';
    }
    if (flags.handle_chinese_chars && is_cjk(c)) {
      cps.insert(cps.end(), {U' ', c, U' '});
    } else {
      cps.push_back(c);
    }
  }
  const std::vector<char32_t>* chars = &cps;
  if (flags.strip_accents) {
    decomposed.clear();
    for (char32_t c : cps) {
      utf8proc_int32_t buf[32];
      int last_boundclass = 0;
      utf8proc_ssize_t n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buf, 32,
                                                   UTF8PROC_DECOMPOSE, &last_boundclass);
      if (n <= 0 || n > 32) {
        decomposed.push_back(c);
        continue;
      }
      for (utf8proc_ssize_t k = 0; k < n; ++k) decomposed.push_back(static_cast<char32_t>(buf[k]));
    }
    canonical_order(decomposed);
    chars = &decomposed;
  }
  for (char32_t c : *chars) {
    if (flags.strip_accents && category(c) == UTF8PROC_CATEGORY_MN) continue;
    append_lower(out, c, flags.lowercase);
  }
}

}  // namespace

std::size_t validate_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    if (i + 8 <= n) {  // skip ASCII eight bytes at a time
      std::uint64_t w;
      std::memcpy(&w, s + i, 8);
      if ((w & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    unsigned char b = s[i];
    if (b < 0x80) { ++i; continue; }
    std::size_t len;
    char32_t min;
    if (b >= 0xC2 && b <= 0xDF) { len = 2; min = 0x80; }
    else if (b >= 0xE0 && b <= 0xEF) { len = 3; min = 0x800; }
    else if (b >= 0xF0 && b <= 0xF4) { len = 4; min = 0x10000; }
    else return i;
    if (i + len > n) return i;
    for (std::size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
    }
    std::size_t j = i;
    char32_t c = decode_utf8(text, j);
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

bool is_whitespace(char32_t c) {
  if (c < 0x80) return (kAscii[c] & kWs) != 0;
  switch (c) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

bool is_control(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  if (c < 0x80) return (kAscii[c] & kCtrl) != 0;
  auto cat = category(c);
  return cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF || cat == UTF8PROC_CATEGORY_CO;
}

bool is_punctuation(char32_t c) {
  if (c < 0x80) return (kAscii[c] & kPunct) != 0;
  auto cat = category(c);
  return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_word_char(char32_t c) {
  if (c < 0x80) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
  }
  if (c == 0x200C || c == 0x200D) return true;
  auto cat = category(c);
  return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_ND) ||
         cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_PC;
}

bool is_letter(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
  auto cat = category(c);
  return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
}

bool is_number(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  auto cat = category(c);
  return cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO;
}

void normalize_bert(std::string_view text, const NormalizeFlags& flags, std::string& out) {
  const std::size_t n = text.size();
  out.reserve(out.size() + n + n / 8);
  std::size_t i = 0;
  while (i < n) {
    auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      ++i;
      std::uint8_t cls = kAscii[b];
      if (flags.clean_text) {
        if (cls & kCtrl) continue;  // NUL, controls, VT, FF, DEL
        if (cls & kWs) { out.push_back(' '); continue; }
      }
      if (flags.lowercase && b >= 'A' && b <= 'Z') b = static_cast<unsigned char>(b + 32);
      out.push_back(static_cast<char>(b));
      continue;
    }
    std::size_t end = i + 1;
    while (end < n && static_cast<unsigned char>(text[end]) >= 0x80) ++end;
    normalize_run(text, i, end, flags, out);
    i = end;
  }
}

}  // namespace embd::tokenizer::unicode
