#include "bundle/bundle.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include "base/files.h"
#include "crypto/encoding.h"
#include "crypto/sha256.h"
#include "json/json.h"
#include "protocol/event.h"
#include "protocol/genesis.h"
#include "protocol/invitation.h"

namespace peerstack::bundle {
namespace {

json::Value CardJson(const Card& card) {
  json::Value v =
      json::Object{{"bootstrap", json::Array(card.bootstrap.begin(), card.bootstrap.end())},
                   {"genesis", card.genesis},
                   {"network", card.network},
                   {"publishers", json::Array(card.publishers.begin(), card.publishers.end())},
                   {"threshold", card.threshold}};
  if (!card.invitation.empty()) v.as_object().emplace("invitation", card.invitation);
  return v;
}

constexpr char kMagic[8] = {'P', 'S', 'B', 'U', 'N', 'D', 'L', '1'};
constexpr uint32_t kFormat = 1;

Status Damaged(const std::string& why) {
  return Status::Error("damaged", "the bundle is damaged: " + why);
}
Status Untrusted(const std::string& why) {
  return Status::Error("untrusted", "the bundle is not trustworthy: " + why);
}

void PutLe(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t GetLe(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

struct Trailer {
  uint64_t offset = 0, length = 0;
  std::string sha;  // raw 32 bytes
};

// Reads the trailer of an open file of `size` bytes; nullopt when there is none.
std::optional<Trailer> ReadTrailer(std::ifstream& in, uint64_t size) {
  if (size < kTrailerSize) return std::nullopt;
  char t[kTrailerSize];
  in.seekg(static_cast<std::streamoff>(size - kTrailerSize));
  if (!in.read(t, kTrailerSize) || std::memcmp(t, kMagic, 8) != 0) return std::nullopt;
  Trailer tr;
  if (GetLe(t + 8, 4) != kFormat) return std::nullopt;
  tr.offset = GetLe(t + 16, 8);
  tr.length = GetLe(t + 24, 8);
  tr.sha.assign(t + 32, 32);
  return tr;
}

Result<std::string> ReadRange(std::ifstream& in, uint64_t offset, uint64_t length) {
  std::string bytes(length, '\0');
  in.clear();
  in.seekg(static_cast<std::streamoff>(offset));
  if (!in.read(bytes.data(), static_cast<std::streamsize>(length)))
    return Status::Error("io_error", "short read");
  return bytes;
}

// Where an ELF executable's own image ends: its section header table, which GNU ld writes
// last. 0 when the bytes are not a 64-bit little-endian ELF file.
uint64_t ElfEnd(std::ifstream& in) {
  char h[64];
  in.clear();
  in.seekg(0);
  if (!in.read(h, sizeof h) ||
      std::memcmp(h,
                  "\x7f"
                  "ELF",
                  4) != 0 ||
      h[4] != 2 || h[5] != 1)
    return 0;
  const uint64_t shoff = GetLe(h + 0x28, 8);
  const uint64_t shentsize = GetLe(h + 0x3a, 2), shnum = GetLe(h + 0x3c, 2);
  return shoff + shentsize * shnum;
}

// runtime | u32 header length | header | files | trailer (see bundle.h).
std::string Assemble(std::string_view runtime, const std::string& head, std::string_view files) {
  std::string payload;
  payload.reserve(4 + head.size() + files.size());
  PutLe(&payload, head.size(), 4);
  payload += head;
  payload += files;
  std::string out;
  out.reserve(runtime.size() + payload.size() + kTrailerSize);
  out += runtime;
  out += payload;
  out.append(kMagic, 8);
  PutLe(&out, kFormat, 4);
  PutLe(&out, 0, 4);
  PutLe(&out, runtime.size(), 8);
  PutLe(&out, payload.size(), 8);
  const crypto::Digest d = crypto::Sha256(payload);
  out.append(reinterpret_cast<const char*>(d.data()), d.size());
  return out;
}

}  // namespace

std::string Fingerprint(const std::string& network_id) {
  std::string f;
  for (size_t i = 0; i < 16 && i < network_id.size(); ++i) {
    if (i && i % 4 == 0) f += '-';
    f += network_id[i];
  }
  return f;
}

bool HasPayload(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return false;
  const auto size = static_cast<uint64_t>(in.tellg());
  const uint64_t end = ElfEnd(in);
  return end > 0 && size > end;
}

Result<std::string> RuntimeOf(const std::string& exe_path) {
  std::ifstream in(exe_path, std::ios::binary | std::ios::ate);
  if (!in) return Status::Error("io_error", "cannot read " + exe_path);
  const auto size = static_cast<uint64_t>(in.tellg());
  if (size > static_cast<uint64_t>(kMaxBundleBytes))
    return Status::Error("too_large", exe_path + " is too large");
  const uint64_t end = ElfEnd(in);
  return ReadRange(in, 0, end > 0 && end < size ? end : size);
}

std::string Build(const std::string& runtime, const Contents& c) {
  json::Array files;
  std::string blob_bytes;
  for (const auto& [entry, bytes] : c.files) {
    files.push_back(json::Object{{"offset", static_cast<int64_t>(blob_bytes.size())},
                                 {"path", entry.path},
                                 {"role", entry.role},
                                 {"sha256", entry.sha256},
                                 {"size", static_cast<int64_t>(bytes.size())}});
    blob_bytes += bytes;
  }
  json::Value release = nullptr;
  if (c.manifest) {
    release = json::Object{{"manifest", c.manifest->ToJson()},
                           {"signatures", protocol::ToJson(c.signatures)}};
  }
  const json::Value header = json::Object{
      {"card", CardJson(c.card)},
      {"files", std::move(files)},
      {"release", std::move(release)},
      {"runtime", json::Object{{"sha256", crypto::Sha256Hex(runtime)},
                               {"size", static_cast<int64_t>(runtime.size())}}},
  };
  return Assemble(runtime, json::Serialize(header), blob_bytes);
}

Result<std::string> WithInvitation(std::string_view bundle, const std::string& token) {
  if (bundle.size() < kTrailerSize ||
      std::memcmp(bundle.data() + bundle.size() - kTrailerSize, kMagic, 8) != 0) {
    return Damaged("no payload trailer at its end");
  }
  const char* t = bundle.data() + bundle.size() - kTrailerSize;
  const uint64_t offset = GetLe(t + 16, 8), length = GetLe(t + 24, 8);
  if (offset > bundle.size() || length > bundle.size() - offset || length < 4)
    return Damaged("the trailer's offsets do not fit");
  const std::string_view payload = bundle.substr(offset, length);
  const uint64_t head_len = GetLe(payload.data(), 4);
  if (head_len > payload.size() - 4) return Damaged("header length out of range");
  auto header = json::Parse(payload.substr(4, head_len), {8u << 20, 16});
  json::Value* card =
      header && header->is_object()
          ? header->as_object().count("card") ? &header->as_object().at("card") : nullptr
          : nullptr;
  if (!card || !card->is_object()) return Damaged("the header has no card");
  card->as_object().erase("invitation");
  card->as_object().emplace("invitation", token);
  return Assemble(bundle.substr(0, offset), json::Serialize(*header), payload.substr(4 + head_len));
}

Result<Contents> Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return Status::Error("io_error", "cannot read " + path);
  const auto size = static_cast<uint64_t>(in.tellg());
  if (size > static_cast<uint64_t>(kMaxBundleBytes)) return Damaged("larger than 1 GiB");
  auto t = ReadTrailer(in, size);
  if (!t) return Damaged("no payload trailer at its end (cut short?)");
  if (t->offset != ElfEnd(in) || t->offset + t->length + kTrailerSize != size || t->length < 4) {
    return Damaged("the trailer's offsets do not fit the file");
  }
  auto payload = ReadRange(in, t->offset, t->length);
  if (!payload) return payload.status();
  const crypto::Digest d = crypto::Sha256(*payload);
  if (std::string(reinterpret_cast<const char*>(d.data()), d.size()) != t->sha) {
    return Damaged("the payload does not match its hash");
  }
  const uint64_t head_len = GetLe(payload->data(), 4);
  if (head_len > payload->size() - 4) return Damaged("header length out of range");
  auto header = json::Parse(std::string_view(*payload).substr(4, head_len), {8u << 20, 16});
  if (!header || !header->is_object()) return Damaged("the header is not JSON");
  const std::string_view blobs = std::string_view(*payload).substr(4 + head_len);
  // The runtime in front of the payload.
  const json::Value* rt = header->find("runtime");
  const std::string* rt_sha = rt ? rt->find_string("sha256") : nullptr;
  const int64_t* rt_size = rt ? rt->find_int("size") : nullptr;
  if (!rt_sha || !rt_size || static_cast<uint64_t>(*rt_size) != t->offset)
    return Damaged("runtime description missing");
  auto runtime = ReadRange(in, 0, t->offset);
  if (!runtime) return runtime.status();
  if (crypto::Sha256Hex(*runtime) != *rt_sha)
    return Damaged("the program part does not match its hash");
  // The card, and its genesis.
  Contents c;
  const json::Value* card = header->find("card");
  const std::string* network = card ? card->find_string("network") : nullptr;
  const std::string* genesis = card ? card->find_string("genesis") : nullptr;
  const json::Value* pubs = card ? card->find("publishers") : nullptr;
  const int64_t* threshold = card ? card->find_int("threshold") : nullptr;
  const json::Value* boot = card ? card->find("bootstrap") : nullptr;
  if (!network || !genesis || !pubs || !pubs->is_array() || !threshold || !boot ||
      !boot->is_array()) {
    return Damaged("the network card is incomplete");
  }
  c.card.network = *network;
  c.card.genesis = *genesis;
  c.card.threshold = *threshold;
  for (const auto& p : pubs->as_array())
    c.card.publishers.push_back(p.is_string() ? p.as_string() : "");
  for (const auto& b : boot->as_array()) {
    if (b.is_string()) c.card.bootstrap.push_back(b.as_string());
  }
  auto state = protocol::StateFromGenesis(*genesis);
  if (!state) return Untrusted("its genesis event is invalid: " + state.status().message());
  if (state->network_id != *network)
    return Untrusted("the card's network id is not its genesis event's");
  if (const json::Value* inv = card->find("invitation")) {
    if (!inv->is_string()) return Damaged("the card's invitation is not a token");
    auto parsed = protocol::ParseInvitationToken(inv->as_string());
    if (!parsed) return Untrusted("the card's invitation: " + parsed.status().message());
    if (parsed->network != *network)
      return Untrusted("the card's invitation is for another network");
    c.card.invitation = inv->as_string();
  }
  if (state->publishers != c.card.publishers ||
      state->params.publisher_threshold != c.card.threshold) {
    return Untrusted("the card's publisher keys are not the ones its genesis names");
  }
  // The release and its files.
  const json::Value* release = header->find("release");
  const json::Value* files = header->find("files");
  if (!release || !files || !files->is_array()) return Damaged("the header is incomplete");
  std::map<std::string, std::string> bytes_of;
  std::vector<std::pair<protocol::FileEntry, std::string>> listed;
  for (const auto& f : files->as_array()) {
    const std::string* role = f.find_string("role");
    const std::string* path_in = f.find_string("path");
    if (!role || !path_in || !protocol::ValidReleasePath(*role, *path_in))
      return Damaged("a file has no safe name");
    const std::string* sha = f.find_string("sha256");
    const int64_t* off = f.find_int("offset");
    const int64_t* sz = f.find_int("size");
    if (!sha || !off || !sz || *off < 0 || *sz < 0 ||
        static_cast<uint64_t>(*off) + static_cast<uint64_t>(*sz) > blobs.size()) {
      return Damaged("a file lies outside the payload");
    }
    std::string bytes(blobs.substr(static_cast<size_t>(*off), static_cast<size_t>(*sz)));
    if (crypto::Sha256Hex(bytes) != *sha) return Damaged("a file does not match its hash");
    listed.emplace_back(protocol::FileEntry{*role, *path_in, *sha, *sz}, bytes);
    bytes_of[*sha] = std::move(bytes);
  }
  if (!release->is_null()) {
    auto m = protocol::ParseManifest(release->find("manifest") ? *release->find("manifest")
                                                               : json::Value());
    if (!m) return Damaged(m.status().message());
    auto sigs = protocol::ParseSignatures(release->find("signatures") ? *release->find("signatures")
                                                                      : json::Value());
    if (!sigs) return Damaged(sigs.status().message());
    if (m->network != c.card.network) return Untrusted("the release is for another network");
    std::set<std::string> signers;
    for (const auto& s : *sigs) {
      if (std::find(c.card.publishers.begin(), c.card.publishers.end(), s.publisher) ==
          c.card.publishers.end()) {
        return Untrusted("the release is signed by a key that is not a publisher");
      }
      if (!protocol::VerifyManifestSignature(s, *m).ok())
        return Untrusted("a publisher signature does not verify");
      signers.insert(s.publisher);
    }
    if (static_cast<int64_t>(signers.size()) < c.card.threshold) {
      return Untrusted("the release has " + std::to_string(signers.size()) +
                       " publisher signatures, needs " + std::to_string(c.card.threshold));
    }
    for (const protocol::FileEntry& e : m->files) {
      auto it = bytes_of.find(e.sha256);
      if (it == bytes_of.end() || static_cast<int64_t>(it->second.size()) != e.size) {
        return Damaged(e.path + " is missing from the payload");
      }
      c.files.emplace_back(e, it->second);
    }
    c.manifest = std::move(m).value();
    c.signatures = std::move(sigs).value();
  } else {
    // Release 0: the founder's files, as genesis records their code.
    std::vector<protocol::FileEntry> entries;
    for (const auto& [e, b] : listed) entries.push_back(e);
    if (!state->params.code_hash.empty() &&
        protocol::CodeHashOf(entries) != state->params.code_hash) {
      return Untrusted("its files are not the ones the network's genesis records");
    }
    c.files = std::move(listed);
  }
  return c;
}

}  // namespace peerstack::bundle
