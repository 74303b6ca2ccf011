// Backends from device strings: the CPU, GPUs, query lanes (one more high-priority backend per
// GPU), and errors that name the device string. GPU cases skip where no GPU is visible.
#include <gtest/gtest.h>

#include "backends/registry.h"

namespace embd::backend {
namespace {

TEST(Registry, CpuHasOneBackendAndNoQueryLanes) {
  auto cpu = create_backends("cpu", {});
  ASSERT_TRUE(cpu.ok()) << cpu.status().to_string();
  ASSERT_EQ(cpu->size(), 1u);
  EXPECT_EQ(cpu->front()->name(), "cpu");
  auto lanes = create_query_lanes("cpu");
  ASSERT_TRUE(lanes.ok()) << lanes.status().to_string();
  EXPECT_TRUE(lanes->empty());
}

TEST(Registry, UnknownDevicesAreNamedInTheError) {
  for (const char* device : {"tpu", "cudax", "cuda:", "cuda:-1", "cuda:99", "cuda:1x"}) {
    auto backends = create_backends(device, {});
    auto lanes = create_query_lanes(device);
    ASSERT_FALSE(backends.ok()) << device;
    ASSERT_FALSE(lanes.ok()) << device;
    EXPECT_NE(backends.status().message().find(device), std::string::npos) << backends.status().to_string();
    EXPECT_EQ(lanes.status().code(), backends.status().code()) << device;
    EXPECT_EQ(lanes.status().message(), backends.status().message()) << device;
  }
}

TEST(Registry, QueryLanesMatchTheGpus) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA GPU";
  for (const std::string device : {"cuda", "cuda:0"}) {
    auto gpus = create_backends(device, {});
    auto lanes = create_query_lanes(device);
    ASSERT_TRUE(gpus.ok() && lanes.ok()) << device;
    ASSERT_EQ(lanes->size(), gpus->size()) << device;
    for (std::size_t i = 0; i < gpus->size(); ++i) {
      EXPECT_EQ((*lanes)[i]->name(), (*gpus)[i]->name());
      EXPECT_TRUE((*lanes)[i]->asynchronous());
    }
  }
}

}  // namespace
}  // namespace embd::backend
