// Replicated application data: the collections plugins write through the host, held by every
// node, merged from signed ops (appdata/op.h) and kept in step by two message flows, sans
// sockets and threads (the node's appdata service drives it with time and a transport; the
// simulator drives the same code).
//
// Merge. An op from the network is taken only when it is for this network and a plugin
// collection this node runs, well formed, at most max_clock_ahead_ms ahead of this node's
// clock, correctly signed, within its author's rate (author_ops_per_window per window_ms, so a
// node that floods is slowed everywhere), and allowed by the collection's rule as of the op's
// time against the ledger's history (Authority): the author was a member then, and for
// kPublishers a publisher then; for kOwnKeys the key starts with the author's node id and
// "/". A taken op replaces the stored one for its key if it is newer (op.h's order); only
// the newest op per key is kept (a delete as a tombstone), so storage grows with the data,
// not with its history. Refusals change nothing and are counted by reason.
//
// Spreading. Push: a node sends its own new ops, batched (at most max_batch_bytes a message),
// to up to max_push_peers online members every Tick; pushes are not forwarded. Pull: every
// sync_interval_ms a node sends one random online member its marks (per plugin and author:
// the sequence up to which it holds every op that still matters) and gets back, per author,
// the ops above its mark (ascending, one bounded batch; "more" when cut short: the node asks
// again at once) with the responder's own mark, which the node then adopts; a responder that
// finds the asker ahead on some author asks it back. A node back after a long absence thus
// fetches only what was written since, once. Ops refused for a reason that may pass (an
// author the ledger does not know yet, a plugin or collection not run yet, a clock ahead, a
// rate) hold the mark below them, so later pulls bring them again.
//
// Tombstones are kept tombstone_ms (30 days), then dropped. A node whose last pull answer is
// older than that when it opens its data drops every op not its own and its marks, and
// fetches everything anew (a tombstone it missed may have been dropped everywhere else).
// When the Authority closes a span (a member removed, a publisher replaced), stored ops
// outside their author's spans are deleted and that plugin's marks reset, so it is pulled
// again once (the op an outlawed one had replaced comes back).
//
// Data hash: per plugin, sha256 over the live entries (collection, key, author, clock, value)
// in key order; tombstones do not count, so nodes holding the same ops have the same hash.
// Thread-safe: one mutex guards the database connection and the state.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "appdata/op.h"
#include "base/clock.h"
#include "base/result.h"
#include "crypto/ed25519.h"
#include "json/json.h"

namespace peerstack::appdata {

// Who may write to a collection (the plugin declares it; every node enforces it).
enum class Rule {
  kPublishers = 1,  // nodes whose key is a publisher key (the app's authors)
  kMembers = 2,     // any member
  kOwnKeys = 3,     // any member, keys starting with its node id and "/" only
};
const char* RuleName(Rule r);

struct CollectionSpec {
  std::string name;
  Rule rule = Rule::kPublishers;
  // Handlers of public (non-admin) routes may write to it; otherwise only private routes and
  // the plugin's init may (a public write is signed with this node's key on a visitor's
  // behalf: the plugin must opt in).
  bool public_writes = false;
};

// Membership and publisher history, from the ledger: per key, the spans of time in which it
// was a member, and a publisher.
struct Authority {
  struct Span {
    int64_t from_ms = 0;
    int64_t to_ms = INT64_MAX;  // open while it lasts
  };
  struct Who {
    std::string node_id;
    std::vector<Span> member, publisher;
  };
  std::string network_id;
  std::map<std::string, Who> keys;  // by hex key

  bool IsMember(const std::string& key, int64_t t) const;
  bool IsPublisher(const std::string& key, int64_t t) const;
  // Changes when a span closes: stored data is then judged again.
  std::string ClosedSpans() const;
};

struct Peer {
  std::string key;  // hex
  std::string url;
  bool online = false;
};

// A message to send: type "appdata" (a push), "appsync" (marks), "appops" (ops answering
// marks), to a member's URL.
struct Outgoing {
  std::string to;
  std::string type;
  std::string body;  // canonical JSON text (ops are passed on as the bytes they were stored as)
};

struct ReplicaOptions {
  std::string db_path;                      // SQLite file (the node's database file) or ":memory:"
  const Clock* clock = nullptr;             // required; not owned
  std::unique_ptr<crypto::SigningKey> key;  // this node's key: signs its ops
  std::function<uint64_t()> random;         // peer choice; required
  crypto::VerifyCache* verify_cache = nullptr;  // may be null; not owned
  int64_t sync_interval_ms = 1000;
  int64_t tombstone_ms = 30LL * 24 * 3600 * 1000;
  int64_t max_clock_ahead_ms = 60 * 1000;
  size_t max_batch_bytes = 512 * 1024;  // ops per message, in bytes of their wire form
  size_t max_push_peers = 32;
  size_t max_pending_push_bytes = 8u << 20;  // beyond, pushes are dropped (pulls repair)
  int author_ops_per_window = 20000;
  int64_t window_ms = 10000;
  // Writes are committed to the write-ahead log when Put returns (they survive the process
  // being killed at any moment) and synced to disk before any op leaves the node: the next
  // push or pull answer first makes every earlier write durable (one fsync for all the writes
  // of a tick, instead of one per write). So a power loss can lose only writes no other node
  // has seen, and a sequence number that reached another node is never reused. false: no
  // syncing at all (the simulator, whose crashes are process deaths, not power cuts).
  bool durable = true;
};

struct ReplicaCounters {
  uint64_t ops_written = 0;                 // by this node
  uint64_t ops_merged = 0;                  // from others, that changed a key
  uint64_t ops_stale = 0;                   // from others, older than what was held (or the same)
  std::map<std::string, uint64_t> refused;  // by reason
  uint64_t purged = 0;
  uint64_t tombstones_dropped = 0;
};

class Replica {
 public:
  static Result<std::unique_ptr<Replica>> Open(ReplicaOptions options);
  ~Replica();
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // ---- A plugin's side (the host's callbacks). Errors: "unknown_collection",
  // "invalid" (a bad name or key), "too_large", "forbidden" (the rule does not let this node
  // write, or a public route writes to a collection not open to them), "not_member" (this
  // node is not, or not yet, a member), "busy" (over the rate), "cannot_store".
  // The plugin's collections, from its descriptor: "invalid" (a bad or repeated name, a bad
  // rule, more than kMaxCollections). Replaces what the plugin declared before.
  Status Declare(const std::string& plugin, const std::vector<CollectionSpec>& collections);
  Status Put(const std::string& plugin, const std::string& collection, const std::string& key,
             const std::string& value, bool public_request = false);
  // "not_found" when the key holds nothing.
  Status Delete(const std::string& plugin, const std::string& collection, const std::string& key,
                bool public_request = false);
  Result<std::optional<std::string>> Get(const std::string& plugin, const std::string& collection,
                                         const std::string& key);
  // Live keys starting with prefix, in byte order, at most limit.
  Result<std::vector<std::pair<std::string, std::string>>> List(const std::string& plugin,
                                                                const std::string& collection,
                                                                const std::string& prefix,
                                                                size_t limit);
  // Grows whenever the collection changes (a local write or a merged op): poll it.
  uint64_t Changes(const std::string& plugin, const std::string& collection);

  // ---- The network's side.
  // The ledger's history and the members to talk to (on every ledger change).
  void SetAuthority(Authority authority, std::vector<Peer> peers);
  // Only the members to talk to changed (liveness).
  void SetPeers(std::vector<Peer> peers);
  // Pushes, the periodic pull, tombstone expiry.
  void Tick(std::vector<Outgoing>* out);
  // A message from the member with key from_key at from_url: "bad_message" when it is not
  // one of the three types' shape (nothing is changed by a malformed message).
  Status Receive(const std::string& from_key, const std::string& from_url, const std::string& type,
                 const json::Value& body, std::vector<Outgoing>* out);

  // ---- What it holds.
  std::string DataHash(const std::string& plugin);
  // {"plugins": {name: {"hash", "entries", "tombstones", "authors", "collections": {name:
  //  rule}}}, "ops_written", "ops_merged", "ops_stale", "refused": {reason: n}, "purged"}
  json::Value StatusJson();
  ReplicaCounters Counters();

 private:
  struct Impl;
  explicit Replica(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace peerstack::appdata
