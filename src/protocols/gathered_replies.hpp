// How the resp and http handlers hand over the replies their cores gathered for one call: as
// one write. Small ones are copied (into the thread's send batch; the string keeps its
// capacity for the next call, so steady traffic allocates nothing), large ones handed over
// without a copy (a megabyte of GET replies or an echoed body).
#pragma once

#include <cstddef>
#include <string>
#include <utility>

#include "iomux/handler.hpp"

namespace iomux {

inline void write_gathered(Connection& conn, std::string& replies) {
  constexpr std::size_t kHandOver = 64 * 1024;
  if (replies.empty()) return;
  if (replies.size() >= kHandOver) {
    conn.write(std::move(replies));
    replies = std::string();
  } else {
    conn.write(std::string_view(replies));
    replies.clear();
  }
}

}  // namespace iomux
