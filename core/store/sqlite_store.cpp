#include <sqlite3.h>

#include <mutex>

#include "store/store.h"

namespace peerstack::store {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS events (
  seq  INTEGER PRIMARY KEY AUTOINCREMENT,
  hash TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (
  ns    TEXT NOT NULL,
  key   BLOB NOT NULL,
  value BLOB NOT NULL,
  PRIMARY KEY (ns, key)
) WITHOUT ROWID;
)sql";

// Owns a prepared statement; resets it on scope exit so it can be reused.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  sqlite3_stmt* get() const { return stmt_; }
  bool ok() const { return stmt_ != nullptr; }
  void Bind(int i, const std::string& s) {
    sqlite3_bind_blob(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void BindText(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  std::string Column(int i) const {
    const void* p = sqlite3_column_blob(stmt_, i);
    const int n = sqlite3_column_bytes(stmt_, i);
    return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  ~SqliteStore() override { (void)Close(); }

  Status Write(const WriteBatch& batch) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!db_) return Closed();
    if (auto s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
    Status status = Status::Ok();
    if (batch.replace_events) {
      if (Status s = Exec("DELETE FROM events"); !s.ok()) status = s;
    }
    for (const EventRecord& e : batch.events) {
      if (!status.ok()) break;
      Stmt st(db_, "INSERT OR IGNORE INTO events(hash, kind, body) VALUES (?1, ?2, ?3)");
      if (!st.ok()) {
        status = Error("prepare");
        break;
      }
      st.BindText(1, e.hash);
      st.BindText(2, e.kind);
      st.Bind(3, e.body);
      if (sqlite3_step(st.get()) != SQLITE_DONE) {
        status = Error("insert event");
        break;
      }
    }
    for (const auto& [key, value] : batch.meta) {
      if (!status.ok()) break;
      Stmt st(db_,
              "INSERT INTO meta(key, value) VALUES (?1, ?2) "
              "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
      if (!st.ok()) {
        status = Error("prepare");
        break;
      }
      st.BindText(1, key);
      st.Bind(2, value);
      if (sqlite3_step(st.get()) != SQLITE_DONE) status = Error("upsert meta");
    }
    if (!status.ok()) {
      (void)Exec("ROLLBACK");
      return status;
    }
    return Exec("COMMIT");
  }

  Result<std::optional<EventRecord>> GetEvent(const std::string& hash) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!db_) return Closed();
    Stmt st(db_, "SELECT hash, kind, body FROM events WHERE hash = ?1");
    if (!st.ok()) return Error("prepare");
    st.BindText(1, hash);
    const int rc = sqlite3_step(st.get());
    if (rc == SQLITE_DONE) return std::optional<EventRecord>();
    if (rc != SQLITE_ROW) return Error("select event");
    return std::optional<EventRecord>(EventRecord{st.Column(0), st.Column(1), st.Column(2)});
  }

  Result<std::vector<EventRecord>> Events() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!db_) return Closed();
    Stmt st(db_, "SELECT hash, kind, body FROM events ORDER BY seq");
    if (!st.ok()) return Error("prepare");
    std::vector<EventRecord> out;
    int rc;
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      out.push_back(EventRecord{st.Column(0), st.Column(1), st.Column(2)});
    }
    if (rc != SQLITE_DONE) return Error("select events");
    return out;
  }

  Result<std::optional<std::string>> GetMeta(const std::string& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!db_) return Closed();
    Stmt st(db_, "SELECT value FROM meta WHERE key = ?1");
    if (!st.ok()) return Error("prepare");
    st.BindText(1, key);
    const int rc = sqlite3_step(st.get());
    if (rc == SQLITE_DONE) return std::optional<std::string>();
    if (rc != SQLITE_ROW) return Error("select meta");
    return std::optional<std::string>(st.Column(0));
  }

  Result<std::optional<std::string>> KvGet(const std::string& ns, const std::string& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!db_) return Closed();
    Stmt st(db_, "SELECT value FROM kv WHERE ns = ?1 AND key = ?2");
    if (!st.ok()) return Error("prepare");
    st.BindText(1, ns);
    st.Bind(2, key);
    const int rc = sqlite3_step(st.get());
    if (rc == SQLITE_DONE) return std::optional<std::string>();
    if (rc != SQLITE_ROW) return Error("select kv");
    return std::optional<std::string>(st.Column(0));
  }

  Status KvPut(const std::string& ns, const std::string& key, const std::string& value) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!db_) return Closed();
    Stmt st(db_,
            "INSERT INTO kv(ns, key, value) VALUES (?1, ?2, ?3) "
            "ON CONFLICT(ns, key) DO UPDATE SET value = excluded.value");
    if (!st.ok()) return Error("prepare");
    st.BindText(1, ns);
    st.Bind(2, key);
    st.Bind(3, value);
    if (sqlite3_step(st.get()) != SQLITE_DONE) return Error("upsert kv");
    return Status::Ok();
  }

  Status KvDelete(const std::string& ns, const std::string& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!db_) return Closed();
    Stmt st(db_, "DELETE FROM kv WHERE ns = ?1 AND key = ?2");
    if (!st.ok()) return Error("prepare");
    st.BindText(1, ns);
    st.Bind(2, key);
    if (sqlite3_step(st.get()) != SQLITE_DONE) return Error("delete kv");
    if (sqlite3_changes(db_) == 0) return Status::Error("not_found", "no such key");
    return Status::Ok();
  }

  Result<std::vector<std::pair<std::string, std::string>>> KvList(const std::string& ns,
                                                                  const std::string& prefix,
                                                                  size_t limit) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!db_) return Closed();
    // Blob comparison is memcmp order; substr() on a blob compares bytes.
    Stmt st(db_,
            "SELECT key, value FROM kv WHERE ns = ?1 AND key >= ?2 "
            "AND substr(key, 1, length(?2)) = ?2 ORDER BY key LIMIT ?3");
    if (!st.ok()) return Error("prepare");
    st.BindText(1, ns);
    st.Bind(2, prefix);
    sqlite3_bind_int64(st.get(), 3, static_cast<sqlite3_int64>(limit));
    std::vector<std::pair<std::string, std::string>> out;
    int rc;
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW)
      out.emplace_back(st.Column(0), st.Column(1));
    if (rc != SQLITE_DONE) return Error("list kv");
    return out;
  }

  Status Close() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!db_) return Status::Ok();
    const int rc = sqlite3_close(db_);
    db_ = nullptr;
    if (rc != SQLITE_OK) return Status::Error("store_error", "close failed");
    return Status::Ok();
  }

  Status Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string message = err ? err : "unknown error";
      sqlite3_free(err);
      return Status::Error("store_error", message);
    }
    return Status::Ok();
  }

 private:
  static Status Closed() { return Status::Error("closed", "store is closed"); }
  Status Error(const char* what) {
    return Status::Error("store_error", std::string(what) + ": " + sqlite3_errmsg(db_));
  }

  std::mutex mu_;
  sqlite3* db_;
};

}  // namespace

Result<StorePtr> OpenSqliteStore(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Status::Error("store_error", "cannot open " + path + ": " + message);
  }
  sqlite3_busy_timeout(db, 5000);
  auto store = std::make_unique<SqliteStore>(db);
  for (const char* sql :
       {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON", kSchema}) {
    if (auto s = store->Exec(sql); !s.ok()) {
      return Status::Error(s.code(), "cannot prepare " + path + ": " + s.message());
    }
  }
  return StorePtr(std::move(store));
}

}  // namespace peerstack::store
