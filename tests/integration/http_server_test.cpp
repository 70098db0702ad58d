// The HTTP server in-process, on port 0, driven with raw sockets so every byte is the test's.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <thread>

#include "http/client.h"
#include "http/server.h"
#include "support/test_support.h"

namespace peerstack::http {
namespace {

using namespace std::chrono_literals;
using test::RawConnection;

class ServerTest : public ::testing::Test {
 protected:
  void Start(Limits limits = {}) {
    ServerOptions o;
    o.name = "test";
    o.port = 0;
    o.threads = 2;
    o.limits = limits;
    o.handler = [this](const Request& r) { return Handle(r); };
    server_ = MakeServer(std::move(o));
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }

  Response Handle(const Request& r) {
    executed_.fetch_add(1);
    if (r.path == "/throw") throw std::runtime_error("secret internal detail");
    if (r.path == "/throw-int") throw 42;
    if (r.path == "/defer") {
      // Answer from another thread, after the handler has returned.
      auto responder = r.Defer();
      std::thread([responder, n = r.query] {
        Response late;
        late.body = "deferred " + n;
        responder->Send(std::move(late));
      }).detach();
      return Response::Deferred();
    }
    if (r.path == "/defer-now") {
      auto responder = r.Defer();
      Response now;
      now.body = "answered inside";
      responder->Send(std::move(now));
      return Response::Deferred();
    }
    if (r.path == "/defer-drop") {
      (void)r.Defer();
      return Response::Deferred();
    }
    if (r.path == "/defer-held") {
      held_ = r.Defer();
      return Response::Deferred();
    }
    if (r.path == "/slow") {
      slow_started_ = true;
      test::WaitFor([this] { return release_slow_.load(); }, 10s);
    }
    Response resp;
    resp.body = r.method + " " + r.path + " " + std::to_string(r.body.size());
    if (r.path == "/big") resp.body.resize(1 << 20, 'b');
    return resp;
  }

  uint16_t port() const { return server_->port(); }

  ServerPtr server_;
  std::shared_ptr<Responder> held_;
  std::atomic<int> executed_{0};
  std::atomic<bool> slow_started_{false};
  std::atomic<bool> release_slow_{false};
};

TEST_F(ServerTest, KeepsHttp11ConnectionsOpenWithoutAConnectionHeader) {
  Start();
  RawConnection c(port());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.Send("GET /x HTTP/1.1\r\nHost: h\r\n\r\n"));
    auto r = c.ReadResponse();
    ASSERT_TRUE(r.has_value()) << "request " << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->headers.count("connection"), 0u);
  }
  EXPECT_EQ(server_->stats().connections, 1u);
}

// A connection the server did not accept (a relayed one) is served like an accepted one:
// keep-alive, the same limits, counted in the stats; refused (and closed) once stopped.
TEST_F(ServerTest, ServesAnAdoptedConnectionLikeAnAcceptedOne) {
  Start();
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ASSERT_TRUE(server_->Adopt(sv[1]));
  RawConnection c(RawConnection::Fd{sv[0]});
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(c.Send("GET /adopted HTTP/1.1\r\nHost: h\r\n\r\n"));
    auto r = c.ReadResponse();
    ASSERT_TRUE(r.has_value()) << "request " << i;
    EXPECT_EQ(r->body, "GET /adopted 0");
  }
  ASSERT_TRUE(c.Send("GARBAGE\r\n\r\n"));
  auto bad = c.ReadResponse();
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->status, 400);
  EXPECT_TRUE(c.WaitClosed(5s));
  EXPECT_EQ(server_->stats().connections, 1u);

  server_->Stop();
  int late[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, late), 0);
  EXPECT_FALSE(server_->Adopt(late[1]));
  RawConnection refused(RawConnection::Fd{late[0]});
  EXPECT_TRUE(refused.WaitClosed(5s));
}

TEST_F(ServerTest, AnswersPipelinedRequestsInOrder) {
  Start();
  RawConnection c(port());
  ASSERT_TRUE(
      c.Send("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
             "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
             "GET /c HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(c.ReadResponse()->body, "GET /a 0");
  EXPECT_EQ(c.ReadResponse()->body, "POST /b 3");
  EXPECT_EQ(c.ReadResponse()->body, "GET /c 0");
}

TEST_F(ServerTest, CapsConnectionsPerAddress) {
  Limits limits;
  limits.max_connections_per_address = 3;
  limits.loopback_exempt = false;  // all test traffic is loopback
  Start(limits);
  std::vector<std::unique_ptr<RawConnection>> open;
  for (int i = 0; i < 3; ++i) {
    open.push_back(std::make_unique<RawConnection>(port()));
    ASSERT_TRUE(open.back()->Send("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"));
    ASSERT_TRUE(open.back()->ReadResponse().has_value());
  }
  RawConnection fourth(port());
  EXPECT_TRUE(fourth.WaitClosed(3s)) << "over the cap: closed at once";
  // One goes away: its slot is free again.
  open.pop_back();
  EXPECT_TRUE(test::WaitFor(
      [&] {
        RawConnection again(port());
        return again.Send("GET /b HTTP/1.1\r\nHost: h\r\n\r\n") &&
               again.ReadResponse(500ms).has_value();
      },
      5s));
}

TEST_F(ServerTest, ClosesAfter413AndNeverExecutesTheSmuggledRequest) {
  Limits limits;
  limits.max_body_bytes = 1024;
  Start(limits);
  RawConnection c(port());
  // The "body" holds a request that Pistache 0.0.5 would execute after its 413.
  ASSERT_TRUE(
      c.Send("POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 4096\r\n\r\n"
             "GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n" +
             std::string(100, 'x')));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->headers["connection"], "close");
  std::string extra;
  EXPECT_TRUE(c.WaitClosed(3s, &extra));
  EXPECT_EQ(extra, "");
  EXPECT_EQ(executed_.load(), 0);
  EXPECT_EQ(server_->stats().rejected, 1u);
}

TEST_F(ServerTest, RefusesDuplicateAndHugeContentLengthWithoutAllocating) {
  Start();
  for (const std::string& headers : {std::string("Content-Length: 5\r\nContent-Length: 5\r\n"),
                                     std::string("Content-Length: 5\r\nContent-Length: 6\r\n"),
                                     std::string("Content-Length: 99999999999999999999999999\r\n"),
                                     std::string("Content-Length: -1\r\n")}) {
    RawConnection c(port());
    ASSERT_TRUE(c.Send("POST / HTTP/1.1\r\nHost: h\r\n" + headers + "\r\nhello"));
    auto r = c.ReadResponse();
    ASSERT_TRUE(r.has_value()) << headers;
    EXPECT_EQ(r->status, 400) << headers;
    EXPECT_NE(r->body.find("Content-Length"), std::string::npos);
    EXPECT_TRUE(c.WaitClosed(3s));
  }
  EXPECT_EQ(executed_.load(), 0);
}

TEST_F(ServerTest, Answers400ToAMalformedRequestLine) {
  Start();
  RawConnection c(port());
  ASSERT_TRUE(c.Send("HELLO\r\n\r\n"));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->headers["content-type"], "application/json");
  EXPECT_TRUE(c.WaitClosed(3s));
}

TEST_F(ServerTest, NeverLeaksExceptionText) {
  Start();
  RawConnection c(port());
  ASSERT_TRUE(c.Send("GET /throw HTTP/1.1\r\nHost: h\r\n\r\n"));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->body.find("secret"), std::string::npos);
  // A non-std exception does not abort the process either; the connection stays usable.
  ASSERT_TRUE(
      c.Send("GET /throw-int HTTP/1.1\r\nHost: h\r\n\r\nGET /ok HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(c.ReadResponse()->status, 500);
  EXPECT_EQ(c.ReadResponse()->status, 200);
}

TEST_F(ServerTest, ClosesSlowHeadersAfterTheHeaderTimeout) {
  Limits limits;
  limits.header_timeout = 300ms;
  Start(limits);
  RawConnection c(port());
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\nHost: h\r\n"));
  // Trickling more header bytes must not extend the deadline.
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) {
    if (c.WaitClosed(100ms)) break;
    c.Send("X-Slow: 1\r\n");
  }
  EXPECT_TRUE(c.WaitClosed(3s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2500ms);
  EXPECT_EQ(executed_.load(), 0);
  EXPECT_GE(server_->stats().timeouts, 1u);
}

TEST_F(ServerTest, ClosesSlowBodiesAndIdleConnections) {
  Limits limits;
  limits.body_timeout = 300ms;
  limits.keepalive_timeout = 300ms;
  Start(limits);
  RawConnection slow(port());
  ASSERT_TRUE(slow.Send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc"));
  RawConnection idle(port());
  ASSERT_TRUE(idle.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  ASSERT_TRUE(idle.ReadResponse().has_value());
  EXPECT_TRUE(slow.WaitClosed(3s));
  EXPECT_TRUE(idle.WaitClosed(3s));
  EXPECT_EQ(executed_.load(), 1);
}

TEST_F(ServerTest, Http10ClosesUnlessKeepAliveIsAsked) {
  Start();
  {
    RawConnection c(port());
    ASSERT_TRUE(c.Send("GET / HTTP/1.0\r\n\r\n"));
    EXPECT_EQ(c.ReadResponse()->headers["connection"], "close");
    EXPECT_TRUE(c.WaitClosed(3s));
  }
  RawConnection c(port());
  ASSERT_TRUE(c.Send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  EXPECT_EQ(c.ReadResponse()->headers["connection"], "keep-alive");
  ASSERT_TRUE(c.Send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  EXPECT_TRUE(c.ReadResponse().has_value());
}

TEST_F(ServerTest, HonoursConnectionCloseFromTheClient) {
  Start();
  RawConnection c(port());
  ASSERT_TRUE(
      c.Send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
             "GET /second HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(c.ReadResponse()->headers["connection"], "close");
  std::string extra;
  EXPECT_TRUE(c.WaitClosed(3s, &extra));
  EXPECT_EQ(extra, "");
  EXPECT_EQ(executed_.load(), 1);
}

TEST_F(ServerTest, SendsContinueForExpect100) {
  Start();
  RawConnection c(port());
  ASSERT_TRUE(
      c.Send("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  auto cont = c.ReadResponse();
  ASSERT_TRUE(cont.has_value());
  EXPECT_EQ(cont->status, 100);
  ASSERT_TRUE(c.Send("body"));
  EXPECT_EQ(c.ReadResponse()->body, "POST / 4");
}

TEST_F(ServerTest, HeadResponsesCarryNoBody) {
  Start();
  RawConnection c(port());
  ASSERT_TRUE(c.Send("HEAD /x HTTP/1.1\r\nHost: h\r\n\r\nGET /y HTTP/1.1\r\nHost: h\r\n\r\n"));
  auto head = c.ReadResponse(5s, /*head_request=*/true);
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->headers["content-length"], "9");  // "HEAD /x 0"
  EXPECT_EQ(c.ReadResponse()->body, "GET /y 0");    // framing intact after HEAD
}

TEST_F(ServerTest, RefusesConnectionsOverTheLimit) {
  Limits limits;
  limits.max_connections = 2;
  Start(limits);
  RawConnection a(port()), b(port());
  ASSERT_TRUE(a.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  ASSERT_TRUE(b.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  ASSERT_TRUE(a.ReadResponse().has_value());
  ASSERT_TRUE(b.ReadResponse().has_value());
  RawConnection c(port());
  EXPECT_TRUE(c.WaitClosed(3s));
  a.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_TRUE(a.ReadResponse().has_value());
}

TEST_F(ServerTest, StopsAnsweringAClientThatDoesNotRead) {
  Start();
  RawConnection c(port());
  std::string burst;
  for (int i = 0; i < 200; ++i) burst += "GET /big HTTP/1.1\r\nHost: h\r\n\r\n";
  ASSERT_TRUE(c.Send(burst));
  // 200 answers of 1 MiB would be 200 MiB queued for a client that reads nothing; the server
  // must stop at what the socket buffers hold.
  ASSERT_TRUE(test::WaitFor([this] { return executed_.load() > 0; }, 5s));
  EXPECT_FALSE(test::WaitFor([this] { return executed_.load() >= 50; }, 1s))
      << "executed " << executed_.load() << " requests for a client that does not read";
  // Once the client reads, every answer arrives, in order.
  for (int i = 0; i < 200; ++i) {
    auto r = c.ReadResponse(10s);
    ASSERT_TRUE(r.has_value()) << "response " << i;
    ASSERT_EQ(r->body.size(), 1u << 20);
  }
  EXPECT_EQ(executed_.load(), 200);
}

TEST_F(ServerTest, DeferredAnswersKeepPipelineOrder) {
  Start();
  RawConnection c(port());
  std::string burst;
  for (int i = 0; i < 20; ++i) {
    burst += "GET /defer?" + std::to_string(i) + " HTTP/1.1\r\nHost: h\r\n\r\n";
    burst += "GET /sync" + std::to_string(i) + " HTTP/1.1\r\nHost: h\r\n\r\n";
  }
  ASSERT_TRUE(c.Send(burst));
  for (int i = 0; i < 20; ++i) {
    auto a = c.ReadResponse();
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->body, "deferred " + std::to_string(i));
    auto b = c.ReadResponse();
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->body, "GET /sync" + std::to_string(i) + " 0");
  }
}

TEST_F(ServerTest, DeferredAnswerSentInsideTheHandlerOrDropped) {
  Start();
  RawConnection c(port());
  ASSERT_TRUE(
      c.Send("GET /defer-now HTTP/1.1\r\nHost: h\r\n\r\n"
             "GET /defer-drop HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(c.ReadResponse()->body, "answered inside");
  auto dropped = c.ReadResponse();
  ASSERT_TRUE(dropped.has_value());
  EXPECT_EQ(dropped->status, 500);
}

TEST_F(ServerTest, DeferredAnswerForAGoneClientIsDropped) {
  Start();
  {
    RawConnection c(port());
    ASSERT_TRUE(c.Send("GET /defer-held HTTP/1.1\r\nHost: h\r\n\r\n"));
    ASSERT_TRUE(test::WaitFor([this] { return executed_.load() == 1; }, 5s));
  }  // the client leaves before the answer
  ASSERT_TRUE(test::WaitFor([this] { return server_->stats().open_connections == 0; }, 5s));
  Response late;
  late.body = "too late";
  held_->Send(std::move(late));
  held_.reset();
  // The server is fine and can still stop promptly (no in-flight request left behind).
  EXPECT_EQ(test::HttpGet(port(), "/after")->status, 200);
  const auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST_F(ServerTest, StopLetsARunningHandlerFinish) {
  Start();
  RawConnection c(port());
  ASSERT_TRUE(c.Send("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n"));
  ASSERT_TRUE(test::WaitFor([this] { return slow_started_.load(); }, 5s));
  std::thread stopper([this] { server_->Stop(); });
  release_slow_ = true;
  auto r = c.ReadResponse();
  stopper.join();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "GET /slow 0");
  // Whether the answer says "Connection: close" depends on who won the race; either way the
  // server closes the connection once stopped.
  EXPECT_TRUE(c.WaitClosed(5s));
}

TEST_F(ServerTest, ClientTalksToTheServer) {
  Start();
  ClientRequest req;
  req.method = "POST";
  req.url = "http://127.0.0.1:" + std::to_string(port()) + "/echo";
  req.body = "12345";
  auto r = Fetch(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "POST /echo 5");
}

TEST(HttpClient, FailsClearlyAndOnTime) {
  EXPECT_EQ(ParseUrl("ftp://x").status().code(), "bad_url");
  // Nothing that could end a request line gets through (CR LF injection).
  EXPECT_EQ(ParseUrl("http://h/a\r\nX-Injected: 1").status().code(), "bad_url");
  EXPECT_EQ(ParseUrl("http://h/a b").status().code(), "bad_url");
  EXPECT_EQ(ParseUrl(std::string("http://h/a\0b", 12)).status().code(), "bad_url");
  EXPECT_TRUE(ParseUrl("https://x")->tls);
  EXPECT_EQ(ParseUrl("https://x")->port, 443);
  EXPECT_FALSE(ParseUrl("http://x")->tls);
  EXPECT_EQ(ParseUrl("http://h:99999/").status().code(), "bad_url");
  EXPECT_EQ(ParseUrl("http://[::1]:81/p")->port, 81);
  EXPECT_EQ(ParseUrl("http://h")->target, "/");
  ClientRequest req;
  req.url = "http://127.0.0.1:1/";  // nothing listens on port 1
  EXPECT_EQ(Fetch(req).status().code(), "connect_failed");
}

TEST(HttpClient, TimesOutOnASilentServer) {
  // A handler that does not answer until the test is done with it.
  std::atomic<bool> release{false};
  ServerOptions o;
  o.handler = [&release](const Request&) {
    test::WaitFor([&release] { return release.load(); }, 10s);
    return Response();
  };
  o.threads = 1;
  auto server = MakeServer(std::move(o));
  ASSERT_TRUE(server->Start().ok());
  ClientRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(server->port()) + "/";
  req.timeout = 300ms;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Fetch(req).status().code(), "timeout");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
  release = true;
  server->Stop();
}

}  // namespace
}  // namespace peerstack::http
