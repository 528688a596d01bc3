// upper_server: each line a client sends comes back uppercased, followed by "\r\n". The
// smallest useful handler: it consumes whole lines, returns the count of bytes it used, and
// leaves an unfinished line to the library, which keeps it and presents it again with the
// next bytes. It runs unchanged on all ten IO models (--model).
//
//   upper_server --model uring --host 127.0.0.1 --port 7000
//   printf 'hello\nworld\n' | nc 127.0.0.1 7000        # HELLO, WORLD
#include <cctype>
#include <string>

#include "example_main.hpp"
#include "iomux/handler.hpp"

namespace {

class Upper final : public iomux::Handler {
 public:
  std::size_t on_data(std::span<const char> in, iomux::Connection& conn) override {
    return iomux_example::for_each_line(in, conn, [&](std::string_view line) {
      std::string reply(line);
      for (char& ch : reply) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      reply += "\r\n";
      conn.write(std::move(reply));  // moved in: no copy of it is made
      conn.count_requests();
      return true;
    });
  }
};

}  // namespace

int main(int argc, char** argv) {
  return iomux_example::run(argc, argv, iomux::handler_factory<Upper>());
}
