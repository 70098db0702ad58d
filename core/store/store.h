// The node's durable state: an append-only event log and a small key/value table of node
// metadata, behind an interface so another database can replace SQLite.
//
// Writes are atomic per WriteBatch and durable when Write() returns (SQLite WAL with
// synchronous=FULL): a node killed at any instant restarts with every acknowledged batch and
// none of a partial one. A Store is safe to use from several threads (calls are serialised).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"

namespace peerstack::store {

struct EventRecord {
  std::string hash;  // hex sha256 of body: the event's identity
  std::string kind;  // "genesis", "member-added", ...
  std::string body;  // canonical JSON of the signed event
  bool operator==(const EventRecord&) const = default;
};

struct WriteBatch {
  std::vector<EventRecord> events;                        // inserted if not yet present
  std::vector<std::pair<std::string, std::string>> meta;  // upserted
  // Every stored event is deleted first, in the same transaction: a checkpoint's pruning
  // (the batch then holds the genesis and the events kept).
  bool replace_events = false;
};

class Store {
 public:
  virtual ~Store() = default;
  virtual Status Write(const WriteBatch& batch) = 0;
  virtual Result<std::optional<EventRecord>> GetEvent(const std::string& hash) = 0;
  // All events in the order they were first stored.
  virtual Result<std::vector<EventRecord>> Events() = 0;
  virtual Result<std::optional<std::string>> GetMeta(const std::string& key) = 0;

  // A key/value space per namespace (a plugin's name). Each call is atomic and durable.
  virtual Result<std::optional<std::string>> KvGet(const std::string& ns,
                                                   const std::string& key) = 0;
  virtual Status KvPut(const std::string& ns, const std::string& key, const std::string& value) = 0;
  // "not_found" when the key is absent.
  virtual Status KvDelete(const std::string& ns, const std::string& key) = 0;
  // Keys starting with prefix, in byte order, at most limit pairs.
  virtual Result<std::vector<std::pair<std::string, std::string>>> KvList(const std::string& ns,
                                                                          const std::string& prefix,
                                                                          size_t limit) = 0;
  // Flushes and closes; later calls fail with "closed". Also done by the destructor.
  virtual Status Close() = 0;
};
using StorePtr = std::unique_ptr<Store>;

// Opens (creating if needed) the SQLite database at path, in WAL mode.
Result<StorePtr> OpenSqliteStore(const std::string& path);

}  // namespace peerstack::store
