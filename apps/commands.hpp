// The `iomux` subcommands. Each register_* adds one subcommand to the CLI11 app; its callback
// runs the command and stores the process exit code in `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <string>

namespace iomux::cli {

void register_serve(CLI::App& app, int& exit_code);
void register_client(CLI::App& app, int& exit_code);
void register_models(CLI::App& app, int& exit_code);
void register_bench(CLI::App& app, int& exit_code);
void register_shootout(CLI::App& app, int& exit_code);

// Number checks that say what is wrong in words (CLI11's PositiveNumber prints its range up to
// DBL_MAX in full, 300 digits).
inline CLI::Validator number_check(bool zero_allowed) {
  return CLI::Validator(
      [zero_allowed](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != '\0') return "'" + text + "' is not a number";
        if (v < 0 || (v == 0 && !zero_allowed))
          return zero_allowed ? "must not be negative, not " + text : "must be greater than 0, not " + text;
        return {};
      },
      zero_allowed ? "NUMBER >= 0" : "NUMBER > 0");
}
inline const CLI::Validator kPositive = number_check(false);
inline const CLI::Validator kNonNegative = number_check(true);

}  // namespace iomux::cli
