#include "appdata/replica.h"

#include <sqlite3.h>

#include <algorithm>
#include <mutex>
#include <set>

#include "base/log.h"
#include "base/rate_limit.h"
#include "crypto/encoding.h"
#include "crypto/sha256.h"

namespace peerstack::appdata {

const char* RuleName(Rule r) {
  switch (r) {
    case Rule::kPublishers:
      return "publishers";
    case Rule::kMembers:
      return "members";
    case Rule::kOwnKeys:
      return "own-keys";
  }
  return "unknown";
}

namespace {

bool InSpans(const std::vector<Authority::Span>& spans, int64_t t) {
  return std::any_of(spans.begin(), spans.end(),
                     [t](const Authority::Span& s) { return t >= s.from_ms && t < s.to_ms; });
}

// A prepared statement, reset after each use.
class Stmt {
 public:
  Stmt() = default;
  Stmt(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK) s_ = nullptr;
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt(Stmt&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  Stmt& operator=(Stmt&& o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  bool ok() const { return s_ != nullptr; }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  // SQLITE_ROW or SQLITE_DONE (or an error).
  int Step() { return sqlite3_step(s_); }
  void Reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  std::string Text(int col) const {
    const void* p = sqlite3_column_blob(s_, col);
    const int n = sqlite3_column_bytes(s_, col);
    return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
  }
  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  sqlite3_stmt* raw() const { return s_; }

 private:
  sqlite3_stmt* s_ = nullptr;
};

// What a stored row tells about the op it holds (enough to order it against another).
struct Held {
  std::string author;
  int64_t seq = 0, t = 0, l = 0;
  std::string sig;
};

enum class Outcome { kMerged, kStale, kRefused };

}  // namespace

bool Authority::IsMember(const std::string& key, int64_t t) const {
  auto it = keys.find(key);
  return it != keys.end() && InSpans(it->second.member, t);
}

bool Authority::IsPublisher(const std::string& key, int64_t t) const {
  auto it = keys.find(key);
  return it != keys.end() && InSpans(it->second.publisher, t);
}

std::string Authority::ClosedSpans() const {
  std::string out = network_id;
  for (const auto& [key, who] : keys) {
    for (const Span& s : who.member) {
      if (s.to_ms != INT64_MAX)
        out += "|m" + key + ":" + std::to_string(s.from_ms) + "-" + std::to_string(s.to_ms);
    }
    for (const Span& s : who.publisher) {
      if (s.to_ms != INT64_MAX)
        out += "|p" + key + ":" + std::to_string(s.from_ms) + "-" + std::to_string(s.to_ms);
    }
  }
  return out;
}

struct Replica::Impl {
  ReplicaOptions o;
  std::string self;  // hex key
  std::mutex mu;
  sqlite3* db = nullptr;
  Stmt get_row, put_row, del_row, get_value, list_prefix, by_author, set_mark, set_meta, live_rows;

  std::map<std::string, std::map<std::string, CollectionSpec>> specs;  // plugin -> name -> spec
  Authority authority;
  std::string closed_spans;
  bool have_authority = false;
  std::vector<Peer> peers;
  int64_t hlc_t = 0, hlc_l = 0;
  std::map<std::string, std::map<std::string, int64_t>> marks;  // plugin -> author -> seq
  // (plugin, author) -> when a push of its own ops last moved our mark: its pushes reach us,
  // so pulls need not ask for its ops (they would come twice).
  std::map<std::pair<std::string, std::string>, int64_t> live_push;
  // (plugin, author) -> parts of its sequence held beyond a gap: from -> upto (at most 64).
  std::map<std::pair<std::string, std::string>, std::map<int64_t, int64_t>> ahead;
  struct Pending {
    int64_t prev = 0, upto = 0;
    std::vector<std::string> wires;
    size_t bytes = 0;
  };
  std::map<std::string, Pending> pending;  // own ops not pushed yet, by plugin
  std::map<std::pair<std::string, std::string>, uint64_t> changes;
  std::map<std::string, std::string> hash_cache;  // plugin -> data hash (dropped on change)
  RateLimit author_rate{20000, 10000, 1 << 30, 1 << 16};
  ReplicaCounters counters;
  int64_t next_pull_ms = 0, next_gc_ms = 0, last_sync_saved_ms = 0;
  bool unsynced = false;  // own writes committed but not yet fsynced
  // Plugins whose data is pulled again from nothing (after a purge, or a long absence): their
  // pulls send this progress instead of the marks (what those answers covered, per author),
  // until an answer that was not cut short.
  std::map<std::string, std::map<std::string, int64_t>> reask;

  // A member exchanged app data with us: remember when (once a minute on disk), for the
  // long-absence rule.
  void Heard() {
    const int64_t now = Now();
    if (now - last_sync_saved_ms < 60 * 1000) return;
    last_sync_saved_ms = now;
    SetMeta("last_sync_ms", std::to_string(now));
  }

  // Away longer than tombstones are kept (no exchange with any member for tombstone_ms): what
  // the others wrote meanwhile is pulled again from nothing, not only above our marks (they
  // may have dropped tombstones our marks count on). Nothing is deleted: this node may be the
  // only one left holding some data. A key another member deleted while we were away, over
  // tombstone_ms before we came back, can stay here (docs/protocol.md, "Tombstones").
  void ResetIfAway() {
    auto last = Meta("last_sync_ms");
    const int64_t at = last ? std::strtoll(last->c_str(), nullptr, 10) : 0;
    if (at <= 0 || Now() - at <= o.tombstone_ms) return;
    PS_LOG(kWarn, "appdata")
        << "last exchanged app data " << (Now() - at) / 86400000
        << " days ago, longer than deletions are remembered: pulling all app data again";
    for (const auto& [plugin, spec] : specs) reask[plugin];
    for (const auto& [plugin, authors] : marks) reask[plugin];
    live_push.clear();
    SetMeta("last_sync_ms", "0");
    last_sync_saved_ms = 0;
  }

  // Makes every committed write durable before an op leaves the node: one commit with
  // synchronous=FULL syncs the write-ahead log, and with it every commit before it.
  void SyncWrites() {
    if (!o.durable) unsynced = false;
    if (!unsynced) return;
    const bool ok = Exec("PRAGMA synchronous=FULL") && Exec("BEGIN IMMEDIATE") &&
                    SetMeta("synced_ms", std::to_string(Now())) && Exec("COMMIT");
    if (!ok) Exec("ROLLBACK");
    Exec("PRAGMA synchronous=NORMAL");
    if (ok) unsynced = false;
  }

  ~Impl() {
    // Statements before the connection.
    get_row = Stmt();
    put_row = Stmt();
    del_row = Stmt();
    get_value = Stmt();
    list_prefix = Stmt();
    by_author = Stmt();
    set_mark = Stmt();
    set_meta = Stmt();
    live_rows = Stmt();
    if (db) sqlite3_close(db);
  }

  int64_t Now() const { return o.clock->WallMs(); }

  bool Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      PS_LOG(kError, "appdata") << "sqlite: " << (err ? err : "error") << " in "
                                << std::string(sql).substr(0, 60);
      sqlite3_free(err);
      return false;
    }
    return true;
  }

  std::optional<std::string> Meta(const std::string& k) {
    Stmt s(db, "SELECT v FROM appdata_meta WHERE k = ?");
    s.Bind(1, k);
    if (s.Step() == SQLITE_ROW) return s.Text(0);
    return std::nullopt;
  }
  bool SetMeta(const std::string& k, const std::string& v) {
    set_meta.Bind(1, k).Bind(2, v);
    const int rc = set_meta.Step();
    set_meta.Reset();
    return rc == SQLITE_DONE;
  }
  bool SetMark(const std::string& plugin, const std::string& author, int64_t seq) {
    set_mark.Bind(1, plugin).Bind(2, author).Bind(3, seq);
    const int rc = set_mark.Step();
    set_mark.Reset();
    if (rc == SQLITE_DONE) marks[plugin][author] = seq;
    return rc == SQLITE_DONE;
  }
  int64_t Mark(const std::string& plugin, const std::string& author) const {
    auto p = marks.find(plugin);
    if (p == marks.end()) return 0;
    auto a = p->second.find(author);
    return a == p->second.end() ? 0 : a->second;
  }

  std::optional<Held> Row(const std::string& plugin, const std::string& coll,
                          const std::string& key) {
    get_row.Bind(1, plugin).Bind(2, coll).Bind(3, key);
    std::optional<Held> h;
    if (get_row.Step() == SQLITE_ROW) {
      h = Held{get_row.Text(0), get_row.Int(1), get_row.Int(2), get_row.Int(3), get_row.Text(4)};
    }
    get_row.Reset();
    return h;
  }

  // The op's fields, not its wire bytes: they are rebuilt (Wire) for pull answers, so each
  // value is stored once.
  bool Store(const Op& op) {
    put_row.Bind(1, op.plugin)
        .Bind(2, op.collection)
        .Bind(3, op.key)
        .Bind(4, op.author)
        .Bind(5, op.seq);
    put_row.Bind(6, op.t)
        .Bind(7, op.l)
        .Bind(8, static_cast<int64_t>(op.deleted ? 1 : 0))
        .Bind(9, op.value);
    put_row.Bind(10, op.sig);
    const int rc = put_row.Step();
    put_row.Reset();
    if (rc != SQLITE_DONE) return false;
    ++changes[{op.plugin, op.collection}];
    hash_cache.erase(op.plugin);
    return true;
  }

  // Why this op may not be taken as of what this node knows, or "" when it may.
  std::string Judge(const Op& op, const CollectionSpec& spec) const {
    if (!authority.IsMember(op.author, op.t)) {
      return authority.keys.count(op.author) ? "not_member_then" : "unknown_author";
    }
    switch (spec.rule) {
      case Rule::kPublishers:
        if (!authority.IsPublisher(op.author, op.t)) return "not_publisher";
        break;
      case Rule::kMembers:
        break;
      case Rule::kOwnKeys: {
        auto it = authority.keys.find(op.author);
        const std::string prefix = it->second.node_id + "/";
        if (it->second.node_id.empty() || op.key.compare(0, prefix.size(), prefix) != 0)
          return "not_own_key";
        break;
      }
    }
    return "";
  }

  void Refuse(const std::string& why) { ++counters.refused[why]; }

  // An op from the network (already parsed): checks, then merges. With mu held, inside a
  // transaction.
  Outcome Merge(const Op& op) {
    if (op.network != authority.network_id || authority.network_id.empty())
      return Refuse("other_network"), Outcome::kRefused;
    auto plugin = specs.find(op.plugin);
    if (plugin == specs.end()) return Refuse("plugin_not_run"), Outcome::kRefused;
    auto spec = plugin->second.find(op.collection);
    if (spec == plugin->second.end()) return Refuse("unknown_collection"), Outcome::kRefused;
    if (op.t > Now() + o.max_clock_ahead_ms) return Refuse("clock_ahead"), Outcome::kRefused;
    std::optional<Held> held = Row(op.plugin, op.collection, op.key);
    if (held && held->author == op.author && held->seq == op.seq && held->sig == op.sig) {
      ++counters.ops_stale;  // a replay or a duplicate
      return Outcome::kStale;
    }
    if (auto s = VerifySignature(op, o.verify_cache); !s.ok())
      return Refuse("bad_signature"), Outcome::kRefused;
    if (std::string why = Judge(op, spec->second); !why.empty())
      return Refuse(why), Outcome::kRefused;
    if (!author_rate.Admit(op.author, o.clock->SteadyMs()))
      return Refuse("rate"), Outcome::kRefused;
    // Our own op from before this database (a restored key): never reuse its sequence.
    if (op.author == self && op.seq > Mark(op.plugin, self)) SetMark(op.plugin, self, op.seq);
    // The clock learns of it (a hybrid logical clock's receive step).
    if (op.t > hlc_t || (op.t == hlc_t && op.l > hlc_l)) {
      hlc_t = op.t;
      hlc_l = op.l;
    }
    if (held) {
      Op current;
      current.author = held->author;
      current.seq = held->seq;
      current.t = held->t;
      current.l = held->l;
      current.sig = held->sig;
      if (!op.NewerThan(current)) {
        ++counters.ops_stale;
        return Outcome::kStale;
      }
    }
    if (!Store(op)) return Refuse("cannot_store"), Outcome::kRefused;
    ++counters.ops_merged;
    return Outcome::kMerged;
  }

  // What merging a list of ops did: whether it was committed, per author the lowest sequence
  // refused for a reason that may pass later (it holds the mark below it), and the sequences
  // taken (merged, already held, or refused for good: a key outside the author's own).
  struct Merged {
    bool committed = false;
    std::map<std::string, int64_t> hold;
    std::map<std::string, std::set<int64_t>> taken;
  };
  // Merges a list of ops (JSON) in one transaction (malformed ones count for nobody).
  Merged MergeAll(const json::Array& ops) {
    Merged m;
    if (!Exec("BEGIN IMMEDIATE")) return m;
    for (const json::Value& v : ops) {
      auto op = FromJson(v);
      if (!op) {
        Refuse("bad_op");
        continue;
      }
      const auto refused_before = counters.refused["not_own_key"];
      if (Merge(*op) == Outcome::kRefused && counters.refused["not_own_key"] == refused_before) {
        auto [it, fresh] = m.hold.emplace(op->author, op->seq);
        if (!fresh) it->second = std::min(it->second, op->seq);
      } else {
        m.taken[op->author].insert(op->seq);
      }
    }
    m.committed = Exec("COMMIT");
    if (!m.committed) {
      Exec("ROLLBACK");
      hash_cache.clear();
    }
    return m;
  }

  // How far ops of `author` sent by `sender` as covering (from, upto] let our mark move: the
  // author vouches for its whole range (ops it no longer holds were replaced by newer ones),
  // below the first op held back; another member only for the ops it delivered that we took,
  // without a gap (a member that claimed more could make us skip ops it hides).
  static int64_t Covered(const Merged& m, const std::string& sender, const std::string& author,
                         int64_t from, int64_t upto) {
    if (!m.committed) return from;
    int64_t to = upto;
    if (auto it = m.hold.find(author); it != m.hold.end()) to = std::min(to, it->second - 1);
    if (sender == author) return to;
    int64_t next = from;
    if (auto t = m.taken.find(author); t != m.taken.end()) {
      while (t->second.count(next + 1)) ++next;
    }
    return std::min(to, next);
  }

  // After ops from a peer covering (from, to] of author's sequence (Covered): our mark moves
  // there. A part that does not join our mark yet (pushes travel on two connections at once
  // and may overtake each other) is remembered and joined when the part before it arrives.
  // Returns whether the mark moved.
  bool Advance(const std::string& plugin, const std::string& author, int64_t from, int64_t to) {
    if (author == self || !authority.keys.count(author)) return false;  // marks only for members
    if (to <= from) return false;
    const int64_t mark = Mark(plugin, author);
    auto& parts = ahead[{plugin, author}];
    if (mark < from) {
      if (parts.size() < 64) parts[from] = std::max(parts[from], to);
      return false;
    }
    int64_t next = std::max(mark, to);
    for (auto it = parts.begin(); it != parts.end() && it->first <= next;) {
      next = std::max(next, it->second);
      it = parts.erase(it);
    }
    return next > mark && SetMark(plugin, author, next);
  }
  bool Live(const std::string& plugin, const std::string& author) const {
    auto it = live_push.find({plugin, author});
    return it != live_push.end() && o.clock->SteadyMs() - it->second < 2 * o.sync_interval_ms;
  }

  std::vector<const Peer*> Online() const {
    std::vector<const Peer*> out;
    for (const Peer& p : peers) {
      if (p.online && p.key != self && !p.url.empty()) out.push_back(&p);
    }
    return out;
  }

  // Our marks, and per plugin the authors whose own pushes reach us ("live": not to be sent).
  std::string MarksBody() const {
    json::Object plugins, live;
    for (const auto& [plugin, spec] : specs) {
      json::Object authors;
      json::Array pushing;
      if (auto again = reask.find(plugin); again != reask.end()) {
        for (const auto& [a, seq] : again->second) authors.emplace(a, seq);
      } else if (auto it = marks.find(plugin); it != marks.end()) {
        for (const auto& [a, seq] : it->second) {
          authors.emplace(a, seq);
          if (Live(plugin, a)) pushing.push_back(a);
        }
      }
      plugins.emplace(plugin, std::move(authors));
      if (!pushing.empty()) live.emplace(plugin, std::move(pushing));
    }
    return json::Serialize(json::Object{{"live", std::move(live)}, {"marks", std::move(plugins)}});
  }

  // Answers marks with the ops above them (one bounded batch), as canonical JSON text.
  // *behind: the asker holds more of some author than we do.
  std::string Answer(const json::Object& their, const json::Object& live, bool* behind) {
    SyncWrites();  // our own ops may be among the answer's
    std::string plugins_json;
    bool more = false;
    size_t budget = o.max_batch_bytes;
    std::set<std::string> answered;
    for (const auto& [plugin, spec] : specs) {
      auto theirs = their.find(plugin);
      if (theirs == their.end() || !theirs->second.is_object()) continue;
      const json::Object& tm = theirs->second.as_object();
      for (const auto& [a, v] : tm) {
        if (!v.is_int() || v.as_int() <= Mark(plugin, a)) continue;
        if (a == self) {
          // Others hold ops of ours beyond our sequence (this key on a database that lost them):
          // never reuse those numbers.
          PS_LOG(kWarn, "appdata")
              << "a peer holds writes of this node up to " << v.as_int() << " for " << plugin
              << ", this database only to " << Mark(plugin, a) << "; continuing after them";
          SetMark(plugin, self, v.as_int());
        } else if (authority.keys.count(a)) {
          *behind = true;
        }
      }
      std::set<std::string> skip;
      if (auto l = live.find(plugin); l != live.end() && l->second.is_array()) {
        for (const json::Value& a : l->second.as_array()) {
          if (a.is_string()) skip.insert(a.as_string());
        }
      }
      std::string entries;
      auto mine = marks.find(plugin);
      if (mine != marks.end()) {
        for (const auto& [author, my_mark] : mine->second) {
          if (skip.count(author)) continue;          // its pushes reach the asker
          if (author == self && unsynced) continue;  // not on disk yet: nothing of ours leaves
          auto t = tm.find(author);
          const int64_t from = t != tm.end() && t->second.is_int() ? t->second.as_int() : 0;
          if (my_mark <= from) continue;
          if (budget == 0) {
            more = true;
            break;
          }
          std::string ops;
          int64_t upto = my_mark;
          by_author.Bind(1, plugin).Bind(2, author).Bind(3, from);
          while (by_author.Step() == SQLITE_ROW) {
            Op op;
            op.network = authority.network_id;
            op.plugin = plugin;
            op.author = author;
            op.seq = by_author.Int(0);
            op.collection = by_author.Text(1);
            op.key = by_author.Text(2);
            op.t = by_author.Int(3);
            op.l = by_author.Int(4);
            op.deleted = by_author.Int(5) != 0;
            op.value = by_author.Text(6);
            op.sig = by_author.Text(7);
            std::string wire = Wire(op);
            if (wire.size() > budget && !ops.empty()) {
              // Cut short: we cover up to the op before this one, and never beyond our mark
              // (we may hold ops past a gap).
              upto = std::min(my_mark, by_author.Int(0) - 1);
              more = true;
              budget = 0;
              break;
            }
            budget -= std::min(budget, wire.size());
            if (!ops.empty()) ops += ',';
            ops += wire;
          }
          by_author.Reset();
          if (!entries.empty()) entries += ',';
          entries += "{\"a\":";
          json::AppendQuoted(entries, author);
          entries += ",\"from\":" + std::to_string(from) + ",\"ops\":[" + ops +
                     "],\"upto\":" + std::to_string(upto) + "}";
        }
      }
      if (entries.empty()) continue;
      if (!plugins_json.empty()) plugins_json += ',';
      json::AppendQuoted(plugins_json, plugin);
      plugins_json += ":[" + entries + "]";
    }
    if (plugins_json.empty()) return "";
    return std::string("{\"more\":") + (more ? "true" : "false") + ",\"plugins\":{" + plugins_json +
           "}}";
  }

  void Pull(const Peer& peer, std::vector<Outgoing>* out) {
    if (specs.empty()) return;
    out->push_back({peer.url, "appsync", MarksBody()});
  }

  const Peer* PeerByKey(const std::string& key) const {
    for (const Peer& p : peers) {
      if (p.key == key) return &p;
    }
    return nullptr;
  }

  void Flush(std::vector<Outgoing>* out) {
    if (pending.empty()) return;
    SyncWrites();
    if (unsynced) return;  // not on disk (a full disk?): nothing leaves; the next tick tries again
    std::vector<const Peer*> online = Online();
    // A random subset when there are more than max_push_peers.
    for (size_t i = online.size(); i > 1; --i) std::swap(online[i - 1], online[o.random() % i]);
    if (online.size() > o.max_push_peers) online.resize(o.max_push_peers);
    for (auto& [plugin, p] : pending) {
      // In batches of at most max_batch_bytes, each covering a contiguous part of our sequence.
      size_t i = 0;
      int64_t prev = p.prev;
      while (i < p.wires.size()) {
        std::string ops;
        size_t bytes = 0;
        const size_t start = i;
        while (i < p.wires.size() &&
               (i == start || bytes + p.wires[i].size() <= o.max_batch_bytes)) {
          bytes += p.wires[i].size();
          if (!ops.empty()) ops += ',';
          ops += p.wires[i];
          ++i;
        }
        const int64_t upto = i == p.wires.size() ? p.upto : prev + static_cast<int64_t>(i - start);
        std::string body = "{\"ops\":[" + ops + "],\"plugin\":";
        json::AppendQuoted(body, plugin);
        body += ",\"prev\":" + std::to_string(prev) + ",\"upto\":" + std::to_string(upto) + "}";
        for (const Peer* peer : online) out->push_back({peer->url, "appdata", body});
        prev = upto;
      }
    }
    pending.clear();
  }

  void ExpireTombstones() {
    Stmt s(db, "DELETE FROM appdata_ops WHERE deleted = 1 AND t < ?");
    s.Bind(1, Now() - o.tombstone_ms);
    if (s.Step() == SQLITE_DONE)
      counters.tombstones_dropped += static_cast<uint64_t>(sqlite3_changes(db));
  }

  // Ops outside their author's spans (after the Authority closed one, or a plugin's rules
  // changed): deleted, ours too, and the plugin pulled again from nothing once, so that what
  // they had replaced comes back. Our marks stay (they still say what we can answer for).
  void Purge() {
    std::vector<std::tuple<std::string, std::string, std::string>> doomed;
    Stmt s(db, "SELECT plugin, coll, key, author, t FROM appdata_ops");
    while (s.Step() == SQLITE_ROW) {
      const std::string author = s.Text(3);
      if (!authority.keys.count(author)) continue;  // unknown: maybe the ledger lags
      Op op;
      op.plugin = s.Text(0);
      op.collection = s.Text(1);
      op.key = s.Text(2);
      op.author = author;
      op.t = s.Int(4);
      auto p = specs.find(op.plugin);
      if (p == specs.end()) continue;
      auto spec = p->second.find(op.collection);
      if (spec == p->second.end()) continue;
      if (!Judge(op, spec->second).empty()) doomed.emplace_back(op.plugin, op.collection, op.key);
    }
    if (doomed.empty()) return;
    std::set<std::string> plugins;
    if (!Exec("BEGIN IMMEDIATE")) return;  // the next change of authority tries again
    for (const auto& [plugin, coll, key] : doomed) {
      del_row.Bind(1, plugin).Bind(2, coll).Bind(3, key);
      del_row.Step();
      del_row.Reset();
      ++changes[{plugin, coll}];
      hash_cache.erase(plugin);
      plugins.insert(plugin);
    }
    if (!Exec("COMMIT")) {
      Exec("ROLLBACK");
      return;
    }
    for (const std::string& plugin : plugins) {
      reask[plugin].clear();
      for (auto& [author, seq] : marks[plugin]) live_push.erase({plugin, author});
    }
    counters.purged += doomed.size();
    PS_LOG(kWarn, "appdata") << "dropped " << doomed.size()
                             << " ops their authors were not allowed to write (a member or "
                                "publisher removed); pulling again";
  }

  Status LocalWrite(const std::string& plugin, const std::string& coll, const std::string& key,
                    const std::string* value, bool public_request) {
    if (!ValidKey(key))
      return Status::Error("invalid", "a key is 1-256 bytes of UTF-8 without control characters");
    if (value && value->size() > kMaxValueBytes)
      return Status::Error("too_large", "a value is at most 64 KiB");
    std::lock_guard<std::mutex> lock(mu);
    auto p = specs.find(plugin);
    if (p == specs.end() || !p->second.count(coll)) {
      return Status::Error("unknown_collection",
                           "plugin " + plugin + " declares no collection " + coll);
    }
    const CollectionSpec& spec = p->second.at(coll);
    if (public_request && !spec.public_writes) {
      return Status::Error("forbidden",
                           "collection " + coll + " takes no writes from public routes");
    }
    const int64_t now = Now();
    // The hybrid logical clock's send step; never before this node's own admission.
    int64_t t = std::max(now, hlc_t);
    if (auto it = authority.keys.find(self);
        it != authority.keys.end() && !it->second.member.empty()) {
      t = std::max(t, it->second.member.back().from_ms);
    }
    int64_t l = t == hlc_t ? hlc_l + 1 : 0;
    if (l > kMaxLogical) {  // the counter's range is bounded on the wire: carry into the ms
      ++t;
      l = 0;
    }
    Op op;
    op.network = authority.network_id;
    op.plugin = plugin;
    op.collection = coll;
    op.key = key;
    op.deleted = value == nullptr;
    if (value) op.value = *value;
    op.author = self;
    op.t = t;
    op.l = l;
    if (authority.network_id.empty() || !authority.IsMember(self, t)) {
      return Status::Error("not_member", "this node is not a member of a network (yet)");
    }
    if (std::string why = Judge(op, spec); !why.empty()) {
      return Status::Error(
          "forbidden",
          std::string("collection ") + coll + " is written by " + RuleName(spec.rule) +
              (spec.rule == Rule::kOwnKeys ? " (keys start with this node's id and /)" : ""));
    }
    std::optional<Held> held = Row(plugin, coll, key);
    if (!value && (!held || RowDeleted(plugin, coll, key)))
      return Status::Error("not_found", "no such key");
    if (!author_rate.Admit(self, o.clock->SteadyMs()))
      return Status::Error("busy", "too many writes; try again shortly");
    op.seq = Mark(plugin, self) + 1;
    op = Sign(std::move(op), *o.key);
    std::string wire = Wire(op);
    const bool stored = Exec("BEGIN IMMEDIATE") && Store(op) && SetMark(plugin, self, op.seq);
    if (!stored || !Exec("COMMIT")) {
      Exec("ROLLBACK");
      marks[plugin][self] = op.seq - 1;
      return Status::Error("cannot_store",
                           std::string("cannot store the write: ") + sqlite3_errmsg(db));
    }
    hlc_t = t;
    hlc_l = l;
    unsynced = true;
    ++counters.ops_written;
    Pending& pend = pending[plugin];
    if (pend.wires.empty()) pend.prev = op.seq - 1;
    pend.upto = op.seq;
    pend.wires.push_back(std::move(wire));
    pend.bytes += pend.wires.back().size();
    if (pend.bytes > o.max_pending_push_bytes) pending.erase(plugin);  // pulls will carry them
    return Status::Ok();
  }

  bool RowDeleted(const std::string& plugin, const std::string& coll, const std::string& key) {
    get_value.Bind(1, plugin).Bind(2, coll).Bind(3, key);
    bool deleted = true;
    if (get_value.Step() == SQLITE_ROW) deleted = get_value.Int(0) != 0;
    get_value.Reset();
    return deleted;
  }
};

Replica::Replica(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Replica::~Replica() = default;

Result<std::unique_ptr<Replica>> Replica::Open(ReplicaOptions options) {
  if (!options.clock || !options.key || !options.random) {
    return Status::Error("bad_options", "a replica needs a clock, a key and randomness");
  }
  auto impl = std::make_unique<Impl>();
  impl->o = std::move(options);
  const auto& pub = impl->o.key->public_key();
  impl->self = crypto::HexEncode(pub.data(), pub.size());
  impl->author_rate = RateLimit(impl->o.author_ops_per_window, impl->o.window_ms, 1 << 30, 1 << 16);
  Impl& d = *impl;
  if (sqlite3_open_v2(d.o.db_path.c_str(), &d.db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string why = d.db ? sqlite3_errmsg(d.db) : "out of memory";
    return Status::Error("cannot_open", "cannot open " + d.o.db_path + ": " + why);
  }
  sqlite3_busy_timeout(d.db, 5000);
  if (!d.Exec(d.o.durable ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=OFF")) {
    return Status::Error("cannot_open",
                         std::string("cannot set up app data: ") + sqlite3_errmsg(d.db));
  }
  for (const char* sql :
       {"PRAGMA journal_mode=WAL",
        "CREATE TABLE IF NOT EXISTS appdata_ops(plugin TEXT NOT NULL, coll TEXT NOT NULL, key BLOB "
        "NOT NULL,"
        " author TEXT NOT NULL, seq INTEGER NOT NULL, t INTEGER NOT NULL, l INTEGER NOT NULL,"
        " deleted INTEGER NOT NULL, value BLOB NOT NULL, sig TEXT NOT NULL,"
        " PRIMARY KEY(plugin, coll, key)) WITHOUT ROWID",
        "CREATE INDEX IF NOT EXISTS appdata_by_author ON appdata_ops(plugin, author, seq)",
        "CREATE TABLE IF NOT EXISTS appdata_marks(plugin TEXT NOT NULL, author TEXT NOT NULL,"
        " seq INTEGER NOT NULL, PRIMARY KEY(plugin, author)) WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS appdata_meta(k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT "
        "ROWID"}) {
    if (!d.Exec(sql))
      return Status::Error("cannot_open",
                           std::string("cannot set up app data: ") + sqlite3_errmsg(d.db));
  }
  d.get_row = Stmt(
      d.db,
      "SELECT author, seq, t, l, sig FROM appdata_ops WHERE plugin = ? AND coll = ? AND key = ?");
  d.put_row = Stmt(d.db,
                   "INSERT OR REPLACE INTO appdata_ops(plugin, coll, key, author, seq, t, l, "
                   "deleted, value, sig)"
                   " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  d.del_row = Stmt(d.db, "DELETE FROM appdata_ops WHERE plugin = ? AND coll = ? AND key = ?");
  d.get_value = Stmt(
      d.db, "SELECT deleted, value FROM appdata_ops WHERE plugin = ? AND coll = ? AND key = ?");
  d.list_prefix =
      Stmt(d.db,
           "SELECT key, value FROM appdata_ops WHERE plugin = ? AND coll = ? AND deleted = 0"
           " AND key >= ? ORDER BY key LIMIT ?");
  d.by_author = Stmt(d.db,
                     "SELECT seq, coll, key, t, l, deleted, value, sig FROM appdata_ops"
                     " WHERE plugin = ? AND author = ? AND seq > ? ORDER BY seq");
  d.set_mark =
      Stmt(d.db, "INSERT OR REPLACE INTO appdata_marks(plugin, author, seq) VALUES(?, ?, ?)");
  d.set_meta = Stmt(d.db, "INSERT OR REPLACE INTO appdata_meta(k, v) VALUES(?, ?)");
  d.live_rows =
      Stmt(d.db,
           "SELECT coll, key, author, t, l, value FROM appdata_ops WHERE plugin = ? AND deleted = 0"
           " ORDER BY coll, key");
  for (Stmt* s : {&d.get_row, &d.put_row, &d.del_row, &d.get_value, &d.list_prefix, &d.by_author,
                  &d.set_mark, &d.set_meta, &d.live_rows}) {
    if (!s->ok())
      return Status::Error("cannot_open",
                           std::string("cannot prepare app data queries: ") + sqlite3_errmsg(d.db));
  }
  {
    Stmt s(d.db, "SELECT plugin, author, seq FROM appdata_marks");
    while (s.Step() == SQLITE_ROW) d.marks[s.Text(0)][s.Text(1)] = s.Int(2);
  }
  {
    // The clock resumes above every op held: an op of ours that is no longer held was
    // replaced by a newer one, which is.
    Stmt s(d.db, "SELECT t, l FROM appdata_ops ORDER BY t DESC, l DESC LIMIT 1");
    if (s.Step() == SQLITE_ROW) {
      d.hlc_t = s.Int(0);
      d.hlc_l = s.Int(1);
    }
  }
  d.ResetIfAway();
  d.next_gc_ms = d.o.clock->SteadyMs() + 60 * 1000;
  return std::unique_ptr<Replica>(new Replica(std::move(impl)));
}

Status Replica::Declare(const std::string& plugin, const std::vector<CollectionSpec>& collections) {
  if (collections.size() > kMaxCollections)
    return Status::Error("invalid", "at most 16 collections per plugin");
  std::map<std::string, CollectionSpec> by_name;
  for (const CollectionSpec& c : collections) {
    if (!ValidCollectionName(c.name))
      return Status::Error("invalid", "bad collection name '" + c.name.substr(0, 40) + "'");
    if (c.rule != Rule::kPublishers && c.rule != Rule::kMembers && c.rule != Rule::kOwnKeys) {
      return Status::Error("invalid", "collection " + c.name + ": unknown write rule");
    }
    if (!by_name.emplace(c.name, c).second)
      return Status::Error("invalid", "collection " + c.name + " declared twice");
  }
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  auto old = d.specs.find(plugin);
  bool stricter = false;  // a collection kept with another rule (a new version of the plugin)
  if (old != d.specs.end()) {
    for (const auto& [name, spec] : by_name) {
      auto was = old->second.find(name);
      stricter |= was != old->second.end() && was->second.rule != spec.rule;
    }
  }
  if (by_name.empty()) {
    d.specs.erase(plugin);
  } else {
    d.specs[plugin] = std::move(by_name);
  }
  if (stricter && d.have_authority) d.Purge();  // what the new rule forbids goes everywhere
  return Status::Ok();
}

Status Replica::Put(const std::string& plugin, const std::string& collection,
                    const std::string& key, const std::string& value, bool public_request) {
  return impl_->LocalWrite(plugin, collection, key, &value, public_request);
}

Status Replica::Delete(const std::string& plugin, const std::string& collection,
                       const std::string& key, bool public_request) {
  return impl_->LocalWrite(plugin, collection, key, nullptr, public_request);
}

Result<std::optional<std::string>> Replica::Get(const std::string& plugin,
                                                const std::string& collection,
                                                const std::string& key) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  d.get_value.Bind(1, plugin).Bind(2, collection).Bind(3, key);
  std::optional<std::string> out;
  const int rc = d.get_value.Step();
  if (rc == SQLITE_ROW && d.get_value.Int(0) == 0) out = d.get_value.Text(1);
  d.get_value.Reset();
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return Status::Error("cannot_read", sqlite3_errmsg(d.db));
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> Replica::List(
    const std::string& plugin, const std::string& collection, const std::string& prefix,
    size_t limit) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  std::vector<std::pair<std::string, std::string>> out;
  d.list_prefix.Bind(1, plugin)
      .Bind(2, collection)
      .Bind(3, prefix)
      .Bind(4, static_cast<int64_t>(limit));
  int rc;
  size_t bytes = 0;
  while ((rc = d.list_prefix.Step()) == SQLITE_ROW) {
    std::string key = d.list_prefix.Text(0);
    if (key.compare(0, prefix.size(), prefix) != 0) break;  // past the prefix
    bytes += key.size() + static_cast<size_t>(sqlite3_column_bytes(d.list_prefix.raw(), 1));
    if (bytes > kMaxListBytes && !out.empty()) break;  // the listing's memory is bounded too
    out.emplace_back(std::move(key), d.list_prefix.Text(1));
  }
  d.list_prefix.Reset();
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return Status::Error("cannot_read", sqlite3_errmsg(d.db));
  return out;
}

uint64_t Replica::Changes(const std::string& plugin, const std::string& collection) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->changes.find({plugin, collection});  // never grows for names asked about
  return it == impl_->changes.end() ? 0 : it->second;
}

void Replica::SetAuthority(Authority authority, std::vector<Peer> peers) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  const std::string closed = authority.ClosedSpans();
  d.authority = std::move(authority);
  d.peers = std::move(peers);
  if (!d.have_authority || closed != d.closed_spans) {
    d.have_authority = true;
    d.closed_spans = closed;
    d.Purge();
  }
}

void Replica::SetPeers(std::vector<Peer> peers) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->peers = std::move(peers);
}

void Replica::Tick(std::vector<Outgoing>* out) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  d.Flush(out);
  const int64_t now = d.o.clock->SteadyMs();
  if (now >= d.next_pull_ms) {
    d.next_pull_ms = now + d.o.sync_interval_ms;
    std::vector<const Peer*> online = d.Online();
    if (!online.empty()) d.Pull(*online[d.o.random() % online.size()], out);
  }
  if (now >= d.next_gc_ms) {
    d.next_gc_ms = now + 3600 * 1000;
    d.ExpireTombstones();
    d.ResetIfAway();  // a node that stays up but hears nobody for that long
  }
}

Status Replica::Receive(const std::string& from_key, const std::string& from_url,
                        const std::string& type, const json::Value& body,
                        std::vector<Outgoing>* out) {
  Impl& d = *impl_;
  auto bad = [](const char* why) { return Status::Error("bad_message", why); };
  std::lock_guard<std::mutex> lock(d.mu);
  if (type == "appdata") {
    const std::string* plugin = body.find_string("plugin");
    const int64_t* prev = body.find_int("prev");
    const int64_t* upto = body.find_int("upto");
    const json::Value* ops = body.find("ops");
    if (!plugin || !prev || !upto || !ops || !ops->is_array() || body.as_object().size() != 4) {
      return bad("a push is {\"ops\": [...], \"plugin\", \"prev\", \"upto\"}");
    }
    // Only the sender's own ops move its mark.
    bool own = true;
    for (const json::Value& op : ops->as_array()) {
      const std::string* a = op.find_string("a");
      const std::string* p = op.find_string("p");
      own = own && a && *a == from_key && p && *p == *plugin;
    }
    Impl::Merged merged = d.MergeAll(ops->as_array());
    d.Heard();
    if (own && d.specs.count(*plugin)) {
      d.Advance(*plugin, from_key, *prev, Impl::Covered(merged, from_key, from_key, *prev, *upto));
      // Live while its pushes join our mark with nothing missing before them.
      const std::pair<std::string, std::string> id{*plugin, from_key};
      if (merged.committed && merged.hold.empty() && d.ahead[id].empty() &&
          d.Mark(*plugin, from_key) >= *upto) {
        d.live_push[id] = d.o.clock->SteadyMs();
      } else {
        d.live_push.erase(id);
      }
    }
    return Status::Ok();
  }
  if (type == "appsync") {
    const json::Value* marks = body.find("marks");
    const json::Value* live = body.find("live");
    if (!marks || !marks->is_object() || !live || !live->is_object() ||
        body.as_object().size() != 2) {
      return bad("marks are {\"live\": {plugin: [author]}, \"marks\": {plugin: {author: seq}}}");
    }
    bool behind = false;
    d.Heard();
    std::string answer = d.Answer(marks->as_object(), live->as_object(), &behind);
    if (!answer.empty()) out->push_back({from_url, "appops", std::move(answer)});
    if (behind) out->push_back({from_url, "appsync", d.MarksBody()});
    return Status::Ok();
  }
  if (type == "appops") {
    const json::Value* plugins = body.find("plugins");
    const json::Value* more = body.find("more");
    if (!plugins || !plugins->is_object() || !more || !more->is_bool() ||
        body.as_object().size() != 2) {
      return bad("an answer is {\"more\": bool, \"plugins\": {plugin: [...]}}");
    }
    for (const auto& [plugin, entries] : plugins->as_object()) {
      if (!entries.is_array()) return bad("entries are a list");
      for (const json::Value& e : entries.as_array()) {
        const std::string* a = e.find_string("a");
        const int64_t* from = e.find_int("from");
        const int64_t* upto = e.find_int("upto");
        const json::Value* ops = e.find("ops");
        if (!a || !from || !upto || !ops || !ops->is_array() || e.as_object().size() != 4) {
          return bad("an entry is {\"a\", \"from\", \"ops\", \"upto\"}");
        }
      }
    }
    bool moved = false;
    for (const auto& [plugin, entries] : plugins->as_object()) {
      for (const json::Value& e : entries.as_array()) {
        const json::Array& ops = e.find("ops")->as_array();
        const std::string& author = *e.find_string("a");
        // Every op must be of this plugin and author, or the entry moves no mark.
        bool consistent = true;
        for (const json::Value& op : ops) {
          const std::string* a = op.find_string("a");
          const std::string* p = op.find_string("p");
          consistent = consistent && a && *a == author && p && *p == plugin;
        }
        Impl::Merged merged = d.MergeAll(ops);
        if (consistent && d.specs.count(plugin)) {
          const int64_t from = *e.find_int("from");
          const int64_t covered =
              Impl::Covered(merged, from_key, author, from, *e.find_int("upto"));
          moved |= d.Advance(plugin, author, from, covered);
          if (auto again = d.reask.find(plugin);
              again != d.reask.end() && d.authority.keys.count(author)) {
            int64_t& progress = again->second[author];
            if (from <= progress && covered > progress) {
              progress = covered;
              moved = true;
            }
          }
        }
      }
      if (!more->as_bool()) d.reask.erase(plugin);  // asked from nothing and got it all
    }
    d.Heard();
    // Cut short: ask again at once, but only while it moves something (ops refused for a
    // reason that may pass would otherwise come back at once, again and again).
    if (more->as_bool() && moved) out->push_back({from_url, "appsync", d.MarksBody()});
    return Status::Ok();
  }
  return bad("not an app data message");
}

std::string Replica::DataHash(const std::string& plugin) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  if (auto it = d.hash_cache.find(plugin); it != d.hash_cache.end()) return it->second;
  std::string digests;
  auto field = [](std::string& out, const std::string& s) {
    const uint32_t n = static_cast<uint32_t>(s.size());
    out.append(reinterpret_cast<const char*>(&n), sizeof n);
    out += s;
  };
  d.live_rows.Bind(1, plugin);
  while (d.live_rows.Step() == SQLITE_ROW) {
    std::string entry;
    field(entry, d.live_rows.Text(0));
    field(entry, d.live_rows.Text(1));
    field(entry, d.live_rows.Text(2));
    field(entry, std::to_string(d.live_rows.Int(3)) + "." + std::to_string(d.live_rows.Int(4)));
    field(entry, d.live_rows.Text(5));
    const auto digest = crypto::Sha256(entry);
    digests.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  }
  d.live_rows.Reset();
  std::string hash = crypto::Sha256Hex(digests);
  d.hash_cache[plugin] = hash;
  return hash;
}

json::Value Replica::StatusJson() {
  std::vector<std::string> names;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (const auto& [p, s] : impl_->specs) names.push_back(p);
  }
  json::Object plugins;
  for (const std::string& p : names) {
    const std::string hash = DataHash(p);
    Impl& d = *impl_;
    std::lock_guard<std::mutex> lock(d.mu);
    int64_t live = 0, dead = 0;
    {
      Stmt s(d.db, "SELECT deleted, COUNT(*) FROM appdata_ops WHERE plugin = ? GROUP BY deleted");
      s.Bind(1, p);
      while (s.Step() == SQLITE_ROW) (s.Int(0) ? dead : live) = s.Int(1);
    }
    json::Object colls;
    if (auto it = d.specs.find(p); it != d.specs.end()) {
      for (const auto& [name, spec] : it->second) colls.emplace(name, RuleName(spec.rule));
    }
    plugins.emplace(p, json::Object{{"hash", hash},
                                    {"entries", live},
                                    {"tombstones", dead},
                                    {"authors", d.marks[p].size()},
                                    {"collections", std::move(colls)}});
  }
  ReplicaCounters c = Counters();
  json::Object refused;
  for (const auto& [why, n] : c.refused) refused.emplace(why, n);
  return json::Object{{"plugins", std::move(plugins)}, {"ops_written", c.ops_written},
                      {"ops_merged", c.ops_merged},    {"ops_stale", c.ops_stale},
                      {"refused", std::move(refused)}, {"purged", c.purged}};
}

ReplicaCounters Replica::Counters() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->counters;
}

}  // namespace peerstack::appdata
