// TMA tensor maps (CUtensorMap) for the Hopper kernels (*_sm90a.cu): a 2-D row-major 16-bit
// matrix read or written in boxes of box_rows x kTensorMapBoxCols elements with the 128-byte
// swizzle that wgmma reads. The driver's encoder is looked up once (the runtime links no libcuda).
#pragma once

#include <cuda.h>

#include "launch_common.h"

namespace embd::backend::cuda {

constexpr int kTensorMapBoxCols = 64;  // 64 x 16 bits = one 128-byte swizzle row

// Whether the driver offers cuTensorMapEncodeTiled.
bool tensor_maps_available();

// Whether TMA can address a 16-bit matrix at `data` with row stride ld elements: data 16-byte
// aligned and ld * 2 a multiple of 16.
bool tensor_map_addressable(const void* data, long long ld);

// A map of [rows, cols] at `data` with row stride ld elements (ld * 2 a multiple of 16, data
// 16-byte aligned). Rows and columns outside the matrix read as zeros and are not written.
cudaError_t make_tensor_map_2d(ElemType type, const void* data, long long rows, long long cols, long long ld,
                               unsigned box_rows, CUtensorMap* map);

}  // namespace embd::backend::cuda
