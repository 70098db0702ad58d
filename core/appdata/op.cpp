#include "appdata/op.h"

#include "crypto/encoding.h"

namespace peerstack::appdata {

bool ValidCollectionName(std::string_view n) {
  if (n.empty() || n.size() > 32) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '_' || c == '-'));
    if (!ok) return false;
  }
  return true;
}

bool ValidKey(std::string_view k) {
  if (k.empty() || k.size() > kMaxKeyBytes || !crypto::IsUtf8(k)) return false;
  for (char c : k) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

json::Value ToJson(const Op& op, bool with_sig) {
  json::Object o{{"a", op.author}, {"c", op.collection}, {"d", op.deleted},
                 {"k", op.key},    {"l", op.l},          {"n", op.network},
                 {"p", op.plugin}, {"s", op.seq},        {"t", op.t}};
  if (!op.deleted) {
    if (crypto::IsUtf8(op.value)) {
      o.emplace("v", op.value);
    } else {
      o.emplace("b", crypto::Base64Encode(op.value));
    }
  }
  if (with_sig) o.emplace("sig", op.sig);
  return o;
}

std::string Wire(const Op& op) { return json::Serialize(ToJson(op)); }

Result<Op> FromJson(const json::Value& v) {
  auto bad = [](const std::string& why) { return Status::Error("bad_op", why); };
  if (!v.is_object()) return bad("an op is a JSON object");
  const json::Object& o = v.as_object();
  Op op;
  const std::string* a = v.find_string("a");
  const std::string* c = v.find_string("c");
  const std::string* k = v.find_string("k");
  const std::string* n = v.find_string("n");
  const std::string* p = v.find_string("p");
  const std::string* sig = v.find_string("sig");
  const int64_t* l = v.find_int("l");
  const int64_t* s = v.find_int("s");
  const int64_t* t = v.find_int("t");
  const json::Value* d = v.find("d");
  if (!a || !c || !k || !n || !p || !sig || !l || !s || !t || !d || !d->is_bool()) {
    return bad("missing or mistyped fields");
  }
  op.deleted = d->as_bool();
  const std::string* text = v.find_string("v");
  const std::string* b64 = v.find_string("b");
  const size_t fields = 10 + (text ? 1 : 0) + (b64 ? 1 : 0);
  if (o.size() != fields) return bad("unexpected fields");
  if (op.deleted && (text || b64)) return bad("a delete carries no value");
  if (!op.deleted && (text != nullptr) == (b64 != nullptr))
    return bad("a put carries exactly one of v and b");
  if (b64) {
    auto raw = crypto::Base64Decode(*b64);
    if (!raw) return bad("b is not base64");
    // One spelling per value: text that is UTF-8 travels as "v".
    if (crypto::IsUtf8(*raw)) return bad("a UTF-8 value must travel as v");
    op.value = std::move(*raw);
  } else if (text) {
    op.value = *text;
  }
  if (op.value.size() > kMaxValueBytes) return bad("value over 64 KiB");
  if (a->size() != 64 || !crypto::IsSha256Hex(*a)) return bad("author is not a lower-case hex key");
  if (!crypto::IsSha256Hex(*n)) return bad("bad network id");
  if (!ValidCollectionName(*c)) return bad("bad collection name");
  if (!ValidCollectionName(*p)) return bad("bad plugin name");
  if (!ValidKey(*k)) return bad("bad key");
  // One spelling: lower-case hex only (an upper-case copy would be another op's bytes).
  if (sig->size() != 128 || !crypto::IsSha256Hex(sig->substr(0, 64)) ||
      !crypto::IsSha256Hex(sig->substr(64))) {
    return bad("the signature is not 128 lower-case hex digits");
  }
  if (*s < 1 || *t < 0 || *l < 0 || *l > kMaxLogical) return bad("bad sequence or clock");
  op.author = *a;
  op.collection = *c;
  op.key = *k;
  op.network = *n;
  op.plugin = *p;
  op.sig = *sig;
  op.seq = *s;
  op.t = *t;
  op.l = *l;
  return op;
}

Op Sign(Op op, const crypto::SigningKey& key) {
  const auto& pub = key.public_key();
  op.author = crypto::HexEncode(pub.data(), pub.size());
  const std::string payload = json::Serialize(ToJson(op, false));
  const crypto::Signature s = key.SignWithDomain(kOpDomain, payload);
  op.sig = crypto::HexEncode(s.data(), s.size());
  return op;
}

Status VerifySignature(const Op& op, crypto::VerifyCache* cache) {
  auto key = crypto::HexDecode(op.author);
  auto sig = crypto::HexDecode(op.sig);
  if (!key || !sig) return Status::Error("bad_signature", "op key or signature is not hex");
  const std::string payload = json::Serialize(ToJson(op, false));
  return crypto::VerifyWithDomain(
      std::string_view(reinterpret_cast<const char*>(key->data()), key->size()), kOpDomain, payload,
      std::string_view(reinterpret_cast<const char*>(sig->data()), sig->size()), cache);
}

}  // namespace peerstack::appdata
