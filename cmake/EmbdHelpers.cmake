# Build helpers shared by every embd target.
#
# Layering is enforced by include roots: each library gets its own directory under
# ${CMAKE_BINARY_DIR}/layers/<target>/ holding symbolic links to just the source folders (or
# files) it exposes, e.g. layers/embd_core/core -> src/core. A target sees a header only through
# its own root and the roots of the libraries it links, so including a layer it does not depend
# on is a compile error ("core/.. not found"), not a code-review finding.

# embd_add_library(NAME
#   EXPOSE <path under src/>...   folders or files other targets may include
#   SOURCES ...  DEPS <public deps>...  PRIVATE_DEPS ...)
function(embd_add_library name)
  cmake_parse_arguments(ARG "" "" "EXPOSE;SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  set(root ${CMAKE_BINARY_DIR}/layers/${name})
  foreach(path IN LISTS ARG_EXPOSE)
    get_filename_component(parent ${root}/${path} DIRECTORY)
    file(MAKE_DIRECTORY ${parent})
    if(NOT EXISTS ${root}/${path})
      file(CREATE_LINK ${PROJECT_SOURCE_DIR}/src/${path} ${root}/${path} SYMBOLIC)
    endif()
  endforeach()
  if(NOT ARG_SOURCES)
    message(STATUS "embd: ${name} has no sources yet; skipped")
    return()
  endif()
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC $<BUILD_INTERFACE:${root}>)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS} embd_warnings embd_sanitizers)
endfunction()

# embd_add_test(NAME SOURCES ... DEPS ... [LABELS unit|golden|gpu|server|slow ...] [TIMEOUT s])
# A GoogleTest binary registered with CTest, one CTest test per TEST().
function(embd_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main
                        embd_warnings embd_sanitizers)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_definitions(${name} PRIVATE
    EMBD_FIXTURES_DIR="${PROJECT_SOURCE_DIR}/tests/fixtures"
    EMBD_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    EMBD_BINARY_DIR="${PROJECT_BINARY_DIR}")
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 900)
  endif()
  gtest_discover_tests(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
                       DISCOVERY_TIMEOUT 120)
endfunction()

# Sources of a layer folder (new files join the build without editing a list).
function(embd_glob out)
  file(GLOB result CONFIGURE_DEPENDS ${ARGN})
  set(${out} ${result} PARENT_SCOPE)
endfunction()
