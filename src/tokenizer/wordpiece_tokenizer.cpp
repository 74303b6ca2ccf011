// WordPieceTokenizer: see wordpiece_tokenizer.h. The hot path (ASCII text) runs on byte tables:
// one pre-tokenisation pass that hands string_view words to a longest-match WordPiece over
// open-addressing hash maps.
#include "tokenizer/wordpiece_tokenizer.h"

#include <algorithm>

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

}  // namespace

Result<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::create(TokenizerSpec spec) {
  std::unique_ptr<WordPieceTokenizer> t(new WordPieceTokenizer(std::move(spec)));
  EMBD_TRY(t->build());
  return t;
}

Status WordPieceTokenizer::build() {
  if (spec_.pre_tokenizer == PreTokenizerKind::kByteLevel) {
    return unsupported(spec_.source + ": field 'pre_tokenizer': ByteLevel goes with a BPE model, "
                       "not WordPiece");
  }
  if (spec_.pre_tokenizer == PreTokenizerKind::kMetaspace ||
      spec_.pre_tokenizer == PreTokenizerKind::kWhitespaceSplitMetaspace) {
    return unsupported(spec_.source + ": field 'pre_tokenizer': Metaspace goes with a Unigram model, "
                       "not WordPiece");
  }
  EMBD_TRY(build_common());
  const std::string& prefix = spec_.continuing_subword_prefix;
  for (const auto& [token, id] : spec_.vocab) {
    if (!prefix.empty() && token.size() > prefix.size() && token.starts_with(prefix)) {
      continuation_.add(std::string_view(token).substr(prefix.size()), id);
    }
  }
  continuation_.build();
  if (prefix.empty()) continuation_map_ = &vocab_;
  EMBD_ASSIGN_OR_RETURN(unk_id_, unk_token_id());
  return ok_status();
}

std::string WordPieceTokenizer::summary() const {
  std::string s = "WordPiece, " + std::to_string(vocab_size()) + " tokens";
  if (spec_.has_normalizer) {
    s += spec_.normalize.lowercase ? ", lowercase" : ", cased";
    if (spec_.normalize.strip_accents) s += ", strip accents";
  }
  return s + template_summary();
}

void WordPieceTokenizer::word_piece(std::string_view word, std::vector<std::int32_t>& out,
                                    std::vector<TokenOffsets>* offsets, std::size_t base) const {
  const auto unknown_word = [&] {
    out.push_back(unk_id_);
    if (offsets) offsets->push_back({base, base + word.size()});
  };
  if (word.size() > spec_.max_input_chars_per_word) {
    std::size_t chars = 0;
    for (char b : word) chars += unicode::is_continuation_byte(b) ? 0 : 1;
    if (chars > spec_.max_input_chars_per_word) return unknown_word();
  }
  const std::size_t mark = out.size();
  const std::size_t offsets_mark = offsets ? offsets->size() : 0;
  std::size_t start = 0;
  while (start < word.size()) {
    const VocabMap& map = start == 0 ? vocab_ : *continuation_map_;
    std::size_t end = std::min(word.size(), start + map.max_key_bytes());
    while (end > start && end < word.size() && unicode::is_continuation_byte(word[end])) --end;
    std::int32_t id = -1;
    while (end > start) {
      id = map.find(word.substr(start, end - start));
      if (id >= 0) break;
      do {
        --end;
      } while (end > start && unicode::is_continuation_byte(word[end]));
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

void WordPieceTokenizer::encode_segment(std::string_view text, bool /*text_start*/, std::vector<std::int32_t>& out,
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

std::size_t WordPieceTokenizer::next_cut(std::string_view text, std::size_t from) const {
  for (std::size_t c = from; c < text.size(); ++c) {
    // An ASCII byte is never inside a multi-byte character, so the pieces validate apart too.
    if (text[c] == ' ' || text[c] == '\n' || text[c] == '\t' || text[c] == '\r') return c + 1;
  }
  return std::string_view::npos;
}

}  // namespace embd::tokenizer
