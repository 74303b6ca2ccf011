// An immutable string -> id hash map for WordPiece lookups: open addressing over one key arena,
// looked up by string_view (no allocation, no std::string temporaries).
//
// Ownership: owns copies of its keys. Thread-safety: immutable after build(); lookups may run
// from any number of threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace embd::tokenizer {

class VocabMap {
 public:
  // Adds a key; a duplicate key keeps the last id (as HF's HashMap does). Call build() after the last add().
  void add(std::string_view key, std::int32_t id);
  void build();

  // -1 when absent.
  std::int32_t find(std::string_view key) const {
    if (slots_.empty()) return -1;
    std::uint64_t h = hash(key);
    auto tag = static_cast<std::uint32_t>(h >> 32);
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.id < 0) return -1;
      if (s.tag == tag && s.len == key.size() &&
          std::string_view(arena_.data() + s.offset, s.len) == key) {
        return s.id;
      }
    }
  }
  std::size_t size() const { return count_; }
  // The byte length of the longest key (bounds longest-match searches).
  std::size_t max_key_bytes() const { return max_len_; }

  static std::uint64_t hash(std::string_view key);

 private:
  struct Slot {
    std::uint32_t offset = 0;
    std::uint32_t len = 0;
    std::uint32_t tag = 0;
    std::int32_t id = -1;
  };
  struct Pending {
    std::uint32_t offset;
    std::uint32_t len;
    std::int32_t id;
  };
  std::string arena_;
  std::vector<Pending> pending_;
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  std::size_t count_ = 0;
  std::size_t max_len_ = 0;
};

}  // namespace embd::tokenizer
