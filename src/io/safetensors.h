// safetensors weights: memory-mapped, zero-copy, validated before any byte is trusted.
//
// SafetensorsFile maps one file and checks: header length vs file size, well-formed JSON,
// supported dtypes (F32, F16, BF16; anything else is rejected by name), shape x dtype size ==
// byte length, offsets inside the data area, no overlaps, no duplicate names.
// WeightSet is a model's weights: a single model.safetensors or a sharded checkpoint
// (model.safetensors.index.json), looked up by name with an optional "bert." or "roberta." prefix.
// Views stay valid while the file / WeightSet lives. Thread-safe for concurrent reads.
// Every HostTensor::data is aligned for its dtype: a tensor whose bytes sit at a misaligned
// offset in the file (legal in the format) is copied once into owned, aligned memory, so
// consumers may read it through typed pointers. Errors: kInvalidModel naming the file and the
// tensor (kUnsupported for a well-formed tensor of a dtype embd does not run, e.g. I8),
// kNotFound / kIoError for missing or unreadable files.
// A mapped file that another process truncates while it is open can still fault (SIGBUS); that
// is outside what any reader of a mapping can check.
#pragma once

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"

namespace embd::io {

class SafetensorsFile {
 public:
  static Result<std::unique_ptr<SafetensorsFile>> open(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::vector<HostTensor>& tensors() const { return tensors_; }
  const HostTensor* find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  Status parse_header(const unsigned char* bytes, std::size_t size);
  std::filesystem::path path_;
  void* map_ = nullptr;
  std::size_t map_size_ = 0;
  std::vector<HostTensor> tensors_;
  std::map<std::string, std::string> metadata_;
  std::vector<std::unique_ptr<std::uint64_t[]>> realigned_;  // copies of misaligned tensors
};

// Writes tensors (names, dtypes, shapes, bytes at data) as a safetensors file the reference
// readers accept: header padded with spaces to a multiple of 8 bytes, data contiguous in the
// given order (put wider dtypes first to keep every tensor aligned).
// Errors: kInvalidArgument (empty, reserved or repeated names), kIoError.
Status write_safetensors(const std::filesystem::path& path, const std::vector<HostTensor>& tensors,
                         const std::map<std::string, std::string>& metadata = {});

class WeightSet {
 public:
  // Opens model.safetensors, or model.safetensors.index.json and its shards, in `dir`.
  static Result<std::unique_ptr<WeightSet>> open_dir(const std::filesystem::path& dir);
  // Opens exactly these files (tests, tools).
  static Result<std::unique_ptr<WeightSet>> open_files(const std::vector<std::filesystem::path>& files);

  // The tensor called `name`, or "bert." / "roberta." + name (or `name` without that prefix);
  // null when absent.
  const HostTensor* find(std::string_view name) const;
  // The tensor with exactly this shape, or an error naming the tensor and the expected and
  // found shapes (kInvalidModel) or saying it is missing (kInvalidModel).
  Result<const HostTensor*> require(std::string_view name,
                                    std::initializer_list<std::int64_t> shape) const;
  // Every tensor, across shards.
  std::vector<const HostTensor*> all() const;
  // The dtype most weights are stored in (by element count).
  DType stored_dtype() const;
  std::int64_t parameter_count() const;

 private:
  Status add_file(std::unique_ptr<SafetensorsFile> file);
  const SafetensorsFile* file_of(const HostTensor* t) const;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const HostTensor*, std::less<>> by_name_;
};

}  // namespace embd::io
