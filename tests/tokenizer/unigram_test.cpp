// SentencePiece Unigram (XLM-RoBERTa): parity with Hugging Face `tokenizers` 0.23.2 on the
// fixtures that tests/fixtures/make_unigram_fixtures.py made (ids and byte offsets of 618 texts
// each), the precompiled charsmap and the alignment edits on their own, the lattice's choices,
// the per-thread word cache (BPE's too), batches cut into pieces, and the load errors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <random>

#include "core/base64.h"
#include "tokenizer/aligned_text.h"
#include "tokenizer/golden_util.h"
#include "tokenizer/precompiled_charsmap.h"
#include "tokenizer/tokenizer.h"

namespace embd::tokenizer {
namespace {

using testing::fixtures_dir;
using Ids = std::vector<std::int32_t>;

TEST(UnigramGolden, XlmRobertaPipelineMatchesHuggingFace) {
  testing::expect_golden_parity("xlmr-unigram", "unigram-xlmr", 618);
}

TEST(UnigramGolden, LegacyWhitespaceSplitMetaspaceMatchesHuggingFace) {
  testing::expect_golden_parity("unigram-legacy", "unigram-legacy", 618);
}

nlohmann::json fixture_json(const std::string& dir = "xlmr-unigram") {
  std::ifstream in(fixtures_dir() / "tokenizers" / dir / "tokenizer.json");
  return nlohmann::json::parse(in);
}

std::string fixture_charsmap() {
  std::string blob;
  const auto text = fixture_json()["normalizer"]["normalizers"][0]["precompiled_charsmap"].get<std::string>();
  EXPECT_TRUE(base64_decode(text, blob));
  return blob;
}

TEST(Base64, DecodesAndRejects) {
  std::string out;
  ASSERT_TRUE(base64_decode("", out));
  EXPECT_EQ(out, "");
  ASSERT_TRUE(base64_decode("aGVsbG8=", out));
  EXPECT_EQ(out, "hello");
  ASSERT_TRUE(base64_decode("aGk=", out));
  EXPECT_EQ(out, "hi");
  ASSERT_TRUE(base64_decode("AP8A", out));
  EXPECT_EQ(out, std::string("\0\xff\0", 3));
  for (const char* bad : {"aGk", "aG=k", "a===", "aGk=aGk=", "aG k", "aGVsbG8*"}) {
    EXPECT_FALSE(base64_decode(bad, out)) << bad;
  }
}

// nmt_nfkc's rules, as the fixture's charsmap holds them.
TEST(PrecompiledCharsmap, LooksUpShortestPrefixes) {
  auto map = PrecompiledCharsmap::parse(fixture_charsmap(), "charsmap");
  ASSERT_TRUE(map.ok()) << map.status().to_string();
  EXPECT_EQ(map->lookup("\uff48"), "h");    // fullwidth h
  EXPECT_EQ(map->lookup("\ufb01"), "fi");   // the ligature
  EXPECT_EQ(map->lookup("\u2460"), "1");    // circled one
  EXPECT_FALSE(map->lookup("a").has_value());
  EXPECT_FALSE(map->lookup("").has_value());
  EXPECT_EQ(map->lookup("\ufb01xyz"), "fi");  // a prefix is enough
}

TEST(PrecompiledCharsmap, NormalizesWithHuggingFaceAlignments) {
  auto map = PrecompiledCharsmap::parse(fixture_charsmap(), "charsmap");
  ASSERT_TRUE(map.ok());
  AlignedText t;
  t.reset("a\ufb01b", true);  // a, ﬁ (3 bytes), b
  map->normalize(t);
  EXPECT_EQ(t.text, "afib");
  ASSERT_EQ(t.align.size(), 4u);
  EXPECT_EQ(t.align[0], (TokenOffsets{0, 1}));
  EXPECT_EQ(t.align[1], (TokenOffsets{1, 4}));  // both letters of the ligature
  EXPECT_EQ(t.align[2], (TokenOffsets{1, 4}));
  EXPECT_EQ(t.align[3], (TokenOffsets{4, 5}));
  AlignedText plain;
  plain.reset("plain ascii", true);
  map->normalize(plain);
  EXPECT_EQ(plain.text, "plain ascii");
}

// A charsmap blob: the trie's size in bytes, its units (little-endian), then the replacements.
std::string charsmap_blob(const std::vector<std::uint32_t>& units, const std::string& replacements) {
  std::string blob;
  const auto put = [&](std::uint32_t v) {
    for (int k = 0; k < 4; ++k) blob.push_back(static_cast<char>((v >> (8 * k)) & 0xFF));
  };
  put(static_cast<std::uint32_t>(units.size() * 4));
  for (std::uint32_t u : units) put(u);
  return blob + replacements;
}

// A trie built by hand: "a" -> the replacement at offset `at` (root offset 256, so "a" sits at
// unit 256 ^ 'a' = 353, whose leaf is unit 352).
std::vector<std::uint32_t> one_key_trie(std::uint32_t at) {
  std::vector<std::uint32_t> units(354, 0);
  units[0] = 256u << 10;
  units[353] = (1u << 10) | (1u << 8) | 'a';
  units[352] = 0x80000000u | at;
  return units;
}

// The replacements are short enough to live inside the string object, which the charsmap must
// survive being moved with.
TEST(PrecompiledCharsmap, HandBuiltTrie) {
  auto parsed = PrecompiledCharsmap::parse(charsmap_blob(one_key_trie(0), std::string("b\0", 2)), "f");
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  const PrecompiledCharsmap map = std::move(parsed).value();
  EXPECT_EQ(map.lookup("a"), "b");
  EXPECT_EQ(map.lookup("ab"), "b");
  EXPECT_FALSE(map.lookup("b").has_value());
  EXPECT_FALSE(map.lookup(std::string("\0a", 2)).has_value());  // a NUL ends the key
  AlignedText t;
  t.reset("xay", true);
  map.normalize(t);
  EXPECT_EQ(t.text, "xby");
  // A replacement offset inside a character ("é" is C3 A9) is a miss, not half a character.
  auto inside = PrecompiledCharsmap::parse(charsmap_blob(one_key_trie(1), "\xc3\xa9"), "f");
  ASSERT_TRUE(inside.ok()) << inside.status().to_string();
  EXPECT_FALSE(inside->lookup("a").has_value());
  auto whole = PrecompiledCharsmap::parse(charsmap_blob(one_key_trie(0), "\xc3\xa9"), "f");
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->lookup("a"), "\xc3\xa9");
}

TEST(PrecompiledCharsmap, RejectsInconsistentBlobs) {
  const std::string blob = fixture_charsmap();
  EXPECT_FALSE(PrecompiledCharsmap::parse(blob.substr(0, 3), "f").ok());
  EXPECT_FALSE(PrecompiledCharsmap::parse(blob.substr(0, 100), "f").ok());  // trie cut short
  std::string zero = blob;
  zero[0] = zero[1] = zero[2] = zero[3] = 0;
  EXPECT_FALSE(PrecompiledCharsmap::parse(zero, "f").ok());
  std::string bad_utf8 = blob + "\xff";
  auto r = PrecompiledCharsmap::parse(bad_utf8, "f");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("UTF-8"), std::string::npos);
}

// A trie of random units never reads outside its array, whatever it is asked.
TEST(PrecompiledCharsmap, RandomTriesAreSafe) {
  std::mt19937 rng(11);
  for (int round = 0; round < 200; ++round) {
    std::string blob(4 + 4 * (1 + rng() % 64) + rng() % 16, '\0');
    for (char& c : blob) c = static_cast<char>(rng());
    const std::uint32_t trie = 4 * (1 + rng() % ((blob.size() - 4) / 4));
    for (int k = 0; k < 4; ++k) blob[k] = static_cast<char>((trie >> (8 * k)) & 0xFF);
    auto map = PrecompiledCharsmap::parse(blob, "f");
    if (!map.ok()) continue;  // replacements that are not UTF-8
    AlignedText t;
    t.reset("abc \u00e9\u4e2d\U0001F600\r\n", true);
    map->normalize(t);
  }
}

TEST(AlignedText, EditsMoveAlignmentsAsHuggingFace) {
  AlignedText t;
  t.reset("ab\u00e9", true);  // a b é(2 bytes)
  // a -> X, insert Y, b -> Z and remove é.
  std::vector<CharEdit> edits{{U'X', 0}, {U'Y', 1}, {U'Z', -1}};
  apply_edits(t, edits);
  EXPECT_EQ(t.text, "XYZ");
  EXPECT_EQ(t.align, (std::vector<TokenOffsets>{{0, 1}, {0, 1}, {1, 2}}));
  // An insertion is aligned with the byte before it (skipped characters included), or with
  // nothing at the very start.
  t.reset("abc", true);
  edits = {{U'_', 1}, {U'c', 0}};
  apply_edits(t, edits, 2);
  EXPECT_EQ(t.text, "_c");
  EXPECT_EQ(t.align, (std::vector<TokenOffsets>{{1, 2}, {2, 3}}));
  t.reset("ab", true);
  edits = {{U'_', 1}, {U'a', 0}, {U'b', 0}};
  apply_edits(t, edits);
  EXPECT_EQ(t.align, (std::vector<TokenOffsets>{{0, 0}, {0, 1}, {1, 2}}));
  t.reset("a  b", true);
  const std::vector<TokenOffsets> run{{1, 3}};
  replace_ranges(t, run, "\u2581");
  EXPECT_EQ(t.text, "a\u2581b");
  EXPECT_EQ(t.align, (std::vector<TokenOffsets>{{0, 1}, {2, 3}, {2, 3}, {2, 3}, {3, 4}}));
  t.reset(" \u3000x\t ", true);
  strip(t, true, true);
  EXPECT_EQ(t.text, "x");
  EXPECT_EQ(t.align, (std::vector<TokenOffsets>{{4, 5}}));
}

// A hand-made vocabulary, to check the lattice's choices.
nlohmann::json tiny_unigram(const std::vector<std::pair<std::string, double>>& pieces) {
  nlohmann::json vocab = nlohmann::json::array();
  for (const auto& [p, s] : pieces) vocab.push_back({p, s});
  return {{"model", {{"type", "Unigram"}, {"unk_id", 0}, {"vocab", vocab}}},
          {"pre_tokenizer", {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "always"}}}};
}

Ids ids_of(const nlohmann::json& j, const std::string& text) {
  auto tok = Tokenizer::from_json(j.dump(), "tiny");
  EXPECT_TRUE(tok.ok()) << tok.status().to_string();
  if (!tok.ok()) return {};
  auto enc = (*tok)->encode(text, EncodeOptions{});
  EXPECT_TRUE(enc.ok());
  return enc.ok() ? enc->ids : Ids{};
}

TEST(Unigram, PicksTheMostProbableSegmentation) {
  // ids: 0 <unk>, 1 ▁, 2 ▁a, 3 b, 4 ▁ab, 5 c, 6 bc, 7 a
  auto j = tiny_unigram({{"<unk>", 0}, {"\u2581", -1}, {"\u2581a", -2}, {"b", -2}, {"\u2581ab", -5},
                         {"c", -3}, {"bc", -2.5}, {"a", -1}});
  EXPECT_EQ(ids_of(j, "abc"), (Ids{2, 6}));  // ▁a bc (-4.5) beats ▁ab c (-8) and ▁a b c (-7)
  EXPECT_EQ(ids_of(j, "ab"), (Ids{2, 3}));   // -4 beats ▁ab's -5
  // Unknown characters: each is the unk id at min_score - 10, and a run of them is one token.
  EXPECT_EQ(ids_of(j, "axyz"), (Ids{2, 0}));
  EXPECT_EQ(ids_of(j, "a x\u00e9 b"), (Ids{2, 1, 0, 1, 3}));
  // A tie keeps the path found first: ▁+a (-2) against ▁a (-2).
  EXPECT_EQ(ids_of(j, "a"), (Ids{2}));
}

TEST(Unigram, BatchesCutIntoPiecesMatchWholeTexts) {
  testing::expect_pool_pieces_match_whole_texts("xlmr-unigram", "unigram-xlmr");
  testing::expect_pool_pieces_match_whole_texts("unigram-legacy", "unigram-legacy");
}

// The per-thread word cache: a second encoding of the same text (ids and offsets, from the
// cache) equals the first, and two tokenizers on one thread never see each other's entries,
// including one built where another was destroyed.
TEST(WordCache, HitsEqualMissesAndOwnersNeverShare) {
  auto j = fixture_json();
  auto singles = fixture_json();  // the same pieces, but every multi-character one unlikely
  for (auto& piece : singles["model"]["vocab"]) {
    if (piece[0].get<std::string>().size() > 1) piece[1] = -1000.0;
  }
  const std::string text = "hello world, hello again <mask> world";
  EncodeOptions with_offsets;
  with_offsets.offsets = true;
  for (int round = 0; round < 3; ++round) {
    auto a = Tokenizer::from_json(j.dump(), "a");
    auto b = Tokenizer::from_json(singles.dump(), "b");
    ASSERT_TRUE(a.ok() && b.ok());
    auto a1 = (*a)->encode(text, with_offsets);
    auto b1 = (*b)->encode(text, with_offsets);
    auto a2 = (*a)->encode(text, with_offsets);
    auto b2 = (*b)->encode(text, with_offsets);
    ASSERT_TRUE(a1.ok() && b1.ok() && a2.ok() && b2.ok());
    EXPECT_EQ(a1->ids, a2->ids);
    EXPECT_EQ(a1->offsets, a2->offsets);
    EXPECT_EQ(b1->ids, b2->ids);
    EXPECT_EQ(b1->offsets, b2->offsets);
    EXPECT_LT(a1->ids.size(), b1->ids.size()) << "round " << round;  // b: one piece a character
  }
  auto bpe = testing::load_fixture_tokenizer("roberta-bpe");
  auto lower = testing::load_fixture_tokenizer("bpe-prefix-lower");
  ASSERT_TRUE(bpe && lower);
  const auto first = bpe->encode(text, with_offsets);
  EXPECT_NE(first->ids, lower->encode(text, with_offsets)->ids);
  const auto again = bpe->encode(text, with_offsets);
  EXPECT_EQ(first->ids, again->ids);
  EXPECT_EQ(first->offsets, again->offsets);
}

TEST(Unigram, SpecialsAndSummary) {
  auto tok = testing::load_fixture_tokenizer("xlmr-unigram");
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->cls_id(), 0);
  EXPECT_EQ(tok->sep_id(), 2);
  EXPECT_EQ(tok->pad_id(), 1);
  EXPECT_NE(tok->summary().find("Unigram"), std::string::npos) << tok->summary();
  EXPECT_NE(tok->summary().find("<s> $A </s>"), std::string::npos) << tok->summary();
  auto bad = tok->encode(std::string("ab\xc3"), EncodeOptions{});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("byte offset 2"), std::string::npos);
}

void expect_rejected(const nlohmann::json& j, ErrorCode code, std::vector<std::string> fragments) {
  testing::expect_error(Tokenizer::from_json(j.dump(), "edited/tokenizer.json"), code, std::move(fragments));
}

TEST(Unigram, MalformedFilesAreRejectedByField) {
  auto j = fixture_json();
  j["model"]["unk_id"] = 100000;
  expect_rejected(j, ErrorCode::kInvalidModel, {"model.unk_id", "outside"});
  j = fixture_json();
  j["model"]["unk_id"] = nullptr;
  expect_rejected(j, ErrorCode::kInvalidModel, {"model.unk_id"});
  j = fixture_json();
  j["model"]["byte_fallback"] = true;
  expect_rejected(j, ErrorCode::kInvalidModel, {"model.byte_fallback"});
  j = fixture_json();
  j["model"]["vocab"][7] = {"x"};
  expect_rejected(j, ErrorCode::kInvalidModel, {"model.vocab[7]"});
  j = fixture_json();
  j["model"]["vocab"][7] = {"x", "high"};
  expect_rejected(j, ErrorCode::kInvalidModel, {"model.vocab[7]"});
  j = fixture_json();
  j["pre_tokenizer"]["replacement"] = "__";
  expect_rejected(j, ErrorCode::kInvalidModel, {"pre_tokenizer.replacement"});
  j = fixture_json();
  j["pre_tokenizer"]["prepend_scheme"] = "sometimes";
  expect_rejected(j, ErrorCode::kInvalidModel, {"pre_tokenizer.prepend_scheme"});
  j = fixture_json();
  j["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
  expect_rejected(j, ErrorCode::kUnsupported, {"pre_tokenizer", "Metaspace"});
  j = fixture_json();
  j["normalizer"]["normalizers"][2]["pattern"]["Regex"] = "(unclosed";
  expect_rejected(j, ErrorCode::kInvalidModel, {"normalizer.normalizers[2]", "(unclosed"});
  j = fixture_json();
  j["normalizer"]["normalizers"][2]["pattern"]["Regex"] = " *";
  expect_rejected(j, ErrorCode::kUnsupported, {"normalizer.normalizers[2]", "empty"});
  j = fixture_json();
  j["normalizer"]["normalizers"][2]["pattern"] = {{"String", ""}};
  expect_rejected(j, ErrorCode::kInvalidModel, {"normalizer.normalizers[2].pattern"});
  j = fixture_json();
  j["normalizer"]["normalizers"][0]["precompiled_charsmap"] = "not base64!";
  expect_rejected(j, ErrorCode::kInvalidModel, {"normalizer.normalizers[0].precompiled_charsmap"});
  j = fixture_json();
  j["normalizer"]["normalizers"][0]["precompiled_charsmap"] = "AAAA";
  expect_rejected(j, ErrorCode::kInvalidModel, {"normalizer.normalizers[0].precompiled_charsmap"});
  j = fixture_json();
  j["normalizer"]["normalizers"][1] = {{"type", "NFKC"}};
  expect_rejected(j, ErrorCode::kUnsupported, {"normalizer.normalizers[1].type", "NFKC"});
  j = fixture_json();
  j["normalizer"]["normalizers"][1] = {{"type", "Lowercase"}};
  expect_rejected(j, ErrorCode::kUnsupported, {"normalizer.normalizers[1].type", "Lowercase"});
  // WordPiece with Metaspace.
  std::ifstream in(fixtures_dir() / "models" / "tiny-jina" / "tokenizer.json");
  auto wp = nlohmann::json::parse(in);
  wp["pre_tokenizer"] = fixture_json()["pre_tokenizer"];
  expect_rejected(wp, ErrorCode::kUnsupported, {"pre_tokenizer", "Metaspace", "WordPiece"});
}

// Metaspace's three prepend schemes and split = false, on the fixture vocabulary: "first" adds
// the replacement to the text's first segment only; "never" to none.
TEST(Unigram, PrependSchemesAndSplit) {
  auto ids = [](const nlohmann::json& j, const std::string& text) { return ids_of(j, text); };
  auto j = fixture_json();
  const Ids always = ids(j, "hello <mask>world");
  j["pre_tokenizer"]["prepend_scheme"] = "first";
  const Ids first = ids(j, "hello <mask>world");
  j["pre_tokenizer"]["prepend_scheme"] = "never";
  const Ids never = ids(j, "hello <mask>world");
  const std::int32_t meta = 5;  // "▁"
  ASSERT_EQ(fixture_json()["model"]["vocab"][meta][0], "\u2581");
  EXPECT_NE(always, first);
  EXPECT_NE(first, never);
  j["pre_tokenizer"]["prepend_scheme"] = "always";
  j["pre_tokenizer"]["split"] = false;
  auto unsplit = Tokenizer::from_json(j.dump(), "unsplit");
  ASSERT_TRUE(unsplit.ok()) << unsplit.status().to_string();
  EXPECT_TRUE((*unsplit)->encode("hello world", EncodeOptions{}).ok());
}

}  // namespace
}  // namespace embd::tokenizer
