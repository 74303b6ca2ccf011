// tokenizer.json (Hugging Face `tokenizers` format) -> TokenizerSpec, with simdjson.
// Three pipelines are accepted: BERT's (WordPiece), GPT-2 / RoBERTa's (byte-level BPE) and
// SentencePiece's (Unigram, XLM-RoBERTa); any other component is rejected by type name.
#include <simdjson.h>

#include <string>

#include "core/base64.h"
#include "tokenizer/tokenizer_spec.h"

namespace embd::tokenizer {
namespace {

namespace dom = simdjson::dom;

class JsonReader {
 public:
  explicit JsonReader(std::string_view source) : source_(source) {}

  Status bad(std::string_view field, std::string_view msg) const {
    return invalid_model(std::string(source_) + ": field '" + std::string(field) + "': " +
                         std::string(msg));
  }
  Status unsupported_type(std::string_view field, std::string_view type,
                          std::string_view supported) const {
    return unsupported(std::string(source_) + ": field '" + std::string(field) +
                       "': unsupported type \"" + std::string(type) + "\" (supported: " +
                       std::string(supported) + ")");
  }

  // The member `key` of `obj`; false when absent or null.
  static bool member(dom::object obj, std::string_view key, dom::element& out) {
    if (obj.at_key(key).get(out) != simdjson::SUCCESS) return false;
    return !out.is_null();
  }

  Result<dom::object> object(dom::element e, std::string_view field) const {
    dom::object obj;
    if (e.get_object().get(obj) != simdjson::SUCCESS) return bad(field, "expected an object");
    return obj;
  }
  Result<bool> opt_bool(dom::object obj, std::string_view key, bool fallback,
                        std::string_view field) const {
    dom::element e;
    if (!member(obj, key, e)) return fallback;
    bool v;
    if (e.get_bool().get(v) != simdjson::SUCCESS) return bad(field, "expected true or false");
    return v;
  }
  Result<std::string_view> string(dom::object obj, std::string_view key,
                                  std::string_view field) const {
    dom::element e;
    if (!member(obj, key, e)) return bad(field, "missing");
    std::string_view v;
    if (e.get_string().get(v) != simdjson::SUCCESS) return bad(field, "expected a string");
    return v;
  }
  Result<std::int32_t> id(dom::element e, std::string_view field) const {
    std::int64_t v;
    if (e.get_int64().get(v) != simdjson::SUCCESS || v < 0 || v > INT32_MAX) {
      return bad(field, "expected a token id (integer 0..2^31-1)");
    }
    return static_cast<std::int32_t>(v);
  }
  Result<std::string_view> type_of(dom::object obj, std::string_view field) const {
    return string(obj, "type", std::string(field) + ".type");
  }

 private:
  std::string_view source_;
};

Status parse_bert_normalizer(const JsonReader& r, dom::object obj, std::string_view field,
                             TokenizerSpec& spec) {
  auto& f = spec.normalize;
  std::string p(field);
  EMBD_ASSIGN_OR_RETURN(f.clean_text, r.opt_bool(obj, "clean_text", true, p + ".clean_text"));
  EMBD_ASSIGN_OR_RETURN(f.handle_chinese_chars,
                        r.opt_bool(obj, "handle_chinese_chars", true, p + ".handle_chinese_chars"));
  EMBD_ASSIGN_OR_RETURN(f.lowercase, r.opt_bool(obj, "lowercase", true, p + ".lowercase"));
  // strip_accents: null follows lowercase, as in HF.
  EMBD_ASSIGN_OR_RETURN(f.strip_accents,
                        r.opt_bool(obj, "strip_accents", f.lowercase, p + ".strip_accents"));
  spec.has_normalizer = true;
  return ok_status();
}

// Lowercase is BertNormalizer with nothing but its per-character lowercasing.
void set_lowercase(TokenizerSpec& spec) {
  spec.normalize = {.clean_text = false, .handle_chinese_chars = false, .strip_accents = false,
                    .lowercase = true};
  spec.has_normalizer = true;
}

constexpr std::string_view kNormalizerTypes =
    "BertNormalizer, Lowercase, Precompiled, Replace, Strip, a Sequence of them (BertNormalizer or "
    "Lowercase alone)";

// Replace: {"pattern": {"String": s} or {"Regex": s}, "content": s}.
Status parse_replace(const JsonReader& r, dom::object obj, const std::string& field, NormalizerStepSpec& step) {
  dom::element pattern_e;
  if (!JsonReader::member(obj, "pattern", pattern_e)) return r.bad(field + ".pattern", "missing");
  EMBD_ASSIGN_OR_RETURN(dom::object pattern, r.object(pattern_e, field + ".pattern"));
  dom::element value;
  if (JsonReader::member(pattern, "String", value)) {
    EMBD_ASSIGN_OR_RETURN(std::string_view text, r.string(pattern, "String", field + ".pattern.String"));
    step.pattern = std::string(text);
  } else if (JsonReader::member(pattern, "Regex", value)) {
    EMBD_ASSIGN_OR_RETURN(std::string_view text, r.string(pattern, "Regex", field + ".pattern.Regex"));
    step.pattern = std::string(text);
    step.regex = true;
  } else {
    return r.bad(field + ".pattern", "expected {\"String\": ...} or {\"Regex\": ...}");
  }
  if (step.pattern.empty()) return r.bad(field + ".pattern", "is empty");
  EMBD_ASSIGN_OR_RETURN(std::string_view content, r.string(obj, "content", field + ".content"));
  step.content = std::string(content);
  return ok_status();
}

// One normalizer object of type `type`; `field` names it. BertNormalizer and Lowercase set the
// per-character normaliser; the others append a chain step.
Status parse_normalizer_item(const JsonReader& r, dom::object obj, std::string_view type,
                             const std::string& field, TokenizerSpec& spec) {
  if (type == "BertNormalizer") return parse_bert_normalizer(r, obj, field, spec);
  if (type == "Lowercase") {
    set_lowercase(spec);
    return ok_status();
  }
  NormalizerStepSpec step;
  step.field = field;
  if (type == "Precompiled") {
    step.kind = NormalizerStepSpec::Kind::kPrecompiled;
    EMBD_ASSIGN_OR_RETURN(std::string_view text,
                          r.string(obj, "precompiled_charsmap", field + ".precompiled_charsmap"));
    if (text.empty() || !base64_decode(text, step.charsmap)) {
      return r.bad(field + ".precompiled_charsmap", "expected non-empty base64");
    }
  } else if (type == "Replace") {
    step.kind = NormalizerStepSpec::Kind::kReplace;
    EMBD_TRY(parse_replace(r, obj, field, step));
  } else if (type == "Strip") {
    step.kind = NormalizerStepSpec::Kind::kStrip;
    EMBD_ASSIGN_OR_RETURN(step.strip_left, r.opt_bool(obj, "strip_left", true, field + ".strip_left"));
    EMBD_ASSIGN_OR_RETURN(step.strip_right, r.opt_bool(obj, "strip_right", true, field + ".strip_right"));
  } else {
    return r.unsupported_type(field + ".type", type, kNormalizerTypes);
  }
  spec.normalizer_steps.push_back(std::move(step));
  return ok_status();
}

Status parse_normalizer(const JsonReader& r, dom::element e, TokenizerSpec& spec) {
  EMBD_ASSIGN_OR_RETURN(dom::object obj, r.object(e, "normalizer"));
  EMBD_ASSIGN_OR_RETURN(std::string_view type, r.type_of(obj, "normalizer"));
  if (type != "Sequence") return parse_normalizer_item(r, obj, type, "normalizer", spec);
  dom::element list;
  dom::array items;
  if (!JsonReader::member(obj, "normalizers", list) || list.get_array().get(items)) {
    return r.bad("normalizer.normalizers", "expected an array");
  }
  std::size_t n = 0;
  for (dom::element item : items) {
    std::string field = "normalizer.normalizers[" + std::to_string(n++) + "]";
    EMBD_ASSIGN_OR_RETURN(dom::object inner, r.object(item, field));
    EMBD_ASSIGN_OR_RETURN(std::string_view inner_type, r.type_of(inner, field));
    // BertNormalizer and Lowercase map each character on their own, and only alone.
    const bool per_character = inner_type == "BertNormalizer" || inner_type == "Lowercase";
    if ((per_character && items.size() > 1) || inner_type == "Sequence") {
      return r.unsupported_type(field + ".type", inner_type, kNormalizerTypes);
    }
    EMBD_TRY(parse_normalizer_item(r, inner, inner_type, field, spec));
  }
  return ok_status();
}

// Metaspace: {"replacement": "▁", "prepend_scheme": "always" | "first" | "never", "split": true},
// or the pre-0.19 {"replacement", "add_prefix_space"} (true: always, false: never).
Status parse_metaspace(const JsonReader& r, dom::object obj, const std::string& field, TokenizerSpec& spec) {
  MetaspaceSpec& m = spec.metaspace;
  dom::element e;
  if (JsonReader::member(obj, "replacement", e)) {
    EMBD_ASSIGN_OR_RETURN(std::string_view rep, r.string(obj, "replacement", field + ".replacement"));
    if (rep.empty() || unicode::char_end(rep, 0) != rep.size()) {
      return r.bad(field + ".replacement", "expected one character");
    }
    m.replacement = std::string(rep);
  }
  if (JsonReader::member(obj, "prepend_scheme", e)) {
    EMBD_ASSIGN_OR_RETURN(std::string_view scheme, r.string(obj, "prepend_scheme", field + ".prepend_scheme"));
    if (scheme == "always") {
      m.prepend = MetaspaceSpec::Prepend::kAlways;
    } else if (scheme == "first") {
      m.prepend = MetaspaceSpec::Prepend::kFirst;
    } else if (scheme == "never") {
      m.prepend = MetaspaceSpec::Prepend::kNever;
    } else {
      return r.bad(field + ".prepend_scheme", "expected \"always\", \"first\" or \"never\"");
    }
  } else {
    EMBD_ASSIGN_OR_RETURN(bool prefix, r.opt_bool(obj, "add_prefix_space", true, field + ".add_prefix_space"));
    m.prepend = prefix ? MetaspaceSpec::Prepend::kAlways : MetaspaceSpec::Prepend::kNever;
  }
  EMBD_ASSIGN_OR_RETURN(m.split, r.opt_bool(obj, "split", true, field + ".split"));
  spec.pre_tokenizer = PreTokenizerKind::kMetaspace;
  return ok_status();
}

// One pre-tokenizer object (`type` is its type); `field` names it in messages.
Status parse_pre_tokenizer_item(const JsonReader& r, dom::object obj, std::string_view type,
                                const std::string& field, TokenizerSpec& spec) {
  if (type == "BertPreTokenizer") {
    spec.pre_tokenizer = PreTokenizerKind::kBert;
  } else if (type == "WhitespaceSplit") {
    spec.pre_tokenizer = PreTokenizerKind::kWhitespaceSplit;
  } else if (type == "ByteLevel") {
    spec.pre_tokenizer = PreTokenizerKind::kByteLevel;
    EMBD_ASSIGN_OR_RETURN(spec.byte_level.add_prefix_space,
                          r.opt_bool(obj, "add_prefix_space", true, field + ".add_prefix_space"));
    EMBD_ASSIGN_OR_RETURN(spec.byte_level.use_regex,
                          r.opt_bool(obj, "use_regex", true, field + ".use_regex"));
  } else if (type == "Metaspace") {
    return parse_metaspace(r, obj, field, spec);
  } else {
    return r.unsupported_type(field + ".type", type,
                              "BertPreTokenizer, WhitespaceSplit, ByteLevel, Metaspace");
  }
  return ok_status();
}

Status parse_pre_tokenizer(const JsonReader& r, dom::element e, TokenizerSpec& spec) {
  EMBD_ASSIGN_OR_RETURN(dom::object obj, r.object(e, "pre_tokenizer"));
  EMBD_ASSIGN_OR_RETURN(std::string_view type, r.type_of(obj, "pre_tokenizer"));
  if (type != "Sequence") return parse_pre_tokenizer_item(r, obj, type, "pre_tokenizer", spec);
  dom::element list;
  dom::array items;
  if (!JsonReader::member(obj, "pretokenizers", list) || list.get_array().get(items)) {
    return r.bad("pre_tokenizer.pretokenizers", "expected an array");
  }
  spec.pre_tokenizer = PreTokenizerKind::kNone;
  std::size_t n = 0;
  for (dom::element item : items) {
    std::string field = "pre_tokenizer.pretokenizers[" + std::to_string(n++) + "]";
    EMBD_ASSIGN_OR_RETURN(dom::object inner, r.object(item, field));
    EMBD_ASSIGN_OR_RETURN(std::string_view inner_type, r.type_of(inner, field));
    // One item, or WhitespaceSplit then Metaspace (older SentencePiece conversions).
    const bool split_then_metaspace = n == 2 && inner_type == "Metaspace" &&
                                      spec.pre_tokenizer == PreTokenizerKind::kWhitespaceSplit;
    if (n > 1 && !split_then_metaspace) {
      return r.unsupported_type(field + ".type", inner_type,
                                "a Sequence of one item, or of WhitespaceSplit and Metaspace");
    }
    EMBD_TRY(parse_pre_tokenizer_item(r, inner, inner_type, field, spec));
    if (split_then_metaspace) spec.pre_tokenizer = PreTokenizerKind::kWhitespaceSplitMetaspace;
  }
  return ok_status();
}

Status parse_wordpiece_fields(const JsonReader& r, dom::object obj, TokenizerSpec& spec) {
  dom::element field;
  if (JsonReader::member(obj, "continuing_subword_prefix", field)) {
    EMBD_ASSIGN_OR_RETURN(std::string_view prefix, r.string(obj, "continuing_subword_prefix",
                                                            "model.continuing_subword_prefix"));
    spec.continuing_subword_prefix = std::string(prefix);
  }
  if (JsonReader::member(obj, "max_input_chars_per_word", field)) {
    std::uint64_t v;
    if (field.get_uint64().get(v)) return r.bad("model.max_input_chars_per_word", "expected an integer");
    spec.max_input_chars_per_word = static_cast<std::size_t>(v);
  }
  return ok_status();
}

// One merge: "left right" (the legacy form) or ["left", "right"] (tokenizers >= 0.20).
Status parse_merge(const JsonReader& r, dom::element item, const std::string& field, TokenizerSpec& spec) {
  std::string_view text;
  if (item.get_string().get(text) == simdjson::SUCCESS) {
    const std::size_t space = text.find(' ');
    if (space == std::string_view::npos || text.find(' ', space + 1) != std::string_view::npos) {
      return r.bad(field, "expected two tokens separated by one space");
    }
    spec.bpe.merges.emplace_back(std::string(text.substr(0, space)), std::string(text.substr(space + 1)));
    return ok_status();
  }
  dom::array pair;
  std::string_view left, right;
  if (item.get_array().get(pair) || pair.size() != 2 || pair.at(0).get_string().get(left) ||
      pair.at(1).get_string().get(right)) {
    return r.bad(field, "expected \"left right\" or [\"left\", \"right\"]");
  }
  spec.bpe.merges.emplace_back(std::string(left), std::string(right));
  return ok_status();
}

Status parse_bpe_fields(const JsonReader& r, dom::object obj, TokenizerSpec& spec) {
  spec.model = ModelKind::kBpe;
  spec.unk_token.clear();  // none unless the file names one
  dom::element field;
  if (JsonReader::member(obj, "dropout", field)) {
    return r.bad("model.dropout", "BPE dropout is for training; an encoder needs null");
  }
  EMBD_ASSIGN_OR_RETURN(bool byte_fallback, r.opt_bool(obj, "byte_fallback", false, "model.byte_fallback"));
  if (byte_fallback) return r.bad("model.byte_fallback", "unsupported (only false is)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    std::string name = std::string("model.") + key;
    if (!JsonReader::member(obj, key, field)) continue;
    EMBD_ASSIGN_OR_RETURN(std::string_view value, r.string(obj, key, name));
    if (!value.empty()) return r.bad(name, "unsupported (only null or \"\" is)");
  }
  EMBD_ASSIGN_OR_RETURN(spec.bpe.ignore_merges,
                        r.opt_bool(obj, "ignore_merges", false, "model.ignore_merges"));
  EMBD_ASSIGN_OR_RETURN(spec.bpe.fuse_unk, r.opt_bool(obj, "fuse_unk", false, "model.fuse_unk"));
  dom::array merges;
  if (!JsonReader::member(obj, "merges", field) || field.get_array().get(merges)) {
    return r.bad("model.merges", "expected an array");
  }
  spec.bpe.merges.reserve(merges.size());
  std::size_t n = 0;
  for (dom::element item : merges) {
    EMBD_TRY(parse_merge(r, item, "model.merges[" + std::to_string(n++) + "]", spec));
  }
  return ok_status();
}

// Unigram: {"unk_id": 3, "vocab": [["<s>", 0.0], ...], "byte_fallback": false}; ids are positions.
Status parse_unigram(const JsonReader& r, dom::object obj, TokenizerSpec& spec) {
  spec.model = ModelKind::kUnigram;
  EMBD_ASSIGN_OR_RETURN(bool byte_fallback, r.opt_bool(obj, "byte_fallback", false, "model.byte_fallback"));
  if (byte_fallback) return r.bad("model.byte_fallback", "unsupported (only false is)");
  dom::element unk_e;
  if (!JsonReader::member(obj, "unk_id", unk_e)) {
    return r.bad("model.unk_id", "missing or null (unsupported: an unknown character could not be encoded)");
  }
  EMBD_ASSIGN_OR_RETURN(spec.unigram.unk_id, r.id(unk_e, "model.unk_id"));
  dom::element vocab_e;
  dom::array vocab;
  if (!JsonReader::member(obj, "vocab", vocab_e) || vocab_e.get_array().get(vocab)) {
    return r.bad("model.vocab", "expected an array of [piece, score]");
  }
  spec.vocab.reserve(vocab.size());
  spec.unigram.scores.reserve(vocab.size());
  for (dom::element item : vocab) {
    const auto id = static_cast<std::int32_t>(spec.vocab.size());
    const std::string field = "model.vocab[" + std::to_string(id) + "]";
    dom::array pair;
    std::string_view piece;
    double score;
    if (item.get_array().get(pair) || pair.size() != 2 || pair.at(0).get_string().get(piece) ||
        pair.at(1).get_double().get(score)) {
      return r.bad(field, "expected [piece, score]");
    }
    spec.vocab.emplace_back(std::string(piece), id);
    spec.unigram.scores.push_back(score);
  }
  if (spec.vocab.empty()) return r.bad("model.vocab", "is empty");
  return ok_status();
}

Status parse_model(const JsonReader& r, dom::element e, TokenizerSpec& spec) {
  EMBD_ASSIGN_OR_RETURN(dom::object obj, r.object(e, "model"));
  EMBD_ASSIGN_OR_RETURN(std::string_view type, r.type_of(obj, "model"));
  if (type == "Unigram") return parse_unigram(r, obj, spec);
  if (type == "WordPiece") {
    EMBD_TRY(parse_wordpiece_fields(r, obj, spec));
  } else if (type == "BPE") {
    EMBD_TRY(parse_bpe_fields(r, obj, spec));
  } else {
    return r.unsupported_type("model.type", type, "WordPiece, BPE, Unigram");
  }
  dom::element unk_e;
  if (JsonReader::member(obj, "unk_token", unk_e)) {
    EMBD_ASSIGN_OR_RETURN(std::string_view unk, r.string(obj, "unk_token", "model.unk_token"));
    spec.unk_token = std::string(unk);
  }
  dom::element vocab_e;
  dom::object vocab;
  if (!JsonReader::member(obj, "vocab", vocab_e)) return r.bad("model.vocab", "missing");
  if (vocab_e.get_object().get(vocab)) return r.bad("model.vocab", "expected an object");
  spec.vocab.reserve(vocab.size());
  for (dom::key_value_pair kv : vocab) {
    std::string field_name = "model.vocab[\"" + std::string(kv.key) + "\"]";
    EMBD_ASSIGN_OR_RETURN(std::int32_t id, r.id(kv.value, field_name));
    spec.vocab.emplace_back(std::string(kv.key), id);
  }
  if (spec.vocab.empty()) return r.bad("model.vocab", "is empty");
  return ok_status();
}

Status parse_added_tokens(const JsonReader& r, dom::element e, TokenizerSpec& spec) {
  dom::array items;
  if (e.get_array().get(items)) return r.bad("added_tokens", "expected an array");
  std::size_t n = 0;
  for (dom::element item : items) {
    std::string field = "added_tokens[" + std::to_string(n++) + "]";
    EMBD_ASSIGN_OR_RETURN(dom::object obj, r.object(item, field));
    AddedTokenSpec t;
    dom::element id_e;
    if (!JsonReader::member(obj, "id", id_e)) return r.bad(field + ".id", "missing");
    EMBD_ASSIGN_OR_RETURN(t.id, r.id(id_e, field + ".id"));
    EMBD_ASSIGN_OR_RETURN(std::string_view content, r.string(obj, "content", field + ".content"));
    if (content.empty()) return r.bad(field + ".content", "is empty");
    t.content = std::string(content);
    EMBD_ASSIGN_OR_RETURN(t.special, r.opt_bool(obj, "special", false, field + ".special"));
    EMBD_ASSIGN_OR_RETURN(t.single_word, r.opt_bool(obj, "single_word", false, field + ".single_word"));
    EMBD_ASSIGN_OR_RETURN(t.lstrip, r.opt_bool(obj, "lstrip", false, field + ".lstrip"));
    EMBD_ASSIGN_OR_RETURN(t.rstrip, r.opt_bool(obj, "rstrip", false, field + ".rstrip"));
    EMBD_ASSIGN_OR_RETURN(t.normalized,
                          r.opt_bool(obj, "normalized", !t.special, field + ".normalized"));
    spec.added_tokens.push_back(std::move(t));
  }
  return ok_status();
}

// One element of TemplateProcessing's "single": SpecialToken ids or the $A marker.
Status parse_template_item(const JsonReader& r, dom::object special_tokens, dom::element item,
                           const std::string& field, bool& seen_a, TokenizerSpec& spec) {
  EMBD_ASSIGN_OR_RETURN(dom::object obj, r.object(item, field));
  dom::element inner;
  if (JsonReader::member(obj, "Sequence", inner)) {
    EMBD_ASSIGN_OR_RETURN(dom::object seq, r.object(inner, field + ".Sequence"));
    EMBD_ASSIGN_OR_RETURN(std::string_view which, r.string(seq, "id", field + ".Sequence.id"));
    if (which != "A" || seen_a) {
      return r.bad(field + ".Sequence.id", "a single-sequence template must hold $A exactly once");
    }
    seen_a = true;
    spec.template_text += spec.template_text.empty() ? "$A" : " $A";
    return ok_status();
  }
  if (!JsonReader::member(obj, "SpecialToken", inner)) {
    return r.bad(field, "expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
  }
  EMBD_ASSIGN_OR_RETURN(dom::object tok, r.object(inner, field + ".SpecialToken"));
  EMBD_ASSIGN_OR_RETURN(std::string_view name, r.string(tok, "id", field + ".SpecialToken.id"));
  std::string sfield = "post_processor.special_tokens[\"" + std::string(name) + "\"]";
  dom::element def_e, ids_e;
  if (!JsonReader::member(special_tokens, name, def_e)) return r.bad(sfield, "missing");
  EMBD_ASSIGN_OR_RETURN(dom::object def, r.object(def_e, sfield));
  dom::array ids;
  if (!JsonReader::member(def, "ids", ids_e) || ids_e.get_array().get(ids)) {
    return r.bad(sfield + ".ids", "expected an array of ids");
  }
  auto& out = seen_a ? spec.suffix_ids : spec.prefix_ids;
  for (dom::element id_e : ids) {
    EMBD_ASSIGN_OR_RETURN(std::int32_t id, r.id(id_e, sfield + ".ids"));
    out.push_back(id);
  }
  if (!spec.template_text.empty()) spec.template_text += ' ';
  spec.template_text += name;
  return ok_status();
}

Status parse_template(const JsonReader& r, dom::object obj, TokenizerSpec& spec) {
  dom::element single_e, specials_e;
  dom::array single;
  dom::object specials;
  if (!JsonReader::member(obj, "single", single_e) || single_e.get_array().get(single)) {
    return r.bad("post_processor.single", "expected an array");
  }
  if (!JsonReader::member(obj, "special_tokens", specials_e) ||
      specials_e.get_object().get(specials)) {
    return r.bad("post_processor.special_tokens", "expected an object");
  }
  bool seen_a = false;
  std::size_t n = 0;
  for (dom::element item : single) {
    std::string field = "post_processor.single[" + std::to_string(n++) + "]";
    EMBD_TRY(parse_template_item(r, specials, item, field, seen_a, spec));
  }
  if (!seen_a) return r.bad("post_processor.single", "has no $A sequence");
  return ok_status();
}

// BertProcessing and RobertaProcessing: {"sep": ["[SEP]", 102], "cls": ["[CLS]", 101], ...}.
Status parse_cls_sep_processing(const JsonReader& r, dom::object obj, TokenizerSpec& spec) {
  std::string names[2];
  for (int k = 0; k < 2; ++k) {
    const char* key = k == 0 ? "cls" : "sep";
    std::string field = std::string("post_processor.") + key;
    dom::element e;
    dom::array pair;
    if (!JsonReader::member(obj, key, e) || e.get_array().get(pair) || pair.size() != 2) {
      return r.bad(field, "expected [token, id]");
    }
    std::string_view name;
    if (pair.at(0).get_string().get(name)) return r.bad(field + "[0]", "expected a string");
    EMBD_ASSIGN_OR_RETURN(std::int32_t id, r.id(pair.at(1).value_unsafe(), field + "[1]"));
    (k == 0 ? spec.prefix_ids : spec.suffix_ids).push_back(id);
    names[k] = std::string(name);
  }
  spec.template_text = names[0] + " $A " + names[1];
  return ok_status();
}

Status parse_post_processor(const JsonReader& r, dom::element e, TokenizerSpec& spec) {
  EMBD_ASSIGN_OR_RETURN(dom::object obj, r.object(e, "post_processor"));
  EMBD_ASSIGN_OR_RETURN(std::string_view type, r.type_of(obj, "post_processor"));
  if (type == "TemplateProcessing") return parse_template(r, obj, spec);
  if (type == "BertProcessing") return parse_cls_sep_processing(r, obj, spec);
  if (type != "RobertaProcessing" && type != "ByteLevel") {
    return r.unsupported_type("post_processor.type", type,
                              "TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel");
  }
  // Both trim spaces off token offsets; ByteLevel adds no special tokens.
  if (type == "RobertaProcessing") EMBD_TRY(parse_cls_sep_processing(r, obj, spec));
  EMBD_ASSIGN_OR_RETURN(spec.trim_offsets,
                        r.opt_bool(obj, "trim_offsets", true, "post_processor.trim_offsets"));
  EMBD_ASSIGN_OR_RETURN(spec.trim_keeps_prefix_space,
                        r.opt_bool(obj, "add_prefix_space", true, "post_processor.add_prefix_space"));
  return ok_status();
}

Status parse_padding(const JsonReader& r, dom::element e, TokenizerSpec& spec) {
  dom::object obj;
  if (e.get_object().get(obj)) return r.bad("padding", "expected an object or null");
  dom::element id_e;
  if (JsonReader::member(obj, "pad_id", id_e)) {
    EMBD_ASSIGN_OR_RETURN(spec.pad_id, r.id(id_e, "padding.pad_id"));
  }
  return ok_status();
}

}  // namespace

Result<TokenizerSpec> parse_tokenizer_json(std::string_view json, std::string_view source) {
  JsonReader r(source);
  dom::parser parser;
  dom::element doc;
  simdjson::padded_string padded(json);
  if (auto error = parser.parse(padded).get(doc)) {
    return invalid_model(std::string(source) + ": invalid JSON: " + simdjson::error_message(error));
  }
  dom::object root;
  if (doc.get_object().get(root)) return r.bad("(root)", "expected an object");
  TokenizerSpec spec;
  spec.source = std::string(source);
  dom::element e;
  if (!JsonReader::member(root, "model", e)) return r.bad("model", "missing");
  EMBD_TRY(parse_model(r, e, spec));
  if (JsonReader::member(root, "normalizer", e)) EMBD_TRY(parse_normalizer(r, e, spec));
  spec.pre_tokenizer = PreTokenizerKind::kNone;
  if (JsonReader::member(root, "pre_tokenizer", e)) EMBD_TRY(parse_pre_tokenizer(r, e, spec));
  if (JsonReader::member(root, "added_tokens", e)) EMBD_TRY(parse_added_tokens(r, e, spec));
  if (JsonReader::member(root, "post_processor", e)) EMBD_TRY(parse_post_processor(r, e, spec));
  if (JsonReader::member(root, "padding", e)) EMBD_TRY(parse_padding(r, e, spec));
  return spec;
}

Result<TokenizerSpec> parse_vocab_txt(std::string_view text, std::string_view source) {
  TokenizerSpec spec;
  spec.source = std::string(source);
  spec.has_normalizer = true;  // BertNormalizer defaults: clean, CJK, strip accents, lowercase
  spec.pre_tokenizer = PreTokenizerKind::kBert;
  std::size_t pos = 0;
  std::int32_t id = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // Like HF's WordPiece::read_file: one token per line, trailing whitespace trimmed.
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    spec.vocab.emplace_back(std::string(line), id++);
    pos = nl + 1;
  }
  if (spec.vocab.empty()) return invalid_model(std::string(source) + ": no tokens");
  auto find = [&](std::string_view token) -> std::int32_t {
    for (const auto& [t, i] : spec.vocab) {
      if (t == token) return i;
    }
    return -1;
  };
  for (const char* name : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
    std::int32_t tid = find(name);
    if (tid >= 0) spec.added_tokens.push_back({name, tid, false, false, false, false, true});
  }
  std::int32_t cls = find("[CLS]"), sep = find("[SEP]");
  if (cls < 0 || sep < 0) {
    return invalid_model(std::string(source) + ": line for [CLS] or [SEP] missing (needed by the "
                         "BERT template [CLS] $A [SEP])");
  }
  spec.prefix_ids = {cls};
  spec.suffix_ids = {sep};
  spec.template_text = "[CLS] $A [SEP]";
  return spec;
}

}  // namespace embd::tokenizer
