#include "protocol/event.h"

#include <cstring>

#include "crypto/encoding.h"
#include "crypto/sha256.h"

namespace peerstack::protocol {
namespace {

json::Value Unsigned(const Event& e) {
  json::Array parents;
  for (const auto& p : e.parents) parents.emplace_back(p);
  return json::Object{{"author", e.author},
                      {"body", e.body},
                      {"kind", e.kind},
                      {"parents", std::move(parents)},
                      {"time", e.time_ms}};
}

Status Bad(std::string message) { return Status::Error("bad_event", std::move(message)); }

}  // namespace

Result<Event> Sign(Event event, const crypto::SigningKey& key) {
  const auto& pub = key.public_key();
  event.author = crypto::HexEncode(pub.data(), pub.size());
  auto payload = json::Canonical(Unsigned(event));
  if (!payload) return payload.status();
  const crypto::Signature sig = key.SignWithDomain("event/" + event.kind, *payload);
  event.sig = crypto::HexEncode(sig.data(), sig.size());
  return event;
}

Status VerifySignature(const Event& event, crypto::VerifyCache* cache) {
  auto pub = crypto::HexDecode(event.author);
  auto sig = crypto::HexDecode(event.sig);
  if (!pub || !sig) return Bad("author or signature is not hex");
  auto payload = json::Canonical(Unsigned(event));
  if (!payload) return payload.status();
  auto as_view = [](const crypto::Bytes& b) {
    return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
  };
  return crypto::VerifyWithDomain(as_view(*pub), "event/" + event.kind, *payload, as_view(*sig),
                                  cache);
}

std::string Encode(const Event& event) {
  json::Value v = Unsigned(event);
  v.as_object().emplace("sig", event.sig);
  return json::Serialize(v);
}

Result<Event> Decode(std::string_view bytes, size_t max_bytes) {
  auto parsed = json::Parse(bytes, {max_bytes, 32});
  if (!parsed) return parsed.status();
  const json::Value& v = *parsed;
  if (!v.is_object() || v.as_object().size() != 6) return Bad("event must have exactly 6 fields");
  const std::string* kind = v.find_string("kind");
  const std::string* author = v.find_string("author");
  const std::string* sig = v.find_string("sig");
  const int64_t* time = v.find_int("time");
  const json::Value* parents = v.find("parents");
  const json::Value* body = v.find("body");
  if (!kind || !author || !sig || !time || !parents || !parents->is_array() || !body ||
      !body->is_object()) {
    return Bad("event fields missing or of the wrong type");
  }
  Event e;
  e.kind = *kind;
  e.author = *author;
  e.sig = *sig;
  e.time_ms = *time;
  e.body = *body;
  for (const json::Value& p : parents->as_array()) {
    if (!p.is_string() || p.as_string().size() != 64) return Bad("parent is not a hash");
    e.parents.push_back(p.as_string());
  }
  if (Encode(e) != bytes) return Bad("event bytes are not canonical");
  return e;
}

std::string HashOf(std::string_view wire_bytes) { return crypto::Sha256Hex(wire_bytes); }

std::string NodeIdFor(const crypto::PublicKey& key) {
  std::string input("peerstack/node-id/v1");
  input.push_back('\0');
  input.append(reinterpret_cast<const char*>(key.data()), key.size());
  const crypto::Digest d = crypto::Sha256(input);
  return crypto::HexEncode(d.data(), 20);
}

std::string NodeIdForHex(std::string_view public_key_hex) {
  // One spelling per key (lower-case hex): "AB.." and "ab.." must not be two members or two
  // publishers.
  for (char c : public_key_hex) {
    if (c >= 'A' && c <= 'F') return {};
  }
  auto bytes = crypto::HexDecode(public_key_hex);
  if (!bytes || bytes->size() != crypto::kPublicKeySize) return {};
  crypto::PublicKey key{};
  std::memcpy(key.data(), bytes->data(), key.size());
  return NodeIdFor(key);
}

}  // namespace peerstack::protocol
