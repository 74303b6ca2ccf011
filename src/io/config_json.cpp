// ConfigReader: nlohmann-json behind Result-returning accessors.
#include "io/config_json.h"

#include <filesystem>
#include <fstream>
#include <system_error>

namespace embd::io {

using nlohmann::json;

namespace {
std::string shown(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 60 ? s.substr(0, 60) + "..." : s;
}
}  // namespace

Result<ConfigReader> ConfigReader::parse(std::string_view text, std::string_view source,
                                         json::value_t kind) {
  ConfigReader r;
  r.source_ = std::string(source);
  try {
    r.doc_ = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    return invalid_model(r.source_ + ": malformed JSON: " + e.what());
  }
  if (r.doc_.type() != kind) {
    return invalid_model(r.source_ + ": top level must be a JSON " +
                         (kind == json::value_t::object ? "object" : "array"));
  }
  return r;
}

const json* ConfigReader::find(std::string_view key) const {
  if (!doc_.is_object()) return nullptr;
  const auto it = doc_.find(key);
  return it == doc_.end() ? nullptr : &*it;
}

Result<std::optional<std::string>> ConfigReader::string(const char* key) const {
  const json* v = find(key);
  if (v == nullptr || v->is_null()) return std::optional<std::string>();
  if (!v->is_string()) return error(key, "must be a string, got " + shown(*v));
  return std::optional<std::string>(v->get<std::string>());
}

Result<std::optional<std::int64_t>> ConfigReader::integer(const char* key) const {
  const json* v = find(key);
  if (v == nullptr || v->is_null()) return std::optional<std::int64_t>();
  if (v->is_number_unsigned() && v->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
    return error(key, "is too large: " + shown(*v));
  }
  if (!v->is_number_integer()) return error(key, "must be an integer, got " + shown(*v));
  return std::optional<std::int64_t>(v->get<std::int64_t>());
}

Result<std::optional<double>> ConfigReader::number(const char* key) const {
  const json* v = find(key);
  if (v == nullptr || v->is_null()) return std::optional<double>();
  if (!v->is_number()) return error(key, "must be a number, got " + shown(*v));
  return std::optional<double>(v->get<double>());
}

Result<std::optional<bool>> ConfigReader::boolean(const char* key) const {
  const json* v = find(key);
  if (v == nullptr || v->is_null()) return std::optional<bool>();
  if (!v->is_boolean()) return error(key, "must be true or false, got " + shown(*v));
  return std::optional<bool>(v->get<bool>());
}

Status ConfigReader::error(std::string_view field, std::string_view what) const {
  return invalid_model(source_ + ": field '" + std::string(field) + "' " + std::string(what));
}

Status ConfigReader::unsupported_value(std::string_view field, std::string_view value,
                                       std::string_view hint) const {
  std::string v(value.substr(0, 100));
  return unsupported(source_ + ": field '" + std::string(field) + "' has unsupported value '" + v +
                     "' (" + std::string(hint) + ")");
}

Result<std::string> read_text_file(const std::string& path, std::uintmax_t limit) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return not_found(path + ": no such file");
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return io_error(path + ": cannot read: " + ec.message());
  if (size > limit) {
    return invalid_model(path + ": " + std::to_string(size) + " bytes is too large for a config file");
  }
  std::ifstream in(path, std::ios::binary);
  std::string text(static_cast<std::size_t>(size), '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(size))) return io_error(path + ": read failed");
  return text;
}

}  // namespace embd::io
