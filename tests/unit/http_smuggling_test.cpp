// Request smuggling: byte sequences whose framing a proxy in front of iomux (or behind it) could
// read differently. Each is refused with an error and a close, and the request behind it is
// never parsed, whether the bytes come at once or cut anywhere. (Issue 16, section 2: CONNECT's
// body and the chunk framing shapes were accepted with http_parser.)
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocols/http/session.hpp"
#include "support/http_shapes.hpp"

namespace iomux::http {
namespace {

using test::kHiddenRequest;
using test::refused_shapes;
using test::Shape;

constexpr std::time_t kSmugglingClock = 784111777;

struct Outcome {
  std::vector<int> statuses;  // final responses, in order (100 Continue left out)
  std::size_t requests = 0;
  bool closed = false;
};

std::vector<int> statuses_of(std::string_view out) {
  std::vector<int> statuses;
  for (std::size_t at = out.find("HTTP/1.1 "); at != std::string_view::npos; at = out.find("HTTP/1.1 ", at + 1)) {
    const int status = std::stoi(std::string(out.substr(at + 9, 3)));
    if (status != 100) statuses.push_back(status);
  }
  return statuses;
}

// Feeds `stream` to a fresh session in pieces of `step` bytes (0: at once), keeping what is not
// consumed as a connection does.
Outcome run(std::string_view stream, std::size_t step = 0) {
  const Service service{Options{}};
  Session session(service);
  Outcome outcome;
  std::string kept;
  std::string out;
  if (step == 0) step = stream.size();
  for (std::size_t at = 0; at < stream.size() && !outcome.closed; at += step) {
    kept.append(stream.substr(at, step));
    const Result r = session.process(kept, out, kSmugglingClock);
    kept.erase(0, r.consumed);
    outcome.requests += r.requests;
    outcome.closed = r.close;
  }
  outcome.statuses = statuses_of(out);
  return outcome;
}

TEST(HttpSmuggling, EveryShapeIsRefusedAndWhatFollowsIsNeverParsed) {
  for (const Shape& shape : refused_shapes()) {
    const Outcome outcome = run(shape.request + kHiddenRequest);
    EXPECT_TRUE(outcome.closed) << shape.name;
    EXPECT_EQ(outcome.requests, 0u) << shape.name;
    EXPECT_EQ(outcome.statuses, std::vector<int>{shape.status}) << shape.name;
  }
}

TEST(HttpSmuggling, VerdictsDoNotDependOnHowTheBytesAreCut) {
  for (const Shape& shape : refused_shapes()) {
    const std::string stream = shape.request + kHiddenRequest;
    const Outcome whole = run(stream);
    for (std::size_t step : {1u, 2u, 3u, 7u, 16u}) {
      const Outcome cut = run(stream, step);
      EXPECT_EQ(cut.statuses, whole.statuses) << shape.name << " in steps of " << step;
      EXPECT_EQ(cut.closed, whole.closed) << shape.name << " in steps of " << step;
    }
  }
}

// What stays accepted: the framing a strict reading still allows, answered as a client means it.
TEST(HttpSmuggling, StrictFramingStillAcceptsWhatTheRfcAllows) {
  const std::vector<Shape> accepted = test::accepted_shapes();

  for (const Shape& shape : accepted) {
    const Outcome outcome = run(shape.request + kHiddenRequest);
    EXPECT_FALSE(outcome.closed) << shape.name;
    EXPECT_EQ(outcome.statuses, (std::vector<int>{shape.status, 200})) << shape.name;
  }
}

// RFC 9112 9.3: a Connection header is a list of options, and "close" wins.
TEST(HttpSmuggling, ConnectionIsATokenListAndCloseWins) {
  const std::vector<std::string> closing = {
      "GET / HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n",
      "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
      "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, close\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: t\r\nConnection: foo, CLOSE\r\n\r\n",
      "GET / HTTP/1.0\r\n\r\n",
  };
  for (const std::string& request : closing) {
    const Outcome outcome = run(request + kHiddenRequest);
    EXPECT_TRUE(outcome.closed) << request;
    EXPECT_EQ(outcome.statuses, std::vector<int>{200}) << request;
  }
  const Outcome kept = run("GET / HTTP/1.0\r\nConnection: foo, keep-alive\r\n\r\n" + kHiddenRequest);
  EXPECT_FALSE(kept.closed);
  EXPECT_EQ(kept.statuses, (std::vector<int>{200, 200}));
}

}  // namespace
}  // namespace iomux::http
