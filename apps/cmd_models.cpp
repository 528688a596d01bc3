// `iomux models`: the ladder, one line per model, with whether this kernel can run it and
// whether it takes --threads.
#include <fmt/format.h>

#include "commands.hpp"
#include "iomux/models.hpp"

namespace iomux::cli {

void register_models(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("models", "List the IO models, in the tutorial's order, and whether each runs here");
  cmd->callback([&exit_code] {
    fmt::print("{:<12} {:<10} {:<10} {:<34} {}\n", "MODEL", "AVAILABLE", "--threads", "TUTORIAL SECTION",
               "HOW IT WORKS");
    for (const ModelInfo& m : all_models()) {
      Availability a = probe_model(m.name);
      fmt::print("{:<12} {:<10} {:<10} {:<34} {}\n", m.name, a.available ? "yes" : "no",
                 m.multi_threaded ? "yes" : "no", m.tutorial_section, m.summary);
      if (!a.available) fmt::print("{:<12} {:<10} {}\n", "", "", "-> " + a.reason);
    }
    exit_code = 0;
  });
}

}  // namespace iomux::cli
