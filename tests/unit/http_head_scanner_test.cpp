#include "protocols/http/head_scanner.hpp"

#include <gtest/gtest.h>

#include <string>

namespace iomux::http {
namespace {

constexpr HeadLimits kLimits{200, 100};

HeadScan scan_whole(std::string_view request, HeadLimits limits = kLimits) {
  HeadScanner scanner;
  return scanner.scan(request, limits);
}

TEST(HttpHeadScanner, FindsTheBlankLineWithCrlfOrBareLf) {
  EXPECT_EQ(scan_whole("GET / HTTP/1.1\r\nHost: t\r\n\r\nNEXT").size, 27u);
  EXPECT_EQ(scan_whole("GET / HTTP/1.1\nHost: t\n\nNEXT").size, 24u);
  EXPECT_EQ(scan_whole("GET / HTTP/1.1\r\nHost: t\n\r\n").size, 26u);
  EXPECT_EQ(scan_whole("GET / HTTP/1.1\r\nHost: t\r\n\r").kind, HeadScan::Kind::incomplete);
}

TEST(HttpHeadScanner, KnowsWhereTheRequestLineEnds) {
  HeadScanner scanner;
  scanner.scan("GET / HTTP/1.1", kLimits);
  EXPECT_EQ(scanner.line_size(), 0u);
  scanner.scan("GET / HTTP/1.1\r\nHo", kLimits);
  EXPECT_EQ(scanner.line_size(), 16u);
  scanner.reset();
  EXPECT_EQ(scanner.line_size(), 0u);
}

TEST(HttpHeadScanner, ResumesWhereItStoppedAcrossCalls) {
  const std::string head = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
  for (std::size_t cut = 1; cut < head.size(); ++cut) {
    HeadScanner scanner;
    const HeadScan first = scanner.scan(std::string_view(head).substr(0, cut), kLimits);
    EXPECT_EQ(first.kind, HeadScan::Kind::incomplete) << cut;
    EXPECT_TRUE(scanner.started());
    const HeadScan second = scanner.scan(head, kLimits);
    EXPECT_EQ(second.kind, HeadScan::Kind::complete) << cut;
    EXPECT_EQ(second.size, head.size()) << cut;
    EXPECT_LE(first.examined + second.examined, head.size() + 2) << cut;
  }
}

TEST(HttpHeadScanner, JudgesTheMethodFromItsFirstBytes) {
  EXPECT_EQ(scan_whole("GE").kind, HeadScan::Kind::incomplete);
  EXPECT_EQ(scan_whole("G\x01").status, Status::bad_request);
  EXPECT_EQ(scan_whole(" GET").status, Status::bad_request);
  EXPECT_EQ(scan_whole("GET\r\n").status, Status::bad_request);
  EXPECT_EQ(scan_whole("ABCDEFGHIJKLMNOP").kind, HeadScan::Kind::incomplete);  // 16: may still be
  EXPECT_EQ(scan_whole("ABCDEFGHIJKLMNOPQ").status, Status::not_implemented);
  EXPECT_EQ(scan_whole("BREW /").kind, HeadScan::Kind::incomplete);  // http_parser's to judge
}

TEST(HttpHeadScanner, RefusesARequestLineThatCannotEndInTime) {
  EXPECT_EQ(scan_whole("GET /" + std::string(95, 'a')).kind, HeadScan::Kind::incomplete);
  EXPECT_EQ(scan_whole("GET /" + std::string(96, 'a')).status, Status::uri_too_long);
  EXPECT_EQ(scan_whole("GET /" + std::string(96, 'a') + "\r\n\r\n").status, Status::uri_too_long);
}

TEST(HttpHeadScanner, RefusesAHeadThatCannotEndInTime) {
  const std::string start = "GET / HTTP/1.1\r\nX: ";
  EXPECT_EQ(scan_whole(start + std::string(200 - start.size() - 1, 'x')).kind, HeadScan::Kind::incomplete);
  EXPECT_EQ(scan_whole(start + std::string(200 - start.size(), 'x')).kind, HeadScan::Kind::too_large);
  EXPECT_EQ(scan_whole(start + std::string(200 - start.size() - 4, 'x') + "\r\n\r\n").kind, HeadScan::Kind::complete);
  EXPECT_EQ(scan_whole(start + std::string(200 - start.size() - 3, 'x') + "\r\n\r\n").status,
            Status::header_fields_too_large);
}

}  // namespace
}  // namespace iomux::http
