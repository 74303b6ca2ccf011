// BpeTokenizer: see bpe_tokenizer.h. Merging keeps the word's symbols in a linked list and the
// candidate pairs in a min-heap keyed by (rank, position), so a word of n bytes costs
// O(n log n) whatever its length (a 100 KB run of one letter is one word).
#include "tokenizer/bpe_tokenizer.h"

#include <algorithm>
#include <functional>

#include "tokenizer/byte_level.h"
#include "tokenizer/unicode_text.h"

namespace embd::tokenizer {
namespace {

using unicode::char_end;
using unicode::char_start;

bool is_ascii_non_space(char b) {
  const auto c = static_cast<unsigned char>(b);
  return c < 0x80 && c != ' ' && !(c >= '\t' && c <= '\r');
}

// A trimmable character of a token's text: the alphabet's space (U+0120) or whitespace.
bool is_trimmed_char(char32_t c) { return c == 0x120 || unicode::is_whitespace(c); }

}  // namespace

std::uint64_t BpeTokenizer::MergeTable::key_of(std::int32_t left, std::int32_t right) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) |
         static_cast<std::uint32_t>(right);
}

void BpeTokenizer::MergeTable::reserve(std::size_t merges) {
  std::size_t capacity = 16;
  while (capacity < 2 * merges) capacity *= 2;
  slots_.assign(capacity, Slot{});
  mask_ = capacity - 1;
}

void BpeTokenizer::MergeTable::put(std::int32_t left, std::int32_t right, Merge merge) {
  const std::uint64_t key = key_of(left, right);
  for (std::size_t i = VocabMap::hash({reinterpret_cast<const char*>(&key), sizeof key}) & mask_;;
       i = (i + 1) & mask_) {
    if (slots_[i].key == kEmpty || slots_[i].key == key) {
      slots_[i] = {key, merge};
      return;
    }
  }
}

const BpeTokenizer::Merge* BpeTokenizer::MergeTable::find(std::int32_t left, std::int32_t right) const {
  const std::uint64_t key = key_of(left, right);
  for (std::size_t i = VocabMap::hash({reinterpret_cast<const char*>(&key), sizeof key}) & mask_;;
       i = (i + 1) & mask_) {
    if (slots_[i].key == key) return &slots_[i].merge;
    if (slots_[i].key == kEmpty) return nullptr;
  }
}

Result<std::unique_ptr<BpeTokenizer>> BpeTokenizer::create(TokenizerSpec spec) {
  std::unique_ptr<BpeTokenizer> t(new BpeTokenizer(std::move(spec)));
  EMBD_TRY(t->build());
  return t;
}

Status BpeTokenizer::build() {
  if (spec_.pre_tokenizer != PreTokenizerKind::kByteLevel) {
    return unsupported(spec_.source + ": field 'pre_tokenizer': a BPE model needs the ByteLevel "
                       "pre-tokenizer (the only BPE alphabet supported is GPT-2's bytes)");
  }
  EMBD_TRY(build_common());
  const auto& merges = spec_.bpe.merges;
  merges_.reserve(merges.size());
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    const std::int32_t left_id = vocab_.find(left);
    const std::int32_t right_id = vocab_.find(right);
    const std::int32_t joined_id = vocab_.find(left + right);
    if (left_id < 0 || right_id < 0 || joined_id < 0) {
      const std::string& missing = left_id < 0 ? left : right_id < 0 ? right : left + right;
      return invalid_model(spec_.source + ": field 'model.merges[" + std::to_string(rank) +
                           "]': token \"" + missing + "\" is not in model.vocab");
    }
    merges_.put(left_id, right_id, {static_cast<std::int32_t>(rank), joined_id});
  }
  std::string utf8;
  for (int b = 0; b < 256; ++b) {
    utf8.clear();
    unicode::append_utf8(utf8, byte_level::byte_char(static_cast<std::uint8_t>(b)));
    byte_ids_[b] = vocab_.find(utf8);
  }
  if (spec_.bpe.ignore_merges) {
    std::string bytes;
    for (const auto& [token, id] : spec_.vocab) {
      if (byte_level::decode_token(token, bytes)) byte_vocab_.add(bytes, id);
    }
    byte_vocab_.build();
  }
  added_ids_.assign(id_to_token_.size(), false);
  for (const AddedTokenSpec& t : spec_.added_tokens) added_ids_[t.id] = true;
  if (!spec_.unk_token.empty()) {
    EMBD_ASSIGN_OR_RETURN(unk_id_, unk_token_id());
  }
  return ok_status();
}

std::string BpeTokenizer::summary() const {
  std::string s = "BPE (byte-level), " + std::to_string(vocab_size()) + " tokens, " +
                  std::to_string(spec_.bpe.merges.size()) + " merges";
  if (spec_.has_normalizer && spec_.normalize.lowercase) s += ", lowercase";
  if (spec_.byte_level.add_prefix_space) s += ", prefix space";
  return s + template_summary();
}

void BpeTokenizer::merge_word(std::string_view text, std::size_t begin, std::size_t end,
                              std::vector<std::int32_t>& out, std::vector<TokenOffsets>* offsets) const {
  const std::string_view word = text.substr(begin, end - begin);
  WordCache::segment_cached(cache_owner_, word, begin, out, offsets,
                            [&](std::vector<std::int32_t>& ids, std::vector<TokenOffsets>& pieces) {
                              merge_uncached(word, ids, &pieces);
                            });
}

void BpeTokenizer::merge_uncached(std::string_view text, std::vector<std::int32_t>& out,
                                  std::vector<TokenOffsets>* offsets) const {
  const std::size_t begin = 0, end = text.size();
  if (spec_.bpe.ignore_merges) {
    if (const std::int32_t id = byte_vocab_.find(text); id >= 0) {
      out.push_back(id);
      if (offsets) offsets->push_back({begin, end});
      return;
    }
  }
  struct Symbol {
    std::int32_t id;
    std::int32_t prev;
    std::int32_t next;
    std::uint32_t begin;  // bytes [begin, end) of text; begin == end: merged into its left
    std::uint32_t end;
  };
  struct Candidate {  // 16 bytes: a word of n bytes holds at most 3n of them
    std::int32_t rank;
    std::int32_t left;        // symbol index
    std::uint32_t right_end;  // where the right symbol ended: a merge on either side moves it
    std::int32_t joined_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;
  symbols.clear();
  heap.clear();
  bool last_unknown = false;
  for (std::size_t i = begin; i < end; ++i) {
    std::int32_t id = byte_ids_[static_cast<unsigned char>(text[i])];
    const bool unknown = id < 0;
    if (unknown) {  // as HF: an unknown byte is the unk token, or dropped when there is none
      if (unk_id_ < 0) continue;
      if (spec_.bpe.fuse_unk && last_unknown) {
        symbols.back().end = static_cast<std::uint32_t>(i + 1);
        continue;
      }
      id = unk_id_;
    }
    last_unknown = unknown;
    const auto index = static_cast<std::int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, static_cast<std::uint32_t>(i),
                       static_cast<std::uint32_t>(i + 1)});
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;
  const auto consider = [&](std::int32_t left) {
    const std::int32_t right = symbols[left].next;
    if (const Merge* m = merges_.find(symbols[left].id, symbols[right].id)) {
      heap.push_back({m->rank, left, symbols[right].end, m->id});
      std::push_heap(heap.begin(), heap.end(), std::greater<>());
    }
  };
  for (std::int32_t i = 0; i + 1 < static_cast<std::int32_t>(symbols.size()); ++i) consider(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& left = symbols[c.left];
    // Stale: the left symbol was merged away, or it or its right neighbour grew since (a
    // changed pair joins into another token, so HF, which compares that token, skips it too).
    if (left.begin == left.end || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    if (right.end != c.right_end) continue;
    left.id = c.joined_id;
    left.end = right.end;
    left.next = right.next;
    right.begin = right.end;
    if (left.next >= 0) symbols[left.next].prev = c.left;
    if (left.prev >= 0) consider(left.prev);
    if (left.next >= 0) consider(c.left);
  }
  for (std::int32_t i = 0; i >= 0; i = symbols[i].next) {
    out.push_back(symbols[i].id);
    if (offsets) offsets->push_back({symbols[i].begin, symbols[i].end});
  }
  release_if_large(symbols);
  release_if_large(heap);
}

void BpeTokenizer::encode_segment(std::string_view segment, bool /*text_start*/, std::vector<std::int32_t>& out,
                                  std::vector<TokenOffsets>* offsets, std::size_t base) const {
  if (segment.empty()) return;
  // As HF, the prefix space goes before every segment between added tokens.
  const std::size_t prefix = spec_.byte_level.add_prefix_space && segment.front() != ' ' ? 1 : 0;
  thread_local std::string spaced;
  std::string_view text = segment;
  if (prefix != 0) {
    spaced.assign(1, ' ');
    spaced.append(segment);
    text = spaced;
  }
  thread_local std::vector<TokenOffsets> local;
  local.clear();
  std::vector<TokenOffsets>* ranges = offsets != nullptr ? &local : nullptr;
  if (!spec_.byte_level.use_regex) {
    merge_word(text, 0, text.size(), out, ranges);
  } else {
    for (std::size_t pos = 0; pos < text.size();) {
      const std::size_t end = byte_level::pretoken_end(text, pos);
      merge_word(text, pos, end, out, ranges);
      pos = end;
    }
  }
  release_if_large(spaced);
  if (offsets == nullptr) return;
  // Bytes of `text` -> whole characters of `segment`; HF aligns the prefix space with the
  // segment's first character.
  const auto first_char_end = char_end(segment, 0);
  for (const TokenOffsets& t : local) {
    const std::size_t begin = t.begin < prefix ? 0 : char_start(segment, t.begin - prefix);
    const std::size_t last = t.end - 1;
    const std::size_t end = last < prefix ? first_char_end : char_end(segment, last - prefix);
    offsets->push_back({base + begin, base + end});
  }
  release_if_large(local);
}

void BpeTokenizer::encode_body(std::string_view text, std::vector<std::int32_t>& out,
                               std::vector<TokenOffsets>* offsets) const {
  const std::size_t mark = out.size();
  const std::size_t offsets_mark = offsets != nullptr ? offsets->size() : 0;
  PipelineTokenizer::encode_body(text, out, offsets);
  if (offsets != nullptr && spec_.trim_offsets) {
    trim_offsets(text, std::span(out).subspan(mark), std::span(*offsets).subspan(offsets_mark));
  }
}

void BpeTokenizer::trim_offsets(std::string_view text, std::span<const std::int32_t> ids,
                                std::span<TokenOffsets> offsets) const {
  std::string_view token;
  const auto count_trimmed = [&](bool from_front) {
    std::size_t n = 0;
    std::size_t i = 0;
    if (from_front) {
      while (i < token.size() && is_trimmed_char(unicode::decode_utf8(token, i))) ++n;
    } else {
      std::size_t end = token.size();
      while (end > 0) {
        std::size_t start = char_start(token, end - 1);
        std::size_t at = start;
        if (!is_trimmed_char(unicode::decode_utf8(token, at))) break;
        ++n;
        end = start;
      }
    }
    return n;
  };
  // HF counts characters of the token's text (for an added token the text it matched, spaces
  // taken by lstrip/rstrip included) and moves the offsets by that many characters.
  for (std::size_t i = 0; i < ids.size(); ++i) {
    TokenOffsets& o = offsets[i];
    token = added_ids_[ids[i]] ? text.substr(o.begin, o.end - o.begin) : std::string_view(id_to_token_[ids[i]]);
    std::size_t leading = count_trimmed(true);
    const std::size_t trailing = count_trimmed(false);
    if (leading > 0) {
      const bool first = i == 0 || o.begin == 0;
      if (first && spec_.trim_keeps_prefix_space && leading == 1) leading = 0;
      std::size_t b = o.begin;
      for (std::size_t k = 0; k < leading && b < o.end; ++k) b = char_end(text, b);
      o.begin = std::min(b, o.end);
    }
    if (trailing > 0) {
      std::size_t e = o.end;
      std::size_t k = 0;
      for (; k < trailing && e > 0; ++k) e = char_start(text, e - 1);
      if (k == trailing) o.end = std::max(e, o.begin);
    }
  }
}

std::size_t BpeTokenizer::next_cut(std::string_view text, std::size_t from) const {
  for (std::size_t c = std::max<std::size_t>(from, 1); c < text.size(); ++c) {
    if (text[c] == ' ' && is_ascii_non_space(text[c - 1])) return c;
  }
  return std::string_view::npos;
}

}  // namespace embd::tokenizer
