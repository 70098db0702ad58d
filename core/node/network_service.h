// The network, inside the node: drives the sans-I/O protocol engine (core/protocol) with real
// time, real HTTP and the store.
//
//   - State: on start, the ledger is rebuilt from the stored events; with none stored, the
//     node creates the network (seed case 1) unless a join URL is set (case 2: it joins).
//   - Incoming: POST /p2p/<type> on the public listener. The body is signed by the sender's
//     node key (headers X-Peerstack-Key, X-Peerstack-Signature) with the domain "p2p/<type>";
//     the signature is checked over the raw bytes first, then the body is parsed strictly
//     (no duplicate keys, no trailing data, 1 MiB at most), then the engine decides.
//   - Outgoing: the engine's messages are signed and handed to the transport
//     (transport/transport.h): a bounded queue per peer on an event loop, so a silent peer
//     delays only its own messages. Probes and syncs may be dropped; the rest must arrive.
//   - Events the engine accepts are written to the store before any message that depends on
//     them is sent, so a node killed at any point restarts consistent.
//   - Liveness (for /nodes) is the engine's: SWIM-style probes with indirect checks; a
//     member's messages count for it only when signed by its key (its URL is taken from the
//     ledger, not from the message).
// Thread-safe: one mutex guards the engine.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "appdata/replica.h"
#include "base/clock.h"
#include "base/result.h"
#include "crypto/ed25519.h"
#include "http/message.h"
#include "json/json.h"
#include "plugins/plugin_host.h"
#include "protocol/invitation.h"
#include "protocol/release.h"
#include "release/manager.h"
#include "store/store.h"
#include "transport/transport.h"

namespace peerstack::metrics {
class Writer;
}

namespace peerstack::node {

struct NetworkOptions {
  std::unique_ptr<crypto::SigningKey> key;
  std::shared_ptr<store::Store> store;
  std::string code_hash;  // of this node's files (what it presents when joining)
  bool any_code = false;  // a network created now accepts any code (--dev: a development network)
  std::string join_url;   // empty: create (or keep) our own network
  std::string version;
  int64_t sync_interval_ms = 1000;
  size_t checkpoint_every = 0;      // protocol::EngineConfig::checkpoint_every
  int64_t checkpoint_quiet_ms = 0;  // protocol::EngineConfig::checkpoint_quiet_ms
  // Genesis (a new network): the publisher keys (hex) and how many must sign a release;
  // empty: this node's key alone.
  std::vector<std::string> publishers;
  int64_t publisher_threshold = 1;
  std::string admission = "open";  // a new network's rule: "open" or "invite"
  json::Value invitation;          // what this node presents when it joins (null: none)
  // Called (under the network's lock: it must only note it) when the ledger gained events,
  // or a joiner's ledger arrived.
  std::function<void()> on_change;
  // App data messages (/p2p/appdata, appsync, appops) from members, once their signature and
  // envelope are checked: handled outside the network's lock, never by the engine, so app
  // traffic does not slow joins. The sender's key and URL (the ledger's), type, body.
  std::function<Status(const std::string& key, const std::string& url, const std::string& type,
                       const json::Value& body)>
      app_message;
  const Clock* clock = nullptr;               // required; not owned
  transport::Transport* transport = nullptr;  // required; not owned, outlives Stop()
};

class NetworkService {
 public:
  explicit NetworkService(NetworkOptions options);
  ~NetworkService();
  NetworkService(const NetworkService&) = delete;
  NetworkService& operator=(const NetworkService&) = delete;

  // Loads or creates the ledger, then starts the timer. self_url is where this
  // node's public listener answers (known once it is bound).
  Status Start(const std::string& self_url, const std::string& via = "");
  void Stop();

  // POST /p2p/<type> (public listener).
  http::Response HandleMessage(const http::Request& request);
  // This node is now reachable at url: an address event if the ledger has another one.
  void AnnounceUrl(const std::string& url, const std::string& via);
  // The join node's URL, then up to `most` other members' URLs in random order; each kept
  // only if keep(url, via) (the join node's via reads ""). For reachability checks.
  std::vector<std::string> Peers(
      size_t most,
      const std::function<bool(const std::string& url, const std::string& via)>& keep) const;
  // Where this node answers now (its public URL, as announced).
  std::string self_url() const;
  // ---- What an operator does (admin; node/admin_routes.h puts HTTP on these). Errors:
  // "cannot_store" when the store refuses the event (a full disk), the protocol's own
  // ("not_member", "last_member", ...) and those named below.
  // Ask the network at url (empty: the configured join URL) to admit this node: "no_url",
  // "bad_url", "already_member". The URL asked.
  Result<std::string> Join(const std::string& url);
  struct SyncReport {
    int64_t added = 0;  // events
    size_t events = 0;
    std::string state_hash_before, state_hash;
  };
  // One anti-entropy round with every member now, and what it changed (waits for the
  // answers: until quiet for 300 ms, 3 s at most).
  Result<SyncReport> Sync();
  // This node leaves the network.
  Status Leave();
  // Asks the members to evict the member with this id: "not_found".
  Status Evict(const std::string& node_id);
  // Puts a signed release in the ledger (the signatures were made offline, by at least the
  // publisher threshold): "not_member", "bad_event" (rollback, signatures, another network).
  Status PublishRelease(const protocol::Manifest& manifest,
                        const std::vector<protocol::PublisherSignature>& sigs);
  // Changes the publisher set: the signatures are over
  // protocol::PublisherSetPayload(network, keys, threshold, next_publishers_seq()).
  Status ChangePublishers(const std::vector<std::string>& keys, int64_t threshold,
                          const std::vector<protocol::PublisherSignature>& sigs);
  int64_t next_publishers_seq() const;
  // A release-report event from this member.
  Status ReportRelease(const std::string& release_event, const std::string& status,
                       const std::string& reason);
  // This node now runs code with this hash (what it presents when joining).
  void SetCodeHash(const std::string& code);
  // The ledger's releases, members and reports, for the release manager.
  release::NetworkView ReleaseView() const;
  // For /download: the genesis event's wire bytes, the publisher set in force, and this
  // node's URL then up to `most` other members' URLs (bootstrap hints): "no_network".
  struct CardParts {
    std::string network, genesis;
    std::vector<std::string> publishers;
    int64_t threshold = 1;
    std::vector<std::string> bootstrap;
  };
  Result<CardParts> Card(size_t most) const;
  // A release event's manifest and signatures: "not_found".
  Result<std::pair<protocol::Manifest, std::vector<protocol::PublisherSignature>>> SignedRelease(
      const std::string& event) const;
  // An invitation to this network, signed by this member, valid for ttl_ms: "not_member",
  // "open_network", "bad_request" (a note over 200 bytes).
  Result<protocol::Invitation> Invite(int64_t ttl_ms, const std::string& note);
  // Whether an invitation (a token) would admit a node now, as members judge it; the
  // invitation when it would. Errors: "bad_invitation", "invitation_refused".
  Result<protocol::Invitation> CheckInvitation(const std::string& token) const;
  // Re-forms the network around the members with these ids (default: this node and the
  // members it sees online), signed as its publisher: "no_network", "nobody_kept". The
  // number of members kept.
  Result<size_t> Recover(const std::optional<std::vector<std::string>>& keep_ids);

  // What app data needs of the ledger: the members with their URLs and liveness as this
  // node sees them, the ledger's size (the authority changes only when it does) and, with
  // authority, who was a member or publisher when (protocol/app_authority.h).
  struct AppView {
    size_t events = 0;
    std::vector<appdata::Peer> members;
    std::optional<appdata::Authority> authority;
  };
  AppView View(bool with_authority) const;

  json::Value NodesJson() const;   // the /nodes contract
  json::Value StatusJson() const;  // for /status: network id, state hash, members, joins
  // Members by liveness, events stored, release version, joins (docs/operations.md, Metrics).
  void WriteMetrics(metrics::Writer& w) const;
  std::string network_id() const;
  bool is_member() const;
  // Is this public key (hex) a member of the network? (For the relay's reservations.)
  bool IsMemberKey(const std::string& key_hex) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace peerstack::node
