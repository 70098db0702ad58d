#include "protocol/envelope.h"

#include "crypto/encoding.h"
#include "protocol/join.h"

namespace peerstack::protocol {

Sealed Seal(const Envelope& e, const crypto::SigningKey& key) {
  Sealed s;
  s.path = "/p2p/" + e.type;
  s.body = json::Serialize(json::Object{{"body", e.body}, {"from", e.from}});
  const crypto::Signature sig = key.SignWithDomain("p2p/" + e.type, s.body);
  s.key_hex = crypto::HexEncode(key.public_key().data(), key.public_key().size());
  s.sig_hex = crypto::HexEncode(sig.data(), sig.size());
  return s;
}

Status Verify(std::string_view type, const std::string& body, const std::string* key_hex,
              const std::string* sig_hex) {
  if (body.size() > kMaxEnvelopeBytes) return Status::Error("too_large", "message too large");
  if (!key_hex || !sig_hex) return Status::Error("unsigned", "messages must be signed");
  if (auto s = VerifyHexSignature(*key_hex, "p2p/" + std::string(type), body, *sig_hex); !s.ok()) {
    return Status::Error("bad_signature", s.message());
  }
  return Status::Ok();
}

Result<Envelope> Open(std::string_view type, std::string_view body, const std::string& key_hex,
                      const Ledger* ledger, const std::string& self_url) {
  auto parsed = json::Parse(body, {kMaxEnvelopeBytes, 32});
  if (!parsed) return Status::Error("bad_json", parsed.status().message());
  const std::string* from = parsed->find_string("from");
  const json::Value* inner = parsed->find("body");
  if (!from || !inner || !inner->is_object() || parsed->as_object().size() != 2) {
    return Status::Error("bad_message", "a message is {\"body\": {...}, \"from\": URL}");
  }
  Envelope e{*from, self_url, std::string(type), *inner};
  BindSender(&e, key_hex, ledger);
  return e;
}

void BindSender(Envelope* e, const std::string& key_hex, const Ledger* ledger) {
  if (!ledger) return;
  const Member* m = ledger->state().FindMemberByKey(key_hex);
  if (!m || e->from == m->url) return;
  if (e->type == "sync" && !ledger->state().FindMemberByUrl(e->from)) return;
  e->from = m->url;
}

}  // namespace peerstack::protocol
