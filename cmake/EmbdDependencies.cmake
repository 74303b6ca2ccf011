# Third-party libraries, all from Debian 12 packages (scripts/install-deps.sh installs them).
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
# libdnnl-dev: Debian's dnnl-config.cmake insists on OpenCL, which the CPU engine never uses, so
# find the library and header directly.
find_library(EMBD_DNNL_LIBRARY dnnl REQUIRED)
find_path(EMBD_DNNL_INCLUDE oneapi/dnnl/dnnl.hpp REQUIRED)
add_library(DNNL::dnnl UNKNOWN IMPORTED)
set_target_properties(DNNL::dnnl PROPERTIES IMPORTED_LOCATION ${EMBD_DNNL_LIBRARY}
                      INTERFACE_INCLUDE_DIRECTORIES ${EMBD_DNNL_INCLUDE})
pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
find_package(simdjson REQUIRED)              # libsimdjson-dev
find_package(nlohmann_json 3.10 REQUIRED)    # nlohmann-json3-dev
find_package(CURL REQUIRED)                  # libcurl4-openssl-dev
find_package(CLI11 REQUIRED)                 # libcli11-dev
find_package(Boost 1.74 REQUIRED)            # header-only Beast/Asio
find_package(OpenMP REQUIRED)
if(EMBD_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
if(EMBD_BUILD_BENCHES)
  find_package(benchmark REQUIRED)
endif()
