// The plugin SDK's own JSON reader (sdk::Json in plugin-sdk/include/peerstack/plugin.hpp,
// compiled into every plugin, fed request bodies) on arbitrary bytes: never crash; what
// parses must Dump to text that parses again to the same Dump.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "peerstack/plugin.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using peerstack::sdk::Json;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string error;
  auto v = Json::Parse(in, &error);
  if (!v) {
    FUZZ_CHECK(!error.empty());
    return 0;
  }
  const std::string text = v->Dump();
  auto again = Json::Parse(text, &error);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->Dump() == text);
  return 0;
}
