// json::Parse (simdjson DOM underneath) on arbitrary bytes: never crash; what parses must
// serialize to text that parses again to the same serialization (Serialize is what we sign
// and send, so it must read back as itself), and Canonical agrees with Serialize.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "json/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace json = peerstack::json;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto v = json::Parse(in);
  if (!v.ok()) {
    FUZZ_CHECK(v.status().code() == "bad_json");
    return 0;
  }
  const std::string text = json::Serialize(*v);
  auto again = json::Parse(text);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(json::Serialize(*again) == text);
  auto canonical = json::Canonical(*v);
  if (canonical.ok()) {
    FUZZ_CHECK(*canonical == text);
    FUZZ_CHECK(*again == *v);  // no doubles: the values themselves are equal
  }
  return 0;
}
