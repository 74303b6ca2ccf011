// Unit tests of the tokenizer: specials, truncation, fallbacks, malformed files, bad input,
// added-token flags and thread-safety.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "core/thread_pool.h"
#include "tokenizer/golden_util.h"
#include "tokenizer/tokenizer.h"

namespace embd::tokenizer {
namespace {

using testing::fixture_model_dir;
using testing::fixtures_dir;
using testing::expect_error;
using testing::read_goldens;
using Ids = std::vector<std::int32_t>;

std::string fixture_json() {
  std::ifstream in(fixture_model_dir() / "tokenizer.json", std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

const Tokenizer& fixture() {
  static std::unique_ptr<Tokenizer> tok = [] {
    auto t = Tokenizer::load(fixture_model_dir());
    EMBD_CHECK(t.ok());
    return std::move(t).value();
  }();
  return *tok;
}

Ids encode(const Tokenizer& tok, std::string_view text, EncodeOptions opts = {}) {
  auto r = tok.encode(text, opts);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? r->ids : Ids{};
}

Result<std::unique_ptr<Tokenizer>> from_modified(const std::function<void(nlohmann::json&)>& edit) {
  auto j = nlohmann::json::parse(fixture_json());
  edit(j);
  return Tokenizer::from_json(j.dump(), "edited/tokenizer.json");
}

TEST(Tokenizer, Accessors) {
  const auto& tok = fixture();
  EXPECT_EQ(tok.vocab_size(), 30522u);
  EXPECT_EQ(tok.cls_id(), 101);
  EXPECT_EQ(tok.sep_id(), 102);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.token_to_id("hello"), 7592);
  EXPECT_EQ(tok.token_to_id("##s"), 2015);
  EXPECT_EQ(tok.token_to_id("no-such-token"), -1);
  EXPECT_EQ(tok.id_to_token(7592), "hello");
  EXPECT_EQ(tok.id_to_token(-1), "");
  EXPECT_EQ(tok.id_to_token(30522), "");
  EXPECT_EQ(tok.summary(), "WordPiece, 30522 tokens, lowercase, strip accents, [CLS] $A [SEP]");
}

TEST(Tokenizer, SpecialTokensInRawText) {
  const auto& tok = fixture();
  EXPECT_EQ(encode(tok, "[SEP]"), (Ids{101, 102, 102}));
  EXPECT_EQ(encode(tok, "x[MASK]y"), (Ids{101, 1060, 103, 1061, 102}));
  Ids lower = encode(tok, "[sep]");
  EXPECT_EQ(std::count(lower.begin(), lower.end(), 102), 1) << "[sep] must not be special";
  EXPECT_EQ(lower.front(), 101);
  EXPECT_EQ(lower[1], tok.token_to_id("["));
}

TEST(Tokenizer, EmptyAndNulInput) {
  const auto& tok = fixture();
  EXPECT_EQ(encode(tok, ""), (Ids{101, 102}));
  EXPECT_EQ(encode(tok, std::string("\0\0", 2)), (Ids{101, 102}));
  EXPECT_EQ(encode(tok, std::string("hel\0lo", 6)), encode(tok, "hello"));
  EncodeOptions no_specials;
  no_specials.add_special_tokens = false;
  EXPECT_EQ(encode(tok, "", no_specials), Ids{});
  EXPECT_EQ(encode(tok, "hello", no_specials), Ids{7592});
}

TEST(Tokenizer, TruncationBothDirections) {
  const auto& tok = fixture();
  const std::string text = "hello world one two three";
  Ids full = encode(tok, text);
  ASSERT_EQ(full.size(), 7u);
  EncodeOptions opts;
  opts.max_length = 5;
  auto right = tok.encode(text, opts);
  ASSERT_TRUE(right.ok());
  EXPECT_EQ(right->ids, (Ids{101, full[1], full[2], full[3], 102}));
  EXPECT_EQ(right->untruncated_length, 7u);
  EXPECT_TRUE(right->truncated());
  opts.direction = TruncationDirection::kLeft;
  auto left = tok.encode(text, opts);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->ids, (Ids{101, full[3], full[4], full[5], 102}));
  EXPECT_TRUE(left->truncated());
  opts.max_length = 7;  // exactly fits: untouched
  auto exact = tok.encode(text, opts);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(exact->ids, full);
  EXPECT_FALSE(exact->truncated());
  opts.max_length = 2;  // only the specials remain
  EXPECT_EQ(encode(tok, text, opts), (Ids{101, 102}));
  opts.max_length = 1;
  auto too_small = tok.encode(text, opts);
  ASSERT_FALSE(too_small.ok());
  EXPECT_EQ(too_small.status().code(), ErrorCode::kInvalidArgument);
  EncodeOptions bare;
  bare.add_special_tokens = false;
  bare.max_length = 2;
  EXPECT_EQ(encode(tok, text, bare), (Ids{full[1], full[2]}));
}

TEST(Tokenizer, InvalidUtf8NamesTheOffset) {
  const auto& tok = fixture();
  struct Case {
    std::string text;
    std::size_t offset;
  };
  const Case cases[] = {
      {"ab\xff", 2},                     // never valid
      {"\xC0\xAF", 0},                   // overlong '/'
      {"hello \xED\xA0\x80", 6},         // surrogate
      {"abc\xE2\x82", 3},                // truncated at the end
      {"x\xF4\x90\x80\x80", 1},          // above U+10FFFF
      {"0123456789\x80", 10},            // stray continuation byte after an ASCII block
      {"\xC3\xA9\xC3", 2},               // valid, then truncated
  };
  for (const auto& c : cases) {
    auto r = tok.encode(c.text, {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("byte offset " + std::to_string(c.offset)),
              std::string::npos)
        << r.status().message();
  }
}

TEST(Tokenizer, VeryLongInputs) {
  const auto& tok = fixture();
  std::string words;
  while (words.size() < (1u << 20)) words += "hello world ";
  Ids ids = encode(tok, words);
  ASSERT_EQ(ids.size(), 2 + 2 * (words.size() / 12));
  EXPECT_EQ(ids[1], 7592);
  EXPECT_EQ(ids[2], 2088);
  std::string one_word(1u << 20, 'a');
  EXPECT_EQ(encode(tok, one_word), (Ids{101, 100, 102}));
  std::string accents;  // 1 MB of non-ASCII punctuation-free text in 4-char words
  while (accents.size() < (1u << 20)) accents += "\xC3\xA9t\xC3\xA9 ";  // "été"
  Ids ete = encode(tok, accents);
  EXPECT_EQ(ete.size(), 2 + 2 * (accents.size() / 6)) << "ete -> 2 pieces each";
}

// Random bytes and random code points: every call returns (ids or an offset error), never crashes,
// and valid input always encodes.
TEST(Tokenizer, RandomInputNeverCrashes) {
  const auto& tok = fixture();
  std::mt19937 rng(1234);
  for (int round = 0; round < 2000; ++round) {
    std::string bytes(rng() % 64, '\0');
    for (auto& b : bytes) b = static_cast<char>(rng() % 256);
    auto r = tok.encode(bytes, {});
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(r.status().message().find("byte offset"), std::string::npos);
    }
    std::string text;
    for (int k = rng() % 32; k > 0; --k) {
      char32_t c = rng() % 0x110000;
      if (c >= 0xD800 && c <= 0xDFFF) c = 'x';
      if (c < 0x80) {
        text.push_back(static_cast<char>(c));
      } else if (c < 0x800) {
        text.push_back(static_cast<char>(0xC0 | (c >> 6)));
        text.push_back(static_cast<char>(0x80 | (c & 0x3F)));
      } else if (c < 0x10000) {
        text.push_back(static_cast<char>(0xE0 | (c >> 12)));
        text.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        text.push_back(static_cast<char>(0x80 | (c & 0x3F)));
      } else {
        text.push_back(static_cast<char>(0xF0 | (c >> 18)));
        text.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
        text.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        text.push_back(static_cast<char>(0x80 | (c & 0x3F)));
      }
    }
    auto valid = tok.encode(text, {});
    ASSERT_TRUE(valid.ok()) << valid.status().to_string();
    EXPECT_GE(valid->ids.size(), 2u);
    for (auto id : valid->ids) EXPECT_TRUE(id >= 0 && id < 30522);
  }
}

TEST(Tokenizer, WordLengthLimit) {
  const auto& tok = fixture();
  std::string w100(100, 'a'), w101(101, 'a');
  EXPECT_GT(encode(tok, w100).size(), 3u);
  EXPECT_EQ(encode(tok, w101), (Ids{101, 100, 102}));
}

TEST(Tokenizer, VocabTxtFallbackMatchesJson) {
  auto dir = std::filesystem::temp_directory_path() /
             ("embd_tok_vocab_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    auto j = nlohmann::json::parse(fixture_json());
    std::vector<std::string> lines(j["model"]["vocab"].size());
    for (auto& [token, id] : j["model"]["vocab"].items()) lines.at(id.get<std::size_t>()) = token;
    std::ofstream out(dir / "vocab.txt", std::ios::binary);
    for (const auto& l : lines) out << l << "\n";
  }
  auto txt = Tokenizer::load(dir);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(txt.ok()) << txt.status().to_string();
  EXPECT_EQ((*txt)->vocab_size(), 30522u);
  EXPECT_EQ((*txt)->cls_id(), 101);
  EXPECT_EQ((*txt)->sep_id(), 102);
  std::size_t same = 0;
  auto records = read_goldens(fixtures_dir() / "goldens" / "tokenizer.jsonl");
  for (const auto& r : records) {
    Ids a = encode(**txt, r.text);
    EXPECT_EQ(a, encode(fixture(), r.text)) << r.id;
    same += a == r.ids;
  }
  EXPECT_EQ(same, records.size());
}

TEST(Tokenizer, MissingFilesAreNotFound) {
  auto r = Tokenizer::load(fixtures_dir() / "no-such-model");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
}

TEST(Tokenizer, MalformedJsonIsRejectedByField) {
  expect_error(Tokenizer::from_json("{\"model\": {", "edited/tokenizer.json"),
               ErrorCode::kInvalidModel, {"invalid JSON"});
  expect_error(from_modified([](auto& j) { j["model"]["type"] = "WordLevel"; }),
               ErrorCode::kUnsupported, {"model.type", "WordLevel"});
  // WordPiece's "##" means nothing to BPE, which takes no continuing_subword_prefix.
  expect_error(from_modified([](auto& j) { j["model"]["type"] = "BPE"; }), ErrorCode::kInvalidModel,
               {"model.continuing_subword_prefix"});
  expect_error(from_modified([](auto& j) { j["pre_tokenizer"] = {{"type", "ByteLevel"}}; }),
               ErrorCode::kUnsupported, {"pre_tokenizer", "ByteLevel", "BPE"});
  expect_error(from_modified([](auto& j) { j["model"].erase("vocab"); }), ErrorCode::kInvalidModel,
               {"model.vocab", "missing"});
  expect_error(from_modified([](auto& j) { j.erase("model"); }), ErrorCode::kInvalidModel,
               {"'model'"});
  expect_error(from_modified([](auto& j) { j["model"]["vocab"]["hello"] = "x"; }),
               ErrorCode::kInvalidModel, {"model.vocab[\"hello\"]"});
  expect_error(from_modified([](auto& j) { j["model"]["unk_token"] = "<unk>"; }),
               ErrorCode::kInvalidModel, {"model.unk_token", "<unk>"});
  expect_error(from_modified([](auto& j) { j["normalizer"] = {{"type", "NFKC"}}; }),
               ErrorCode::kUnsupported, {"normalizer.type", "NFKC"});
  expect_error(from_modified([](auto& j) {
                 j["normalizer"] = {{"type", "Sequence"},
                                    {"normalizers", {{{"type", "NFC"}}}}};
               }),
               ErrorCode::kUnsupported, {"normalizer.normalizers[0].type", "NFC"});
  expect_error(from_modified([](auto& j) { j["pre_tokenizer"] = {{"type", "Metaspace"}}; }),
               ErrorCode::kUnsupported, {"pre_tokenizer", "Metaspace", "WordPiece"});
  expect_error(from_modified([](auto& j) { j["pre_tokenizer"] = {{"type", "Punctuation"}}; }),
               ErrorCode::kUnsupported, {"pre_tokenizer.type", "Punctuation"});
  expect_error(from_modified([](auto& j) { j["post_processor"] = {{"type", "Sequence"}}; }),
               ErrorCode::kUnsupported, {"post_processor.type", "Sequence"});
  expect_error(from_modified([](auto& j) { j["added_tokens"][0].erase("id"); }),
               ErrorCode::kInvalidModel, {"added_tokens[0].id"});
  expect_error(from_modified([](auto& j) { j["normalizer"]["lowercase"] = "yes"; }),
               ErrorCode::kInvalidModel, {"normalizer.lowercase"});
}

TEST(Tokenizer, AcceptedVariants) {
  // A trivial Sequence normalizer and BertProcessing give the same ids as the stock file.
  auto seq = from_modified([](auto& j) {
    j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {j["normalizer"]}}};
    j["post_processor"] = {{"type", "BertProcessing"},
                           {"sep", {"[SEP]", 102}},
                           {"cls", {"[CLS]", 101}}};
  });
  ASSERT_TRUE(seq.ok()) << seq.status().to_string();
  for (const char* text : {"Hello, World!", "Ça va? [SEP] 東京", "ΟΔΟΣ"}) {
    EXPECT_EQ(encode(**seq, text), encode(fixture(), text)) << text;
  }
  // lowercase off keeps case and (strip_accents null) accents.
  auto cased = from_modified([](auto& j) { j["normalizer"]["lowercase"] = false; });
  ASSERT_TRUE(cased.ok());
  EXPECT_EQ(encode(**cased, "Hello"), (Ids{101, 100, 102}));  // "Hello" is not in an uncased vocab
  EXPECT_EQ(encode(**cased, "hello"), (Ids{101, 7592, 102}));
}

TEST(Tokenizer, AddedTokenFlags) {
  auto add = [](nlohmann::json token) {
    return from_modified([&](auto& j) { j["added_tokens"].push_back(token); });
  };
  nlohmann::json base = {{"id", 1}, {"content", "<x>"}, {"single_word", false},
                         {"lstrip", false}, {"rstrip", false}, {"normalized", false},
                         {"special", true}};
  auto plain = add(base);
  ASSERT_TRUE(plain.ok()) << plain.status().to_string();
  EXPECT_EQ(encode(**plain, "a<x>b"), (Ids{101, 1037, 1, 1038, 102}));
  EXPECT_EQ(encode(**plain, "a<X>b").size(), 7u) << "matching is case-sensitive";

  auto single = base;
  single["single_word"] = true;
  auto sw = add(single);
  ASSERT_TRUE(sw.ok());
  EXPECT_EQ(encode(**sw, "a <x> b"), (Ids{101, 1037, 1, 1038, 102}));
  Ids inside = encode(**sw, "a<x>b");
  EXPECT_EQ(std::count(inside.begin(), inside.end(), 1), 0) << "not a single word";

  auto norm = base;
  norm["content"] = "HeLLo";
  norm["normalized"] = true;
  auto nt = add(norm);
  ASSERT_TRUE(nt.ok());
  EXPECT_EQ(encode(**nt, "HELLO world"), (Ids{101, 1, 2088, 102}));
  EXPECT_EQ(encode(**nt, "xhello"), (Ids{101, 1060, 1, 102}));
}

TEST(Tokenizer, ConcurrentEncodeMatchesSequential) {
  const auto& tok = fixture();
  auto records = read_goldens(fixtures_dir() / "goldens" / "tokenizer.jsonl");
  std::vector<std::string> texts;
  for (const auto& r : records) texts.push_back(r.text);
  std::vector<Ids> expected;
  for (const auto& t : texts) expected.push_back(encode(tok, t));

  std::vector<std::thread> threads;
  std::vector<int> mismatches(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 4; ++round) {
        for (std::size_t k = 0; k < texts.size(); ++k) {
          std::size_t i = (k * 7 + static_cast<std::size_t>(t) * 31) % texts.size();
          auto r = tok.encode(texts[i], {});
          if (!r.ok() || r->ids != expected[i]) ++mismatches[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;

  ThreadPool pool(4);
  auto batch = tok.encode_batch(texts, {}, &pool);
  auto serial = tok.encode_batch(texts, {}, nullptr);
  ASSERT_EQ(batch.size(), texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    ASSERT_TRUE(batch[i].ok());
    ASSERT_TRUE(serial[i].ok());
    EXPECT_EQ(batch[i]->ids, expected[i]) << records[i].id;
    EXPECT_EQ(serial[i]->ids, expected[i]) << records[i].id;
  }
}

// One long text is split over the pool at whitespace: ids identical to one thread's, for every
// kind of golden text (specials in raw text, CJK, accents, punctuation) glued together, with
// truncation on both sides and with invalid UTF-8 late in the text.
TEST(Tokenizer, LongTextOverPoolMatchesOneThread) {
  const auto& tok = fixture();
  auto records = read_goldens(fixtures_dir() / "goldens" / "tokenizer.jsonl");
  std::string text;
  for (std::size_t i = 0; text.size() < 5 * kParallelTextBytes; ++i) {
    text += records[i % records.size()].text;
    text += i % 3 == 0 ? "\n" : i % 3 == 1 ? " [MASK] " : "\t";
  }
  ThreadPool pool(4);
  for (std::size_t cut : {kParallelTextBytes, text.size() / 2, text.size()}) {
    const std::string piece = text.substr(0, cut);
    for (EncodeOptions opts : {EncodeOptions{}, EncodeOptions{512, TruncationDirection::kRight, true},
                               EncodeOptions{512, TruncationDirection::kLeft, true}}) {
      auto pooled = tok.encode_batch({piece}, opts, &pool);
      auto alone = tok.encode(piece, opts);
      ASSERT_TRUE(pooled[0].ok() && alone.ok());
      EXPECT_EQ(pooled[0]->ids, alone->ids) << cut;
      EXPECT_EQ(pooled[0]->untruncated_length, alone->untruncated_length);
    }
  }
  auto bad = tok.encode_batch({text + "\xff"}, {}, &pool);
  ASSERT_FALSE(bad[0].ok());
  EXPECT_NE(bad[0].status().message().find("byte offset " + std::to_string(text.size())), std::string::npos)
      << bad[0].status().message();
}

// Every batch size, from a couple of texts (one-text blocks) to many (blocks of 8), encodes
// each text exactly as encode() does, in order.
TEST(Tokenizer, BatchOfAnySizeOverPoolMatchesSerial) {
  const auto& tok = fixture();
  auto records = read_goldens(fixtures_dir() / "goldens" / "tokenizer.jsonl");
  ThreadPool pool(4);
  for (std::size_t n : {2u, 3u, 7u, 8u, 9u, 16u, 17u, 33u, 100u}) {
    std::vector<std::string> texts;
    for (std::size_t i = 0; i < n; ++i) texts.push_back(records[(i * 13) % records.size()].text);
    auto batch = tok.encode_batch(texts, {}, &pool);
    ASSERT_EQ(batch.size(), n);
    for (std::size_t i = 0; i < n; ++i) {
      auto alone = tok.encode(texts[i], {});
      ASSERT_TRUE(batch[i].ok() && alone.ok()) << n << " " << i;
      EXPECT_EQ(batch[i]->ids, alone->ids) << n << " " << i;
    }
  }
}

// Several callers share one pool at once (as concurrent requests to an engine do), with batches
// of whole texts and of long texts cut into pieces: each gets exactly the ids encode() gives.
TEST(Tokenizer, ConcurrentBatchesOnOnePoolMatchSerial) {
  const auto& tok = fixture();
  auto records = read_goldens(fixtures_dir() / "goldens" / "tokenizer.jsonl");
  std::string long_text;
  while (long_text.size() < 40000) long_text += records[long_text.size() % records.size()].text + " ";
  ThreadPool pool(4);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 6; ++c) {
    callers.emplace_back([&, c] {
      for (int r = 0; r < 15; ++r) {
        std::vector<std::string> texts;
        const std::size_t n = 2 + static_cast<std::size_t>((c * 7 + r * 5) % 40);
        for (std::size_t i = 0; i < n; ++i) texts.push_back(records[(i * 13 + c + r) % records.size()].text);
        if ((c + r) % 3 == 0) texts[0] = long_text;  // few texts, one long: cut into pieces
        const auto batch = tok.encode_batch(texts, {}, &pool);
        for (std::size_t i = 0; i < n; ++i) {
          const auto alone = tok.encode(texts[i], {});
          if (!batch[i].ok() || !alone.ok() || batch[i]->ids != alone->ids) ++mismatches;
        }
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// A few long texts beside short ones: the long ones are cut into pieces spread over the pool
// together with the short texts, and every result matches encode(), with truncation on both
// sides, with offsets (never cut), and with invalid UTF-8 in a later piece of one text (the
// error names the same byte offset as encode()'s).
TEST(Tokenizer, FewLongTextsCutOverPoolMatchSerial) {
  const auto& tok = fixture();
  auto records = read_goldens(fixtures_dir() / "goldens" / "tokenizer.jsonl");
  std::vector<std::string> texts(5);
  for (std::size_t t = 0; t < texts.size(); ++t) {
    const std::size_t target = t == 1 ? 40 : t == 3 ? 1 : 10 + 3 * t;  // KB; text 3 stays short
    for (std::size_t i = t; texts[t].size() < target * 1024; ++i) {
      texts[t] += records[i % records.size()].text;
      texts[t] += i % 4 == 0 ? "\n" : i % 4 == 1 ? " [MASK] " : i % 4 == 2 ? "\t" : "  ";
    }
  }
  ThreadPool pool(4);
  for (EncodeOptions opts : {EncodeOptions{}, EncodeOptions{512, TruncationDirection::kRight, true},
                             EncodeOptions{300, TruncationDirection::kLeft, true},
                             EncodeOptions{0, TruncationDirection::kRight, true, true}}) {
    auto batch = tok.encode_batch(texts, opts, &pool);
    ASSERT_EQ(batch.size(), texts.size());
    for (std::size_t t = 0; t < texts.size(); ++t) {
      auto alone = tok.encode(texts[t], opts);
      ASSERT_TRUE(batch[t].ok() && alone.ok()) << t;
      EXPECT_EQ(batch[t]->ids, alone->ids) << t;
      EXPECT_EQ(batch[t]->untruncated_length, alone->untruncated_length) << t;
      EXPECT_EQ(batch[t]->offsets.size(), alone->offsets.size()) << t;
    }
  }
  std::vector<std::string> broken = texts;
  broken[1].insert(30 * 1024, "\xc3");  // a lead byte without its continuation, deep in text 1
  broken[1].insert(35 * 1024, "\xff");
  auto batch = tok.encode_batch(broken, {}, &pool);
  auto alone = tok.encode(broken[1], {});
  ASSERT_FALSE(alone.ok());
  ASSERT_FALSE(batch[1].ok());
  EXPECT_EQ(batch[1].status().message(), alone.status().message());
  for (std::size_t t : {0u, 2u, 3u, 4u}) EXPECT_TRUE(batch[t].ok()) << t;
}

TEST(Tokenizer, BatchReportsItemErrors) {
  ThreadPool pool(2);
  std::vector<std::string> texts(40, "fine text");
  texts[17] = "bad \xff";
  auto out = fixture().encode_batch(texts, {}, &pool);
  for (std::size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(out[i].ok(), i != 17) << i;
  EXPECT_NE(out[17].status().message().find("byte offset 4"), std::string::npos) << out[17].status().message();
}

}  // namespace
}  // namespace embd::tokenizer
