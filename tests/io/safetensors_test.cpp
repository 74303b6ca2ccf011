// SafetensorsFile: the fixtures load; every malformed file gives a clear error and no crash.
#include "io/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "io_test_util.h"

namespace embd::io {
namespace {

using ::testing::HasSubstr;
using testing::read_file;
using testing::safetensors_bytes;
using testing::TempDir;
using testing::write_file;
using testing::zeros;

const std::filesystem::path kModels = std::filesystem::path(EMBD_FIXTURES_DIR) / "models";

// Writes bytes to a temp file, opens it and returns the error (the open must fail).
class MalformedFile : public ::testing::Test {
 protected:
  Status open_error(const std::string& bytes) {
    write_file(dir_ / "m.safetensors", bytes);
    auto r = SafetensorsFile::open(dir_ / "m.safetensors");
    EXPECT_FALSE(r.ok()) << "opened a malformed file";
    return r.ok() ? Status() : r.status();
  }
  TempDir dir_;
};

TEST(Safetensors, OpensFixtureWithDtypesShapesAndValues) {
  auto f = SafetensorsFile::open(kModels / "tiny-jina" / "model.safetensors");
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ((*f)->metadata().at("format"), "pt");
  const HostTensor* emb = (*f)->find("embeddings.word_embeddings.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->dtype, DType::kF32);
  EXPECT_EQ(emb->shape, (std::vector<std::int64_t>{30528, 64}));
  const HostTensor* gamma = (*f)->find("embeddings.LayerNorm.weight");
  ASSERT_NE(gamma, nullptr);
  // LayerNorm gamma = 1 + N(0, 0.1): its mean proves the data pointer is right.
  std::vector<float> g(64);
  std::memcpy(g.data(), gamma->data, 64 * sizeof(float));
  double mean = 0;
  for (float v : g) mean += v / 64.0;
  EXPECT_NEAR(mean, 1.0, 0.05);
  EXPECT_EQ((*f)->find("no.such.tensor"), nullptr);
}

TEST(Safetensors, MissingFileIsNotFound) {
  auto f = SafetensorsFile::open("/nonexistent/model.safetensors");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), ErrorCode::kNotFound);
  EXPECT_THAT(f.status().message(), HasSubstr("/nonexistent/model.safetensors"));
}

TEST_F(MalformedFile, ShorterThanEightBytes) {
  for (std::size_t n : {0, 1, 7}) {
    const Status s = open_error(zeros(n));
    EXPECT_EQ(s.code(), ErrorCode::kInvalidModel);
    EXPECT_THAT(s.message(), HasSubstr("shorter than the 8-byte"));
    EXPECT_THAT(s.message(), HasSubstr("m.safetensors"));
  }
}

TEST_F(MalformedFile, HeaderLengthPastEndOfFile) {
  const std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  Status s = open_error(safetensors_bytes(header, zeros(4), header.size() + 100));
  EXPECT_THAT(s.message(), HasSubstr("runs past the end of the file"));
  s = open_error(safetensors_bytes(header, zeros(4), ~0ull));  // absurd: 2^64 - 1
  EXPECT_THAT(s.message(), HasSubstr("runs past the end of the file"));
}

TEST_F(MalformedFile, BadJson) {
  Status s = open_error(safetensors_bytes(R"({"a":{"dtype":"F32",)", ""));
  EXPECT_THAT(s.message(), HasSubstr("malformed JSON header"));
  s = open_error(safetensors_bytes("[1, 2]", ""));
  EXPECT_THAT(s.message(), HasSubstr("does not start with '{'"));
  s = open_error(safetensors_bytes("", ""));
  EXPECT_EQ(s.code(), ErrorCode::kInvalidModel);
  s = open_error(safetensors_bytes(R"({"a": 5})", ""));
  EXPECT_THAT(s.message(), HasSubstr("tensor 'a': description must be a JSON object"));
}

TEST_F(MalformedFile, OffsetsOutOfRange) {
  const Status s = open_error(safetensors_bytes(
      R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", zeros(8)));
  EXPECT_EQ(s.code(), ErrorCode::kInvalidModel);
  EXPECT_THAT(s.message(), HasSubstr("tensor 'w'"));
  EXPECT_THAT(s.message(), HasSubstr("run past the data area (8 bytes)"));
  const Status reversed = open_error(safetensors_bytes(
      R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", zeros(8)));
  EXPECT_THAT(reversed.message(), HasSubstr("end before begin"));
}

TEST_F(MalformedFile, OverlappingTensorsNameBoth) {
  const Status s = open_error(safetensors_bytes(
      R"({"first":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
      R"("second":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
      zeros(16)));
  EXPECT_THAT(s.message(), HasSubstr("'first'"));
  EXPECT_THAT(s.message(), HasSubstr("'second'"));
  EXPECT_THAT(s.message(), HasSubstr("overlap"));
}

TEST_F(MalformedFile, WrongByteSize) {
  const Status s = open_error(safetensors_bytes(
      R"({"w":{"dtype":"F16","shape":[2,3],"data_offsets":[0,8]}})", zeros(8)));
  EXPECT_THAT(s.message(), HasSubstr("tensor 'w'"));
  EXPECT_THAT(s.message(), HasSubstr("hold 8 bytes but shape [2, 3] of f16 needs 12"));
}

TEST_F(MalformedFile, UnsupportedAndUnknownDtypes) {
  Status s = open_error(safetensors_bytes(
      R"({"x":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}})", zeros(4)));
  EXPECT_EQ(s.code(), ErrorCode::kUnsupported);
  EXPECT_THAT(s.message(), HasSubstr("tensor 'x' has dtype I8; embd supports F32, F16, BF16"));
  s = open_error(safetensors_bytes(
      R"({"x":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", zeros(8)));
  EXPECT_THAT(s.message(), HasSubstr("has dtype F64"));
  s = open_error(safetensors_bytes(
      R"({"x":{"dtype":"Q4_K","shape":[1],"data_offsets":[0,1]}})", zeros(1)));
  EXPECT_EQ(s.code(), ErrorCode::kInvalidModel);
  EXPECT_THAT(s.message(), HasSubstr("unknown dtype 'Q4_K'"));
  s = open_error(safetensors_bytes(R"({"x":{"dtype":7,"shape":[1],"data_offsets":[0,1]}})", zeros(1)));
  EXPECT_THAT(s.message(), HasSubstr("\"dtype\" must be a string"));
}

TEST_F(MalformedFile, DuplicateNames) {
  const Status s = open_error(safetensors_bytes(
      R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
      R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
      zeros(8)));
  EXPECT_THAT(s.message(), HasSubstr("names tensor 'w' twice"));
  const Status nested = open_error(safetensors_bytes(
      R"({"w":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}})", zeros(4)));
  EXPECT_THAT(nested.message(), HasSubstr("repeats the key 'dtype'"));
}

TEST_F(MalformedFile, BadShapes) {
  Status s = open_error(safetensors_bytes(
      R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", zeros(4)));
  EXPECT_THAT(s.message(), HasSubstr("shape dimension -1 is negative"));
  s = open_error(safetensors_bytes(
      R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", zeros(4)));
  EXPECT_THAT(s.message(), HasSubstr("must be a non-negative integer"));
  // A product that overflows 64 bits must not wrap around to a small, "valid" size.
  s = open_error(safetensors_bytes(
      R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,1],"data_offsets":[0,0]}})", zeros(4)));
  EXPECT_THAT(s.message(), HasSubstr("overflows 64 bits"));
  s = open_error(safetensors_bytes(
      R"({"w":{"dtype":"F32","shape":[65536,65536],"data_offsets":[0,4]}})", zeros(4)));
  EXPECT_THAT(s.message(), HasSubstr("needs more bytes than the file's data area"));
  s = open_error(safetensors_bytes(
      R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", zeros(4)));
  EXPECT_THAT(s.message(), HasSubstr("\"data_offsets\" must be [begin, end]"));
  s = open_error(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[1]}})", zeros(4)));
  EXPECT_THAT(s.message(), HasSubstr("missing \"data_offsets\""));
}

TEST_F(MalformedFile, MetadataMustMapStringsToStrings) {
  Status s = open_error(safetensors_bytes(R"({"__metadata__":{"format":1}})", ""));
  EXPECT_THAT(s.message(), HasSubstr("\"__metadata__\" entry 'format' must be a string"));
  s = open_error(safetensors_bytes(R"({"__metadata__":[1]})", ""));
  EXPECT_THAT(s.message(), HasSubstr("\"__metadata__\" must be a JSON object"));
}

TEST(Safetensors, MisalignedTensorIsCopiedToAlignedMemory) {
  TempDir dir;
  // "h" (one F16) first puts "w" (F32) at data offset 2: legal, but not 4-byte aligned.
  std::string data = zeros(2);
  const float values[2] = {1.5f, -2.25f};
  data.append(reinterpret_cast<const char*>(values), sizeof(values));
  std::string header = R"({"h":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},)"
                       R"("w":{"dtype":"F32","shape":[2],"data_offsets":[2,10]}})";
  header.resize((header.size() + 7) / 8 * 8, ' ');  // data area 8-byte aligned in the file
  write_file(dir / "a.safetensors", safetensors_bytes(header, data));
  auto f = SafetensorsFile::open(dir / "a.safetensors");
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  const HostTensor* w = (*f)->find("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(w->data) % alignof(float), 0u);
  EXPECT_EQ(static_cast<const float*>(w->data)[0], 1.5f);
  EXPECT_EQ(static_cast<const float*>(w->data)[1], -2.25f);
}

TEST(Safetensors, EmptyTensorsAndGapsAreAccepted) {
  TempDir dir;
  write_file(dir / "e.safetensors",
             safetensors_bytes(R"({"empty":{"dtype":"BF16","shape":[0,5],"data_offsets":[4,4]},)"
                               R"("scalar":{"dtype":"F32","shape":[],"data_offsets":[4,8]}})",
                               zeros(8)));
  auto f = SafetensorsFile::open(dir / "e.safetensors");
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ((*f)->find("empty")->numel(), 0);
  EXPECT_EQ((*f)->find("scalar")->numel(), 1);
  // An empty tensor fits even where its other dimensions would not.
  write_file(dir / "z.safetensors",
             safetensors_bytes(R"({"z":{"dtype":"F32","shape":[1000000,0],"data_offsets":[0,0]}})", ""));
  auto z = SafetensorsFile::open(dir / "z.safetensors");
  ASSERT_TRUE(z.ok()) << z.status().to_string();
  EXPECT_EQ((*z)->find("z")->bytes(), 0u);
  write_file(dir / "o.safetensors",
             safetensors_bytes(R"({"o":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})", ""));
  EXPECT_THAT(SafetensorsFile::open(dir / "o.safetensors").status().message(), HasSubstr("overflows 64 bits"));
}

TEST(Safetensors, WriterRoundTrips) {
  TempDir dir;
  const std::vector<float> a = {1, 2, 3, 4, 5, 6};
  const std::vector<std::uint16_t> b = {0x3c00, 0xc000, 0x7bff};
  std::vector<HostTensor> ts = {{"a.weight", DType::kF32, {2, 3}, a.data()},
                                {"b", DType::kF16, {3}, b.data()}};
  ASSERT_TRUE(write_safetensors(dir / "w.safetensors", ts, {{"format", "pt"}}).ok());
  const std::string bytes = read_file(dir / "w.safetensors");
  std::uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ(header_len % 8, 0u);
  auto f = SafetensorsFile::open(dir / "w.safetensors");
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(std::memcmp((*f)->find("a.weight")->data, a.data(), 24), 0);
  EXPECT_EQ(std::memcmp((*f)->find("b")->data, b.data(), 6), 0);
  EXPECT_EQ((*f)->find("b")->shape, (std::vector<std::int64_t>{3}));
  ts.push_back(ts[0]);
  EXPECT_EQ(write_safetensors(dir / "dup.safetensors", ts).code(), ErrorCode::kInvalidArgument);
}

// 2000 random mutations of a valid file: each open() is an error or a file whose every
// tensor lies inside the mapping (ASan/UBSan runs of this test catch any stray read).
TEST(Safetensors, RandomMutationsNeverCrash) {
  TempDir dir;
  const std::vector<float> w(12, 0.5f);
  const std::vector<std::uint16_t> h(5, 0x3c00);
  const std::vector<HostTensor> ts = {{"encoder.w", DType::kF32, {3, 4}, w.data()},
                                      {"encoder.h", DType::kBF16, {5}, h.data()},
                                      {"encoder.g", DType::kF16, {1, 5}, h.data()}};
  ASSERT_TRUE(write_safetensors(dir / "valid.safetensors", ts, {{"format", "pt"}}).ok());
  const std::string valid = read_file(dir / "valid.safetensors");
  std::uint64_t header_len = 0;
  std::memcpy(&header_len, valid.data(), 8);
  std::mt19937_64 rng(20240611);
  const char kInteresting[] = "{}[]\":,-0123456789eE.FBI \\\x00\xff";
  int accepted = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string m = valid;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t span = (rng() % 4 == 0) ? m.size() : 8 + header_len;  // mostly the header
      if (m.empty()) break;
      const std::size_t pos = rng() % std::min(span, m.size());
      switch (rng() % 4) {
        case 0: m[pos] = static_cast<char>(m[pos] ^ (1 << (rng() % 8))); break;
        case 1: m[pos] = kInteresting[rng() % (sizeof(kInteresting) - 1)]; break;
        case 2: m.resize(pos); break;
        default: m[pos] = static_cast<char>(rng()); break;
      }
    }
    write_file(dir / "m.safetensors", m);
    auto f = SafetensorsFile::open(dir / "m.safetensors");
    if (!f.ok()) {
      EXPECT_FALSE(f.status().message().empty());
      continue;
    }
    ++accepted;
    for (const HostTensor& t : (*f)->tensors()) {
      std::vector<unsigned char> copy(t.bytes());
      if (!copy.empty()) std::memcpy(copy.data(), t.data, copy.size());  // must be readable
    }
  }
  EXPECT_LT(accepted, 2000);  // the mutations did hit the validation
}

}  // namespace
}  // namespace embd::io
