#include "store/store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/files.h"
#include "crypto/sha256.h"
#include "store/blob_store.h"
#include "store/key_file.h"
#include "support/test_support.h"

namespace peerstack::store {
namespace {

using test::TempDir;

EventRecord MakeEvent(int i) {
  std::string body = "{\"n\":" + std::to_string(i) + "}";
  return {crypto::Sha256Hex(body), "test", body};
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return st.st_mode & 07777;
}

TEST(SqliteStore, WritesAndReadsEventsAndMeta) {
  TempDir dir;
  auto store = OpenSqliteStore(dir.Sub("s.db"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  WriteBatch batch;
  batch.events = {MakeEvent(1), MakeEvent(2)};
  batch.meta = {{"k", "v1"}};
  ASSERT_TRUE((*store)->Write(batch).ok());
  // Same event again is ignored; meta is replaced.
  ASSERT_TRUE((*store)->Write({{MakeEvent(1)}, {{"k", "v2"}}}).ok());
  auto events = (*store)->Events();
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0], MakeEvent(1));
  EXPECT_EQ((*events)[1], MakeEvent(2));
  EXPECT_EQ(**(*store)->GetMeta("k"), "v2");
  EXPECT_FALSE((*store)->GetMeta("absent")->has_value());
  EXPECT_EQ((*(*store)->GetEvent(MakeEvent(2).hash))->body, MakeEvent(2).body);
  EXPECT_FALSE((*store)->GetEvent("nope")->has_value());
}

TEST(SqliteStore, SurvivesReopen) {
  TempDir dir;
  {
    auto store = OpenSqliteStore(dir.Sub("s.db"));
    ASSERT_TRUE((*store)->Write({{MakeEvent(7)}, {{"network_id", "abc"}}}).ok());
    ASSERT_TRUE((*store)->Close().ok());
    EXPECT_EQ((*store)->Events().status().code(), "closed");
  }
  auto store = OpenSqliteStore(dir.Sub("s.db"));
  ASSERT_EQ((*store)->Events()->size(), 1u);
  EXPECT_EQ(**(*store)->GetMeta("network_id"), "abc");
}

TEST(SqliteStore, RefusesAFileThatIsNotADatabase) {
  TempDir dir;
  test::WriteFile(dir.Sub("s.db"), std::string(8192, 'x'));
  auto store = OpenSqliteStore(dir.Sub("s.db"));
  EXPECT_FALSE(store.ok());
}

// A writer killed with SIGKILL at an arbitrary instant leaves whole batches only: every
// batch writes event i and meta last=i together, so after reopening they must agree.
TEST(SqliteStore, KilledWriterLeavesOnlyWholeBatches) {
  for (int round = 0; round < 3; ++round) {
    TempDir dir;
    const std::string path = dir.Sub("s.db");
    int progress[2];
    ASSERT_EQ(::pipe(progress), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(progress[0]);
      auto store = OpenSqliteStore(path);
      if (!store.ok()) ::_exit(2);
      for (int i = 0;; ++i) {
        if (!(*store)->Write({{MakeEvent(i)}, {{"last", std::to_string(i)}}}).ok()) ::_exit(3);
        if (::write(progress[1], "+", 1) != 1) ::_exit(4);  // one byte per durable batch
      }
    }
    ::close(progress[1]);
    // Kill it after a number of acknowledged batches that varies per round.
    const int wanted = 20 + 15 * round;
    int acknowledged = 0;
    char byte;
    while (acknowledged < wanted && ::read(progress[0], &byte, 1) == 1) ++acknowledged;
    const bool progressed = acknowledged == wanted;
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    ::close(progress[0]);
    ASSERT_TRUE(progressed);
    auto store = OpenSqliteStore(path);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto events = (*store)->Events();
    ASSERT_TRUE(events.ok());
    auto last = (*store)->GetMeta("last");
    ASSERT_TRUE(last.ok() && last->has_value());
    EXPECT_EQ(std::stoul(**last) + 1, events->size());
    EXPECT_GE(events->size(), static_cast<size_t>(acknowledged));  // nothing acknowledged lost
    for (size_t i = 0; i < events->size(); ++i) {
      EXPECT_EQ((*events)[i], MakeEvent(static_cast<int>(i)));
    }
  }
}

TEST(NodeKeyFile, CreatedOnceWithMode0600AndReused) {
  TempDir dir;
  bool created = false;
  auto a = LoadOrCreateNodeKey(dir.Sub("node.key"), &created);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_TRUE(created);
  EXPECT_EQ(ModeOf(dir.Sub("node.key")), 0600u);
  auto b = LoadOrCreateNodeKey(dir.Sub("node.key"), &created);
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(created);
  EXPECT_EQ(a->public_key(), b->public_key());
}

TEST(NodeKeyFile, RefusesAKeyReadableByOthers) {
  TempDir dir;
  bool created = false;
  ASSERT_TRUE(LoadOrCreateNodeKey(dir.Sub("node.key"), &created).ok());
  ::chmod(dir.Sub("node.key").c_str(), 0644);
  auto k = LoadOrCreateNodeKey(dir.Sub("node.key"), &created);
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), "insecure_file");
  EXPECT_NE(k.status().message().find("chmod 600"), std::string::npos);
}

TEST(NodeKeyFile, RefusesGarbage) {
  TempDir dir;
  ASSERT_TRUE(files::WriteFileAtomic(dir.Sub("node.key"), "not hex\n", 0600).ok());
  bool created = false;
  EXPECT_EQ(LoadOrCreateNodeKey(dir.Sub("node.key"), &created).status().code(), "bad_key_file");
}

TEST(TokenFile, CreatedOnceWithMode0600) {
  TempDir dir;
  auto a = LoadOrCreateToken(dir.Sub("admin.token"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->size(), 64u);
  EXPECT_EQ(ModeOf(dir.Sub("admin.token")), 0600u);
  EXPECT_EQ(*LoadOrCreateToken(dir.Sub("admin.token")), *a);
}

TEST(BlobStore, StoresByHashReadOnlyAndDetectsCorruption) {
  TempDir dir;
  BlobStore blobs(dir.Sub("blobs"));
  auto hash = blobs.Put("plugin bytes");
  ASSERT_TRUE(hash.ok());
  EXPECT_EQ(*hash, crypto::Sha256Hex("plugin bytes"));
  EXPECT_EQ(*blobs.Get(*hash, 1024), "plugin bytes");
  EXPECT_EQ(ModeOf(*blobs.PathOf(*hash)), 0444u);
  EXPECT_EQ(blobs.PathOf("../etc/passwd").status().code(), "invalid_argument");
  ::chmod(blobs.PathOf(*hash)->c_str(), 0644);
  test::WriteFile(*blobs.PathOf(*hash), "tampered");
  EXPECT_EQ(blobs.Get(*hash, 1024).status().code(), "corrupt");
}

TEST(Files, WriteFileAtomicSetsExactModeDespiteUmask) {
  TempDir dir;
  const mode_t old = ::umask(0);
  ASSERT_TRUE(files::WriteFileAtomic(dir.Sub("f"), "x", 0600).ok());
  ::umask(old);
  EXPECT_EQ(ModeOf(dir.Sub("f")), 0600u);
  EXPECT_EQ(*files::ReadFile(dir.Sub("f"), 10), "x");
  EXPECT_EQ(files::ReadFile(dir.Sub("f"), 0).status().code(), "too_large");
  EXPECT_EQ(files::ReadFile(dir.Sub("missing"), 10).status().code(), "not_found");
}

}  // namespace
}  // namespace peerstack::store
