// iomux: every classic IO model as a TCP server, a client, and the tools to measure them.
#include <CLI/CLI.hpp>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "iomux: the IO models of the tutorial (blocking ... epoll, signal-driven, io_uring)\n"
      "as real TCP servers, with a client and a load generator to measure them."};
  app.set_version_flag("--version", std::string("iomux ") + IOMUX_VERSION);
  app.require_subcommand(1);
  int exit_code = 0;
  iomux::cli::register_serve(app, exit_code);
  iomux::cli::register_client(app, exit_code);
  iomux::cli::register_models(app, exit_code);
#ifdef IOMUX_HAVE_BENCH
  iomux::cli::register_bench(app, exit_code);
#endif
#ifdef IOMUX_HAVE_SHOOTOUT
  iomux::cli::register_shootout(app, exit_code);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
