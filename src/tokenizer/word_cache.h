// A per-thread cache of short words' segmentations (ids and where each piece ends), as HF's
// models keep one: natural text repeats its words, and a hit skips the whole lattice.
//
// Direct-mapped, thread_local (no locks, no sharing), keyed by the owner's id as well as the
// word, so two tokenizers never see each other's entries, even one created where another was
// destroyed. Words over kMaxWordBytes bytes or of more than kMaxPieces pieces are not cached.
//
// Ownership: the cache is the thread's; owners are identified by WordCache::new_owner().
// Thread-safety: each thread has its own cache.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab_map.h"

namespace embd::tokenizer {

class WordCache {
 public:
  static constexpr std::size_t kMaxWordBytes = 24;
  static constexpr std::size_t kMaxPieces = 6;

  struct Entry {
    std::uint64_t owner = 0;  // 0: empty
    std::uint8_t length = 0;
    std::uint8_t pieces = 0;
    std::array<char, kMaxWordBytes> word{};
    std::array<std::uint8_t, kMaxPieces> ends{};  // each piece's end in the word
    std::array<std::int32_t, kMaxPieces> ids{};
  };

  // A process-unique owner id (never 0).
  static std::uint64_t new_owner() {
    static std::atomic<std::uint64_t> next{1};
    return next.fetch_add(1, std::memory_order_relaxed);
  }

  // Appends the ids of `word` and, with `offsets`, their bytes shifted by `base`: from the cache,
  // or from segment(ids, word_offsets), which appends ids and word-relative offsets and whose
  // result is then cached.
  template <typename Segment>
  static void segment_cached(std::uint64_t owner, std::string_view word, std::size_t base,
                             std::vector<std::int32_t>& out, std::vector<TokenOffsets>* offsets,
                             Segment segment) {
    if (const Entry* hit = find(owner, word)) {
      std::size_t begin = 0;
      for (std::size_t i = 0; i < hit->pieces; ++i) {
        out.push_back(hit->ids[i]);
        if (offsets) offsets->push_back({base + begin, base + hit->ends[i]});
        begin = hit->ends[i];
      }
      return;
    }
    thread_local std::vector<TokenOffsets> pieces;
    pieces.clear();
    const std::size_t first = out.size();
    segment(out, pieces);
    if (offsets) {
      for (const TokenOffsets& p : pieces) offsets->push_back({base + p.begin, base + p.end});
    }
    if (pieces.size() <= kMaxPieces) {
      std::size_t ends[kMaxPieces];
      for (std::size_t i = 0; i < pieces.size(); ++i) ends[i] = pieces[i].end;
      put(owner, word, out.data() + first, ends, pieces.size());
    }
    if (pieces.capacity() > (1u << 16)) std::vector<TokenOffsets>().swap(pieces);
  }

 private:
  // This thread's entry for `word` of `owner`, or null.
  static const Entry* find(std::uint64_t owner, std::string_view word) {
    if (word.size() > kMaxWordBytes) return nullptr;
    const Entry& e = slot(word);
    if (e.owner != owner || e.length != word.size() ||
        std::memcmp(e.word.data(), word.data(), word.size()) != 0) {
      return nullptr;
    }
    return &e;
  }

  // Stores the segmentation of `word` (ids[i] ends at ends[i]) when it fits.
  static void put(std::uint64_t owner, std::string_view word, const std::int32_t* ids,
                  const std::size_t* ends, std::size_t pieces) {
    if (word.size() > kMaxWordBytes || pieces > kMaxPieces) return;
    Entry& e = slot(word);
    e.owner = owner;
    e.length = static_cast<std::uint8_t>(word.size());
    e.pieces = static_cast<std::uint8_t>(pieces);
    std::memcpy(e.word.data(), word.data(), word.size());
    for (std::size_t i = 0; i < pieces; ++i) {
      e.ids[i] = ids[i];
      e.ends[i] = static_cast<std::uint8_t>(ends[i]);
    }
  }

  static constexpr std::size_t kSlots = 4096;  // ~300 KB a thread
  static Entry& slot(std::string_view word) {
    thread_local std::vector<Entry> entries(kSlots);
    return entries[VocabMap::hash(word) & (kSlots - 1)];
  }
};

}  // namespace embd::tokenizer
