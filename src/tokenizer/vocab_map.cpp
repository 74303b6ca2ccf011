// VocabMap: see vocab_map.h.
#include "tokenizer/vocab_map.h"

#include <cstring>

namespace embd::tokenizer {

std::uint64_t VocabMap::hash(std::string_view key) {
  // 8 bytes per step with a multiply-xorshift mix: vocab keys are short, so this beats
  // byte-wise hashes and keeps collisions rare.
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ull;
  std::uint64_t h = 0xD6E8FEB86659FD93ull ^ (key.size() * kMul);
  const char* p = key.data();
  std::size_t n = key.size();
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 32;
  return h;
}

void VocabMap::add(std::string_view key, std::int32_t id) {
  pending_.push_back({static_cast<std::uint32_t>(arena_.size()),
                      static_cast<std::uint32_t>(key.size()), id});
  arena_.append(key);
}

void VocabMap::build() {
  std::size_t cap = 16;
  while (cap < pending_.size() * 2) cap <<= 1;
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  count_ = 0;
  for (const Pending& p : pending_) {
    std::string_view key(arena_.data() + p.offset, p.len);
    std::uint64_t h = hash(key);
    std::size_t i = h & mask_;
    bool duplicate = false;
    while (slots_[i].id >= 0) {
      Slot& s = slots_[i];
      if (s.len == p.len && std::string_view(arena_.data() + s.offset, s.len) == key) {
        s.id = p.id;
        duplicate = true;
        break;
      }
      i = (i + 1) & mask_;
    }
    if (duplicate) continue;
    slots_[i] = Slot{p.offset, p.len, static_cast<std::uint32_t>(h >> 32), p.id};
    ++count_;
    if (p.len > max_len_) max_len_ = p.len;
  }
  pending_.clear();
  pending_.shrink_to_fit();
}

}  // namespace embd::tokenizer
