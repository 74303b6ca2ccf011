// AlignedText edits: see aligned_text.h.
#include "tokenizer/aligned_text.h"

#include "tokenizer/unicode_text.h"

namespace embd::tokenizer {

void AlignedText::reset(std::string_view source, bool track) {
  text.assign(source);
  tracked = track;
  align.clear();
  if (!track) return;
  align.reserve(source.size());
  for (std::size_t i = 0; i < source.size();) {
    const std::size_t end = unicode::char_end(source, i);
    align.insert(align.end(), end - i, TokenOffsets{i, end});
    i = end;
  }
}

void apply_edits(AlignedText& t, std::span<const CharEdit> edits, std::size_t skip_chars) {
  const std::string& old = t.text;
  std::size_t cursor = 0;  // the next old character not yet taken
  for (std::size_t k = 0; k < skip_chars && cursor < old.size(); ++k) {
    cursor = unicode::char_end(old, cursor);
  }
  std::string text;
  std::vector<TokenOffsets> align;
  text.reserve(old.size());
  if (t.tracked) align.reserve(old.size());
  for (const CharEdit& e : edits) {
    TokenOffsets a{};
    if (e.change > 0) {
      if (t.tracked && cursor > 0) a = t.align[cursor - 1];
    } else {
      // More characters taken than the old text had cannot come from a consistent edit list;
      // the last alignment stands in (HF would index out of bounds).
      if (t.tracked && !t.align.empty()) a = t.align[std::min(cursor, old.size() - 1)];
      if (cursor < old.size()) cursor = unicode::char_end(old, cursor);
      for (int k = 0; k < -e.change && cursor < old.size(); ++k) cursor = unicode::char_end(old, cursor);
    }
    const std::size_t before = text.size();
    unicode::append_utf8(text, e.c);
    if (t.tracked) align.insert(align.end(), text.size() - before, a);
  }
  t.text = std::move(text);
  t.align = std::move(align);
}

void replace_ranges(AlignedText& t, std::span<const TokenOffsets> matches, std::string_view content) {
  if (matches.empty()) return;
  std::string text;
  std::vector<TokenOffsets> align;
  text.reserve(t.text.size());
  if (t.tracked) align.reserve(t.align.size());
  std::size_t pos = 0;
  for (const TokenOffsets& m : matches) {
    text.append(t.text, pos, m.begin - pos);
    text.append(content);
    if (t.tracked) {
      align.insert(align.end(), t.align.begin() + static_cast<std::ptrdiff_t>(pos),
                   t.align.begin() + static_cast<std::ptrdiff_t>(m.begin));
      align.insert(align.end(), content.size(), t.align[m.end - 1]);
    }
    pos = m.end;
  }
  text.append(t.text, pos);
  if (t.tracked) align.insert(align.end(), t.align.begin() + static_cast<std::ptrdiff_t>(pos), t.align.end());
  t.text = std::move(text);
  t.align = std::move(align);
}

void strip(AlignedText& t, bool left, bool right) {
  std::size_t begin = 0, end = t.text.size();
  if (left) {
    while (begin < end) {
      std::size_t next = begin;
      if (!unicode::is_whitespace(unicode::decode_utf8(t.text, next))) break;
      begin = next;
    }
  }
  if (right) {
    while (end > begin) {
      std::size_t start = unicode::char_start(t.text, end - 1);
      std::size_t at = start;
      if (!unicode::is_whitespace(unicode::decode_utf8(t.text, at))) break;
      end = start;
    }
  }
  if (begin == 0 && end == t.text.size()) return;
  t.text = t.text.substr(begin, end - begin);
  if (t.tracked) {
    t.align.erase(t.align.begin() + static_cast<std::ptrdiff_t>(end), t.align.end());
    t.align.erase(t.align.begin(), t.align.begin() + static_cast<std::ptrdiff_t>(begin));
  }
}

}  // namespace embd::tokenizer
