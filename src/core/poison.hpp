// Debug and sanitizer builds overwrite memory the moment the library is done with it: input a
// handler may no longer look at, and output storage as it is freed. A lifetime error then shows
// up as wrong bytes in a test, at once, instead of bytes that happen to survive. This matters
// most where no tool can see the read: the kernel reads an io_uring send's bytes whenever it
// runs the request, and ASan does not watch the kernel. Release builds (NDEBUG) do nothing,
// unless built with -DIOMUX_POISON_FREED.
#pragma once

#include <cstddef>
#include <cstring>

namespace iomux::detail {

#if !defined(NDEBUG) || defined(IOMUX_POISON_FREED)
inline constexpr bool kPoisonFreed = true;
#else
inline constexpr bool kPoisonFreed = false;
#endif

inline constexpr unsigned char kPoisonInput = 0xDD;   // consumed input
inline constexpr unsigned char kPoisonOutput = 0xDF;  // freed output storage

inline void poison(const void* bytes, std::size_t size, unsigned char pattern) noexcept {
  if constexpr (kPoisonFreed) {
    if (size > 0) std::memset(const_cast<void*>(bytes), pattern, size);
  }
}

}  // namespace iomux::detail
