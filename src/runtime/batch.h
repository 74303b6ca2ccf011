// PackedBatch: the unit of device work the scheduler hands to an executor.
//
// Padding-free: the token ids of all B sequences are concatenated in order ([T] with T the sum of
// the lengths), and cu_seqlens ([B+1], cu_seqlens[0] = 0, cu_seqlens[B] = T) marks where each
// sequence starts, the layout varlen attention kernels take. A plain value type; not shared
// between threads while it is being built or run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace embd::runtime {

struct PackedBatch {
  std::vector<std::int32_t> ids;         // [T] token ids of every sequence, in order
  std::vector<std::int32_t> cu_seqlens;  // [B+1] prefix sums of the sequence lengths
  std::int32_t max_seqlen = 0;           // longest sequence in the batch

  std::size_t sequences() const { return cu_seqlens.empty() ? 0 : cu_seqlens.size() - 1; }
  std::size_t tokens() const { return ids.size(); }
  std::size_t length(std::size_t i) const {
    return static_cast<std::size_t>(cu_seqlens[i + 1] - cu_seqlens[i]);
  }
};

}  // namespace embd::runtime
