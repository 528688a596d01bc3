// systemd's socket activation variables (sd_listen_fds(3)), parsed without IO.
#include "core/listen_fds.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace iomux::detail::listen_fds_test {
namespace {

constexpr pid_t kSelf = 4242;

std::optional<ListenFds> parse(const char* pid, const char* fds, const char* names, std::string* why = nullptr) {
  std::string reason;
  auto out = parse_listen_fds(pid, fds, names, kSelf, reason);
  if (why) *why = reason;
  return out;
}

TEST(ListenFds, OursWithoutNames) {
  auto r = parse("4242", "2", nullptr);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->count, 2);
  EXPECT_TRUE(r->names.empty());
}

TEST(ListenFds, OursWithNamesOnePerFdEmptyOnesKept) {
  auto r = parse("4242", "3", "web::admin");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->count, 3);
  EXPECT_EQ(r->names, (std::vector<std::string>{"web", "", "admin"}));
}

TEST(ListenFds, NothingWhenAVariableIsUnset) {
  for (auto [pid, fds] : {std::pair<const char*, const char*>{nullptr, "1"}, {"4242", nullptr}, {nullptr, nullptr}}) {
    auto r = parse(pid, fds, "web");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->count, 0);
  }
}

TEST(ListenFds, NothingWhenTheyWereHandedToAnotherProcess) {
  // A parent was activated and we inherited its environment: the fds are not ours, whatever
  // the rest says (sd_listen_fds returns 0 too).
  auto r = parse("4241", "2", "a:b");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->count, 0);
  r = parse("4241", "garbage", nullptr);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->count, 0);
}

TEST(ListenFds, ZeroFdsIsNothingWhateverTheNames) {
  auto r = parse("4242", "0", nullptr);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->count, 0);
  r = parse("4242", "0", "web");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->count, 0);
  EXPECT_TRUE(r->names.empty());
}

TEST(ListenFds, ABadPidIsAnError) {
  for (const char* pid : {"", "abc", "-4242", "+4242", " 4242", "4242 ", "0", "99999999999999999999", "42x"}) {
    std::string why;
    EXPECT_FALSE(parse(pid, "1", nullptr, &why)) << "'" << pid << "'";
    EXPECT_NE(why.find("LISTEN_PID"), std::string::npos) << why;
  }
}

TEST(ListenFds, AGarbageCountIsAnError) {
  for (const char* fds : {"", "one", "-1", "+1", "1 ", "0x2", "2147483645", "99999999999999999999"}) {
    std::string why;
    EXPECT_FALSE(parse("4242", fds, nullptr, &why)) << "'" << fds << "'";
    EXPECT_NE(why.find("LISTEN_FDS"), std::string::npos) << why;
  }
  // The largest count whose last fd is still an int.
  auto r = parse("4242", "2147483644", nullptr);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->count, 2147483644);
}

TEST(ListenFds, NamesMustBeOnePerFd) {
  for (auto [fds, names] :
       {std::pair<const char*, const char*>{"2", "web"}, {"1", "web:admin"}, {"2", "a:b:"}, {"3", ""}}) {
    std::string why;
    EXPECT_FALSE(parse("4242", fds, names, &why)) << fds << " '" << names << "'";
    EXPECT_NE(why.find("LISTEN_FDNAMES"), std::string::npos) << why;
  }
}

TEST(ListenFds, ReasonsEscapeWhatTheyQuote) {
  std::string why;
  EXPECT_FALSE(parse("12\x1b[2J", "1", nullptr, &why));
  EXPECT_EQ(why.find('\x1b'), std::string::npos) << why;
}

}  // namespace
}  // namespace iomux::detail::listen_fds_test
