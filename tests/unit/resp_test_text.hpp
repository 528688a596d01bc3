// Building RESP bytes in the resp core's tests.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace iomux::resp::test_text {

// Concatenation by appending: GCC 12 at -O3 warns wrongly (-Wrestrict, bug 105329) about
// `"literal" + std::string(...)`, which the project's Release build would show.
inline std::string cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view part : parts) out.append(part);
  return out;
}

// A multibulk request of `args`, as redis-cli sends it.
inline std::string multibulk(const std::vector<std::string>& args) {
  std::string out = cat({"*", std::to_string(args.size()), "\r\n"});
  for (const std::string& arg : args) out += cat({"$", std::to_string(arg.size()), "\r\n", arg, "\r\n"});
  return out;
}

}  // namespace iomux::resp::test_text
