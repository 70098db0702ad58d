// The SDK without a daemon: a GoogleMock host behind a C callback table drives plugin.hpp
// and the example plugins (loaded with dlopen, exactly as built).
#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <optional>

#include "crypto/sha256.h"
#include "peerstack/plugin.hpp"
#include "support/test_support.h"

namespace peerstack::sdk {
namespace {

using ::testing::_;
using ::testing::HasSubstr;
using ::testing::Invoke;
using ::testing::Return;
using ::testing::StrictMock;

// What a host does, as mockable C++.
class MockHost {
 public:
  MOCK_METHOD(void, Log, (ps_log_level, std::string));
  MOCK_METHOD(std::string, Info, (ps_info_key));
  MOCK_METHOD(std::optional<std::string>, KvGet, (std::string));
  MOCK_METHOD(ps_status, KvPut, (std::string, std::string));
  MOCK_METHOD(ps_status, KvDelete, (std::string));
  MOCK_METHOD((std::vector<std::pair<std::string, std::string>>), KvList, (std::string, size_t));
  // ABI 1.1: replicated collections.
  MOCK_METHOD(std::optional<std::string>, RepGet, (std::string, std::string));
  MOCK_METHOD(ps_status, RepPut, (std::string, std::string, std::string));
  MOCK_METHOD(ps_status, RepDelete, (std::string, std::string));
  MOCK_METHOD((std::vector<std::pair<std::string, std::string>>), RepList,
              (std::string, std::string, size_t));
  MOCK_METHOD(uint64_t, RepChanges, (std::string));
};

struct FakeResponse {
  int status = 200;
  std::map<std::string, std::string> headers;
  std::string body;
};

MockHost* M(ps_host* h) { return reinterpret_cast<MockHost*>(h); }
FakeResponse* R(ps_response* r) { return reinterpret_cast<FakeResponse*>(r); }

// The C table a real host would pass, forwarding to the mock.
ps_host_api MockApi() {
  ps_host_api api{};
  api.struct_size = sizeof api;
  api.abi_major = PEERSTACK_PLUGIN_ABI_MAJOR;
  api.abi_minor = PEERSTACK_PLUGIN_ABI_MINOR;
  api.log_enabled = [](ps_host*, ps_log_level) { return 1; };
  api.log = [](ps_host* h, ps_log_level l, ps_str m) { M(h)->Log(l, std::string(FromPs(m))); };
  api.info = [](ps_host* h, ps_info_key k, char* buf, size_t cap) {
    const std::string v = M(h)->Info(k);
    std::memcpy(buf, v.data(), std::min(cap, v.size()));
    return v.size();
  };
  api.config = [](ps_host*, ps_bytes_sink sink, void* user) { sink(user, ToPs("{}")); };
  api.kv_get = [](ps_host* h, ps_str k, ps_bytes_sink sink, void* user) {
    auto v = M(h)->KvGet(std::string(FromPs(k)));
    if (!v) return PS_ERR_NOT_FOUND;
    sink(user, ToPs(*v));
    return PS_OK;
  };
  api.kv_put = [](ps_host* h, ps_str k, ps_str v) {
    return M(h)->KvPut(std::string(FromPs(k)), std::string(FromPs(v)));
  };
  api.kv_delete = [](ps_host* h, ps_str k) { return M(h)->KvDelete(std::string(FromPs(k))); };
  api.kv_list = [](ps_host* h, ps_str p, size_t limit, ps_kv_sink sink, void* user) {
    for (const auto& [k, v] : M(h)->KvList(std::string(FromPs(p)), limit)) {
      sink(user, ToPs(k), ToPs(v));
    }
    return PS_OK;
  };
  api.rep_get = [](ps_host* h, ps_str c, ps_str k, ps_bytes_sink sink, void* user) {
    auto v = M(h)->RepGet(std::string(FromPs(c)), std::string(FromPs(k)));
    if (!v) return PS_ERR_NOT_FOUND;
    sink(user, ToPs(*v));
    return PS_OK;
  };
  api.rep_put = [](ps_host* h, ps_str c, ps_str k, ps_str v) {
    return M(h)->RepPut(std::string(FromPs(c)), std::string(FromPs(k)), std::string(FromPs(v)));
  };
  api.rep_delete = [](ps_host* h, ps_str c, ps_str k) {
    return M(h)->RepDelete(std::string(FromPs(c)), std::string(FromPs(k)));
  };
  api.rep_list = [](ps_host* h, ps_str c, ps_str p, size_t limit, ps_kv_sink sink, void* user) {
    for (const auto& [k, v] :
         M(h)->RepList(std::string(FromPs(c)), std::string(FromPs(p)), limit)) {
      sink(user, ToPs(k), ToPs(v));
    }
    return PS_OK;
  };
  api.rep_changes = [](ps_host* h, ps_str c) { return M(h)->RepChanges(std::string(FromPs(c))); };
  api.response_status = [](ps_response* r, int s) {
    R(r)->status = s;
    return PS_OK;
  };
  api.response_header = [](ps_response* r, ps_str n, ps_str v) {
    R(r)->headers[std::string(FromPs(n))] = std::string(FromPs(v));
    return PS_OK;
  };
  api.response_write = [](ps_response* r, ps_str b) {
    R(r)->body.append(FromPs(b));
    return PS_OK;
  };
  return api;
}

// A request as the host would pass it.
struct TestRequest {
  std::string method = "GET", path = "/", body;
  std::vector<std::pair<std::string, std::string>> params;
  std::vector<ps_param> c_params;
  ps_request req{};
  const ps_request* get() {
    c_params.clear();
    for (const auto& [k, v] : params) c_params.push_back({ToPs(k), ToPs(v)});
    req = ps_request{};
    req.struct_size = sizeof req;
    req.method = ToPs(method);
    req.path = ToPs(path);
    req.route_path = ToPs(path);
    req.body = ToPs(body);
    req.params = c_params.data();
    req.param_count = c_params.size();
    return &req;
  }
};

// A plugin compiled into the test.
class Sample : public Plugin {
 public:
  Sample() : Plugin("sample", "1.2.3") {
    Get("/items/:id", [](const Request& req, Response& res) {
      res.Json(200, Json::Object{{"id", std::string(req.param("id"))}});
    });
    Post("/fail", [](const Request&, Response&) { throw std::runtime_error("boom"); });
    Post("/teapot", [](const Request&, Response&) { throw HttpError(418, "teapot", "short"); });
    Post("/weird", [](const Request&, Response&) { throw 7; });
    Private("DELETE", "/items/:id", [](const Request&, Response& res) { res.Status(204); });
  }
};

class SdkTest : public ::testing::Test {
 protected:
  ps_host* host() { return reinterpret_cast<ps_host*>(&mock_); }
  StrictMock<MockHost> mock_;
  ps_host_api api_ = MockApi();
};

TEST_F(SdkTest, DescriptorListsRoutesWithIdsAndFlags) {
  const ps_plugin* d = detail::Entry<Sample>(&api_, host());
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->struct_size, sizeof(ps_plugin));
  EXPECT_EQ(d->abi_major, PEERSTACK_PLUGIN_ABI_MAJOR);
  EXPECT_STREQ(d->name, "sample");
  EXPECT_STREQ(d->version, "1.2.3");
  ASSERT_EQ(d->route_count, 5u);
  EXPECT_STREQ(d->routes[0].pattern, "/items/:id");
  EXPECT_EQ(d->routes[4].flags, static_cast<uint32_t>(PS_ROUTE_PRIVATE));
  EXPECT_EQ(d->routes[4].id, 4u);
  EXPECT_EQ(d->init(d->state), PS_OK);
  d->shutdown(d->state);  // frees the instance
}

TEST_F(SdkTest, DispatchesWithParamsAndTurnsExceptionsIntoStatuses) {
  const ps_plugin* d = detail::Entry<Sample>(&api_, host());
  TestRequest tr;
  tr.params = {{"id", "42"}};
  FakeResponse ok;
  EXPECT_EQ(d->handle(d->state, 0, tr.get(), reinterpret_cast<ps_response*>(&ok)), PS_OK);
  EXPECT_EQ(ok.body, R"({"id":"42"})");
  EXPECT_EQ(ok.headers["content-type"], "application/json");

  FakeResponse teapot;
  EXPECT_EQ(d->handle(d->state, 2, tr.get(), reinterpret_cast<ps_response*>(&teapot)), PS_OK);
  EXPECT_EQ(teapot.status, 418);
  EXPECT_THAT(teapot.body, HasSubstr(R"("code":"teapot")"));

  EXPECT_CALL(mock_, Log(PS_LOG_ERROR, HasSubstr("boom")));
  FakeResponse fail;
  EXPECT_EQ(d->handle(d->state, 1, tr.get(), reinterpret_cast<ps_response*>(&fail)),
            PS_ERR_INTERNAL);
  EXPECT_CALL(mock_, Log(PS_LOG_ERROR, HasSubstr("non-standard")));
  EXPECT_EQ(d->handle(d->state, 3, tr.get(), reinterpret_cast<ps_response*>(&fail)),
            PS_ERR_INTERNAL);
  FakeResponse unknown;
  EXPECT_EQ(d->handle(d->state, 99, tr.get(), reinterpret_cast<ps_response*>(&unknown)), PS_OK);
  EXPECT_EQ(unknown.status, 404);
  d->shutdown(d->state);
}

TEST_F(SdkTest, EntryRefusesAnotherAbiMajor) {
  ps_host_api other = api_;
  other.abi_major = 2;
  EXPECT_EQ(detail::Entry<Sample>(&other, host()), nullptr);
}

// Loads a built example plugin exactly as the host would, minus the daemon.
class ExamplePlugin {
 public:
  explicit ExamplePlugin(const std::string& path) {
    handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_)
      entry_ = reinterpret_cast<ps_plugin_entry_fn>(::dlsym(handle_, "peerstack_plugin_entry"));
  }
  ~ExamplePlugin() {
    if (handle_) ::dlclose(handle_);
  }
  ps_plugin_entry_fn entry() const { return entry_; }

 private:
  void* handle_ = nullptr;
  ps_plugin_entry_fn entry_ = nullptr;
};

TEST_F(SdkTest, HelloAnswersWithTheNodeIdAndItsVersion) {
  ExamplePlugin lib(std::string(PEERSTACK_BUILD_DIR) + "/plugins/libhello.so");
  ASSERT_NE(lib.entry(), nullptr);
  const ps_plugin* d = lib.entry()(&api_, host());
  ASSERT_NE(d, nullptr);
  EXPECT_STREQ(d->name, "hello");
  EXPECT_TRUE(d->flags & PS_PLUGIN_CONCURRENT);
  EXPECT_CALL(mock_, Info(PS_INFO_NODE_ID)).WillOnce(Return("node-abc"));
  EXPECT_CALL(mock_, Log(PS_LOG_INFO, _));
  ASSERT_EQ(d->init(d->state), PS_OK);
  TestRequest tr;
  FakeResponse res;
  ASSERT_EQ(d->handle(d->state, 0, tr.get(), reinterpret_cast<ps_response*>(&res)), PS_OK);
  EXPECT_EQ(res.body,
            R"({"greeting":"hello","node":"node-abc","plugin":"hello","version":"1.0.0"})");
  d->shutdown(d->state);
}

TEST_F(SdkTest, BlogKeepsPostsAndCommentsInItsReplicatedCollections) {
  ExamplePlugin lib(std::string(PEERSTACK_BUILD_DIR) + "/plugins/libblog.so");
  ASSERT_NE(lib.entry(), nullptr);
  const ps_plugin* d = lib.entry()(&api_, host());
  ASSERT_NE(d, nullptr);
  // ABI 1.1: two collections, posts written by publishers, comments under each member's keys.
  ASSERT_EQ(d->abi_minor, 1u);
  ASSERT_EQ(d->collection_count, 2u);
  EXPECT_STREQ(d->collections[0].name, "posts");
  EXPECT_EQ(d->collections[0].rule, static_cast<uint32_t>(PS_REP_PUBLISHERS));
  EXPECT_STREQ(d->collections[1].name, "comments");
  EXPECT_EQ(d->collections[1].rule, static_cast<uint32_t>(PS_REP_OWN_KEYS));
  std::map<std::string, std::string> kv;                                  // the mock host's store
  std::map<std::pair<std::string, std::string>, std::string> replicated;  // (collection, key)
  EXPECT_CALL(mock_, KvGet(_)).WillRepeatedly(Invoke([&](std::string k) {
    auto it = kv.find(k);
    return it == kv.end() ? std::nullopt : std::optional<std::string>(it->second);
  }));
  EXPECT_CALL(mock_, KvPut(_, _)).WillRepeatedly(Invoke([&](std::string k, std::string v) {
    kv[k] = v;
    return PS_OK;
  }));
  EXPECT_CALL(mock_, KvList(_, _))
      .WillRepeatedly(Return(std::vector<std::pair<std::string, std::string>>{}));
  EXPECT_CALL(mock_, RepGet(_, _)).WillRepeatedly(Invoke([&](std::string c, std::string k) {
    auto it = replicated.find({c, k});
    return it == replicated.end() ? std::nullopt : std::optional<std::string>(it->second);
  }));
  EXPECT_CALL(mock_, RepPut(_, _, _))
      .WillRepeatedly(Invoke([&](std::string c, std::string k, std::string v) {
        replicated[{c, k}] = v;
        return PS_OK;
      }));
  EXPECT_CALL(mock_, RepList(_, _, _))
      .WillRepeatedly(Invoke([&](std::string c, std::string prefix, size_t) {
        std::vector<std::pair<std::string, std::string>> out;
        for (const auto& [ck, v] : replicated) {
          if (ck.first == c && ck.second.rfind(prefix, 0) == 0) out.emplace_back(ck.second, v);
        }
        return out;
      }));
  EXPECT_CALL(mock_, Info(PS_INFO_NODE_ID)).WillRepeatedly(Return("node-abc"));
  EXPECT_CALL(mock_, Log(PS_LOG_INFO, HasSubstr("created post 1")));
  auto route = [&](const char* method, const char* pattern) {
    for (size_t i = 0; i < d->route_count; ++i) {
      if (std::string(d->routes[i].method) == method &&
          std::string(d->routes[i].pattern) == pattern) {
        return d->routes[i].id;
      }
    }
    ADD_FAILURE() << "no route " << method << " " << pattern;
    return uint32_t{0};
  };
  TestRequest post;
  post.method = "POST";
  post.body = R"({"title":"T","body":"B"})";
  FakeResponse created;
  ASSERT_EQ(d->handle(d->state, route("POST", "/posts"), post.get(),
                      reinterpret_cast<ps_response*>(&created)),
            PS_OK);
  EXPECT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(kv["next_id"], "2");
  EXPECT_THAT((replicated[{"posts", "post:000000000001"}]), HasSubstr(R"("title":"T")"));

  TestRequest bad;
  bad.method = "POST";
  bad.body = "{\"title\": 5}";
  FakeResponse refused;
  ASSERT_EQ(d->handle(d->state, route("POST", "/posts"), bad.get(),
                      reinterpret_cast<ps_response*>(&refused)),
            PS_OK);
  EXPECT_EQ(refused.status, 400);

  TestRequest comment;
  comment.method = "POST";
  comment.params = {{"id", "1"}};
  comment.body = R"({"body":"nice"})";
  FakeResponse commented;
  ASSERT_EQ(d->handle(d->state, route("POST", "/posts/:id/comments"), comment.get(),
                      reinterpret_cast<ps_response*>(&commented)),
            PS_OK);
  EXPECT_EQ(commented.status, 201) << commented.body;
  bool keyed_by_node = false;
  for (const auto& [ck, v] : replicated)
    keyed_by_node |= ck.first == "comments" && ck.second.rfind("node-abc/000000000001/", 0) == 0;
  EXPECT_TRUE(keyed_by_node) << "a comment's key starts with its author's node id";

  TestRequest one;
  one.params = {{"id", "1"}};
  FakeResponse got;
  ASSERT_EQ(d->handle(d->state, route("GET", "/posts/:id"), one.get(),
                      reinterpret_cast<ps_response*>(&got)),
            PS_OK);
  EXPECT_THAT(got.body, HasSubstr(R"("id":1)"));
  EXPECT_THAT(got.body, HasSubstr(R"("body":"nice")"));
  one.params = {{"id", "7"}};
  FakeResponse missing;
  ASSERT_EQ(d->handle(d->state, route("GET", "/posts/:id"), one.get(),
                      reinterpret_cast<ps_response*>(&missing)),
            PS_OK);
  EXPECT_EQ(missing.status, 404);
  // A replicated write the host forbids (not a publisher) is a 403 with the reason.
  EXPECT_CALL(mock_, RepPut("posts", _, _)).WillOnce(Return(PS_ERR_FORBIDDEN));
  FakeResponse forbidden;
  ASSERT_EQ(d->handle(d->state, route("POST", "/posts"), post.get(),
                      reinterpret_cast<ps_response*>(&forbidden)),
            PS_OK);
  EXPECT_EQ(forbidden.status, 403) << forbidden.body;
  d->shutdown(d->state);
}

TEST(RoutePatterns, MatchSegmentsAndParameters) {
  std::vector<std::pair<std::string, std::string>> params;
  EXPECT_TRUE(MatchPattern("/", "/", &params));
  EXPECT_TRUE(MatchPattern("/", "", &params));
  EXPECT_TRUE(MatchPattern("/posts", "/posts/", &params));
  EXPECT_TRUE(MatchPattern("/posts/:id", "/posts/42", &params));
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params[0], (std::pair<std::string, std::string>{"id", "42"}));
  EXPECT_TRUE(MatchPattern("/a/:x/b/:y", "/a/1/b/2", &params));
  EXPECT_EQ(params.size(), 2u);
  EXPECT_FALSE(MatchPattern("/posts/:id", "/posts/", &params));
  EXPECT_FALSE(MatchPattern("/posts/:id", "/posts/1/2", &params));
  EXPECT_FALSE(MatchPattern("/posts", "/post", &params));
  EXPECT_FALSE(MatchPattern("/", "/x", &params));
}

TEST(RoutePatterns, ValidatesPatterns) {
  for (const char* ok : {"/", "/posts", "/posts/", "/posts/:id", "/a-b/c.d/~e", "/:x/:y_2"}) {
    EXPECT_TRUE(ValidPattern(ok)) << ok;
  }
  for (const char* bad : {"", "posts", "//", "/a//b", "/:", "/a b", "/../x", "/a/:x-y", "/%2e"}) {
    EXPECT_FALSE(ValidPattern(bad)) << bad;
  }
}

TEST(SdkJson, ParsesStrictlyAndRoundTrips) {
  auto v = Json::Parse(R"({"a":[1,2.5,"x\u00e9\ud83d\ude00"],"b":{"c":null,"d":true}})");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->Dump(),
            "{\"a\":[1,2.5,\"x\xc3\xa9\xf0\x9f\x98\x80\"],\"b\":{\"c\":null,\"d\":true}}");
  for (const char* bad :
       {"{\"a\":1,\"a\":2}", "{} x", "[1,]", "\"\\ud800\"", "01", "{a:1}", "\"tab\there\""}) {
    std::string error;
    EXPECT_FALSE(Json::Parse(bad, &error).has_value()) << bad;
    EXPECT_FALSE(error.empty());
  }
  EXPECT_EQ(Json(std::string("q\"\n")).Dump(), R"("q\"\n")");
}

// Found by tests/fuzz/sdk_json_fuzz.cpp: Dump converted every number to int64 before checking
// its range (undefined behaviour for 1e300; UBSan in the sanitizer pass stops on it).
TEST(SdkJson, DumpsNumbersBeyondInt64) {
  for (const char* text : {"1e300", "-1e300", "9007199254740993", "1e-300", "-0"}) {
    auto v = Json::Parse(text);
    ASSERT_TRUE(v.has_value()) << text;
    auto again = Json::Parse(v->Dump());
    ASSERT_TRUE(again.has_value()) << v->Dump();
    EXPECT_EQ(again->as_number(), v->as_number()) << text;
  }
  EXPECT_EQ(Json(1e300).Dump(), "1.0000000000000001e+300");
  EXPECT_EQ(Json(-0.0).Dump(), "0");
}

// plugin.h is the ABI: changing it without bumping the version must fail here. When you
// change it on purpose: bump PEERSTACK_PLUGIN_ABI_MINOR (or MAJOR), follow the compatibility
// policy at the top of plugin.h, and record the new version and hash below.
TEST(PluginAbi, HeaderHashMatchesTheRecordedVersion) {
  const std::string header = test::ReadFileOrEmpty(std::string(PEERSTACK_SOURCE_DIR) +
                                                   "/plugin-sdk/include/peerstack/plugin.h");
  ASSERT_FALSE(header.empty());
  const std::map<std::string, std::string> kRecorded = {
      {"1.0", "7ad5a7828432dc20a2e45f4fe6cb7c9442fd307763c82f8f78406e5759db0d6c"},
      {"1.1", "d1a0f375947f0756575ef9b577e76f7bbc0d4aeb25910e55f70d919aa5c0292c"},
  };
  const std::string version =
      std::to_string(PEERSTACK_PLUGIN_ABI_MAJOR) + "." + std::to_string(PEERSTACK_PLUGIN_ABI_MINOR);
  ASSERT_TRUE(kRecorded.count(version)) << "record the hash of plugin.h for ABI " << version;
  EXPECT_EQ(crypto::Sha256Hex(header), kRecorded.at(version))
      << "plugin.h changed but PEERSTACK_PLUGIN_ABI_MAJOR/MINOR did not";
}

// Every plugin the build makes exports exactly one symbol: the entry point.
TEST(PluginAbi, BuiltPluginsExportOnlyTheEntryPoint) {
  const std::string build = PEERSTACK_BUILD_DIR;
  for (const std::string& lib : {build + "/plugins/libhello.so", build + "/plugins/libblog.so",
                                 build + "/tests/fixtures/plugins/libgood.so",
                                 build + "/tests/fixtures/plugins/libthrows.so",
                                 build + "/tests/fixtures/plugins/libhello_v2.so"}) {
    std::string out;
    ASSERT_EQ(test::RunCommand({"nm", "-D", "--defined-only", lib}, &out), 0) << lib << out;
    EXPECT_THAT(out, HasSubstr(" T peerstack_plugin_entry")) << lib;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << lib << ":\n" << out;
  }
}

}  // namespace
}  // namespace peerstack::sdk
