#pragma once

namespace embd {
inline constexpr const char* kVersion = "0.1.0";
}
