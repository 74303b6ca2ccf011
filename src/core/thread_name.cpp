#include "core/thread_name.h"

#include <pthread.h>

namespace embd {

void name_thread(const std::string& name) {
  (void)::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace embd
