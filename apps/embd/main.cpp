// embd: text embeddings from the command line. `embd --help` lists the subcommands.
#include <cstdio>
#include <utility>
#include <vector>

#include "commands.h"
#include "embd/version.hpp"

int main(int argc, char** argv) {
  CLI::App app{"embd: fast, exact text embeddings with JinaBERT v2 and BERT models"};
  app.set_version_flag("--version", embd::kVersion);
  app.require_subcommand(1);
  std::vector<std::pair<CLI::App*, embd::cli::CommandRun>> commands;
  auto add = [&](embd::cli::CommandRun run) { commands.emplace_back(app.get_subcommands({}).back(), std::move(run)); };
  add(embd::cli::add_info_command(app));
  add(embd::cli::add_tokenize_command(app));
  add(embd::cli::add_embed_command(app));
  add(embd::cli::add_bench_command(app));
  add(embd::cli::add_download_command(app));
#ifdef EMBD_HAVE_SERVER
  add(embd::cli::add_serve_command(app));
#endif
  CLI11_PARSE(app, argc, argv);
  for (auto& [sub, run] : commands) {
    if (sub->parsed()) return run();
  }
  return 2;
}
