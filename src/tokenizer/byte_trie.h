// A byte trie over a vocabulary, for Unigram's lattice: every vocabulary entry that is a prefix of
// a text, shortest first, in one walk. Nodes keep their children sorted and contiguous; the root
// has a direct 256-entry table (most walks end after a step or two).
//
// Ownership: owns its arrays (not the keys). Thread-safety: immutable after build(); walks may
// run from any number of threads.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace embd::tokenizer {

class ByteTrie {
 public:
  // `keys`: (bytes, value >= 0); a repeated key keeps the last value. Empty keys are ignored.
  void build(std::vector<std::pair<std::string_view, std::int32_t>> keys);

  // Calls on_match(length, value) for every key that is a prefix of `text`, shortest first.
  template <typename OnMatch>
  void prefixes(std::string_view text, OnMatch on_match) const {
    if (text.empty() || nodes_.empty()) return;
    std::uint32_t node = root_[static_cast<unsigned char>(text[0])];
    for (std::size_t i = 1;; ++i) {
      if (node == kNone) return;
      if (nodes_[node].value >= 0) on_match(i, nodes_[node].value);
      if (i == text.size()) return;
      node = child(node, static_cast<unsigned char>(text[i]));
    }
  }

 private:
  static constexpr std::uint32_t kNone = ~std::uint32_t{0};
  struct Node {
    std::int32_t value = -1;
    std::uint32_t first_edge = 0;
    std::uint32_t edge_count = 0;
  };
  std::uint32_t child(std::uint32_t node, unsigned char label) const;

  std::array<std::uint32_t, 256> root_{};
  std::vector<Node> nodes_;
  std::vector<unsigned char> labels_;   // per edge, sorted within a node
  std::vector<std::uint32_t> targets_;  // per edge
};

}  // namespace embd::tokenizer
