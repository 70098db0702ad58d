#include "node/reachability.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <condition_variable>
#include <memory>

#include "base/log.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "http/client.h"
#include "http/url.h"
#include "json/json.h"
#include "protocol/join.h"

namespace peerstack::node {
namespace {

// What a node answers at <url>/p2p/identity?nonce=N: its key, the nonce signed (checked by
// the caller, who knows which key it expects), and its relay port if it runs one.
struct Identity {
  std::string key, sig;
  int relay = 0;
};

http::ClientRequest IdentityRequest(const std::string& url, const std::string& nonce,
                                    const std::string& host_header,
                                    std::chrono::milliseconds timeout) {
  http::ClientRequest req;
  req.url = url + "/p2p/identity?nonce=" + nonce;
  if (!host_header.empty()) req.headers.push_back({"host", host_header});
  req.timeout = timeout;
  req.max_response_bytes = 4096;
  return req;
}

Result<Identity> ParseIdentity(const http::ClientResponse& r) {
  if (r.status != 200) return Status::Error("unreachable", "answered " + std::to_string(r.status));
  auto body = json::Parse(r.body, {4096, 4});
  if (!body) return Status::Error("not_a_node", "no identity at this URL");
  const std::string* key = body->find_string("key");
  const std::string* sig = body->find_string("sig");
  if (!key || !sig || key->size() != 64 || sig->size() != 128 || !crypto::HexDecode(*key) ||
      !crypto::HexDecode(*sig)) {
    return Status::Error("not_a_node", "no identity at this URL");
  }
  Identity id{*key, *sig};
  if (const int64_t* relay = body->find_int("relay"); relay && *relay > 0 && *relay < 65536) {
    id.relay = static_cast<int>(*relay);
  }
  return id;
}

// Blocking, for the tunnel manager's thread (its own checks): the same request and parse.
Result<Identity> FetchIdentity(
    const std::string& url, const std::string& nonce, const std::string& ca_file,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
  http::ClientRequest req = IdentityRequest(url, nonce, "", timeout);
  req.ca_file = ca_file;
  auto r = http::Fetch(req);
  if (!r) return Status::Error("unreachable", r.status().message());
  return ParseIdentity(*r);
}

// The nonce of /p2p/identity and /p2p/reach: hex, 1-64 characters.
bool ValidNonce(const std::string& nonce) {
  return !nonce.empty() && nonce.size() <= 64 && crypto::HexDecode(nonce).has_value();
}

}  // namespace

Reachability::Reachability(ReachabilityOptions options) : o_(std::move(options)) {
  const auto& pub = o_.key->public_key();
  key_hex_ = crypto::HexEncode(pub.data(), pub.size());
}

http::Response Reachability::HandleIdentity(const http::Request& request) const {
  std::string nonce;
  if (!http::QueryParam(request.query, "nonce", &nonce) || !ValidNonce(nonce)) {
    return http::JsonError(400, "bad_nonce", "send ?nonce=<hex, at most 64 characters>");
  }
  const crypto::Signature sig = o_.key->SignWithDomain("identity", nonce);
  json::Object answer{{"key", key_hex_}, {"sig", crypto::HexEncode(sig.data(), sig.size())}};
  if (const uint16_t relay = relay_port_.load(); relay != 0) answer.emplace("relay", relay);
  return http::JsonResponse(200, json::Serialize(std::move(answer)));
}

void Reachability::set_relay_port(uint16_t port) { relay_port_ = port; }

std::vector<std::string> Reachability::FindRelays() const {
  // A relayed member cannot relay for others.
  const auto urls = o_.peers(
      4, [](const std::string&, const std::string& via) { return via.empty() || via == "upnp"; });
  std::vector<std::string> relays;
  for (const std::string& url : urls) {
    auto parsed = http::ParseUrl(url);
    auto id = parsed ? FetchIdentity(url, "00", o_.ca_file, std::chrono::milliseconds(1500))
                     : Status::Error("bad_url", "");
    if (id && id->relay != 0) relays.push_back(parsed->host + ":" + std::to_string(id->relay));
  }
  return relays;
}

namespace {

// May /p2p/reach fetch from a host with these (numeric) addresses? Every one must be allowed;
// the one to connect to (so that a second lookup cannot lead elsewhere), or "".
std::string CheckedAddress(const std::vector<std::string>& addresses, bool loopback_ok) {
  std::string chosen;
  for (const std::string& text : addresses) {
    in_addr v4{};
    in6_addr v6{};
    bool ok = false;
    if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
      const uint32_t a = ntohl(v4.s_addr);
      const bool loopback = (a >> 24) == 127;
      const bool link_local = (a >> 16) == 0xA9FE;  // 169.254/16
      const bool bad = a == 0 || (a >> 28) == 0xE || a == 0xFFFFFFFF || link_local;
      ok = !bad && (loopback_ok || !loopback);
      if (ok && chosen.empty()) chosen = text;
    } else if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
      const bool bad = IN6_IS_ADDR_UNSPECIFIED(&v6) || IN6_IS_ADDR_LINKLOCAL(&v6) ||
                       IN6_IS_ADDR_MULTICAST(&v6) || IN6_IS_ADDR_V4MAPPED(&v6);
      ok = !bad && (loopback_ok || !IN6_IS_ADDR_LOOPBACK(&v6));
      if (ok && chosen.empty()) chosen = "[" + text + "]";
    }
    if (!ok) return "";
  }
  return chosen;
}

}  // namespace

http::Response Reachability::HandleReach(const http::Request& request) {
  std::string url, nonce;
  if (!http::QueryParam(request.query, "url", &url) ||
      !http::QueryParam(request.query, "nonce", &nonce) || !ValidNonce(nonce) || url.size() > 512) {
    return http::JsonError(400, "bad_request",
                           "send ?url=<the node's URL>&nonce=<hex, at most 64 characters>");
  }
  auto parsed = http::ParseUrl(url);
  if (!parsed || url.find_first_of("?#") != std::string::npos) {
    return http::JsonError(400, "bad_url", "url must be http[s]://host[:port][/base path]");
  }
  // Not a reflector: one check per URL per second, five per second per source, fifty in all
  // (the answer carries only a key and a signature, never what the URL returned).
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t now = o_.clock->SteadyMs();
    if (!by_source_.Admit(request.remote_address, now) || !by_url_.Admit(url, now)) {
      return http::TooMany("too many reachability checks; try again in a second");
    }
  }
  // Loopback targets only for a node that is itself on loopback (one machine, tests); never
  // link-local (cloud metadata), unspecified or multicast addresses. Errors say no more than
  // "cannot reach": no port or path scanning through us.
  const bool self_on_loopback = [&] {
    auto self = http::ParseUrl(o_.self_url());
    return self && http::IsLoopbackHost(self->host);
  }();
  // Resolve once (on the transport's loop), check every address, fetch from the checked one;
  // nothing here blocks the server's thread or holds one of its own.
  auto responder = request.Defer();
  if (!responder) return http::JsonError(500, "internal", "reachability checks need a server");
  auto unreachable = [url] { return http::JsonError(502, "unreachable", "cannot reach " + url); };
  // Too many checks in flight is no verdict on the URL: 429, as for the rate limits.
  auto busy = [] { return http::TooMany("too many reachability checks; try again in a second"); };
  std::string name = parsed->host;
  if (name.size() > 2 && name.front() == '[' && name.back() == ']')
    name = name.substr(1, name.size() - 2);
  transport::Transport* transport = o_.transport;
  transport->Resolve(name, [=](Result<std::vector<std::string>> addresses) {
    if (!addresses && addresses.status().code() == "busy") return responder->Send(busy());
    const std::string address = addresses ? CheckedAddress(*addresses, self_on_loopback) : "";
    if (address.empty()) return responder->Send(unreachable());
    const size_t path_at = url.find('/', url.find("//") + 2);
    const std::string port = ":" + std::to_string(parsed->port);
    const std::string host =
        parsed->host.find(':') != std::string::npos ? "[" + parsed->host + "]" : parsed->host;
    // https: connect to the checked address, verify the certificate for the URL's name.
    http::ClientRequest req =
        IdentityRequest(std::string(parsed->tls ? "https://" : "http://") + address + port +
                            (path_at == std::string::npos ? "" : url.substr(path_at)),
                        nonce, host + port, std::chrono::milliseconds(3000));
    if (parsed->tls) req.server_name = name;
    transport->Fetch(std::move(req),
                     [responder, unreachable, busy](Result<http::ClientResponse> r) {
                       if (!r && r.status().code() == "busy") return responder->Send(busy());
                       auto id = r ? ParseIdentity(*r) : Result<Identity>(r.status());
                       if (!id) return responder->Send(unreachable());
                       responder->Send(http::JsonResponse(
                           200, json::Serialize(json::Object{{"key", id->key}, {"sig", id->sig}})));
                     });
  });
  return http::Response::Deferred();
}

tunnel::Reach Reachability::VerifyIdentity(const std::string& url) const {
  // By value: witnesses may answer after the verdict is in and this call has returned.
  auto ours = [self = key_hex_](const std::string& key, const std::string& nonce,
                                const std::string& sig) {
    return key == self && protocol::VerifyHexSignature(key, "identity", nonce, sig).ok();
  };
  // Asked of peers: a node cannot tell from inside whether others reach it (a router without
  // hairpin NAT fails the self-check of a working mapping; a loopback URL passes it).
  auto self_check = [&] {
    const std::string nonce = crypto::RandomHex(16);
    auto id = FetchIdentity(url, nonce, o_.ca_file);
    return id && ours(id->key, nonce, id->sig) ? tunnel::Reach::kConfirmed
                                               : tunnel::Reach::kRefuted;
  };
  // Three members at most, not always the same ones, and the join node.
  const std::vector<std::string> witnesses =
      o_.peers(3, [&url](const std::string& peer, const std::string&) { return peer != url; });
  if (witnesses.empty()) return self_check();  // alone: the first node of a network
  // All witnesses at once (a silent one costs nothing but its own answer); the first
  // confirmation decides, otherwise every answer is waited for, 5 s at most.
  struct Verdicts {
    std::mutex mu;
    std::condition_variable cv;
    size_t pending = 0;
    bool confirmed = false, refuted = false, busy = false;
  };
  auto v = std::make_shared<Verdicts>();
  v->pending = witnesses.size();
  for (const std::string& witness : witnesses) {
    const std::string nonce = crypto::RandomHex(16);
    http::ClientRequest req;
    req.url = witness + "/p2p/reach?url=" + http::PercentEncode(url) + "&nonce=" + nonce;
    req.timeout = std::chrono::milliseconds(5000);
    req.max_response_bytes = 4096;
    o_.transport->Fetch(
        std::move(req), [v, witness, url, nonce, ours](Result<http::ClientResponse> r) {
          bool confirmed = false, refuted = false, busy = false;
          if (!r) {
            busy = r.status().code() == "busy";  // ours: too many fetches; down: no verdict
          } else if (r->status == 429) {
            busy = true;
          } else if (r->status == 502) {
            PS_LOG(kInfo, "tunnel") << witness << " cannot reach " << url;
            refuted = true;
          } else if (r->status == 200) {
            auto body = json::Parse(r->body, {4096, 4});
            const std::string* key = body ? body->find_string("key") : nullptr;
            const std::string* sig = body ? body->find_string("sig") : nullptr;
            confirmed = key && sig && ours(*key, nonce, *sig);
            refuted = !confirmed;  // another node answers there
          }                        // any other status: an older node, no verdict
          std::lock_guard<std::mutex> lock(v->mu);
          v->confirmed |= confirmed;
          v->refuted |= refuted;
          v->busy |= busy;
          --v->pending;
          v->cv.notify_all();
        });
  }
  {
    std::unique_lock<std::mutex> lock(v->mu);
    v->cv.wait_for(lock, std::chrono::milliseconds(5500),
                   [&] { return v->confirmed || v->pending == 0; });
    if (v->confirmed) return tunnel::Reach::kConfirmed;
    if (v->refuted) return tunnel::Reach::kRefuted;
    if (v->busy || v->pending > 0) return tunnel::Reach::kUnknown;
  }
  // No peer answered at all (they all restart, say, behind paths of their own): the node's
  // own check lets it start; the periodic checks correct it once a peer is back.
  return self_check();
}

}  // namespace peerstack::node
