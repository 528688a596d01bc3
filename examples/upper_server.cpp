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

constexpr std::size_t kMaxLine = 64 * 1024;

class Upper final : public iomux::Handler {
 public:
  std::size_t on_data(std::span<const char> in, iomux::Connection& conn) override {
    const std::string_view text(in.data(), in.size());
    std::size_t used = 0;
    for (std::size_t nl; (nl = text.find('\n', used)) != std::string_view::npos; used = nl + 1) {
      std::string_view line = text.substr(used, nl - used);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      std::string reply(line);
      for (char& ch : reply) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      reply += "\r\n";
      conn.write(std::move(reply));  // moved in: no copy of it is made
      conn.count_requests();
    }
    if (text.size() - used > kMaxLine) {  // a line that can never end: refuse it
      conn.write_static("ERROR line too long\r\n");
      conn.close_after_flush("line too long");
      return in.size();
    }
    return used;
  }
};

}  // namespace

int main(int argc, char** argv) {
  return iomux_example::run(argc, argv, iomux::handler_factory<Upper>());
}
