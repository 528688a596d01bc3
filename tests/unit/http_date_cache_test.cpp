#include "protocols/http/date_cache.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace iomux::http {
namespace {

TEST(HttpDateCache, FormatsImfFixdate) {
  DateCache cache;
  EXPECT_EQ(cache.at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(cache.at(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");  // RFC 9110's example
  EXPECT_EQ(cache.at(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");
  EXPECT_EQ(cache.at(4102444799), "Thu, 31 Dec 2099 23:59:59 GMT");
}

TEST(HttpDateCache, FormatsOnlyWhenTheSecondChanges) {
  DateCache cache;
  for (int i = 0; i < 1000; ++i) cache.at(100);
  EXPECT_EQ(cache.formats(), 1u);
  cache.at(101);
  cache.at(101);
  EXPECT_EQ(cache.formats(), 2u);
  EXPECT_EQ(cache.at(100), "Thu, 01 Jan 1970 00:01:40 GMT");  // a clock stepped back is fine
  EXPECT_EQ(cache.formats(), 3u);
}

TEST(HttpDateCache, EachThreadHasItsOwn) {
  DateCache* main_cache = &DateCache::this_thread();
  DateCache* other_cache = nullptr;
  std::thread([&] { other_cache = &DateCache::this_thread(); }).join();
  EXPECT_NE(main_cache, other_cache);
  EXPECT_EQ(main_cache, &DateCache::this_thread());
}

}  // namespace
}  // namespace iomux::http
