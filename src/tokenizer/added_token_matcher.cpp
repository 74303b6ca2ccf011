// AddedTokenMatcher: see added_token_matcher.h.
#include "tokenizer/added_token_matcher.h"

#include <algorithm>

#include "tokenizer/unicode_text.h"

namespace embd::tokenizer {
namespace {

// The character that ends at `pos` (> 0); `pos` moves to its start.
char32_t char_before(std::string_view text, std::size_t& pos) {
  const std::size_t q = unicode::char_start(text, pos - 1);
  std::size_t i = q;
  char32_t c = unicode::decode_utf8(text, i);
  pos = q;
  return c;
}

}  // namespace

void AddedTokenMatcher::add(const AddedTokenSpec& token, std::string pattern) {
  if (pattern.empty()) return;
  first_byte_[static_cast<unsigned char>(pattern[0])] = true;
  tokens_.push_back({std::move(pattern), token});
}

void AddedTokenMatcher::find(std::string_view text, std::vector<Match>& out) const {
  const std::size_t n = text.size();
  std::size_t previous_end = 0;
  std::size_t p = 0;
  while (p < n) {
    if (!first_byte_[static_cast<unsigned char>(text[p])]) {
      ++p;
      continue;
    }
    const Token* best = nullptr;
    for (const Token& t : tokens_) {
      if ((best == nullptr || t.pattern.size() > best->pattern.size()) &&
          text.substr(p, t.pattern.size()) == t.pattern) {
        best = &t;
      }
    }
    if (best == nullptr) {
      ++p;
      continue;
    }
    std::size_t begin = p;
    std::size_t end = p + best->pattern.size();
    p = end;  // matches never overlap, even when this one is discarded (as in HF)
    const AddedTokenSpec& spec = best->spec;
    if (spec.single_word) {
      std::size_t q = begin;
      bool word_before = begin > 0 && unicode::is_word_char(char_before(text, q));
      q = end;
      bool word_after = end < n && unicode::is_word_char(unicode::decode_utf8(text, q));
      if (word_before || word_after) continue;
    }
    if (spec.lstrip) {
      while (begin > previous_end) {
        std::size_t q = begin;
        if (!unicode::is_whitespace(char_before(text, q))) break;
        begin = q;
      }
    }
    if (spec.rstrip) {
      while (end < n) {
        std::size_t q = end;
        if (!unicode::is_whitespace(unicode::decode_utf8(text, q))) break;
        end = q;
      }
    }
    out.push_back({begin, end, spec.id});
    previous_end = end;
    p = std::max(p, end);
  }
}

}  // namespace embd::tokenizer
