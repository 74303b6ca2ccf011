// SafetensorsFile: mapping one file and validating its header before any tensor byte is used.
#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

namespace embd::io {
namespace {

using nlohmann::json;

// The reference implementation refuses headers over 100 MB; a real model's header is < 1 MB.
constexpr std::uint64_t kMaxHeaderBytes = 100ull << 20;

// dtype names the format defines but embd does not run (rejected by name, not as garbage).
constexpr const char* kKnownUnsupported[] = {
    "F64", "I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64", "BOOL",
    "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "E8M0", "C64"};

std::string quote(std::string_view s) {
  std::string out;  // built by append: GCC 12 misreports "'" + s + "'" under -Wrestrict
  out.reserve(s.size() + 2);
  out.append(1, '\'').append(s).append(1, '\'');
  return out;
}

// Raw header text for messages: printable ASCII only, cut short.
std::string excerpt(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 60)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return s.size() > 60 ? out + "..." : out;
}

// nlohmann keeps the last of duplicate keys silently; this parser callback records the first
// duplicate it meets so that a header like {"a": .., "a": ..} is an error, not a shadowed tensor.
struct DuplicateKeyFinder {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  int duplicate_depth = -1;

  bool operator()(int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() && parsed.is_string() && duplicate.empty() &&
            !open_objects.back().insert(parsed.get<std::string>()).second) {
          duplicate = parsed.get<std::string>();
          duplicate_depth = depth;
        }
        break;
      default:
        break;
    }
    return true;
  }
};

Result<DType> parse_tensor_dtype(const json& v, const std::string& where) {
  if (!v.is_string()) return invalid_model(where + ": \"dtype\" must be a string");
  const auto& name = v.get_ref<const std::string&>();
  if (name == "F32") return DType::kF32;
  if (name == "F16") return DType::kF16;
  if (name == "BF16") return DType::kBF16;
  for (const char* known : kKnownUnsupported) {
    if (name == known) {
      return unsupported(where + " has dtype " + name + "; embd supports F32, F16, BF16");
    }
  }
  return invalid_model(where + " has unknown dtype " + quote(excerpt(name)) +
                       "; embd supports F32, F16, BF16");
}

// A JSON value that must be a non-negative integer representable in int64.
Result<std::uint64_t> parse_count(const json& v, const std::string& where, const char* what) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return invalid_model(where + ": " + what + " " + std::to_string(u) + " is too large");
    }
    return u;
  }
  if (v.is_number_integer()) {
    return invalid_model(where + ": " + what + " " + std::to_string(v.get<std::int64_t>()) +
                         " is negative");
  }
  return invalid_model(where + ": " + what + " must be a non-negative integer, got " +
                       excerpt(v.dump(-1, ' ', false, json::error_handler_t::replace)));
}

// Reads "shape" into `dims` and returns the element count, which fits the data area.
Result<std::uint64_t> parse_shape(const json& shape, const std::string& where,
                                  std::uint64_t data_size, std::vector<std::int64_t>& dims) {
  if (!shape.is_array()) return invalid_model(where + ": \"shape\" must be an array");
  if (shape.size() > 16) {
    return invalid_model(where + ": shape has " + std::to_string(shape.size()) + " dimensions");
  }
  HostTensor t;  // for shape_string()
  for (const json& d : shape) {
    EMBD_ASSIGN_OR_RETURN(std::uint64_t dim, parse_count(d, where, "shape dimension"));
    t.shape.push_back(static_cast<std::int64_t>(dim));
  }
  // HostTensor::numel() multiplies left to right in int64, so even an empty tensor's other
  // dimensions must not overflow it.
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  std::uint64_t nonzero = 1;
  for (const std::int64_t dim : t.shape) {
    if (dim == 0) continue;
    if (static_cast<std::uint64_t>(dim) > kMax / nonzero) {
      return invalid_model(where + ": shape " + t.shape_string() + " overflows 64 bits");
    }
    nonzero *= static_cast<std::uint64_t>(dim);
  }
  const bool empty = std::find(t.shape.begin(), t.shape.end(), 0) != t.shape.end();
  if (!empty && nonzero > data_size) {
    return invalid_model(where + ": shape " + t.shape_string() +
                         " needs more bytes than the file's data area holds (" +
                         std::to_string(data_size) + ")");
  }
  dims = std::move(t.shape);
  return empty ? 0 : nonzero;
}

struct Entry {
  HostTensor tensor;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

// Parses one tensor description {"dtype", "shape", "data_offsets"} and checks its byte size.
Result<Entry> parse_entry(const std::string& name, const json& v, const std::string& where,
                          std::uint64_t data_size) {
  if (!v.is_object()) return invalid_model(where + ": description must be a JSON object");
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!v.contains(key)) return invalid_model(where + ": missing \"" + key + "\"");
  }
  Entry e;
  e.tensor.name = name;
  EMBD_ASSIGN_OR_RETURN(e.tensor.dtype, parse_tensor_dtype(v.at("dtype"), where));
  EMBD_ASSIGN_OR_RETURN(const std::uint64_t numel,
                        parse_shape(v.at("shape"), where, data_size, e.tensor.shape));
  const json& offsets = v.at("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2) {
    return invalid_model(where + ": \"data_offsets\" must be [begin, end]");
  }
  EMBD_ASSIGN_OR_RETURN(e.begin, parse_count(offsets[0], where, "data_offsets begin"));
  EMBD_ASSIGN_OR_RETURN(e.end, parse_count(offsets[1], where, "data_offsets end"));
  const std::string range = "[" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
  if (e.begin > e.end) return invalid_model(where + ": data_offsets " + range + " end before begin");
  if (e.end > data_size) {
    return invalid_model(where + ": data_offsets " + range + " run past the data area (" +
                         std::to_string(data_size) + " bytes)");
  }
  const std::uint64_t expected = numel * dtype_size(e.tensor.dtype);
  if (e.end - e.begin != expected) {
    return invalid_model(where + ": data_offsets " + range + " hold " +
                         std::to_string(e.end - e.begin) + " bytes but shape " +
                         e.tensor.shape_string() + " of " + std::string(dtype_name(e.tensor.dtype)) +
                         " needs " + std::to_string(expected));
  }
  return e;
}

Result<std::map<std::string, std::string>> parse_metadata(const json& v, const std::string& file) {
  if (!v.is_object()) return invalid_model(file + ": \"__metadata__\" must be a JSON object");
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : v.items()) {
    if (!value.is_string()) {
      return invalid_model(file + ": \"__metadata__\" entry " + quote(excerpt(key)) +
                           " must be a string");
    }
    out[key] = value.get<std::string>();
  }
  return out;
}

// Sorted by offset, every non-empty tensor must start at or after the end of all before it.
Status check_overlaps(std::vector<Entry>& entries, const std::string& file) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const Entry* furthest = nullptr;
  for (const Entry& e : entries) {
    if (e.begin == e.end) continue;
    if (furthest != nullptr && e.begin < furthest->end) {
      return invalid_model(file + ": tensors " + quote(furthest->tensor.name) + " [" +
                           std::to_string(furthest->begin) + ", " + std::to_string(furthest->end) +
                           ") and " + quote(e.tensor.name) + " [" + std::to_string(e.begin) +
                           ", " + std::to_string(e.end) + ") overlap");
    }
    if (furthest == nullptr || e.end > furthest->end) furthest = &e;
  }
  return ok_status();
}

// The header as a JSON object whose objects have no repeated keys.
Result<json> parse_json(std::string_view text, const std::string& file) {
  DuplicateKeyFinder dups;
  json header = json::parse(text.begin(), text.end(), std::ref(dups), /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    std::string why = "not a JSON object";
    try {  // parse again with exceptions on: their message gives the position of the error
      (void)json::parse(text.begin(), text.end()).is_object();
    } catch (const json::exception& e) {
      why = e.what();
    }
    return invalid_model(file + ": malformed JSON header: " + why);
  }
  if (dups.duplicate.empty()) return header;
  if (dups.duplicate_depth <= 1) {
    return invalid_model(file + ": header names tensor " + quote(excerpt(dups.duplicate)) +
                         " twice (duplicate tensor names are ambiguous)");
  }
  return invalid_model(file + ": header repeats the key " + quote(excerpt(dups.duplicate)) +
                       " inside one object");
}

}  // namespace

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::filesystem::path& path) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  const std::string name = path.string();
  const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    std::string msg = name + ": cannot open: " + std::strerror(err);
    return err == ENOENT ? not_found(std::move(msg)) : io_error(std::move(msg));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return io_error(name + ": not a regular file");
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    return invalid_model(name + ": file is " + std::to_string(size) +
                         " bytes, shorter than the 8-byte safetensors header length");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) return io_error(name + ": mmap failed: " + std::strerror(map_errno));
  file->map_ = map;
  file->map_size_ = size;
  EMBD_TRY(file->parse_header(static_cast<const unsigned char*>(map), size));
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
}

Status SafetensorsFile::parse_header(const unsigned char* bytes, std::size_t size) {
  const std::string file = path_.string();
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];  // little-endian
  if (header_len > size - 8) {
    return invalid_model(file + ": header length " + std::to_string(header_len) +
                         " runs past the end of the file (" + std::to_string(size) + " bytes)");
  }
  if (header_len > kMaxHeaderBytes) {
    return invalid_model(file + ": header length " + std::to_string(header_len) +
                         " exceeds the 100 MB limit");
  }
  const std::string_view text(reinterpret_cast<const char*>(bytes + 8), header_len);
  if (text.empty() || text.front() != '{') {
    return invalid_model(file + ": header does not start with '{' (got \"" + excerpt(text) + "\")");
  }
  EMBD_ASSIGN_OR_RETURN(const json header, parse_json(text, file));
  const std::uint64_t data_size = size - 8 - header_len;
  const unsigned char* data = bytes + 8 + header_len;
  std::vector<Entry> entries;
  entries.reserve(header.size());
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      EMBD_ASSIGN_OR_RETURN(metadata_, parse_metadata(value, file));
      continue;
    }
    if (key.empty()) return invalid_model(file + ": a tensor has an empty name");
    const std::string where = file + ": tensor " + quote(excerpt(key));
    EMBD_ASSIGN_OR_RETURN(Entry e, parse_entry(key, value, where, data_size));
    entries.push_back(std::move(e));
  }
  EMBD_TRY(check_overlaps(entries, file));
  tensors_.reserve(entries.size());
  for (Entry& e : entries) {
    const unsigned char* p = data + e.begin;
    const std::size_t align = dtype_size(e.tensor.dtype);
    if (reinterpret_cast<std::uintptr_t>(p) % align != 0 && e.end > e.begin) {
      // Legal but misaligned: copy once so typed reads through data are well-defined.
      const std::size_t n = e.end - e.begin;
      realigned_.emplace_back(new std::uint64_t[(n + 7) / 8]);
      std::memcpy(realigned_.back().get(), p, n);
      p = reinterpret_cast<const unsigned char*>(realigned_.back().get());
    }
    e.tensor.data = p;
    tensors_.push_back(std::move(e.tensor));
  }
  return ok_status();
}

const HostTensor* SafetensorsFile::find(std::string_view name) const {
  for (const HostTensor& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace embd::io
