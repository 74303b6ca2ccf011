// embd::download_model (include/embd/hub.hpp) over io::resolve_model.
#include "embd/hub.hpp"

#include "io/model_source.h"

namespace embd {

Result<std::string> download_model(const std::string& model, const DownloadOptions& options) {
  io::HubOptions hub;
  hub.revision = options.revision;
  hub.cache_dir = options.cache_dir;
  hub.endpoint = options.endpoint;
  hub.token = options.token;
  hub.offline = options.offline;
  hub.refresh = options.refresh;
  hub.progress = options.progress;
  auto dir = io::resolve_model(model, hub);
  if (!dir.ok()) return dir.status();
  return dir->string();
}

}  // namespace embd
