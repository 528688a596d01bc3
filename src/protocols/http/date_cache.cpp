#include "protocols/http/date_cache.hpp"

namespace iomux::http {
namespace {

constexpr char kDays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr char kMonths[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

char* put_two_digits(char* at, int value) noexcept {
  at[0] = static_cast<char>('0' + value / 10);
  at[1] = static_cast<char>('0' + value % 10);
  return at + 2;
}

char* put_word(char* at, const char (&word)[4]) noexcept {
  at[0] = word[0];
  at[1] = word[1];
  at[2] = word[2];
  return at + 3;
}

}  // namespace

DateCache& DateCache::this_thread() noexcept {
  thread_local DateCache cache;
  return cache;
}

// By hand rather than with strftime: strftime's %a and %b follow the locale, and the header
// must be in English whatever the process's locale is.
void DateCache::format(std::time_t now) noexcept {
  std::tm tm{};
  gmtime_r(&now, &tm);
  char* at = text_;
  at = put_word(at, kDays[tm.tm_wday]);
  *at++ = ',';
  *at++ = ' ';
  at = put_two_digits(at, tm.tm_mday);
  *at++ = ' ';
  at = put_word(at, kMonths[tm.tm_mon]);
  *at++ = ' ';
  int year = tm.tm_year + 1900;
  if (year < 0 || year > 9999) year = 0;  // four digits, as the format has (only a bogus `now`)
  at = put_two_digits(at, year / 100);
  at = put_two_digits(at, year % 100);
  *at++ = ' ';
  at = put_two_digits(at, tm.tm_hour);
  *at++ = ':';
  at = put_two_digits(at, tm.tm_min);
  *at++ = ':';
  at = put_two_digits(at, tm.tm_sec);
  *at++ = ' ';
  *at++ = 'G';
  *at++ = 'M';
  *at++ = 'T';
  second_ = now;
  ++formats_;
}

}  // namespace iomux::http
