// WeightSet (single-file and sharded checkpoints, name lookup) and the safetensors writer.
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>
#include <utility>

#include "io/safetensors.h"

namespace embd::io {
namespace {

using nlohmann::json;

// The encoder's tensors under a task model's name: BertFor* checkpoints store "bert.<name>",
// XLMRobertaFor* ones (xlm-roberta-base, ...) "roberta.<name>", MPNetFor* ones (mpnet-base)
// "mpnet.<name>", DistilBertFor* ones (distilbert-base-uncased) "distilbert.<name>".
constexpr std::string_view kPrefixes[] = {"bert.", "roberta.", "mpnet.", "distilbert."};
constexpr std::uintmax_t kMaxIndexBytes = 64ull << 20;

// The other names `name` may be stored under: without its prefix when it has one, else with
// each prefix.
std::vector<std::string> alternative_names(std::string_view name) {
  for (std::string_view prefix : kPrefixes) {
    if (name.starts_with(prefix)) return {std::string(name.substr(prefix.size()))};
  }
  std::vector<std::string> out;
  for (std::string_view prefix : kPrefixes) out.push_back(std::string(prefix).append(name));
  return out;
}

std::string quote(std::string_view s) {
  std::string out;  // built by append: GCC 12 misreports "'" + s + "'" under -Wrestrict
  out.reserve(s.size() + 2);
  out.append(1, '\'').append(s).append(1, '\'');
  return out;
}

std::string shape_string(std::initializer_list<std::int64_t> shape) {
  HostTensor t;
  t.shape.assign(shape.begin(), shape.end());
  return t.shape_string();
}

// A shard named in an index must be a relative path that stays inside the model directory.
bool stays_inside(const std::string& name) {
  if (name.empty() || name.find('\0') != std::string::npos) return false;
  const std::filesystem::path p(name);
  if (p.is_absolute() || p.has_root_path()) return false;
  for (const auto& part : p) {
    if (part == "..") return false;
  }
  return true;
}

Result<std::string> read_small_file(const std::filesystem::path& path, std::uintmax_t limit) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return io_error(path.string() + ": cannot read: " + ec.message());
  if (size > limit) {
    return invalid_model(path.string() + ": " + std::to_string(size) + " bytes is too large for an index");
  }
  std::ifstream in(path, std::ios::binary);
  std::string text(static_cast<std::size_t>(size), '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(size))) {
    return io_error(path.string() + ": read failed");
  }
  return text;
}

// Parses model.safetensors.index.json: {"weight_map": {tensor: shard file}, ...}.
Result<std::map<std::string, std::string>> parse_index(const std::filesystem::path& index) {
  EMBD_ASSIGN_OR_RETURN(std::string text, read_small_file(index, kMaxIndexBytes));
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return invalid_model(index.string() + ": malformed JSON (expected an object)");
  }
  const auto it = doc.find("weight_map");
  if (it == doc.end() || !it->is_object()) {
    return invalid_model(index.string() + ": missing \"weight_map\" object");
  }
  std::map<std::string, std::string> map;
  for (const auto& [tensor, shard] : it->items()) {
    if (!shard.is_string()) {
      return invalid_model(index.string() + ": weight_map entry " + quote(tensor) +
                           " must name a shard file");
    }
    const auto& name = shard.get_ref<const std::string&>();
    if (!stays_inside(name)) {
      return invalid_model(index.string() + ": weight_map entry " + quote(tensor) + " names shard " +
                           quote(name) + ", which is not a file inside the model directory");
    }
    map[tensor] = name;
  }
  if (map.empty()) return invalid_model(index.string() + ": \"weight_map\" is empty");
  return map;
}

Result<std::unique_ptr<WeightSet>> open_sharded(const std::filesystem::path& dir,
                                                const std::filesystem::path& index) {
  EMBD_ASSIGN_OR_RETURN(auto weight_map, parse_index(index));
  std::set<std::string> shards;
  for (const auto& [tensor, shard] : weight_map) shards.insert(shard);
  std::vector<std::filesystem::path> files;
  for (const std::string& shard : shards) {
    const auto path = dir / shard;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      return invalid_model(index.string() + ": shard " + quote(shard) + " (" + path.string() +
                           ") does not exist");
    }
    files.push_back(path);
  }
  EMBD_ASSIGN_OR_RETURN(auto set, WeightSet::open_files(files));
  // Every tensor the index lists must be in the shard it names.
  for (const auto& [tensor, shard] : weight_map) {
    const HostTensor* t = set->find(tensor);
    if (t == nullptr || t->name != tensor) {
      return invalid_model(index.string() + ": tensor " + quote(tensor) + " is listed in shard " +
                           quote(shard) + " but that shard does not hold it");
    }
  }
  return set;
}

}  // namespace

Status WeightSet::add_file(std::unique_ptr<SafetensorsFile> file) {
  for (const HostTensor& t : file->tensors()) {
    const auto [it, inserted] = by_name_.emplace(t.name, &t);
    if (!inserted) {
      return invalid_model("tensor " + quote(t.name) + " is in both " +
                           file_of(it->second)->path().string() + " and " + file->path().string());
    }
  }
  files_.push_back(std::move(file));
  return ok_status();
}

const SafetensorsFile* WeightSet::file_of(const HostTensor* t) const {
  for (const auto& f : files_) {
    const auto& ts = f->tensors();
    if (!ts.empty() && t >= ts.data() && t < ts.data() + ts.size()) return f.get();
  }
  return nullptr;
}

Result<std::unique_ptr<WeightSet>> WeightSet::open_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return not_found(dir.string() + ": not a model directory");
  }
  const auto single = dir / "model.safetensors";
  if (std::filesystem::exists(single, ec)) return open_files({single});
  const auto index = dir / "model.safetensors.index.json";
  if (std::filesystem::exists(index, ec)) return open_sharded(dir, index);
  std::string hint;
  if (std::filesystem::exists(dir / "pytorch_model.bin", ec)) {
    hint = " (pytorch_model.bin is present; embd reads safetensors only)";
  }
  return not_found(dir.string() + ": no model.safetensors or model.safetensors.index.json" + hint);
}

Result<std::unique_ptr<WeightSet>> WeightSet::open_files(
    const std::vector<std::filesystem::path>& files) {
  std::unique_ptr<WeightSet> set(new WeightSet());
  for (const auto& path : files) {
    EMBD_ASSIGN_OR_RETURN(auto file, SafetensorsFile::open(path));
    EMBD_TRY(set->add_file(std::move(file)));
  }
  return set;
}

const HostTensor* WeightSet::find(std::string_view name) const {
  if (auto it = by_name_.find(name); it != by_name_.end()) return it->second;
  for (const std::string& other : alternative_names(name)) {
    if (auto it = by_name_.find(other); it != by_name_.end()) return it->second;
  }
  return nullptr;
}

Result<const HostTensor*> WeightSet::require(std::string_view name,
                                             std::initializer_list<std::int64_t> shape) const {
  const HostTensor* t = find(name);
  if (t == nullptr) {
    std::string others;
    for (const std::string& other : alternative_names(name)) {
      others += (others.empty() ? "" : ", ") + quote(other);
    }
    std::string where;
    if (files_.size() == 1) where = " in " + files_.front()->path().string();
    return invalid_model("missing tensor " + quote(name) + " (also looked for " + others + ")" + where);
  }
  if (!std::equal(t->shape.begin(), t->shape.end(), shape.begin(), shape.end())) {
    const SafetensorsFile* f = file_of(t);
    return invalid_model("tensor " + quote(t->name) + (f ? " in " + f->path().string() : "") +
                         " has shape " + t->shape_string() + "; expected " + shape_string(shape));
  }
  return t;
}

std::vector<const HostTensor*> WeightSet::all() const {
  std::vector<const HostTensor*> out;
  for (const auto& f : files_) {
    for (const HostTensor& t : f->tensors()) out.push_back(&t);
  }
  return out;
}

DType WeightSet::stored_dtype() const {
  std::int64_t count[3] = {0, 0, 0};
  for (const auto& f : files_) {
    for (const HostTensor& t : f->tensors()) count[static_cast<int>(t.dtype)] += t.numel();
  }
  int best = 0;
  for (int i = 1; i < 3; ++i) {
    if (count[i] > count[best]) best = i;
  }
  return static_cast<DType>(best);
}

std::int64_t WeightSet::parameter_count() const {
  std::int64_t n = 0;
  for (const auto& f : files_) {
    for (const HostTensor& t : f->tensors()) n += t.numel();
  }
  return n;
}

Status write_safetensors(const std::filesystem::path& path, const std::vector<HostTensor>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const HostTensor& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__" || header.contains(t.name)) {
      return invalid_argument(path.string() + ": tensor name " + quote(t.name) +
                              " is empty, reserved or repeated");
    }
    const std::uint64_t begin = offset;
    offset += t.bytes();
    header[t.name] = {{"dtype", t.dtype == DType::kF32   ? "F32"
                                : t.dtype == DType::kF16 ? "F16"
                                                         : "BF16"},
                      {"shape", t.shape},
                      {"data_offsets", {begin, offset}}};
  }
  std::string text = header.dump(-1, ' ', false, json::error_handler_t::replace);
  text.resize((text.size() + 7) / 8 * 8, ' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return io_error(path.string() + ": cannot create");
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(text.size() >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const HostTensor& t : tensors) {
    out.write(static_cast<const char*>(t.data), static_cast<std::streamsize>(t.bytes()));
  }
  out.flush();
  if (!out) return io_error(path.string() + ": write failed");
  return ok_status();
}

}  // namespace embd::io
