// PipelineTokenizer: see pipeline_tokenizer.h.
#include "tokenizer/pipeline_tokenizer.h"

#include <algorithm>
#include <atomic>

namespace embd::tokenizer {
namespace {

// Long texts are cut into pieces of about this size when a batch has too few texts to occupy the
// pool (a 2,048-token text is ~10 KB: ~0.15 ms on one thread).
constexpr std::size_t kPieceBytes = 4u << 10;

std::string bad_utf8_message(std::size_t offset) {
  return "text: invalid UTF-8 at byte offset " + std::to_string(offset);
}

Status utf8_ok(std::string_view text) {
  const std::size_t bad = unicode::validate_utf8(text);
  if (bad == std::string_view::npos) return ok_status();
  return invalid_argument(bad_utf8_message(bad));
}

// The added tokens `matches` found in `text` go to `out` (with their bytes, when `offsets`);
// encode_gap(gap, offset) encodes the non-empty text before, between and after them.
template <typename EncodeGap>
void around_matches(std::string_view text, const std::vector<AddedTokenMatcher::Match>& matches,
                    std::vector<std::int32_t>& out, std::vector<TokenOffsets>* offsets,
                    EncodeGap encode_gap) {
  std::size_t pos = 0;
  for (const auto& m : matches) {
    if (m.begin > pos) encode_gap(text.substr(pos, m.begin - pos), pos);
    out.push_back(m.id);
    if (offsets) offsets->push_back({m.begin, m.end});
    pos = m.end;
  }
  if (pos < text.size()) encode_gap(text.substr(pos), pos);
}

}  // namespace

Status PipelineTokenizer::build_common() {
  EMBD_ASSIGN_OR_RETURN(chain_, NormalizerChain::build(spec_.normalizer_steps, spec_.source));
  std::int32_t max_id = -1;
  for (const auto& [token, id] : spec_.vocab) {
    vocab_.add(token, id);
    max_id = std::max(max_id, id);
  }
  vocab_.build();
  for (const AddedTokenSpec& t : spec_.added_tokens) {
    max_id = std::max(max_id, t.id);
    added_tokens_block_cuts_ = added_tokens_block_cuts_ || t.rstrip ||
                               t.content.find_first_of(" \t\n\r") != std::string::npos;
    if (t.normalized && !chain_.empty()) {
      AlignedText pattern;
      pattern.reset(t.content, false);
      chain_.normalize(pattern);
      if (!pattern.text.empty()) normalized_added_.add(t, std::move(pattern.text));
    } else if (t.normalized && spec_.has_normalizer) {
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
  const auto first_found = [&](std::initializer_list<std::string_view> names) {
    for (std::string_view name : names) {
      if (std::int32_t id = token_to_id(name); id >= 0) return id;
    }
    return std::int32_t{-1};
  };
  cls_id_ = !spec_.prefix_ids.empty() ? spec_.prefix_ids.front() : first_found({"[CLS]", "<s>"});
  sep_id_ = !spec_.suffix_ids.empty() ? spec_.suffix_ids.back() : first_found({"[SEP]", "</s>"});
  pad_id_ = spec_.pad_id >= 0 ? spec_.pad_id : std::max(first_found({"[PAD]", "<pad>"}), 0);
  return ok_status();
}

Result<std::int32_t> PipelineTokenizer::unk_token_id() const {
  const std::int32_t id = vocab_.find(spec_.unk_token);
  if (id < 0) {
    return invalid_model(spec_.source + ": field 'model.unk_token': \"" + spec_.unk_token +
                         "\" is not in model.vocab");
  }
  return id;
}

std::string PipelineTokenizer::template_summary() const {
  return ", " + (spec_.template_text.empty() ? std::string("no specials") : spec_.template_text);
}

std::string PipelineTokenizer::id_to_token(std::int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size()) return {};
  return id_to_token_[id];
}

std::int32_t PipelineTokenizer::token_to_id(std::string_view token) const {
  for (const AddedTokenSpec& t : spec_.added_tokens) {
    if (t.content == token) return t.id;
  }
  return vocab_.find(token);
}

void PipelineTokenizer::encode_normalized(std::string_view text, std::vector<std::int32_t>& out,
                                          std::vector<TokenOffsets>* offsets, std::size_t base) const {
  if (offsets != nullptr) return encode_normalized_with_offsets(text, out, *offsets, base);
  thread_local std::string normalized;
  thread_local AlignedText chained;
  std::string_view view = text;
  if (!chain_.empty()) {
    chained.reset(text, false);
    chain_.normalize(chained);
    view = chained.text;
  } else if (spec_.has_normalizer) {
    normalized.clear();
    unicode::normalize_bert(text, spec_.normalize, normalized);
    view = normalized;
  }
  split_normalized(view, base == 0, out, nullptr);
  if (chained.text.capacity() > (1u << 20)) chained = AlignedText();
}

void PipelineTokenizer::encode_normalized_with_offsets(std::string_view text, std::vector<std::int32_t>& out,
                                                       std::vector<TokenOffsets>& offsets,
                                                       std::size_t base) const {
  std::string normalized;
  std::vector<TokenOffsets> source;  // per normalised byte: its character's bytes in `text`
  if (!chain_.empty()) {
    AlignedText chained;
    chained.reset(text, true);
    chain_.normalize(chained);
    normalized = std::move(chained.text);
    source = std::move(chained.align);
  } else if (spec_.has_normalizer) {
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
  split_normalized(normalized, base == 0, out, &local);
  for (const TokenOffsets& t : local) {  // tokens are never empty
    offsets.push_back({base + source[t.begin].begin, base + source[t.end - 1].end});
  }
}

void PipelineTokenizer::split_normalized(std::string_view view, bool text_start,
                                         std::vector<std::int32_t>& out,
                                         std::vector<TokenOffsets>* offsets) const {
  if (normalized_added_.empty()) return encode_segment(view, text_start, out, offsets, 0);
  std::vector<AddedTokenMatcher::Match> matches;
  normalized_added_.find(view, matches);
  around_matches(view, matches, out, offsets, [&](std::string_view gap, std::size_t at) {
    encode_segment(gap, text_start && at == 0, out, offsets, at);
  });
}

void PipelineTokenizer::encode_body(std::string_view text, std::vector<std::int32_t>& out,
                                    std::vector<TokenOffsets>* offsets) const {
  if (raw_added_.empty()) return encode_normalized(text, out, offsets, 0);
  thread_local std::vector<AddedTokenMatcher::Match> matches;
  matches.clear();
  raw_added_.find(text, matches);
  around_matches(text, matches, out, offsets, [&](std::string_view gap, std::size_t at) {
    encode_normalized(gap, out, offsets, at);
  });
}

std::vector<std::size_t> PipelineTokenizer::piece_cuts(std::string_view text) const {
  std::vector<std::size_t> cuts{0};
  if (!added_tokens_block_cuts_) {
    for (std::size_t at = kPieceBytes; at < text.size();
         at = std::max(at + kPieceBytes, cuts.back() + 1)) {
      const std::size_t c = next_cut(text, at);
      if (c >= text.size()) break;
      cuts.push_back(c);
    }
  }
  cuts.push_back(text.size());
  return cuts;
}

Result<Encoding> PipelineTokenizer::encode(std::string_view text, const EncodeOptions& options) const {
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

Result<Encoding> PipelineTokenizer::finish(const std::vector<std::int32_t>& body,
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

std::vector<Result<Encoding>> PipelineTokenizer::encode_batch(
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
  const bool cut_long = !options.offsets && texts.size() < 2 * threads;
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
