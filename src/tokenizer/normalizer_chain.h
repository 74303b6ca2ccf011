// The SentencePiece-style normalizer Sequence of tokenizer.json (XLM-RoBERTa, multilingual-e5,
// bge-m3, ...): Precompiled charsmaps, Replace (a literal or a regex, through PCRE2 in UTF and
// Unicode-property mode) and Strip, applied in order with HF's alignment rules (aligned_text.h).
//
// Ownership: owns its compiled steps. Thread-safety: immutable after build(); normalize() may run
// from any number of threads. Errors: build() names the step whose charsmap or regex is invalid,
// and refuses a regex that matches empty text (HF would insert its content between characters).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "tokenizer/aligned_text.h"
#include "tokenizer/precompiled_charsmap.h"
#include "tokenizer/tokenizer_spec.h"

namespace embd::tokenizer {

class NormalizerChain {
 public:
  static Result<NormalizerChain> build(const std::vector<NormalizerStepSpec>& steps,
                                       std::string_view source);

  bool empty() const { return steps_.empty(); }
  void normalize(AlignedText& t) const;

  // True when a text cut just before an ASCII space that follows `before` (a printable ASCII
  // character) normalises piece by piece exactly as the whole: no step looks across that point.
  bool cuttable_before_space(char before) const;

 private:
  class Regex;
  struct Step {
    NormalizerStepSpec::Kind kind;
    std::optional<PrecompiledCharsmap> charsmap;
    std::string literal;
    std::shared_ptr<const Regex> regex;
    std::string content;
    bool left = false;
    bool right = false;
  };
  std::vector<Step> steps_;
  bool cuts_ok_ = true;
};

}  // namespace embd::tokenizer
