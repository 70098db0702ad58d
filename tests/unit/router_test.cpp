#include "http/router.h"

#include <gtest/gtest.h>

namespace peerstack::http {
namespace {

Response Text(std::string body) {
  Response r;
  r.body = std::move(body);
  return r;
}

Request Req(std::string method, std::string path) {
  Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  return r;
}

TEST(Router, DispatchesExactAndPrefixRoutes) {
  Router router;
  router.Add("GET", "/nodes", [](const Request&) { return Text("nodes"); });
  router.AddPrefix("*", "/api/", [](const Request&) { return Text("api"); });
  EXPECT_EQ(router.Handle(Req("GET", "/nodes")).body, "nodes");
  EXPECT_EQ(router.Handle(Req("HEAD", "/nodes")).body, "nodes");
  EXPECT_EQ(router.Handle(Req("DELETE", "/api/x/y")).body, "api");
  EXPECT_EQ(router.Handle(Req("GET", "/nodes/")).status, 404);
  EXPECT_EQ(router.Handle(Req("GET", "/missing")).status, 404);
}

TEST(Router, AnswersMethodNotAllowedWithAllow) {
  Router router;
  router.Add("GET", "/nodes", [](const Request&) { return Text("nodes"); });
  const Response r = router.Handle(Req("POST", "/nodes"));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(*r.header("allow"), "GET, HEAD");
}

TEST(Router, UsesTheFallbackForUnclaimedPaths) {
  Router router;
  router.SetFallback([](const Request& r) { return Text("front:" + r.path); });
  EXPECT_EQ(router.Handle(Req("GET", "/a/b")).body, "front:/a/b");
}

}  // namespace
}  // namespace peerstack::http
