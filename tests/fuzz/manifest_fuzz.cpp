// protocol::ParseManifest (release manifests, from a ledger event's JSON) on whatever
// json::Parse makes of arbitrary bytes: never crash; a parsed manifest's ToJson parses again
// to the same manifest.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "json/json.h"
#include "protocol/release.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace json = peerstack::json;
  namespace protocol = peerstack::protocol;
  auto v = json::Parse(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!v.ok()) return 0;
  auto m = protocol::ParseManifest(*v);
  if (!m.ok()) {
    FUZZ_CHECK(m.status().code() == "bad_manifest");
    return 0;
  }
  FUZZ_CHECK(m->version >= 1);
  const json::Value out = m->ToJson();
  auto again = protocol::ParseManifest(out);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(json::Serialize(again->ToJson()) == json::Serialize(out));
  FUZZ_CHECK(again->CodeHash() == m->CodeHash());
  FUZZ_CHECK(m->CodeHash().size() == 64);
  return 0;
}
