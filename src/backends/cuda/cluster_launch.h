// Launch shapes for the persistent, clustered Hopper kernels (*_sm90a.cu): one block per SM, in
// clusters, as many clusters as fit at once.
#pragma once

#include <cuda_runtime.h>

#include <mutex>
#include <utility>
#include <vector>

namespace embd::backend::cuda {

struct ClusterShape {
  unsigned cluster = 1;     // blocks per cluster
  unsigned threads = 128;   // per block
  unsigned smem_bytes = 0;  // dynamic shared memory per block
};

inline cudaLaunchConfig_t cluster_launch_config(const ClusterShape& shape, unsigned clusters, cudaStream_t stream,
                                                cudaLaunchAttribute* cluster_dim) {
  cluster_dim->id = cudaLaunchAttributeClusterDimension;
  cluster_dim->val.clusterDim.x = shape.cluster;
  cluster_dim->val.clusterDim.y = 1;
  cluster_dim->val.clusterDim.z = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(clusters * shape.cluster);
  config.blockDim = dim3(shape.threads);
  config.dynamicSmemBytes = shape.smem_bytes;
  config.stream = stream;
  config.attrs = cluster_dim;
  config.numAttrs = 1;
  return config;
}

// How many clusters of Kernel fit on the current device at once. Set up once per device (executors
// of several GPUs race here): the kernel's shared memory is over the default 48 KiB limit, and an
// SM left over in a GPC cannot host part of a cluster, so the count comes from the occupancy API.
template <auto Kernel>
cudaError_t resident_clusters(const ClusterShape& shape, int* clusters) {
  int device = 0;
  if (const cudaError_t err = cudaGetDevice(&device); err != cudaSuccess) return err;
  static std::mutex mu;
  static std::vector<std::pair<int, int>> known;  // device, clusters
  std::lock_guard lock(mu);
  for (const auto& [d, n] : known) {
    if (d == device) return *clusters = n, cudaSuccess;
  }
  if (const cudaError_t err = cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                   static_cast<int>(shape.smem_bytes));
      err != cudaSuccess) {
    return err;
  }
  cudaLaunchAttribute cluster_dim{};
  const cudaLaunchConfig_t config = cluster_launch_config(shape, 1, nullptr, &cluster_dim);
  int n = 0;
  if (const cudaError_t err = cudaOccupancyMaxActiveClusters(&n, Kernel, &config); err != cudaSuccess) return err;
  if (n <= 0) return cudaErrorInvalidConfiguration;
  known.emplace_back(device, n);
  return *clusters = n, cudaSuccess;
}

}  // namespace embd::backend::cuda
