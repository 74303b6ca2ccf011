// WordPieceTokenizer: see wordpiece_tokenizer.h. The hot path (ASCII text) runs on byte tables:
// one normalisation pass into a reused buffer, then one pre-tokenisation pass that hands
// string_view words to a longest-match WordPiece over open-addressing hash maps.
#include "tokenizer/wordpiece_tokenizer.h"

#include <algorithm>
#include <atomic>

namespace embd::tokenizer {
namespace {

enum PreClass : std::uint8_t { kOther = 0, kSpace = 1, kPunct = 2 };

constexpr std::array<std::uint8_t, 128> make_pre_classes() {
  std::array<std::uint8_t, 128> t{};
  for (int c : {' ', '\t', '\n', '\r', '\v', '\f'}) t[c] = kSpace;
  for (int c = 0x21; c <= 0x7E; ++c) {
    bool alnum = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    if (!alnum) t[c] = kPunct;
  }
  return t;
}
constexpr std::array<std::uint8_t, 128> kPreClass = make_pre_classes();

bool is_continuation_byte(char b) { return (static_cast<unsigned char>(b) & 0xC0) == 0x80; }

char32_t char_before(std::string_view text, std::size_t& pos) {
  std::size_t q = pos - 1;
  while (q > 0 && is_continuation_byte(text[q])) --q;
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

Result<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::create(TokenizerSpec spec) {
  std::unique_ptr<WordPieceTokenizer> t(new WordPieceTokenizer(std::move(spec)));
  EMBD_TRY(t->build());
  return t;
}

Status WordPieceTokenizer::build() {
  const std::string& prefix = spec_.continuing_subword_prefix;
  std::int32_t max_id = -1;
  for (const auto& [token, id] : spec_.vocab) {
    vocab_.add(token, id);
    if (!prefix.empty() && token.size() > prefix.size() && token.starts_with(prefix)) {
      continuation_.add(std::string_view(token).substr(prefix.size()), id);
    }
    max_id = std::max(max_id, id);
  }
  vocab_.build();
  continuation_.build();
  if (prefix.empty()) continuation_map_ = &vocab_;
  unk_id_ = vocab_.find(spec_.unk_token);
  if (unk_id_ < 0) {
    return invalid_model(spec_.source + ": field 'model.unk_token': \"" + spec_.unk_token +
                         "\" is not in model.vocab");
  }
  for (const AddedTokenSpec& t : spec_.added_tokens) {
    max_id = std::max(max_id, t.id);
    whitespace_in_added_ = whitespace_in_added_ || t.content.find_first_of(" \t\n\r") != std::string::npos;
    if (t.normalized && spec_.has_normalizer) {
      std::string pattern;
      unicode::normalize_bert(t.content, spec_.normalize, pattern);
      normalized_added_.add(t, std::move(pattern));
    } else if (t.normalized) {
      normalized_added_.add(t, t.content);
    } else {
      raw_added_.add(t, t.content);
    }
  }
  id_to_token_.assign(static_cast<std::size_t>(max_id) + 1, std::string());
  for (const auto& [token, id] : spec_.vocab) id_to_token_[id] = token;
  for (const AddedTokenSpec& t : spec_.added_tokens) id_to_token_[t.id] = t.content;
  for (std::int32_t id : spec_.prefix_ids) max_id = std::max(max_id, id);
  for (std::int32_t id : spec_.suffix_ids) max_id = std::max(max_id, id);
  if (static_cast<std::size_t>(max_id) >= id_to_token_.size()) {
    return invalid_model(spec_.source + ": field 'post_processor': a special token id (" +
                         std::to_string(max_id) + ") is outside the vocabulary");
  }
  cls_id_ = !spec_.prefix_ids.empty() ? spec_.prefix_ids.front() : token_to_id("[CLS]");
  sep_id_ = !spec_.suffix_ids.empty() ? spec_.suffix_ids.back() : token_to_id("[SEP]");
  pad_id_ = spec_.pad_id >= 0 ? spec_.pad_id : std::max(token_to_id("[PAD]"), 0);
  return ok_status();
}

std::string WordPieceTokenizer::id_to_token(std::int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size()) return {};
  return id_to_token_[id];
}

std::int32_t WordPieceTokenizer::token_to_id(std::string_view token) const {
  for (const AddedTokenSpec& t : spec_.added_tokens) {
    if (t.content == token) return t.id;
  }
  return vocab_.find(token);
}

std::string WordPieceTokenizer::summary() const {
  std::string s = "WordPiece, " + std::to_string(vocab_size()) + " tokens";
  if (spec_.has_normalizer) {
    s += spec_.normalize.lowercase ? ", lowercase" : ", cased";
    if (spec_.normalize.strip_accents) s += ", strip accents";
  }
  s += ", " + (spec_.template_text.empty() ? std::string("no specials") : spec_.template_text);
  return s;
}

void WordPieceTokenizer::word_piece(std::string_view word, std::vector<std::int32_t>& out,
                                    std::vector<TokenOffsets>* offsets, std::size_t base) const {
  const auto unknown_word = [&] {
    out.push_back(unk_id_);
    if (offsets) offsets->push_back({base, base + word.size()});
  };
  if (word.size() > spec_.max_input_chars_per_word) {
    std::size_t chars = 0;
    for (char b : word) chars += is_continuation_byte(b) ? 0 : 1;
    if (chars > spec_.max_input_chars_per_word) return unknown_word();
  }
  const std::size_t mark = out.size();
  const std::size_t offsets_mark = offsets ? offsets->size() : 0;
  std::size_t start = 0;
  while (start < word.size()) {
    const VocabMap& map = start == 0 ? vocab_ : *continuation_map_;
    std::size_t end = std::min(word.size(), start + map.max_key_bytes());
    while (end > start && end < word.size() && is_continuation_byte(word[end])) --end;
    std::int32_t id = -1;
    while (end > start) {
      id = map.find(word.substr(start, end - start));
      if (id >= 0) break;
      do {
        --end;
      } while (end > start && is_continuation_byte(word[end]));
    }
    if (id < 0) {  // one missing piece makes the whole word [UNK]
      out.resize(mark);
      if (offsets) offsets->resize(offsets_mark);
      return unknown_word();
    }
    out.push_back(id);
    if (offsets) offsets->push_back({base + start, base + end});
    start = end;
  }
}

void WordPieceTokenizer::pre_tokenize(std::string_view text, std::vector<std::int32_t>& out,
                                      std::vector<TokenOffsets>* offsets, std::size_t base) const {
  if (spec_.pre_tokenizer == PreTokenizerKind::kNone) {
    if (!text.empty()) word_piece(text, out, offsets, base);
    return;
  }
  const bool split_punct = spec_.pre_tokenizer == PreTokenizerKind::kBert;
  const std::size_t n = text.size();
  std::size_t word_start = std::string_view::npos;
  auto flush = [&](std::size_t end) {
    if (word_start != std::string_view::npos) {
      word_piece(text.substr(word_start, end - word_start), out, offsets, base + word_start);
      word_start = std::string_view::npos;
    }
  };
  std::size_t i = 0;
  while (i < n) {
    auto b = static_cast<unsigned char>(text[i]);
    std::size_t next = i + 1;
    std::uint8_t cls = kOther;
    if (b < 0x80) {
      cls = kPreClass[b];
      if (cls == kPunct && !split_punct) cls = kOther;
    } else {
      next = i;
      char32_t c = unicode::decode_utf8(text, next);
      if (unicode::is_whitespace(c)) {
        cls = kSpace;
      } else if (split_punct && unicode::is_punctuation(c)) {
        cls = kPunct;
      }
    }
    if (cls == kOther) {
      if (word_start == std::string_view::npos) word_start = i;
    } else {
      flush(i);
      if (cls == kPunct) word_piece(text.substr(i, next - i), out, offsets, base + i);
    }
    i = next;
  }
  flush(n);
}

void WordPieceTokenizer::encode_normalized(std::string_view text, std::vector<std::int32_t>& out,
                                           std::vector<TokenOffsets>* offsets, std::size_t base) const {
  if (offsets != nullptr) return encode_normalized_with_offsets(text, out, *offsets, base);
  thread_local std::string normalized;
  std::string_view view = text;
  if (spec_.has_normalizer) {
    normalized.clear();
    unicode::normalize_bert(text, spec_.normalize, normalized);
    view = normalized;
  }
  split_normalized(view, out, nullptr);
}

void WordPieceTokenizer::encode_normalized_with_offsets(std::string_view text, std::vector<std::int32_t>& out,
                                                        std::vector<TokenOffsets>& offsets,
                                                        std::size_t base) const {
  std::string normalized;
  std::vector<TokenOffsets> source;  // per normalised byte: its character's bytes in `text`
  if (spec_.has_normalizer) {
    for (std::size_t i = 0; i < text.size();) {
      std::size_t next = i;
      (void)unicode::decode_utf8(text, next);
      const std::size_t before = normalized.size();
      unicode::normalize_bert(text.substr(i, next - i), spec_.normalize, normalized);
      source.insert(source.end(), normalized.size() - before, TokenOffsets{i, next});
      i = next;
    }
  } else {
    normalized.assign(text);
    for (std::size_t i = 0; i < text.size(); ++i) source.push_back({i, i + 1});
  }
  std::vector<TokenOffsets> local;
  split_normalized(normalized, out, &local);
  for (const TokenOffsets& t : local) {  // tokens are never empty
    offsets.push_back({base + source[t.begin].begin, base + source[t.end - 1].end});
  }
}

void WordPieceTokenizer::split_normalized(std::string_view view, std::vector<std::int32_t>& out,
                                          std::vector<TokenOffsets>* offsets) const {
  if (normalized_added_.empty()) return pre_tokenize(view, out, offsets, 0);
  std::vector<AddedTokenMatcher::Match> matches;
  normalized_added_.find(view, matches);
  std::size_t pos = 0;
  for (const auto& m : matches) {
    if (m.begin > pos) pre_tokenize(view.substr(pos, m.begin - pos), out, offsets, pos);
    out.push_back(m.id);
    if (offsets) offsets->push_back({m.begin, m.end});
    pos = m.end;
  }
  if (pos < view.size()) pre_tokenize(view.substr(pos), out, offsets, pos);
}

void WordPieceTokenizer::encode_body(std::string_view text, std::vector<std::int32_t>& out,
                                     std::vector<TokenOffsets>* offsets) const {
  if (raw_added_.empty()) return encode_normalized(text, out, offsets, 0);
  thread_local std::vector<AddedTokenMatcher::Match> matches;
  matches.clear();
  raw_added_.find(text, matches);
  std::size_t pos = 0;
  for (const auto& m : matches) {
    if (m.begin > pos) encode_normalized(text.substr(pos, m.begin - pos), out, offsets, pos);
    out.push_back(m.id);
    if (offsets) offsets->push_back({m.begin, m.end});
    pos = m.end;
  }
  if (pos < text.size()) encode_normalized(text.substr(pos), out, offsets, pos);
}

namespace {

// Long texts are cut into pieces of about this size when a batch has too few texts to occupy the
// pool (a 2,048-token text is ~10 KB: ~0.15 ms on one thread).
constexpr std::size_t kPieceBytes = 4u << 10;

bool ascii_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

std::string bad_utf8_message(std::size_t offset) {
  return "text: invalid UTF-8 at byte offset " + std::to_string(offset);
}

Status utf8_ok(std::string_view text) {
  const std::size_t bad = unicode::validate_utf8(text);
  if (bad == std::string_view::npos) return ok_status();
  return invalid_argument(bad_utf8_message(bad));
}

// Offsets {0, ..., text.size()} that cut `text` into pieces of about kPieceBytes, each cut just
// after an ASCII whitespace byte. Whitespace ends every word and belongs to no token, and an
// ASCII byte is never inside a multi-byte character, so the pieces encode (and validate) apart
// exactly as the whole text does, provided no added token contains whitespace.
std::vector<std::size_t> piece_cuts(std::string_view text) {
  std::vector<std::size_t> cuts{0};
  for (std::size_t at = kPieceBytes; at < text.size(); at = std::max(at + kPieceBytes, cuts.back() + 1)) {
    std::size_t c = at;
    while (c < text.size() && !ascii_space(text[c])) ++c;
    if (c >= text.size()) break;
    cuts.push_back(c + 1);
  }
  cuts.push_back(text.size());
  return cuts;
}

}  // namespace

Result<Encoding> WordPieceTokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  EMBD_TRY(utf8_ok(text));
  thread_local std::vector<std::int32_t> body;
  body.clear();
  if (options.offsets) {
    std::vector<TokenOffsets> offsets;
    encode_body(text, body, &offsets);
    return finish(body, &offsets, options);
  }
  encode_body(text, body);
  return finish(body, nullptr, options);
}

Result<Encoding> WordPieceTokenizer::finish(const std::vector<std::int32_t>& body,
                                            const std::vector<TokenOffsets>* body_offsets,
                                            const EncodeOptions& options) const {
  const std::size_t n_special =
      options.add_special_tokens ? spec_.prefix_ids.size() + spec_.suffix_ids.size() : 0;
  Encoding enc;
  enc.untruncated_length = body.size() + n_special;
  std::size_t begin = 0, end = body.size();
  if (options.max_length > 0 && enc.untruncated_length > options.max_length) {
    if (options.max_length < n_special) {
      return invalid_argument("max_length " + std::to_string(options.max_length) +
                              " is smaller than the " + std::to_string(n_special) +
                              " special tokens of the template");
    }
    std::size_t budget = options.max_length - n_special;
    if (options.direction == TruncationDirection::kRight) {
      end = budget;
    } else {
      begin = body.size() - budget;
    }
  }
  enc.ids.reserve(end - begin + n_special);
  if (options.add_special_tokens) enc.ids = spec_.prefix_ids;
  enc.ids.insert(enc.ids.end(), body.begin() + static_cast<std::ptrdiff_t>(begin),
                 body.begin() + static_cast<std::ptrdiff_t>(end));
  if (options.add_special_tokens) {
    enc.ids.insert(enc.ids.end(), spec_.suffix_ids.begin(), spec_.suffix_ids.end());
  }
  if (body_offsets != nullptr) {
    const std::size_t prefix = options.add_special_tokens ? spec_.prefix_ids.size() : 0;
    enc.offsets.assign(enc.ids.size(), TokenOffsets{});
    std::copy(body_offsets->begin() + static_cast<std::ptrdiff_t>(begin),
              body_offsets->begin() + static_cast<std::ptrdiff_t>(end),
              enc.offsets.begin() + static_cast<std::ptrdiff_t>(prefix));
  }
  return enc;
}

std::vector<Result<Encoding>> WordPieceTokenizer::encode_batch(
    std::span<const std::string> texts, const EncodeOptions& options, ThreadPool* pool) const {
  std::vector<Result<Encoding>> results(texts.size(),
                                        Result<Encoding>(internal_error("batch item not run")));
  if (pool == nullptr || pool->size() <= 1) {
    for (std::size_t i = 0; i < texts.size(); ++i) results[i] = encode(texts[i], options);
    return results;
  }
  // Units of work: whole texts, and, when there are too few texts to occupy the pool, the pieces
  // of long texts (piece_cuts), so that 8 texts of 2,048 tokens or one of 8,192 spread as well
  // as 512 short ones. Offsets are never split (they are relative to the whole text).
  const auto threads = static_cast<std::size_t>(pool->size());
  const bool cut_long = !whitespace_in_added_ && !options.offsets && texts.size() < 2 * threads;
  struct Unit {
    std::size_t text, begin, end;  // a piece of texts[text]; end == npos: the whole text
  };
  constexpr std::size_t kWhole = std::string_view::npos;
  std::vector<Unit> units;
  units.reserve(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    if (cut_long && texts[i].size() >= 2 * kPieceBytes) {
      const auto cuts = piece_cuts(texts[i]);
      for (std::size_t k = 0; k + 1 < cuts.size(); ++k) units.push_back({i, cuts[k], cuts[k + 1]});
    } else {
      units.push_back({i, 0, kWhole});
    }
  }
  std::vector<std::vector<std::int32_t>> piece_ids(units.size());
  std::vector<std::size_t> piece_bad(units.size(), kWhole);  // first invalid byte, text-relative
  // Dynamic blocks, not one fixed chunk per thread: lengths vary widely. Up to 8 units a block
  // (fewer atomics), but at least ~4 blocks a thread so a small batch still spreads.
  const std::size_t block = std::clamp<std::size_t>(units.size() / (4 * threads), 1, 8);
  // No more helpers than blocks: a thread woken for nothing still costs a wake-up, and
  // concurrent batches share the pool.
  const std::size_t helpers = std::min(threads, (units.size() + block - 1) / block);
  std::atomic<std::size_t> next{0};
  pool->parallel_for(helpers, [&](std::size_t, std::size_t) {
    for (;;) {
      const std::size_t b = next.fetch_add(block, std::memory_order_relaxed);
      if (b >= units.size()) return;
      for (std::size_t u = b; u < std::min(units.size(), b + block); ++u) {
        const Unit& unit = units[u];
        const std::string_view text = texts[unit.text];
        if (unit.end == kWhole) {
          results[unit.text] = encode(text, options);
          continue;
        }
        const std::string_view piece = text.substr(unit.begin, unit.end - unit.begin);
        const std::size_t bad = unicode::validate_utf8(piece);
        if (bad != kWhole) {
          piece_bad[u] = unit.begin + bad;
        } else {
          encode_body(piece, piece_ids[u]);
        }
      }
    }
  });
  // Join the pieces of each cut text, in order; the first invalid byte is the text's.
  std::vector<std::int32_t> body;
  for (std::size_t u = 0; u < units.size();) {
    const std::size_t text = units[u].text;
    if (units[u].end == kWhole) {
      ++u;
      continue;
    }
    body.clear();
    std::size_t bad = kWhole;
    for (; u < units.size() && units[u].text == text; ++u) {
      if (bad == kWhole) bad = piece_bad[u];
      body.insert(body.end(), piece_ids[u].begin(), piece_ids[u].end());
    }
    results[text] = bad != kWhole ? Result<Encoding>(invalid_argument(bad_utf8_message(bad)))
                                  : finish(body, nullptr, options);
  }
  // results[i] is texts[i]'s: the caller names the input (its index may differ from i when it
  // tokenises part of a request).
  return results;
}

}  // namespace embd::tokenizer
