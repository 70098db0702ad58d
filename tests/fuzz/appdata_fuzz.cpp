// App data from peers (core/appdata/) on arbitrary bytes: an op read strictly re-encodes to
// one spelling (reading its wire form again gives the same op), and a replica fed the bytes
// as each of the three message types never crashes, keeps a computable data hash, and
// changes nothing when the message is refused as malformed.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "appdata/replica.h"
#include "base/clock.h"
#include "crypto/encoding.h"
#include "fuzz_check.h"

namespace {

using namespace peerstack;

struct Fixture {
  FakeClock clock;
  crypto::SigningKey self = crypto::SigningKey::FromSeed(crypto::Seed{1});
  crypto::SigningKey peer = crypto::SigningKey::FromSeed(crypto::Seed{2});
  std::unique_ptr<appdata::Replica> replica;
  std::string peer_hex;
  Fixture() {
    appdata::ReplicaOptions o;
    o.db_path = ":memory:";
    o.clock = &clock;
    o.key = std::make_unique<crypto::SigningKey>(self);
    o.random = [] { return uint64_t{7}; };
    o.durable = false;
    replica = std::move(appdata::Replica::Open(std::move(o))).value();
    (void)replica->Declare(
        "p", {{"c", appdata::Rule::kMembers, false}, {"own", appdata::Rule::kOwnKeys, false}});
    appdata::Authority a;
    a.network_id = std::string(64, 'e');
    peer_hex = crypto::HexEncode(peer.public_key().data(), 32);
    a.keys[crypto::HexEncode(self.public_key().data(), 32)] = {"self", {{0, INT64_MAX}}, {}};
    a.keys[peer_hex] = {"peer", {{0, INT64_MAX}}, {}};
    replica->SetAuthority(std::move(a), {{peer_hex, "http://peer", true}});
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* f = new Fixture;  // one database for the whole run, as a node keeps one
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto v = json::Parse(in);
  if (!v.ok()) return 0;
  if (auto op = appdata::FromJson(*v); op.ok()) {
    auto again = appdata::FromJson(*json::Parse(appdata::Wire(*op)));
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(appdata::Wire(*again) == appdata::Wire(*op));
    (void)appdata::VerifySignature(*op);
  }
  if (!v->is_object()) return 0;
  for (const char* type : {"appdata", "appsync", "appops"}) {
    const std::string before = f->replica->DataHash("p");
    std::vector<appdata::Outgoing> out;
    const Status s = f->replica->Receive(f->peer_hex, "http://peer", type, *v, &out);
    if (!s.ok()) FUZZ_CHECK(f->replica->DataHash("p") == before);
    for (const auto& o : out) FUZZ_CHECK(json::Parse(o.body).ok());
  }
  return 0;
}
