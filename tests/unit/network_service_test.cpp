// The network service in process (no `peerstack run`): its store, its transport and a fake
// clock, driven through the typed operations the admin routes use.
#include "node/network_service.h"

#include <gtest/gtest.h>

#include <atomic>

#include "crypto/sha256.h"
#include "support/test_support.h"

namespace peerstack::node {
namespace {

using namespace std::chrono_literals;

// A store that can be told to refuse writes (a full disk), reading through to SQLite.
class FlakyStore final : public store::Store {
 public:
  explicit FlakyStore(store::StorePtr inner) : inner_(std::move(inner)) {}
  std::atomic<bool> full{false};
  Status Write(const store::WriteBatch& b) override {
    if (full) return Status::Error("io_error", "database or disk is full");
    return inner_->Write(b);
  }
  Result<std::optional<store::EventRecord>> GetEvent(const std::string& h) override {
    return inner_->GetEvent(h);
  }
  Result<std::vector<store::EventRecord>> Events() override { return inner_->Events(); }
  Result<std::optional<std::string>> GetMeta(const std::string& k) override {
    return inner_->GetMeta(k);
  }
  Result<std::optional<std::string>> KvGet(const std::string& ns, const std::string& k) override {
    return inner_->KvGet(ns, k);
  }
  Status KvPut(const std::string& ns, const std::string& k, const std::string& v) override {
    return inner_->KvPut(ns, k, v);
  }
  Status KvDelete(const std::string& ns, const std::string& k) override {
    return inner_->KvDelete(ns, k);
  }
  Result<std::vector<std::pair<std::string, std::string>>> KvList(const std::string& ns,
                                                                  const std::string& p,
                                                                  size_t limit) override {
    return inner_->KvList(ns, p, limit);
  }
  Status Close() override { return inner_->Close(); }

 private:
  store::StorePtr inner_;
};

class NetworkServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    transport::TransportOptions to;
    to.clock = &clock_;
    transport_ = std::make_unique<transport::Transport>(to);
    transport_->Start();
  }
  std::unique_ptr<NetworkService> Open() {
    auto inner = store::OpenSqliteStore(dir_.Sub("state.db"));
    EXPECT_TRUE(inner.ok());
    store_ = std::make_shared<FlakyStore>(std::move(inner).value());
    NetworkOptions o;
    o.key = std::make_unique<crypto::SigningKey>(key_);
    o.store = store_;
    o.clock = &clock_;
    o.transport = transport_.get();
    auto service = std::make_unique<NetworkService>(std::move(o));
    EXPECT_TRUE(service->Start("http://127.0.0.1:9").ok());
    return service;
  }

  test::TempDir dir_;
  FakeClock clock_;
  crypto::SigningKey key_ = crypto::SigningKey::Generate();
  std::unique_ptr<transport::Transport> transport_;
  std::shared_ptr<FlakyStore> store_;
};

protocol::Manifest ManifestFor(const std::string& network, int64_t version) {
  protocol::Manifest m;
  m.network = network;
  m.version = version;
  m.created_ms = 1;
  m.expires_ms = 4'000'000'000'000;
  m.files = {{"plugin", "libblog.so", crypto::Sha256Hex("plugin bytes"), 12}};
  return m;
}

TEST_F(NetworkServiceTest, AFirstNodeCreatesTheNetworkAndPublishesWithTheInjectedClock) {
  auto service = Open();
  ASSERT_TRUE(service->is_member());
  const protocol::Manifest m = ManifestFor(service->network_id(), 1);
  ASSERT_TRUE(service->PublishRelease(m, {protocol::SignManifest(key_, m)}).ok());
  EXPECT_EQ(*service->StatusJson().find_int("release"), 1);
  // A report, then what the release manager sees of it.
  auto view = service->ReleaseView();
  ASSERT_TRUE(view.current.manifest.has_value());
  EXPECT_EQ(view.current.version, 1);
  EXPECT_EQ(view.current.time_ms, clock_.WallMs());  // the fake clock's time
  EXPECT_TRUE(service->ReportRelease(view.current.event, "healthy", "").ok());
  EXPECT_EQ(service->ReleaseView().current.reports.size(), 1u);
  // Publishing the same version again is a rollback.
  EXPECT_EQ(service->PublishRelease(m, {protocol::SignManifest(key_, m)}).code(), "bad_event");
  // The operations' own refusals, as values.
  EXPECT_EQ(service->Join("").status().code(), "no_url");
  EXPECT_EQ(service->Join("ftp://x").status().code(), "bad_url");
  EXPECT_EQ(service->Join("http://127.0.0.1:1").status().code(), "already_member");
  EXPECT_EQ(service->Evict("nobody").code(), "not_found");
  EXPECT_EQ(service->Recover(std::vector<std::string>{"nobody"}).status().code(), "nobody_kept");
  EXPECT_FALSE(service->Leave().ok()) << "the last member cannot leave";
  // What was stored comes back after a restart.
  service->Stop();
  service.reset();
  auto again = Open();
  EXPECT_EQ(*again->StatusJson().find_int("release"), 1);
  EXPECT_EQ(*again->StatusJson().find_int("events"), 3);
}

TEST_F(NetworkServiceTest, AWriteTheStoreRefusesIsNotAcknowledged) {
  auto service = Open();
  store_->full = true;
  const protocol::Manifest m = ManifestFor(service->network_id(), 1);
  const Status published = service->PublishRelease(m, {protocol::SignManifest(key_, m)});
  ASSERT_FALSE(published.ok());
  EXPECT_EQ(published.code(), "cannot_store");
  EXPECT_NE(published.message().find("disk is full"), std::string::npos);
  store_->full = false;
  // Nothing of it on disk: after a restart there is no release.
  service->Stop();
  service.reset();
  auto again = Open();
  EXPECT_EQ(*again->StatusJson().find_int("events"), 1);
}

}  // namespace
}  // namespace peerstack::node
