// The protocols the load generator speaks: the built-in ack, line and echo (protocols.hpp).
// RESP and HTTP have real clients of their own (redis-benchmark, wrk).
#pragma once

#include <optional>
#include <string_view>

#include "iomux/protocols.hpp"

namespace iomux {

enum class ProtocolMode { ack, line, echo };

std::optional<ProtocolMode> parse_protocol_mode(std::string_view name);
std::string_view to_string(ProtocolMode mode);

}  // namespace iomux
