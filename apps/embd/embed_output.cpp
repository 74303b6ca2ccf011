// JSON Lines and .npy writers for `embd embed` (see embed_output.h).
#include "embed_output.h"

#include <bit>
#include <cstdint>
#include <cerrno>
#include <cstring>
#include <vector>

#include "cli_common.h"

namespace embd::cli {
namespace {

constexpr std::size_t kNpyHeaderSize = 128;  // room for any 64-bit shape, a multiple of 64

// Closes a FILE* we opened (never stdout).
struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f != nullptr && f != stdout) std::fclose(f);
  }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

Status write_all(std::FILE* f, const void* data, std::size_t size, const std::string& name) {
  if (size > 0 && std::fwrite(data, 1, size, f) != size) {
    return Status(ErrorCode::kIoError, "writing " + name + " failed: " + std::strerror(errno));
  }
  return Status();
}

class JsonlOutput final : public EmbedOutput {
 public:
  JsonlOutput(FilePtr file, std::string name) : file_(std::move(file)), name_(std::move(name)) {}

  Status write(const Embeddings& rows, std::size_t first_index) override {
    line_.clear();
    for (std::size_t r = 0; r < rows.rows; ++r) {
      line_ += "{\"index\":";
      line_ += std::to_string(first_index + r);
      line_ += ",\"embedding\":";
      append_float_array(line_, rows.row(r));
      line_ += ",\"tokens\":";
      line_ += std::to_string(r < rows.token_counts.size() ? rows.token_counts[r] : 0);
      line_ += "}\n";
    }
    return write_all(file_.get(), line_.data(), line_.size(), name_);
  }

  Status finish(std::size_t) override {
    if (std::fflush(file_.get()) != 0) return Status(ErrorCode::kIoError, "writing " + name_ + " failed");
    return Status();
  }

 private:
  FilePtr file_;
  std::string name_;
  std::string line_;
};

class NpyOutput final : public EmbedOutput {
 public:
  NpyOutput(FilePtr file, std::string name) : file_(std::move(file)), name_(std::move(name)) {}

  Status start() { return write_all(file_.get(), std::string(kNpyHeaderSize, ' ').data(), kNpyHeaderSize, name_); }

  Status write(const Embeddings& rows, std::size_t) override {
    if (rows.rows == 0) return Status();
    if (rows_ > 0 && rows.dim != dim_) {
      return Status(ErrorCode::kInternal, name_ + ": row width changed from " + std::to_string(dim_) +
                                              " to " + std::to_string(rows.dim));
    }
    dim_ = rows.dim;
    rows_ += rows.rows;
    const std::size_t count = rows.rows * rows.dim;
    if constexpr (std::endian::native == std::endian::little) {
      return write_all(file_.get(), rows.data.data(), count * sizeof(float), name_);
    } else {
      std::vector<std::uint32_t> swapped(count);
      std::memcpy(swapped.data(), rows.data.data(), count * sizeof(float));
      for (auto& v : swapped) v = __builtin_bswap32(v);
      return write_all(file_.get(), swapped.data(), count * sizeof(float), name_);
    }
  }

  Status finish(std::size_t dim) override {
    if (rows_ == 0) dim_ = dim;
    std::string header = npy_header(rows_, dim_, kNpyHeaderSize);
    if (std::fseek(file_.get(), 0, SEEK_SET) != 0) {
      return Status(ErrorCode::kIoError, name_ + ": cannot seek to rewrite the .npy header");
    }
    Status status = write_all(file_.get(), header.data(), header.size(), name_);
    if (!status.ok()) return status;
    if (std::fflush(file_.get()) != 0) return Status(ErrorCode::kIoError, "writing " + name_ + " failed");
    return Status();
  }

 private:
  FilePtr file_;
  std::string name_;
  std::size_t rows_ = 0;
  std::size_t dim_ = 0;
};

bool ends_with_npy(const std::string& path) {
  return path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0;
}

}  // namespace

std::string npy_header(std::size_t rows, std::size_t dim, std::size_t total_size) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) +
                     ", " + std::to_string(dim) + "), }";
  std::string header = "\x93NUMPY";
  header += '\x01';
  header += '\x00';
  const std::size_t header_len = total_size - 10;
  header += static_cast<char>(header_len & 0xff);
  header += static_cast<char>((header_len >> 8) & 0xff);
  header += dict;
  header.append(total_size - header.size() - 1, ' ');
  header += '\n';
  return header;
}

Result<std::unique_ptr<EmbedOutput>> open_embed_output(const std::string& path) {
  if (path.empty() || path == "-") {
    return std::unique_ptr<EmbedOutput>(new JsonlOutput(FilePtr(stdout), "<stdout>"));
  }
  FilePtr file(std::fopen(path.c_str(), "wb"));
  if (!file) {
    return Status(ErrorCode::kIoError, "cannot open output file '" + path + "': " + std::strerror(errno));
  }
  if (!ends_with_npy(path)) return std::unique_ptr<EmbedOutput>(new JsonlOutput(std::move(file), path));
  auto npy = std::make_unique<NpyOutput>(std::move(file), path);
  Status status = npy->start();
  if (!status.ok()) return status;
  return std::unique_ptr<EmbedOutput>(std::move(npy));
}

}  // namespace embd::cli
