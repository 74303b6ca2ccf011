// The embd CLI's subcommands. Each cmd_<name>.cpp defines one add_<name>_command(), which
// registers its flags on `root` and returns the function that runs it (exit code).
// Subcommands use only the public API (include/embd) and, for `serve`, src/server.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace embd::cli {

using CommandRun = std::function<int()>;

CommandRun add_info_command(CLI::App& root);
CommandRun add_tokenize_command(CLI::App& root);
CommandRun add_embed_command(CLI::App& root);
CommandRun add_bench_command(CLI::App& root);
CommandRun add_download_command(CLI::App& root);
#ifdef EMBD_HAVE_SERVER
CommandRun add_serve_command(CLI::App& root);
#endif

}  // namespace embd::cli
