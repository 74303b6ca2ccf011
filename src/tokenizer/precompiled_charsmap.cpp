// PrecompiledCharsmap: see precompiled_charsmap.h.
#include "tokenizer/precompiled_charsmap.h"

#include <utf8proc.h>

#include <cstring>

#include "tokenizer/unicode_text.h"

namespace embd::tokenizer {
namespace {

// darts-clone's unit layout.
bool has_leaf(std::uint32_t unit) { return ((unit >> 8) & 1) != 0; }
std::uint32_t value(std::uint32_t unit) { return unit & 0x7FFFFFFFu; }
std::uint32_t label(std::uint32_t unit) { return unit & (0x80000000u | 0xFFu); }
std::size_t offset(std::uint32_t unit) { return (unit >> 10) << ((unit & (1u << 9)) >> 6); }

// The end of the extended grapheme cluster that starts at text[begin].
std::size_t cluster_end(std::string_view text, std::size_t begin) {
  std::size_t i = begin;
  char32_t prev = unicode::decode_utf8(text, i);
  utf8proc_int32_t state = 0;  // emoji and flag sequences; they never cross a cluster boundary
  while (i < text.size()) {
    const std::size_t at = i;
    const char32_t c = unicode::decode_utf8(text, i);
    const bool split = prev < 0x80 && c < 0x80
                           ? !(prev == '\r' && c == '\n')  // ASCII joins nothing but CR LF
                           : utf8proc_grapheme_break_stateful(static_cast<utf8proc_int32_t>(prev),
                                                              static_cast<utf8proc_int32_t>(c), &state);
    if (split) return at;
    prev = c;
  }
  return text.size();
}

// HF's replace() of Precompiled: `old_chars` characters become `norm`.
void push_replacement(std::vector<CharEdit>& edits, std::size_t old_chars, std::string_view norm) {
  std::size_t new_chars = 0;
  for (std::size_t i = 0; i < norm.size(); ++new_chars) edits.push_back({unicode::decode_utf8(norm, i), 0});
  const auto diff = static_cast<long>(new_chars) - static_cast<long>(old_chars);
  if (diff > 0) {
    for (long k = 0; k < diff; ++k) edits[edits.size() - 1 - static_cast<std::size_t>(k)].change = 1;
  } else if (diff < 0 && !edits.empty()) {
    // HF charges the removal to the last edit, even one of an earlier cluster; with none, the
    // removed characters are simply never taken (and later alignments shift, as in HF).
    edits.back().change += static_cast<int>(diff);
  }
}

}  // namespace

Result<PrecompiledCharsmap> PrecompiledCharsmap::parse(std::string_view blob, std::string_view field) {
  const auto bad = [&](const std::string& why) {
    return invalid_model(std::string(field) + ": " + why);
  };
  if (blob.size() < 4) return bad("shorter than its 4-byte header");
  std::uint32_t trie_bytes = 0;
  for (int k = 3; k >= 0; --k) trie_bytes = (trie_bytes << 8) | static_cast<unsigned char>(blob[k]);
  if (trie_bytes == 0 || trie_bytes % 4 != 0 || trie_bytes > blob.size() - 4) {
    return bad("trie size " + std::to_string(trie_bytes) + " does not fit the " +
               std::to_string(blob.size()) + "-byte charsmap");
  }
  PrecompiledCharsmap m;
  m.units_.resize(trie_bytes / 4);
  for (std::size_t u = 0; u < m.units_.size(); ++u) {
    const auto* p = reinterpret_cast<const unsigned char*>(blob.data() + 4 + 4 * u);
    m.units_[u] = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
  }
  m.replacements_.assign(blob.substr(4 + trie_bytes));
  if (const std::size_t at = unicode::validate_utf8(m.replacements_); at != std::string_view::npos) {
    return bad("replacement text is not UTF-8 (byte " + std::to_string(at) + ")");
  }
  m.ascii_.resize(128);
  for (int c = 0; c < 128; ++c) {
    const char ch = static_cast<char>(c);
    m.ascii_[c] = m.find(std::string_view(&ch, 1));
  }
  return m;
}

std::optional<std::string_view> PrecompiledCharsmap::view(Found f) const {
  if (!f.found) return std::nullopt;
  return std::string_view(replacements_).substr(f.begin, f.end - f.begin);
}

std::optional<std::string_view> PrecompiledCharsmap::lookup(std::string_view chunk) const {
  return view(find(chunk));
}

PrecompiledCharsmap::Found PrecompiledCharsmap::find(std::string_view chunk) const {
  const std::size_t n = units_.size();
  std::size_t node = offset(units_[0]);
  for (const char ch : chunk) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == 0) break;
    node ^= c;
    if (node >= n) return {};
    const std::uint32_t unit = units_[node];
    if (label(unit) != c) return {};
    node ^= offset(unit);
    if (node >= n) return {};
    if (has_leaf(unit)) {
      const std::size_t at = value(units_[node]);
      // Past the end, or inside a character (HF would panic there): a miss.
      if (at >= replacements_.size() || unicode::is_continuation_byte(replacements_[at])) return {};
      std::size_t end = replacements_.find('\0', at);
      if (end == std::string::npos) end = replacements_.size();
      return {static_cast<std::uint32_t>(at), static_cast<std::uint32_t>(end), true};
    }
  }
  return {};
}

void PrecompiledCharsmap::normalize(AlignedText& t) const {
  thread_local std::vector<CharEdit> edits;
  edits.clear();
  const std::string_view text = t.text;
  // Edits are written from the first change on: the unchanged characters before it are pushed
  // then, so a text the map leaves alone costs no edit list.
  std::size_t unchanged_until = 0;  // bytes [unchanged_until, ...) not yet in `edits`
  bool modified = false;
  const auto catch_up = [&](std::size_t to) {
    for (std::size_t i = unchanged_until; i < to;) edits.push_back({unicode::decode_utf8(text, i), 0});
    unchanged_until = to;
  };
  const auto lookup_chunk = [&](std::size_t begin, std::size_t end) {
    const auto c = static_cast<unsigned char>(text[begin]);
    return end - begin == 1 && c < 0x80 ? view(ascii_[c]) : lookup(text.substr(begin, end - begin));
  };
  const auto replace = [&](std::size_t begin, std::size_t end, std::string_view norm) {
    catch_up(begin);
    modified = true;
    std::size_t chars = 0;
    for (std::size_t i = begin; i < end; ++i) chars += !unicode::is_continuation_byte(text[i]);
    push_replacement(edits, chars, norm);
    unchanged_until = end;
  };
  for (std::size_t begin = 0; begin < text.size();) {
    // The common case first: an ASCII character the map keeps, a cluster of its own (CR may
    // join LF, and a non-ASCII character after it may be a combining mark).
    const auto c = static_cast<unsigned char>(text[begin]);
    if (c < 0x80 && c != '\r' && !ascii_[c].found &&
        (begin + 1 == text.size() || static_cast<unsigned char>(text[begin + 1]) < 0x80)) {
      ++begin;
      continue;
    }
    const std::size_t end = cluster_end(text, begin);
    const auto norm = end - begin < 6 ? lookup_chunk(begin, end) : std::nullopt;
    if (norm) {
      replace(begin, end, *norm);
    } else {
      for (std::size_t i = begin; i < end;) {
        const std::size_t at = i;
        (void)unicode::decode_utf8(text, i);
        if (const auto one = lookup_chunk(at, i)) replace(at, i, *one);
      }
    }
    begin = end;
  }
  if (modified) {
    catch_up(text.size());
    apply_edits(t, edits);
  }
  if (edits.capacity() > (1u << 20)) std::vector<CharEdit>().swap(edits);
}

}  // namespace embd::tokenizer
