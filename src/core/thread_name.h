// Names the engine's own threads ("cuda:0", "cuda:0/lane"), so that `top -H`, perf and debuggers show
// which thread feeds which device.
#pragma once

#include <string>

namespace embd {

// Names the calling thread; at most 15 characters are kept (the kernel's limit).
void name_thread(const std::string& name);

}  // namespace embd
