// What a model directory brings from outside, on arbitrary bytes: config.json, tokenizer.json,
// safetensors weights, the sentence-transformers files, a sharded checkpoint's index, and the
// model ids and file names of the hub. Input: one byte that picks the file, then its contents.
// Checks: nothing crashes; a config that parses has positive sizes, heads that divide the width
// and a maximum length; a tokenizer that loads encodes text into ids of its own vocabulary; a
// safetensors file or sharded checkpoint that opens has every tensor aligned for its dtype and
// every byte readable; a hub file name called safe cannot leave its folder.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "fuzz_files.h"
#include "io/hf_cache.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;

using embd::fuzz::process_dir;
using embd::fuzz::write_file;

// A fresh scratch folder for one input.
fs::path scratch(const char* name) {
  const fs::path dir = process_dir() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Reads every byte of a tensor's data: a read past a mapped file faults, one past a copy is an
// ASan report, so a tensor that points outside what was read from the file cannot go unnoticed.
void read_every_byte(const embd::HostTensor& tensor) {
  const auto* p = static_cast<const volatile unsigned char*>(tensor.data);
  for (std::size_t i = 0; i < tensor.bytes(); ++i) (void)p[i];
}

void check_config(std::string_view json) {
  auto config = embd::io::parse_model_config(json, "fuzz/config.json");
  if (!config.ok()) return;
  const auto& c = config.value();
  FUZZ_CHECK(c.hidden_size > 0 && c.num_hidden_layers > 0 && c.num_attention_heads > 0 &&
                 c.intermediate_size > 0 && c.vocab_size > 0,
             "a config with a size <= 0 was accepted");
  FUZZ_CHECK(c.hidden_size % c.num_attention_heads == 0, "heads %lld do not divide width %lld",
             static_cast<long long>(c.num_attention_heads), static_cast<long long>(c.hidden_size));
  FUZZ_CHECK(c.max_length > 0, "a config with no maximum length was accepted");
}

void check_tokenizer(std::string_view json) {
  auto tok = embd::tokenizer::Tokenizer::from_json(json, "fuzz/tokenizer.json");
  if (!tok.ok()) return;
  const auto& t = *tok.value();
  const auto vocab = static_cast<std::int64_t>(t.vocab_size());
  for (std::string_view text : {"Hello, world! unaffable running", "ünïcödé 中文 \t emoji 🙂 [SEP]",
                                 "it's  we'll\n\n  <mask> x<s>"}) {
    embd::tokenizer::EncodeOptions o;
    o.offsets = true;
    auto e = t.encode(text, o);
    if (!e.ok()) continue;
    for (auto id : e.value().ids) {
      FUZZ_CHECK(id >= 0 && id < vocab, "id %d outside a vocabulary of %lld", id,
                 static_cast<long long>(vocab));
    }
    for (const auto& span : e.value().offsets) {
      FUZZ_CHECK(span.begin <= span.end && span.end <= text.size(), "offset past the text");
    }
  }
}

void check_safetensors(std::string_view bytes) {
  const fs::path path = process_dir() / "model.safetensors";
  write_file(path, bytes);
  auto file = embd::io::SafetensorsFile::open(path);
  if (!file.ok()) return;
  std::size_t total = 0;
  for (const auto& tensor : file.value()->tensors()) {
    FUZZ_CHECK(tensor.numel() >= 0, "tensor %s has a negative size", tensor.name.c_str());
    const auto align = embd::dtype_size(tensor.dtype);
    FUZZ_CHECK(tensor.bytes() == 0 || reinterpret_cast<std::uintptr_t>(tensor.data) % align == 0,
               "tensor %s misaligned for its dtype", tensor.name.c_str());
    total += tensor.bytes();
    read_every_byte(tensor);
  }
  FUZZ_CHECK(total <= bytes.size(), "tensors hold %zu bytes of a %zu-byte file", total, bytes.size());
}

// A model folder with the fixture's config.json and one sentence-transformers file from the input.
void check_sentence_transformers(std::uint8_t which, std::string_view contents) {
  static const std::string config = [] {
    std::ifstream in(EMBD_FIXTURES_DIR "/models/tiny-jina/config.json");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  const fs::path dir = scratch("st");
  write_file(dir / "config.json", config);
  switch (which % 4) {
    case 0: write_file(dir / "modules.json", contents); break;
    case 1:
      write_file(dir / "modules.json",
                 R"([{"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"}])");
      write_file(dir / "1_Pooling" / "config.json", contents);
      break;
    case 2: write_file(dir / "sentence_bert_config.json", contents); break;
    default: write_file(dir / "config_sentence_transformers.json", contents);
  }
  auto c = embd::io::load_model_config(dir);
  if (!c.ok()) return;
  // usable_positions(): XLM-RoBERTa's first pad_token_id + 1 rows are never a token's.
  FUZZ_CHECK(c.value().max_length > 0 && c.value().max_length <= c.value().usable_positions(),
             "max_length %lld of %lld usable positions", static_cast<long long>(c.value().max_length),
             static_cast<long long>(c.value().usable_positions()));
}

// A sharded checkpoint: the index from the input, next to one small shard.
void check_sharded(std::string_view index) {
  static const std::string shard = [] {
    // One F32 tensor "w" of shape [2], the 8-byte header length first.
    std::string header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    header.resize((header.size() + 7) / 8 * 8, ' ');
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
    return bytes + header + std::string(8, '\x01');
  }();
  const fs::path dir = scratch("sharded");
  write_file(dir / "a.safetensors", shard);
  write_file(dir / "model.safetensors.index.json", index);
  auto weights = embd::io::WeightSet::open_dir(dir);
  if (!weights.ok()) return;
  for (const auto* tensor : weights.value()->all()) read_every_byte(*tensor);
}

// Model ids ("org/name@rev", then a revision after a newline), cache path components (ETags)
// and repository file names.
void check_hub_names(std::string_view text) {
  const auto newline = text.find('\n');
  const std::string_view model = text.substr(0, newline);
  const std::string_view revision =
      newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
  auto id = embd::io::parse_repo_id(model, revision);
  if (id.ok()) {
    FUZZ_CHECK(!id.value().repo.empty() && !id.value().revision.empty(), "an empty repo or revision");
  }
  if (embd::io::is_safe_component(text)) {  // an ETag or folder name joined to a cache path
    FUZZ_CHECK(text != "." && text != ".." && text.find('/') == std::string_view::npos &&
                   text.find('\\') == std::string_view::npos && text.find('\0') == std::string_view::npos,
               "a path-changing name was called a safe component");
  }
  if (embd::io::is_safe_repo_file(text)) {
    const fs::path p{std::string(text)};
    FUZZ_CHECK(!text.empty() && p.is_relative(), "an absolute or empty file name was called safe");
    for (const auto& part : p) FUZZ_CHECK(part != ".." && part != ".", "a dot component was called safe");
    for (unsigned char ch : text) {
      FUZZ_CHECK(ch >= 0x20 && ch != 0x7f && ch != '\\', "a control character or backslash was called safe");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view contents(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 6) {
    case 0: check_config(contents); break;
    case 1: check_tokenizer(contents); break;
    case 2: check_safetensors(contents); break;
    case 3:
      if (!contents.empty()) check_sentence_transformers(data[1], contents.substr(1));
      break;
    case 4: check_sharded(contents); break;
    default: check_hub_names(contents);
  }
  return 0;
}
