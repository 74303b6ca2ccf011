// The fixture tokenizers on arbitrary text: WordPiece (tiny-jina's tokenizer.json, the published
// vocabulary), byte-level BPE (tokenizers/roberta-bpe and bpe-prefix-lower) and SentencePiece
// Unigram (tokenizers/xlmr-unigram and unigram-legacy), every input through all five. Input: one options byte (limit, direction, specials, and the pool case), one
// max-length byte, then the text.
// Checks: nothing crashes; invalid UTF-8 is an error, never ids; ids are in the vocabulary;
// truncation keeps to the limit and reports the untruncated length; encoding with offsets gives
// the same ids, each offset a byte range inside the text, in text order; and a text of 16 KB or
// more tokenised on a pool, which cuts it into pieces, gives exactly the ids of one thread.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "core/thread_pool.h"
#include "fuzz_check.h"
#include "tokenizer/tokenizer.h"

namespace {

using embd::tokenizer::EncodeOptions;
using embd::tokenizer::Tokenizer;

constexpr int kTokenizers = 5;

std::unique_ptr<Tokenizer> load(const char* dir) {
  auto t = Tokenizer::load(dir);
  FUZZ_CHECK(t.ok(), "cannot load the fixture tokenizer %s: %s", dir, t.status().to_string().c_str());
  return std::move(t).value();
}

const std::unique_ptr<Tokenizer>* fixture_tokenizers() {
  static const std::unique_ptr<Tokenizer> tokenizers[kTokenizers] = {
      load(EMBD_FIXTURES_DIR "/models/tiny-jina"),
      load(EMBD_FIXTURES_DIR "/tokenizers/roberta-bpe"),
      load(EMBD_FIXTURES_DIR "/tokenizers/bpe-prefix-lower"),
      load(EMBD_FIXTURES_DIR "/tokenizers/xlmr-unigram"),
      load(EMBD_FIXTURES_DIR "/tokenizers/unigram-legacy")};
  return tokenizers;
}

embd::ThreadPool& pool() {
  static embd::ThreadPool p(2);
  return p;
}

void check(const Tokenizer& tok, const std::string& text, const EncodeOptions& o, bool on_pool);

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t flags = data[0];
  std::string text(reinterpret_cast<const char*>(data) + 2, size - 2);
  EncodeOptions o;
  o.direction = (flags & 2) ? embd::TruncationDirection::kLeft : embd::TruncationDirection::kRight;
  o.add_special_tokens = (flags & 4) == 0;
  // A limit below the template's two specials is refused as a whole (tested elsewhere).
  if (flags & 1) o.max_length = std::max<std::size_t>(data[1], o.add_special_tokens ? 2 : 1);
  const bool on_pool = (flags & 0xf8) == 0xf8 && !text.empty();  // one input in 32: slow
  if (on_pool) {  // long enough to be cut into pieces (tokenizer::kParallelTextBytes)
    const std::string unit = text;
    while (text.size() < embd::tokenizer::kParallelTextBytes) text += (flags & 4) ? " " + unit : unit;
  }

  for (int k = 0; k < kTokenizers; ++k) check(*fixture_tokenizers()[k], text, o, on_pool);
  return 0;
}

namespace {

void check(const Tokenizer& tok, const std::string& text, const EncodeOptions& o, bool on_pool) {
  auto plain = tok.encode(text, o);
  const bool valid_utf8 = simdjson::validate_utf8(text.data(), text.size());
  FUZZ_CHECK(plain.ok() == valid_utf8, "valid UTF-8 %d but encode ok %d (%s)", valid_utf8,
             plain.ok(), plain.ok() ? "" : plain.status().to_string().c_str());
  EncodeOptions with_offsets = o;
  with_offsets.offsets = true;
  auto located = tok.encode(text, with_offsets);
  FUZZ_CHECK(located.ok() == plain.ok(), "encode with offsets disagrees on success");
  if (!plain.ok()) return;

  const auto& ids = plain.value().ids;
  const auto vocab = static_cast<std::int64_t>(tok.vocab_size());
  for (auto id : ids) FUZZ_CHECK(id >= 0 && id < vocab, "id %d outside the vocabulary", id);
  if (o.max_length) {
    FUZZ_CHECK(ids.size() <= o.max_length, "%zu ids over max_length %zu", ids.size(), o.max_length);
  }
  FUZZ_CHECK(plain.value().untruncated_length >= ids.size(), "untruncated length below the ids");
  if (!o.max_length) FUZZ_CHECK(!plain.value().truncated(), "truncated without a limit");
  if (o.add_special_tokens) {
    FUZZ_CHECK(ids.size() >= 2 && ids.front() == tok.cls_id() && ids.back() == tok.sep_id(),
               "specials missing around %zu ids", ids.size());
  }

  const auto& e = located.value();
  FUZZ_CHECK(e.ids == ids, "ids differ with offsets (%zu against %zu)", e.ids.size(), ids.size());
  FUZZ_CHECK(e.offsets.size() == e.ids.size(), "%zu offsets for %zu ids", e.offsets.size(), e.ids.size());
  std::size_t last_begin = 0;
  for (const auto& span : e.offsets) {
    FUZZ_CHECK(span.begin <= span.end && span.end <= text.size(), "offsets [%zu, %zu) in %zu bytes",
               span.begin, span.end, text.size());
    if (span.end == span.begin) continue;  // the template's specials
    FUZZ_CHECK(span.begin >= last_begin, "token at byte %zu after one at byte %zu", span.begin, last_begin);
    last_begin = span.begin;
  }

  if (on_pool) {
    const std::vector<std::string> texts{text};
    auto pooled = tok.encode_batch(texts, o, &pool());
    FUZZ_CHECK(pooled.size() == 1 && pooled[0].ok(), "pool encode failed where one thread did not");
    FUZZ_CHECK(pooled[0].value().ids == ids, "pool encode gave %zu ids, one thread %zu",
               pooled[0].value().ids.size(), ids.size());
  }
}

}  // namespace
