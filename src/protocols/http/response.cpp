#include "protocols/http/response.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstring>

#include "protocols/http/date_cache.hpp"

namespace iomux::http {
namespace {

constexpr std::string_view kServer = "Server: iomux\r\n";

std::string_view status_line(Status status) noexcept {
  switch (status) {
    case Status::ok:
      return "HTTP/1.1 200 OK\r\n";
    case Status::bad_request:
      return "HTTP/1.1 400 Bad Request\r\n";
    case Status::not_found:
      return "HTTP/1.1 404 Not Found\r\n";
    case Status::method_not_allowed:
      return "HTTP/1.1 405 Method Not Allowed\r\n";
    case Status::request_timeout:
      return "HTTP/1.1 408 Request Timeout\r\n";
    case Status::payload_too_large:
      return "HTTP/1.1 413 Payload Too Large\r\n";
    case Status::uri_too_long:
      return "HTTP/1.1 414 URI Too Long\r\n";
    case Status::header_fields_too_large:
      return "HTTP/1.1 431 Request Header Fields Too Large\r\n";
    case Status::not_implemented:
      return "HTTP/1.1 501 Not Implemented\r\n";
    case Status::service_unavailable:
      return "HTTP/1.1 503 Service Unavailable\r\n";
    case Status::version_not_supported:
      return "HTTP/1.1 505 HTTP Version Not Supported\r\n";
  }
  return "HTTP/1.1 500 Internal Server Error\r\n";
}

std::string_view connection_line(Persistence persistence) noexcept {
  switch (persistence) {
    case Persistence::implied:
      return "";
    case Persistence::keep_alive:
      return "Connection: keep-alive\r\n";
    case Persistence::close:
      return "Connection: close\r\n";
  }
  return "";
}

// Everything before the Date value: the part of a response that depends on the date only by
// being followed by it. `Text` is a std::string or a HeadText.
template <typename Text>
void append_head(Text& out, Status status, std::string_view content_type, std::size_t content_length,
                 Persistence persistence, std::string_view extra_headers) {
  char digits[20];  // a size_t has at most 20 decimal digits
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, content_length);
  (void)ec;  // cannot fail: the buffer holds any size_t
  out.append(status_line(status))
      .append(kServer)
      .append("Content-Type: ")
      .append(content_type)
      .append("\r\nContent-Length: ")
      .append(std::string_view(digits, static_cast<std::size_t>(end - digits)))
      .append("\r\n")
      .append(connection_line(persistence))
      .append(extra_headers)
      .append("Date: ");
}

// A response head made at run time, on the stack: the longest status line, content type and
// Connection line with a 20-digit length and the Date fit four times over.
class HeadText {
 public:
  HeadText& append(std::string_view text) noexcept {
    const std::size_t size = std::min(text.size(), sizeof text_ - size_);  // never cut: see above
    // An empty view may hold a null pointer (no extra headers), which memcpy may not be given.
    if (size != 0) std::memcpy(text_ + size_, text.data(), size);
    size_ += size;
    return *this;
  }
  [[nodiscard]] std::string_view view() const noexcept { return {text_, size_}; }

 private:
  char text_[512];
  std::size_t size_ = 0;
};

std::atomic<std::uint64_t> next_canned_id{1};

}  // namespace

std::string_view reason_phrase(Status status) noexcept {
  std::string_view line = status_line(status);  // "HTTP/1.1 NNN Reason\r\n"
  return line.substr(13, line.size() - 15);
}

void StringSink::append(std::string_view bytes) {
  out_->append(bytes);
}

void append_response(ResponseSink& out, Status status, std::string_view content_type, std::string_view body,
                     Persistence persistence, std::time_t now, bool with_body) {
  HeadText head;
  append_head(head, status, content_type, body.size(), persistence, {});
  head.append(DateCache::this_thread().at(now)).append("\r\n\r\n");
  out.append(head.view());
  if (with_body && !body.empty()) out.append(body);
}

CannedResponse::CannedResponse(Status status, std::string_view content_type, std::string_view body,
                               std::string_view extra_headers)
    : id_(next_canned_id.fetch_add(1, std::memory_order_relaxed)) {
  for (std::size_t i = 0; i < heads_.size(); ++i)
    append_head(heads_[i], status, content_type, body.size(), static_cast<Persistence>(i), extra_headers);
  tail_.append("\r\n\r\n").append(body);
}

void CannedResponse::compose_and_append(ResponseSink& out, Persistence persistence, std::time_t now,
                                        bool with_body) const {
  thread_local std::array<std::string, kComposedSlots> strings;
  const std::size_t index = key_of(persistence) % kComposedSlots;
  Composed& slot = composed_slots()[index];
  std::string& bytes = strings[index];
  const std::string& head = heads_[static_cast<std::size_t>(persistence)];
  const std::string_view date = DateCache::this_thread().at(now);
  bytes.assign(head).append(date).append(tail_);
  slot.key = key_of(persistence);
  slot.second = now;
  slot.bytes = bytes.data();
  slot.size = bytes.size();
  slot.head_size = head.size() + date.size() + 4;
  out.append({slot.bytes, with_body ? slot.size : slot.head_size});
}

}  // namespace iomux::http
