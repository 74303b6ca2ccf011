# Language level, warnings, sanitizers and CUDA detection for every embd target.
set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
set(CMAKE_EXPORT_COMPILE_COMMANDS ON)
if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "" FORCE)
endif()

add_library(embd_warnings INTERFACE)
target_compile_options(embd_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wno-missing-field-initializers>)

add_library(embd_sanitizers INTERFACE)
if(EMBD_SANITIZE)
  string(REPLACE ";" "," _san "${EMBD_SANITIZE}")
  target_compile_options(embd_sanitizers INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=${_san} -fno-omit-frame-pointer -fno-sanitize-recover=all>)
  target_link_options(embd_sanitizers INTERFACE -fsanitize=${_san})
endif()

set(EMBD_HAVE_CUDA OFF)
if(NOT EMBD_WITH_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(CMAKE_CUDA_ARCHITECTURES ${EMBD_CUDA_ARCHS})
    # .cu files are self-contained C++17 (kernels + launchers); without this CMake derives CUDA20
    # from CMAKE_CXX_STANDARD, which CMake 3.25 cannot pass to nvcc.
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(EMBD_HAVE_CUDA ON)
  elseif(EMBD_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "EMBD_WITH_CUDA=ON but no CUDA compiler was found")
  endif()
endif()
message(STATUS "embd: CUDA backend ${EMBD_HAVE_CUDA}")
