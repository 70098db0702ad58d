#include "transport/transport.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "base/log.h"

namespace peerstack::transport {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

constexpr int64_t kSweepMs = 250;
constexpr int64_t kForgetPeerMs = 60000;  // an idle peer with nothing open is forgotten after this

// One TCP connection to a peer; either idle (kept alive, no operation pending) or owned by
// exactly one exchange.
struct Conn {
  explicit Conn(asio::io_context& ioc) : stream(ioc), resolver(ioc) {}
  void Close() {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
  }
  beast::tcp_stream stream;
  tcp::resolver resolver;
  beast::flat_buffer buffer;
  bool connected = false;
  int64_t idle_since_ms = 0;
};
using ConnPtr = std::shared_ptr<Conn>;

// One request and its answer.
struct Exchange {
  bhttp::request<bhttp::string_body> request;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser;
  std::string host, port;
  // Either one deadline for everything (fetches) or a connect timeout, then a timeout for
  // write + read (messages).
  std::optional<std::chrono::steady_clock::time_point> deadline;
  std::chrono::milliseconds connect_timeout{0}, request_timeout{0};
  size_t max_response_bytes = 0;
  bool reused = false;  // on a kept-alive connection: a close before any answer byte is stale
  std::shared_ptr<Conn> conn;  // the connection it runs on (a stale one is replaced)
  // (this exchange, result, keep_alive: the answer allows reuse, stale: retry on a new
  // connection). Takes the exchange as an argument so that it need not capture itself.
  std::function<void(const std::shared_ptr<Exchange>&, Result<http::ClientResponse>, bool, bool)> done;
};
using ExchangePtr = std::shared_ptr<Exchange>;

Status Failure(const char* stage, const beast::error_code& ec, const Exchange& x) {
  if (ec == beast::error::timeout) return Status::Error("timeout", std::string(stage) + " timed out");
  if (ec == bhttp::error::body_limit) {
    return Status::Error("too_large", "response larger than " + std::to_string(x.max_response_bytes));
  }
  return Status::Error(std::string(stage) == "connect" ? "connect_failed" : "io_error",
                       std::string(stage) + ": " + ec.message());
}

bool PeerClosed(const beast::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
}

void Read(const ConnPtr& c, const ExchangePtr& x) {
  x->parser.emplace();
  x->parser->body_limit(x->max_response_bytes);
  x->parser->header_limit(64 * 1024);
  bhttp::async_read(c->stream, c->buffer, *x->parser, [c, x](beast::error_code ec, size_t n) {
    if (ec) return x->done(x, Failure("receive", ec, *x), false, x->reused && n == 0 && PeerClosed(ec));
    c->stream.expires_never();
    auto& res = x->parser->get();
    http::ClientResponse out;
    out.status = static_cast<int>(res.result_int());
    for (const auto& field : res) {
      std::string name(field.name_string());
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      out.headers.push_back({std::move(name), std::string(field.value())});
    }
    const bool keep_alive = res.keep_alive();
    out.body = std::move(res.body());
    x->done(x, std::move(out), keep_alive, false);
  });
}

void Write(const ConnPtr& c, const ExchangePtr& x) {
  if (x->deadline) {
    c->stream.expires_at(*x->deadline);
  } else {
    c->stream.expires_after(x->request_timeout);
  }
  bhttp::async_write(c->stream, x->request, [c, x](beast::error_code ec, size_t) {
    if (ec) return x->done(x, Failure("send", ec, *x), false, x->reused && PeerClosed(ec));
    Read(c, x);
  });
}

void Run(const ConnPtr& c, const ExchangePtr& x) {
  if (c->connected) return Write(c, x);
  c->resolver.async_resolve(x->host, x->port, [c, x](beast::error_code ec, tcp::resolver::results_type results) {
    if (ec) return x->done(x, Failure("resolve", ec, *x), false, false);
    if (x->deadline) {
      c->stream.expires_at(*x->deadline);
    } else {
      c->stream.expires_after(x->connect_timeout);
    }
    c->stream.async_connect(results, [c, x](beast::error_code ec2, const tcp::endpoint&) {
      if (ec2) return x->done(x, Failure("connect", ec2, *x), false, false);
      c->connected = true;
      Write(c, x);
    });
  });
}

std::string HostHeader(const http::Url& url) {
  const std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  return host + ":" + std::to_string(url.port);
}

ExchangePtr MakeExchange(const http::Url& url, const std::string& method, const std::string& target,
                         const std::vector<http::Header>& headers, std::string body, bool close) {
  auto x = std::make_shared<Exchange>();
  x->host = url.host;
  x->port = std::to_string(url.port);
  auto& req = x->request;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, HostHeader(url));
  req.set(bhttp::field::user_agent, "peerstack");
  if (close) req.set(bhttp::field::connection, "close");
  for (const http::Header& h : headers) req.set(h.name, h.value);
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.body() = std::move(body);
    req.prepare_payload();
  }
  return x;
}

struct Outgoing {
  std::string path, body;
  std::vector<http::Header> headers;
};

}  // namespace

struct Transport::Impl : std::enable_shared_from_this<Impl> {
  struct Peer {
    explicit Peer(const QueueLimits& limits) : queue(limits) {}
    PeerQueue<Outgoing> queue;
    http::Url url;
    std::vector<ConnPtr> idle;  // connected, kept alive, nothing pending
    size_t open = 0;            // connections, busy or idle
    bool pump_posted = false;
    int64_t last_used_ms = 0;
    std::string last_error;
  };

  TransportOptions o;
  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
  asio::steady_timer sweep{ioc};
  std::thread thread;

  mutable std::mutex mu;
  std::map<std::string, Peer> peers;
  size_t fetches = 0;
  bool started = false, stopping = false;
  uint64_t connections_opened = 0, exchanges = 0;

  int64_t Now() const { return o.clock->SteadyMs(); }

  static void CloseConn(Peer& p, const ConnPtr& c) {
    c->Close();
    if (p.open > 0) --p.open;
  }

  ConnPtr NewConn(Peer& p) {
    ++p.open;
    ++connections_opened;
    return std::make_shared<Conn>(ioc);
  }

  // With mu held, on the loop thread: start every message the peer may take now.
  void Pump(const std::string& key, Peer& p) {
    if (stopping || !started) return;
    const int64_t now = Now();
    while (auto q = p.queue.Take(now)) {
      ConnPtr c;
      bool reused = false;
      if (!p.idle.empty()) {
        c = std::move(p.idle.back());
        p.idle.pop_back();
        reused = true;
      } else {
        c = NewConn(p);
      }
      auto x = MakeExchange(p.url, "POST", q->payload.path, q->payload.headers, std::move(q->payload.body),
                            /*close=*/false);
      x->connect_timeout = o.connect_timeout;
      x->request_timeout = o.request_timeout;
      x->max_response_bytes = o.max_response_bytes;
      x->reused = reused;
      x->conn = c;
      std::weak_ptr<Impl> weak = shared_from_this();
      x->done = [weak, key](const ExchangePtr& self_x, Result<http::ClientResponse> r, bool keep_alive,
                            bool stale) {
        if (auto self = weak.lock()) self->OnMessageDone(key, self_x, std::move(r), keep_alive, stale);
      };
      Run(c, x);
    }
  }

  void OnMessageDone(std::string key, const ExchangePtr& x, Result<http::ClientResponse> r, bool keep_alive,
                     bool stale) {
    const ConnPtr c = x->conn;
    std::lock_guard<std::mutex> lock(mu);
    if (stopping) return;
    auto it = peers.find(key);
    if (it == peers.end()) return;  // cannot happen: a peer with messages in flight is kept
    Peer& p = it->second;
    if (stale) {
      // The peer closed a kept-alive connection before we used it: once more, on a new one.
      CloseConn(p, c);
      x->conn = NewConn(p);
      x->reused = false;
      x->parser.reset();
      Run(x->conn, x);
      return;
    }
    const int64_t now = Now();
    if (r.ok()) {
      ++exchanges;
      p.last_error.clear();
      if (r->status >= 300) {
        PS_LOG(kDebug, "transport") << x->request.target() << " to " << key << " answered " << r->status;
      }
    } else {
      p.last_error = r.status().ToString();
      PS_LOG(kDebug, "transport") << x->request.target() << " to " << key << " failed: " << p.last_error;
    }
    // Any answer, even an error status, shows the peer is there.
    p.queue.Done(r.ok(), now);
    p.last_used_ms = now;
    if (r.ok() && keep_alive) {
      c->idle_since_ms = now;
      p.idle.push_back(c);
    } else {
      CloseConn(p, c);
    }
    Pump(key, p);
  }

  void SchedulePump(const std::string& key, Peer& p) {
    if (!started || p.pump_posted) return;
    p.pump_posted = true;
    asio::post(ioc, [weak = std::weak_ptr<Impl>(shared_from_this()), key] {
      auto self = weak.lock();
      if (!self) return;
      std::lock_guard<std::mutex> lock(self->mu);
      auto it = self->peers.find(key);
      if (it == self->peers.end()) return;
      it->second.pump_posted = false;
      self->Pump(key, it->second);
    });
  }

  void Sweep() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopping) return;
      const int64_t now = Now();
      for (auto it = peers.begin(); it != peers.end();) {
        Peer& p = it->second;
        p.queue.Expire(now);
        for (auto c = p.idle.begin(); c != p.idle.end();) {
          if (now - (*c)->idle_since_ms >= o.idle_timeout.count()) {
            CloseConn(p, *c);
            c = p.idle.erase(c);
          } else {
            ++c;
          }
        }
        Pump(it->first, p);  // a backoff may have ended
        if (p.queue.idle() && p.open == 0 && !p.pump_posted && now - p.last_used_ms > kForgetPeerMs) {
          it = peers.erase(it);
        } else {
          ++it;
        }
      }
    }
    sweep.expires_after(std::chrono::milliseconds(kSweepMs));
    sweep.async_wait([weak = std::weak_ptr<Impl>(shared_from_this())](const beast::error_code& ec) {
      if (ec) return;
      if (auto self = weak.lock()) self->Sweep();
    });
  }

  // With mu held: room for one more peer, forgetting one with nothing queued or in flight.
  bool MakeRoom() {
    if (peers.size() < o.max_peers) return true;
    for (auto it = peers.begin(); it != peers.end(); ++it) {
      Peer& p = it->second;
      if (p.queue.idle() && !p.pump_posted) {
        for (const ConnPtr& c : p.idle) CloseConn(p, c);
        p.idle.clear();
        if (p.open == 0) {
          peers.erase(it);
          return true;
        }
      }
    }
    return false;
  }
};

Transport::Transport(TransportOptions options) : impl_(std::make_shared<Impl>()) {
  impl_->o = std::move(options);
}

Transport::~Transport() { Stop(); }

void Transport::Start() {
  Impl& d = *impl_;
  {
    std::lock_guard<std::mutex> lock(d.mu);
    if (d.started || d.stopping) return;
    d.started = true;
    for (auto& [key, p] : d.peers) d.SchedulePump(key, p);
  }
  asio::post(d.ioc, [weak = std::weak_ptr<Impl>(impl_)] {
    if (auto self = weak.lock()) self->Sweep();
  });
  d.thread = std::thread([impl = impl_] { impl->ioc.run(); });
}

void Transport::Stop() {
  Impl& d = *impl_;
  {
    std::lock_guard<std::mutex> lock(d.mu);
    if (d.stopping) return;
    d.stopping = true;
  }
  d.work.reset();
  d.ioc.stop();
  if (d.thread.joinable()) d.thread.join();
  std::lock_guard<std::mutex> lock(d.mu);
  for (auto& [key, p] : d.peers) {
    for (const ConnPtr& c : p.idle) c->Close();
    p.idle.clear();
  }
  d.peers.clear();
}

bool Transport::Send(Message m) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  if (d.stopping) return false;
  auto it = d.peers.find(m.peer);
  if (it == d.peers.end()) {
    auto url = http::ParseUrl(m.peer);
    if (!url || url->target != "/") return false;
    if (!d.MakeRoom()) {
      PS_LOG(kWarn, "transport") << "too many peers (" << d.o.max_peers << "); dropped a message to " << m.peer;
      return false;
    }
    it = d.peers.emplace(m.peer, Impl::Peer(d.o.queue)).first;
    it->second.url = std::move(url).value();
    it->second.last_used_ms = d.Now();
  }
  Impl::Peer& p = it->second;
  const Pushed pushed = p.queue.Push(Outgoing{std::move(m.path), std::move(m.body), std::move(m.headers)},
                                     m.droppable, std::move(m.supersedes), d.Now());
  if (pushed == Pushed::kRefused) {
    PS_LOG(kDebug, "transport") << "queue for " << it->first << " is full; message refused";
    return false;
  }
  d.SchedulePump(it->first, p);
  return true;
}

void Transport::Heard(const std::string& peer) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  auto it = d.peers.find(peer);
  if (it == d.peers.end() || it->second.queue.failures() == 0) return;
  it->second.queue.Heard();
  d.SchedulePump(it->first, it->second);
}

void Transport::Fetch(http::ClientRequest request, FetchCallback done) {
  Impl& d = *impl_;
  auto url = http::ParseUrl(request.url);
  if (!url) return done(url.status());
  {
    std::lock_guard<std::mutex> lock(d.mu);
    if (d.stopping || !d.started) return done(Status::Error("stopped", "the transport is not running"));
    if (d.fetches >= d.o.max_fetches) return done(Status::Error("busy", "too many requests in flight"));
    ++d.fetches;
    ++d.connections_opened;
  }
  auto x = MakeExchange(*url, request.method, url->target, request.headers, std::move(request.body),
                        /*close=*/true);
  x->deadline = std::chrono::steady_clock::now() + request.timeout;
  x->max_response_bytes = request.max_response_bytes;
  auto c = std::make_shared<Conn>(d.ioc);
  x->conn = c;
  std::weak_ptr<Impl> weak = impl_;
  x->done = [weak, done = std::move(done)](const ExchangePtr& self_x, Result<http::ClientResponse> r, bool, bool) {
    self_x->conn->Close();
    auto self = weak.lock();
    if (!self) return;
    {
      std::lock_guard<std::mutex> lock(self->mu);
      --self->fetches;
      if (self->stopping) return;
      if (r.ok()) ++self->exchanges;
    }
    done(std::move(r));
  };
  asio::post(d.ioc, [c, x] { Run(c, x); });
}

void Transport::Resolve(const std::string& host, ResolveCallback done) {
  Impl& d = *impl_;
  {
    std::lock_guard<std::mutex> lock(d.mu);
    if (d.stopping || !d.started) return done(Status::Error("stopped", "the transport is not running"));
    if (d.fetches >= d.o.max_fetches) return done(Status::Error("busy", "too many requests in flight"));
    ++d.fetches;
  }
  auto resolver = std::make_shared<tcp::resolver>(d.ioc);
  std::weak_ptr<Impl> weak = impl_;
  resolver->async_resolve(
      host, "80", [weak, resolver, done = std::move(done)](beast::error_code ec, tcp::resolver::results_type results) {
        auto self = weak.lock();
        if (!self) return;
        {
          std::lock_guard<std::mutex> lock(self->mu);
          --self->fetches;
          if (self->stopping) return;
        }
        if (ec) return done(Status::Error("resolve_failed", ec.message()));
        std::vector<std::string> addresses;
        for (const auto& entry : results) addresses.push_back(entry.endpoint().address().to_string());
        done(std::move(addresses));
      });
}

TransportStats Transport::stats() const {
  const Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  TransportStats s;
  s.connections_opened = d.connections_opened;
  s.exchanges = d.exchanges;
  const int64_t now = d.Now();
  for (const auto& [key, p] : d.peers) {
    PeerStats ps;
    ps.peer = key;
    ps.queued = p.queue.size();
    ps.in_flight = p.queue.in_flight();
    ps.connections = p.open;
    ps.backing_off = p.queue.backing_off(now);
    ps.counters = p.queue.counters();
    ps.last_error = p.last_error;
    s.peers.push_back(std::move(ps));
  }
  return s;
}

}  // namespace peerstack::transport
