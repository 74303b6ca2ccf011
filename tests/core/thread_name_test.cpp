// A thread's name shows in /proc (top -H, perf), cut to the kernel's 15 characters.
#include "core/thread_name.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>

namespace embd {
namespace {

TEST(ThreadName, NamesTheCallingThread) {
  std::thread([] {
    name_thread("embd cuda:0 and more");
    const long tid = ::syscall(SYS_gettid);
    std::ifstream comm("/proc/self/task/" + std::to_string(tid) + "/comm");
    std::string name;
    std::getline(comm, name);
    EXPECT_EQ(name, "embd cuda:0 and");
  }).join();
}

}  // namespace
}  // namespace embd
