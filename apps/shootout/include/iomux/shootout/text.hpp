// Small text helpers the shootout's runners and reports share: a tool's first line of output
// for a one-line verdict, and Markdown table cells that survive '|' and newlines.
#pragma once

#include <string>

namespace iomux::shootout {

// The first non-blank line of s, without its line ending ("" when s is blank).
inline std::string first_line(const std::string& s) {
  const auto start = s.find_first_not_of(" \t\r\n");
  if (start == std::string::npos) return {};
  const auto end = s.find_first_of("\r\n", start);
  return s.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// s as one Markdown table cell: '|' escaped, newlines folded into spaces.
inline std::string md_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n')
      out += ' ';
    else
      out += c;
  }
  return out;
}

}  // namespace iomux::shootout
