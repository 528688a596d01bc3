// One HTTP/1.1 response read off a client socket, for tests that talk to the http protocol by
// hand: Content-Length framing only (what iomux sends), 100 Continue skipped.
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <regex>
#include <string>

namespace iomux::test {

struct HttpResponse {
  int status = 0;  // 0: no whole response came (the connection closed, or the socket's timeout)
  std::string head;
  std::string body;
  [[nodiscard]] bool closes() const { return head.find("\r\nConnection: close\r\n") != std::string::npos; }
};

// Reads one response; `pending` keeps what was read past it, for the next call.
inline HttpResponse read_http_response(int fd, std::string& pending) {
  char buf[65536];
  for (;;) {
    const std::size_t head_end = pending.find("\r\n\r\n");
    if (head_end != std::string::npos && pending.size() >= 12) {
      HttpResponse r;
      r.status = std::stoi(pending.substr(9, 3));
      std::size_t length = 0;
      std::smatch m;
      const std::string head = pending.substr(0, head_end + 4);
      if (std::regex_search(head, m, std::regex("Content-Length: (\\d+)"))) length = std::stoul(m[1]);
      if (r.status == 100) {
        pending.erase(0, head_end + 4);
        continue;
      }
      if (pending.size() >= head_end + 4 + length) {
        r.head = head;
        r.body = pending.substr(head_end + 4, length);
        pending.erase(0, head_end + 4 + length);
        return r;
      }
    }
    const ssize_t got = ::recv(fd, buf, sizeof buf, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return {};
    pending.append(buf, static_cast<std::size_t>(got));
  }
}

}  // namespace iomux::test
