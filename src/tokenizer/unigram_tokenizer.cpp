// UnigramTokenizer: see unigram_tokenizer.h. The lattice walk follows HF's encode_optimized: at
// each character boundary, every vocabulary piece that starts there (one trie walk) may extend
// the best path ending at the boundary; a character no one-character piece covers may also be
// the unk id at min_score - 10. Ties keep the earlier candidate.
#include "tokenizer/unigram_tokenizer.h"

#include <algorithm>
#include <limits>

#include "tokenizer/unicode_text.h"

namespace embd::tokenizer {
namespace {

constexpr double kUnkPenalty = 10.0;  // SentencePiece's and HF's

}  // namespace

Result<std::unique_ptr<UnigramTokenizer>> UnigramTokenizer::create(TokenizerSpec spec) {
  std::unique_ptr<UnigramTokenizer> t(new UnigramTokenizer(std::move(spec)));
  EMBD_TRY(t->build());
  return t;
}

Status UnigramTokenizer::build() {
  if (spec_.pre_tokenizer != PreTokenizerKind::kMetaspace &&
      spec_.pre_tokenizer != PreTokenizerKind::kWhitespaceSplitMetaspace) {
    return unsupported(spec_.source + ": field 'pre_tokenizer': a Unigram model needs Metaspace "
                       "(alone or after WhitespaceSplit)");
  }
  EMBD_TRY(build_common());
  const std::size_t n = spec_.vocab.size();
  if (spec_.unigram.unk_id < 0 || static_cast<std::size_t>(spec_.unigram.unk_id) >= n) {
    return invalid_model(spec_.source + ": field 'model.unk_id': " + std::to_string(spec_.unigram.unk_id) +
                         " is outside model.vocab (" + std::to_string(n) + " pieces)");
  }
  unk_id_ = spec_.unigram.unk_id;
  scores_ = spec_.unigram.scores;
  double min_score = std::numeric_limits<double>::infinity();
  for (double s : scores_) min_score = std::min(min_score, s);
  unk_score_ = min_score - kUnkPenalty;
  std::vector<std::pair<std::string_view, std::int32_t>> keys;
  keys.reserve(n);
  for (const auto& [piece, id] : spec_.vocab) keys.emplace_back(piece, id);
  trie_.build(std::move(keys));
  return ok_status();
}

std::string UnigramTokenizer::summary() const {
  std::string s = "Unigram, " + std::to_string(vocab_size()) + " tokens";
  if (!spec_.normalizer_steps.empty()) s += ", SentencePiece normaliser";
  return s + template_summary();
}

void UnigramTokenizer::segment_word(std::string_view word, std::vector<std::int32_t>& out,
                                    std::vector<TokenOffsets>* offsets) const {
  WordCache::segment_cached(cache_owner_, word, 0, out, offsets,
                            [&](std::vector<std::int32_t>& ids, std::vector<TokenOffsets>& pieces) {
                              segment_uncached(word, ids, pieces);
                            });
}

void UnigramTokenizer::segment_uncached(std::string_view word, std::vector<std::int32_t>& out,
                                        std::vector<TokenOffsets>& offsets) const {
  struct Node {
    double score;
    std::int32_t start;  // -1: no path ends here yet
    std::int32_t id;
  };
  thread_local std::vector<Node> best;
  const std::size_t n = word.size();
  best.assign(n + 1, Node{0.0, -1, -1});
  for (std::size_t pos = 0; pos < n;) {
    const double base = best[pos].score;
    const std::size_t char_len = unicode::char_end(word, pos) - pos;
    bool single_char_piece = false;
    trie_.prefixes(word.substr(pos), [&](std::size_t len, std::int32_t id) {
      Node& target = best[pos + len];
      const double candidate = scores_[static_cast<std::size_t>(id)] + base;
      if (target.start < 0 || candidate > target.score) {
        target = {candidate, static_cast<std::int32_t>(pos), id};
      }
      single_char_piece = single_char_piece || len == char_len;
    });
    if (!single_char_piece) {
      Node& target = best[pos + char_len];
      const double candidate = unk_score_ + base;
      if (target.start < 0 || candidate > target.score) {
        target = {candidate, static_cast<std::int32_t>(pos), unk_id_};
      }
    }
    pos += char_len;
  }
  // Back from the end; runs of unk pieces fuse into one token (HF's fuse_unk, always on here),
  // whose id is the vocabulary's for its text, else the unk id. Other pieces keep the id the trie
  // gave (the last of a repeated piece, as HF's map).
  struct Piece {
    std::uint32_t begin, end;
    std::int32_t id;  // -1: a fused run of unknowns
  };
  thread_local std::vector<Piece> pieces;
  pieces.clear();
  std::size_t fused_begin = n, fused_end = n;  // an open run of unk pieces, when begin < end
  const auto close_run = [&] {
    if (fused_begin < fused_end) {
      pieces.push_back({static_cast<std::uint32_t>(fused_begin), static_cast<std::uint32_t>(fused_end), -1});
    }
    fused_begin = fused_end = n;
  };
  for (std::size_t end = n; end > 0;) {
    const Node& node = best[end];
    const auto start = static_cast<std::size_t>(node.start);
    if (node.id == unk_id_) {
      if (fused_begin == fused_end) fused_end = end;
      fused_begin = start;
    } else {
      close_run();
      pieces.push_back({static_cast<std::uint32_t>(start), static_cast<std::uint32_t>(end), node.id});
    }
    end = start;
  }
  close_run();
  for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
    std::int32_t id = it->id;
    if (id < 0) {
      id = vocab_.find(word.substr(it->begin, it->end - it->begin));
      if (id < 0) id = unk_id_;
    }
    out.push_back(id);
    offsets.push_back({it->begin, it->end});
  }
  release_if_large(best);
  release_if_large(pieces);
}

void UnigramTokenizer::encode_piece(std::string_view segment, std::size_t begin, std::size_t end,
                                    bool prepend, std::vector<std::int32_t>& out,
                                    std::vector<TokenOffsets>* offsets, std::size_t base) const {
  const std::string& rep = spec_.metaspace.replacement;
  const std::string_view piece = segment.substr(begin, end - begin);
  thread_local std::string spaced;
  thread_local std::vector<TokenOffsets> from;  // per byte of `spaced`: its bytes in `segment`
  spaced.clear();
  from.clear();
  const bool track = offsets != nullptr;
  if (prepend && piece.front() != ' ' && !piece.starts_with(rep)) {
    spaced += rep;  // aligned with the piece's first character, as HF's prepend()
    if (track) from.insert(from.end(), rep.size(), TokenOffsets{begin, unicode::char_end(segment, begin)});
  }
  for (std::size_t i = 0; i < piece.size(); ++i) {
    const std::size_t at = begin + i;
    if (piece[i] == ' ') {
      spaced += rep;
      if (track) from.insert(from.end(), rep.size(), TokenOffsets{at, at + 1});
    } else {
      spaced += piece[i];
      if (track) from.push_back({at, at + 1});
    }
  }
  thread_local std::vector<TokenOffsets> local;
  const auto encode_word = [&](std::size_t b, std::size_t e) {
    if (b == e) return;
    local.clear();
    segment_word(std::string_view(spaced).substr(b, e - b), out, track ? &local : nullptr);
    for (const TokenOffsets& t : local) {
      offsets->push_back({base + from[b + t.begin].begin, base + from[b + t.end - 1].end});
    }
  };
  if (!spec_.metaspace.split) {
    encode_word(0, spaced.size());
  } else {
    std::size_t word = 0;
    for (std::size_t at = spaced.find(rep, 1); at != std::string::npos; at = spaced.find(rep, at + rep.size())) {
      encode_word(word, at);
      word = at;
    }
    encode_word(word, spaced.size());
  }
  release_if_large(spaced);
  release_if_large(from);
  release_if_large(local);
}

void UnigramTokenizer::encode_segment(std::string_view segment, bool text_start,
                                      std::vector<std::int32_t>& out,
                                      std::vector<TokenOffsets>* offsets, std::size_t base) const {
  if (segment.empty()) return;
  using Prepend = MetaspaceSpec::Prepend;
  const Prepend scheme = spec_.metaspace.prepend;
  if (spec_.pre_tokenizer == PreTokenizerKind::kMetaspace) {
    const bool prepend = scheme == Prepend::kAlways || (scheme == Prepend::kFirst && text_start);
    return encode_piece(segment, 0, segment.size(), prepend, out, offsets, base);
  }
  // WhitespaceSplit first: words are the runs of non-White_Space characters.
  std::size_t word = std::string_view::npos;
  for (std::size_t i = 0; i <= segment.size();) {
    const std::size_t at = i;
    const bool space = i == segment.size() || unicode::is_whitespace(unicode::decode_utf8(segment, i));
    if (space && word != std::string_view::npos) {
      const bool prepend = scheme == Prepend::kAlways || (scheme == Prepend::kFirst && text_start && word == 0);
      encode_piece(segment, word, at, prepend, out, offsets, base);
      word = std::string_view::npos;
    } else if (!space && word == std::string_view::npos) {
      word = at;
    }
    if (at == segment.size()) break;
  }
}

std::size_t UnigramTokenizer::next_cut(std::string_view text, std::size_t from) const {
  if (spec_.pre_tokenizer == PreTokenizerKind::kMetaspace && !spec_.metaspace.split) {
    return std::string_view::npos;  // a segment is one word
  }
  for (std::size_t c = std::max<std::size_t>(from, 1); c < text.size(); ++c) {
    const auto before = static_cast<unsigned char>(text[c - 1]);
    if (text[c] == ' ' && before > 0x20 && before < 0x7F &&
        normalizer_chain().cuttable_before_space(static_cast<char>(before))) {
      return c;
    }
  }
  return std::string_view::npos;
}

}  // namespace embd::tokenizer
