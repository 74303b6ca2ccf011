// What a fuzz target does when an invariant fails: print what broke and abort, so libFuzzer
// saves the input as a crash (a failed check is a bug, like a sanitizer report).
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition, ...)                                          \
  do {                                                                      \
    if (!(condition)) {                                                     \
      std::fprintf(stderr, "fuzz check failed at %s:%d: %s\n  ", __FILE__, \
                   __LINE__, #condition);                                   \
      std::fprintf(stderr, __VA_ARGS__);                                    \
      std::fprintf(stderr, "\n");                                           \
      std::abort();                                                         \
    }                                                                       \
  } while (0)
