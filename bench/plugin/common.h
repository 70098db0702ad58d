// What the built-in baseline route answers: byte for byte what the hello plugin answers.
#pragma once

#include <string>

namespace peerstack::bench {

inline std::string HelloBody(const std::string& node_id) {
  return "{\"greeting\":\"hello\",\"node\":\"" + node_id +
         "\",\"plugin\":\"hello\",\"version\":\"1.0.0\"}";
}

inline const char kNodeId[] = "1a9006b2e0576ed55f002aef6c066bb3a86517f8";

}  // namespace peerstack::bench
