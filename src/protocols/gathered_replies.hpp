// How the resp and http handlers hand over the replies their cores gathered for one call: as
// one write. Small ones are copied (into the thread's send batch; the string keeps its
// capacity for the next call, so steady traffic allocates nothing), large ones handed over
// without a copy (a megabyte of GET replies or an echoed body). A string that grew past
// kKeptCapacity for one large reply is not kept at that size: an idle connection must not go
// on holding what its last reply needed.
#pragma once

#include <cstddef>
#include <string>
#include <utility>

#include "iomux/handler.hpp"

namespace iomux {

inline constexpr std::size_t kKeptCapacity = 4 * 1024;

inline void write_gathered(Connection& conn, std::string& replies) {
  constexpr std::size_t kHandOver = 64 * 1024;
  if (replies.empty()) return;
  if (replies.size() >= kHandOver) {
    conn.write(std::move(replies));
    replies = std::string();
  } else {
    conn.write(std::string_view(replies));
    if (replies.capacity() > kKeptCapacity)
      std::string().swap(replies);  // not `= std::string()`: a move from a short string keeps the buffer
    else
      replies.clear();
  }
}

}  // namespace iomux
