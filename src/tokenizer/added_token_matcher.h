// Added tokens ("[MASK]", "<s>", ...) found in text the way Hugging Face `tokenizers` finds them:
// leftmost-longest, never overlapping, with the single_word / lstrip / rstrip rules.
//
// Ownership: owns copies of its patterns. Thread-safety: immutable after the last add(); find()
// may run from any number of threads.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer_spec.h"

namespace embd::tokenizer {

// Added tokens of one kind (raw or normalised), matched leftmost-longest like HF's Aho-Corasick.
class AddedTokenMatcher {
 public:
  struct Match {
    std::size_t begin;
    std::size_t end;
    std::int32_t id;
  };
  void add(const AddedTokenSpec& token, std::string pattern);
  bool empty() const { return tokens_.empty(); }
  // Appends the matches in `text`, in order and non-overlapping, to `out`.
  void find(std::string_view text, std::vector<Match>& out) const;

 private:
  struct Token {
    std::string pattern;
    AddedTokenSpec spec;
  };
  std::vector<Token> tokens_;
  std::array<bool, 256> first_byte_{};
};

}  // namespace embd::tokenizer
