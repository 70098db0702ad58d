// The plugin host in process (no `peerstack run`): loading, the loaded set as values, routes,
// deferred answers on its worker pool, refusals with their reasons, and the time limit.
#include "plugins/plugin_host.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <condition_variable>
#include <mutex>
#include <optional>

#include "crypto/encoding.h"
#include "crypto/sha256.h"
#include "support/test_node.h"

namespace peerstack::plugins {
namespace {

using namespace std::chrono_literals;

// What a server gives a handler that answers later: here, a slot the test waits on.
class Capture final : public http::Deferrer {
 public:
  std::shared_ptr<http::Responder> Defer() override { return std::make_shared<Slot>(this); }
  std::optional<http::Response> Wait(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return response_.has_value(); });
    return response_;
  }

 private:
  struct Slot final : http::Responder {
    explicit Slot(Capture* owner) : c(owner) {}
    void Send(http::Response r) override {
      std::lock_guard<std::mutex> lock(c->mu_);
      if (!c->response_) c->response_ = std::move(r);
      c->cv_.notify_all();
    }
    Capture* c;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<http::Response> response_;
};

class PluginHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::mkdir(dir_.Sub("plugins").c_str(), 0755);
    auto st = store::OpenSqliteStore(dir_.Sub("state.db"));
    ASSERT_TRUE(st.ok());
    store_ = std::move(st).value();
  }
  void StartHost(std::chrono::milliseconds timeout = 10s) {
    PluginHostOptions o;
    o.plugins_dir = dir_.Sub("plugins");
    o.cache_dir = dir_.Sub("cache");
    o.store = store_;
    o.appdata = Replica();
    o.timeout = timeout;
    host_ = std::make_unique<PluginHost>(o);
    host_->Start();
  }
  // A request through the host, answered at once or later (deferred): the answer.
  std::optional<http::Response> Call(const std::string& method, const std::string& path,
                                     const std::string& body, bool admin) {
    http::Request r;
    r.method = method;
    r.target = r.path = path;
    r.body = body;
    r.headers = {{"host", "x"}, {"content-type", "application/json"}};
    Capture capture;
    r.deferrer = &capture;
    http::Response direct = host_->Handle(r, admin);
    if (!direct.deferred) return direct;
    return capture.Wait(5s);
  }
  void TearDown() override {
    if (host_) host_->Stop();
  }
  // Replicated collections for the plugins, on a one-member network whose publisher this
  // node is (the blog's posts may be written).
  std::shared_ptr<appdata::Replica> Replica() {
    if (replica_) return replica_;
    appdata::ReplicaOptions ro;
    ro.db_path = dir_.Sub("state.db");
    ro.clock = &clock_;
    ro.key = std::make_unique<crypto::SigningKey>(crypto::SigningKey::Generate());
    const std::string self =
        crypto::HexEncode(ro.key->public_key().data(), ro.key->public_key().size());
    ro.random = [] { return uint64_t{4}; };
    auto r = appdata::Replica::Open(std::move(ro));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    replica_ = std::move(r).value();
    appdata::Authority a;
    a.network_id = std::string(64, 'a');
    a.keys[self] = {"node", {{0, INT64_MAX}}, {{0, INT64_MAX}}};
    replica_->SetAuthority(std::move(a), {});
    return replica_;
  }

  test::TempDir dir_;
  std::shared_ptr<store::Store> store_;
  SystemClock clock_;
  std::shared_ptr<appdata::Replica> replica_;
  std::unique_ptr<PluginHost> host_;
};

TEST_F(PluginHostTest, LoadsPluginsAndReportsThemAsValues) {
  test::CopyFile(test::BuiltPlugin("hello"), dir_.Sub("plugins/libhello.so"));
  test::CopyFile(test::BuiltPlugin("blog"), dir_.Sub("plugins/libblog.so"));
  test::CopyFile(test::FixturePlugin("wrong_major"), dir_.Sub("plugins/libwrong_major.so"));
  StartHost();
  const PluginSet set = host_->Plugins();
  ASSERT_EQ(set.loaded.size(), 2u);
  EXPECT_EQ(set.loaded[0].name, "blog");  // by name
  EXPECT_EQ(set.loaded[1].name, "hello");
  EXPECT_EQ(set.loaded[1].sha256,
            crypto::Sha256Hex(test::ReadFileOrEmpty(dir_.Sub("plugins/libhello.so"))));
  EXPECT_TRUE(set.loaded[1].nonblocking);
  bool private_post = false;
  for (const PluginRoute& r : set.loaded[0].routes)
    private_post |= r.method == "POST" && r.is_private;
  EXPECT_TRUE(private_post);
  ASSERT_EQ(set.failed.size(), 1u);
  EXPECT_EQ(set.failed[0].file, "libwrong_major.so");
  EXPECT_NE(set.failed[0].reason.find("major"), std::string::npos) << set.failed[0].reason;
  // The JSON of /status is built from the same values.
  EXPECT_EQ(json::Serialize(host_->StatusJson()), json::Serialize(ToJson(set)));
}

TEST_F(PluginHostTest, ServesRoutesDirectlyOrOnItsWorkersAndKeepsPrivateOnesPrivate) {
  test::CopyFile(test::BuiltPlugin("hello"), dir_.Sub("plugins/libhello.so"));
  test::CopyFile(test::BuiltPlugin("blog"), dir_.Sub("plugins/libblog.so"));
  StartHost();
  auto hello = Call("GET", "/api/hello/", "", false);  // non-blocking: answered on this thread
  ASSERT_TRUE(hello.has_value());
  EXPECT_EQ(hello->status, 200);
  auto created =
      Call("POST", "/api/blog/posts", R"({"title":"t","body":"b"})", true);  // on a worker
  ASSERT_TRUE(created.has_value());
  EXPECT_EQ(created->status, 201) << created->body;
  auto listed = Call("GET", "/api/blog/posts", "", false);
  ASSERT_TRUE(listed.has_value());
  EXPECT_NE(listed->body.find("\"title\":\"t\""), std::string::npos) << listed->body;
  auto on_public = Call("POST", "/api/blog/posts", R"({"title":"t","body":"b"})", false);
  ASSERT_TRUE(on_public.has_value());
  EXPECT_TRUE(on_public->status == 404 || on_public->status == 405) << on_public->status;
  EXPECT_EQ(Call("GET", "/api/nosuch/", "", false)->status, 404);
}

TEST_F(PluginHostTest, AHandlerPastTheTimeLimitIsAnswered504) {
  test::CopyFile(test::FixturePlugin("hangs"), dir_.Sub("plugins/libhangs.so"));
  StartHost(/*timeout=*/200ms);
  ASSERT_EQ(host_->Plugins().loaded.size(), 1u);
  const std::string name = host_->Plugins().loaded[0].name;
  const std::string path = host_->Plugins().loaded[0].routes.at(0).path;
  const auto start = std::chrono::steady_clock::now();
  auto r = Call(host_->Plugins().loaded[0].routes.at(0).method, path, "", true);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 504) << name;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

}  // namespace
}  // namespace peerstack::plugins
