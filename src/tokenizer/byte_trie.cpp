// ByteTrie: see byte_trie.h. Built depth-first from the sorted keys with an explicit stack (a key
// may be thousands of bytes long).
#include "tokenizer/byte_trie.h"

#include <algorithm>

namespace embd::tokenizer {

void ByteTrie::build(std::vector<std::pair<std::string_view, std::int32_t>> keys) {
  std::erase_if(keys, [](const auto& k) { return k.first.empty(); });
  std::stable_sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  nodes_.clear();
  labels_.clear();
  targets_.clear();
  root_.fill(kNone);
  struct Job {
    std::size_t lo, hi, depth;  // keys[lo, hi) share their first `depth` bytes
    std::uint32_t node;         // kNone: the root
  };
  std::vector<Job> stack{{0, keys.size(), 0, kNone}};
  while (!stack.empty()) {
    Job job = stack.back();
    stack.pop_back();
    std::size_t lo = job.lo;
    // Keys that end here: the last of them (the last added) gives the node's value.
    while (lo < job.hi && keys[lo].first.size() == job.depth) {
      nodes_[job.node].value = keys[lo].second;
      ++lo;
    }
    if (job.node != kNone) {
      nodes_[job.node].first_edge = static_cast<std::uint32_t>(labels_.size());
    }
    std::vector<Job> children;
    for (std::size_t i = lo; i < job.hi;) {
      const auto label = static_cast<unsigned char>(keys[i].first[job.depth]);
      std::size_t j = i + 1;
      while (j < job.hi && static_cast<unsigned char>(keys[j].first[job.depth]) == label) ++j;
      const auto child = static_cast<std::uint32_t>(nodes_.size());
      nodes_.push_back(Node{});
      if (job.node == kNone) {
        root_[label] = child;
      } else {
        labels_.push_back(label);
        targets_.push_back(child);
      }
      children.push_back({i, j, job.depth + 1, child});
      i = j;
    }
    if (job.node != kNone) {
      nodes_[job.node].edge_count = static_cast<std::uint32_t>(labels_.size()) - nodes_[job.node].first_edge;
    }
    stack.insert(stack.end(), children.rbegin(), children.rend());
  }
}

std::uint32_t ByteTrie::child(std::uint32_t node, unsigned char label) const {
  const Node& n = nodes_[node];
  const unsigned char* first = labels_.data() + n.first_edge;
  const unsigned char* last = first + n.edge_count;
  if (n.edge_count <= 8) {
    for (const unsigned char* p = first; p != last; ++p) {
      if (*p == label) return targets_[static_cast<std::size_t>(p - labels_.data())];
    }
    return kNone;
  }
  const unsigned char* p = std::lower_bound(first, last, label);
  if (p == last || *p != label) return kNone;
  return targets_[static_cast<std::size_t>(p - labels_.data())];
}

}  // namespace embd::tokenizer
