// The `iomux` subcommands. Each register_* adds one subcommand to the CLI11 app; its callback
// runs the command and stores the process exit code in `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

namespace iomux::cli {

void register_serve(CLI::App& app, int& exit_code);
void register_client(CLI::App& app, int& exit_code);
void register_models(CLI::App& app, int& exit_code);
void register_bench(CLI::App& app, int& exit_code);
void register_shootout(CLI::App& app, int& exit_code);

}  // namespace iomux::cli
