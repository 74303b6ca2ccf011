// NormalizerChain: see normalizer_chain.h.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/normalizer_chain.h"

#include <pcre2.h>

#include "tokenizer/unicode_text.h"

namespace embd::tokenizer {

// A compiled pattern, JIT-compiled when PCRE2 can.
class NormalizerChain::Regex {
 public:
  // `where` names the pattern in errors ("x.json: field 'normalizer.normalizers[2].pattern.Regex'").
  static Result<std::shared_ptr<const Regex>> compile(const std::string& pattern, const std::string& where) {
    int error = 0;
    PCRE2_SIZE at = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     PCRE2_UTF | PCRE2_UCP, &error, &at, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof message);
      return invalid_model(where + ": \"" + pattern + "\" does not compile at offset " +
                           std::to_string(at) + ": " + reinterpret_cast<const char*>(message));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // without JIT, matching is slower, not wrong
    auto regex = std::shared_ptr<const Regex>(new Regex(code));
    if (regex->match("", 0)) {
      return unsupported(where + ": \"" + pattern + "\" matches empty text (unsupported)");
    }
    return regex;
  }
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // The first match in `text` at or after byte `start`; nullopt when there is none (or PCRE2
  // hit a resource limit: the rest is then left as it is).
  std::optional<TokenOffsets> match(std::string_view text, std::size_t start) const {
    thread_local MatchData data;
    const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start,
                               PCRE2_NO_UTF_CHECK, data.get(), nullptr);
    if (rc < 0) return std::nullopt;
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data.get());
    return TokenOffsets{ovector[0], ovector[1]};
  }

  // Appends the non-empty, non-overlapping matches in `text` to `out`.
  void find(std::string_view text, std::vector<TokenOffsets>& out) const {
    for (std::size_t start = 0; start <= text.size();) {
      const auto m = match(text, start);
      if (!m) break;
      if (m->end <= m->begin) {  // an empty match somewhere inside: skip a character
        if (m->begin >= text.size()) break;
        start = unicode::char_end(text, m->begin);
        continue;
      }
      out.push_back(*m);
      start = m->end;
    }
  }

 private:
  // Room for the whole match only (group 0): valid with any pattern, so one per thread serves all.
  class MatchData {
   public:
    MatchData() : data_(pcre2_match_data_create(1, nullptr)) {}
    ~MatchData() { pcre2_match_data_free(data_); }
    pcre2_match_data* get() { return data_; }

   private:
    pcre2_match_data* data_;
  };
  explicit Regex(pcre2_code* code) : code_(code) {}
  pcre2_code* code_;
};

namespace {

bool has_whitespace(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    if (unicode::is_whitespace(unicode::decode_utf8(s, i))) return true;
  }
  return false;
}

// Regexes known to match runs of whitespace only: a run that starts at a cut stays in one piece.
bool matches_whitespace_runs_only(std::string_view pattern) {
  for (std::string_view p : {" {2,}", " +", "\\s+", "\\s{2,}", " "}) {
    if (pattern == p) return true;
  }
  return false;
}

}  // namespace

Result<NormalizerChain> NormalizerChain::build(const std::vector<NormalizerStepSpec>& steps,
                                               std::string_view source) {
  NormalizerChain chain;
  for (const NormalizerStepSpec& spec : steps) {
    const std::string field = std::string(source) + ": field '" + spec.field;
    Step step{spec.kind, std::nullopt, {}, nullptr, spec.content, spec.strip_left, spec.strip_right};
    switch (spec.kind) {
      case NormalizerStepSpec::Kind::kPrecompiled: {
        EMBD_ASSIGN_OR_RETURN(auto charsmap,
                              PrecompiledCharsmap::parse(spec.charsmap, field + ".precompiled_charsmap'"));
        step.charsmap = std::move(charsmap);
        break;
      }
      case NormalizerStepSpec::Kind::kReplace:
        if (spec.regex) {
          EMBD_ASSIGN_OR_RETURN(step.regex, Regex::compile(spec.pattern, field + ".pattern.Regex'"));
          chain.cuts_ok_ = chain.cuts_ok_ && matches_whitespace_runs_only(spec.pattern);
        } else {
          step.literal = spec.pattern;
          chain.cuts_ok_ = chain.cuts_ok_ && !has_whitespace(spec.pattern) && !has_whitespace(spec.content);
        }
        break;
      case NormalizerStepSpec::Kind::kStrip:
        chain.cuts_ok_ = chain.cuts_ok_ && !spec.strip_left;
        break;
    }
    chain.steps_.push_back(std::move(step));
  }
  return chain;
}

void NormalizerChain::normalize(AlignedText& t) const {
  thread_local std::vector<TokenOffsets> matches;
  for (const Step& step : steps_) {
    switch (step.kind) {
      case NormalizerStepSpec::Kind::kPrecompiled:
        step.charsmap->normalize(t);
        break;
      case NormalizerStepSpec::Kind::kReplace:
        matches.clear();
        if (step.regex) {
          step.regex->find(t.text, matches);
        } else {
          for (std::size_t at = t.text.find(step.literal); at != std::string::npos;
               at = t.text.find(step.literal, at + step.literal.size())) {
            matches.push_back({at, at + step.literal.size()});
          }
        }
        replace_ranges(t, matches, step.content);
        break;
      case NormalizerStepSpec::Kind::kStrip:
        strip(t, step.left, step.right);
        break;
    }
  }
}

bool NormalizerChain::cuttable_before_space(char before) const {
  if (!cuts_ok_) return false;
  for (const Step& step : steps_) {
    if (!step.charsmap) continue;
    const char both[2] = {before, ' '};
    if (step.charsmap->lookup({both, 1}) || step.charsmap->lookup({both + 1, 1})) return false;
  }
  return true;
}

}  // namespace embd::tokenizer
