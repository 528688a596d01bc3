// What a completion is about. io_uring hands back, with every completion (CQE), the 64-bit
// user_data its request (SQE) carried, and nothing else identifies it; so we pack into it
// what the loop needs to route the CQE without a lookup table:
//
//   63        56 55                    32 31                                  0
//   +----------+------------------------+-------------------------------------+
//   |    op    |  generation (24 bits)  |        connection slot (32 bits)    |
//   +----------+------------------------+-------------------------------------+
//
// The slot indexes the thread's connection table. A slot is reused once its connection is
// gone, and its generation is bumped then, so a completion that carries an older generation
// is recognised as stale instead of being applied to the slot's new connection.
#pragma once

#include <cstdint>

namespace iomux::detail::uring {

enum class Op : std::uint8_t {
  accept = 1,  // the listener's multishot accept
  wake,        // the read on the eventfd that stop() writes to
  recv,        // a connection's recv (multishot, or one-shot: arm_recv)
  send,        // a connection's one send in flight
  cancel,      // an IORING_OP_ASYNC_CANCEL we asked for (its own CQE says whether it matched)
  connect,     // an outbound connection's IORING_OP_CONNECT (Loop::connect)
};

struct Tag {
  Op op;
  std::uint32_t generation;  // only the low 24 bits survive packing
  std::uint32_t slot;
};

inline constexpr std::uint32_t kGenerationMask = 0xFFFFFF;

constexpr std::uint64_t pack(Op op, std::uint32_t slot = 0, std::uint32_t generation = 0) noexcept {
  return (std::uint64_t{static_cast<std::uint8_t>(op)} << 56) | (std::uint64_t{generation & kGenerationMask} << 32) |
         slot;
}

constexpr Tag unpack(std::uint64_t user_data) noexcept {
  return {static_cast<Op>(user_data >> 56), static_cast<std::uint32_t>(user_data >> 32) & kGenerationMask,
          static_cast<std::uint32_t>(user_data)};
}

}  // namespace iomux::detail::uring
