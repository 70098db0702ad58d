#include "transport/transport.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cctype>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "base/log.h"
#include "http/exchange.h"

namespace peerstack::transport {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr int64_t kSweepMs = 250;
constexpr int64_t kForgetPeerMs = 60000;  // an idle peer with nothing open is forgotten after this

using http::ConnectionPtr;
using http::ExchangePtr;

struct Outgoing {
  std::string path, body;
  std::vector<http::Header> headers;
};

}  // namespace

struct Transport::Impl : std::enable_shared_from_this<Impl> {
  struct Idle {
    ConnectionPtr conn;
    int64_t since_ms;
  };
  struct Peer {
    explicit Peer(const QueueLimits& limits) : queue(limits) {}
    PeerQueue<Outgoing> queue;
    http::Url url;
    std::vector<Idle> idle;  // connected, kept alive, nothing pending
    size_t open = 0;         // connections, busy or idle
    bool pump_posted = false;
    int64_t last_used_ms = 0;
    std::string last_error;
    int64_t rtt_ms = -1;  // of the last answered message, from its start (-1: none yet)
  };

  TransportOptions o;
  std::unique_ptr<asio::ssl::context> tls;  // for https:// peers (null if it could not be made)
  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
  asio::steady_timer sweep{ioc};
  std::thread thread;
  // Name lookups of Resolve() on a loop of their own (see there).
  asio::io_context lookups{1};
  asio::executor_work_guard<asio::io_context::executor_type> lookups_work{lookups.get_executor()};
  std::thread lookup_thread;
  size_t lookups_running = 0;

  mutable std::mutex mu;
  std::map<std::string, Peer> peers;
  size_t fetches = 0;
  bool started = false, stopping = false;
  uint64_t connections_opened = 0, exchanges = 0;
  QueueCounters forgotten;  // of peers no longer kept: totals never go down

  void Forget(const Peer& p) {
    const QueueCounters c = p.queue.counters();
    forgotten.sent += c.sent;
    forgotten.failed += c.failed;
    forgotten.dropped += c.dropped;
  }

  int64_t Now() const { return o.clock->SteadyMs(); }

  // Takes one of `cap` slots counted in *running (a fetch, a lookup), or says why not.
  Status Admit(size_t* running, size_t cap, const char* what) {
    std::lock_guard<std::mutex> lock(mu);
    if (stopping || !started) return Status::Error("stopped", "the transport is not running");
    if (*running >= cap)
      return Status::Error("busy", std::string("too many ") + what + " in flight");
    ++*running;
    return Status::Ok();
  }

  static void CloseConn(Peer& p, const ConnectionPtr& c) {
    http::CloseConnection(*c);
    if (p.open > 0) --p.open;
  }

  ConnectionPtr NewConn(Peer& p) {
    ++p.open;
    ++connections_opened;
    return http::NewConnection(ioc, p.url.tls ? tls.get() : nullptr);
  }

  // The callback of a message's exchange. It holds the exchange weakly: the exchange's own
  // handlers keep it alive while it runs, and it must not keep itself alive.
  std::function<void(http::Exchange::Outcome)> MessageDone(const std::string& key,
                                                           const ExchangePtr& x,
                                                           const ConnectionPtr& c) {
    return
        [weak = std::weak_ptr<Impl>(shared_from_this()), key, wx = std::weak_ptr<http::Exchange>(x),
         c, started = Now()](http::Exchange::Outcome outcome) {
          auto self = weak.lock();
          auto x2 = wx.lock();
          if (self && x2) self->OnMessageDone(key, x2, c, std::move(outcome), started);
        };
  }

  // With mu held, on the loop thread: start every message the peer may take now.
  void Pump(const std::string& key, Peer& p) {
    if (stopping || !started) return;
    const int64_t now = Now();
    while (auto q = p.queue.Take(now)) {
      ConnectionPtr c;
      bool reused = false;
      if (!p.idle.empty()) {
        c = std::move(p.idle.back().conn);
        p.idle.pop_back();
        reused = true;
      } else {
        c = NewConn(p);
      }
      auto x = std::make_shared<http::Exchange>();
      x->url = p.url;
      x->url.target = q->payload.path;
      x->method = "POST";
      x->headers = std::move(q->payload.headers);
      x->body = std::move(q->payload.body);
      x->connect_timeout = o.connect_timeout;
      x->request_timeout = o.request_timeout;
      x->max_response_bytes = o.max_response_bytes;
      x->reused = reused;
      x->done = MessageDone(key, x, c);
      http::Run(c, x);
    }
  }

  void OnMessageDone(const std::string& key, const ExchangePtr& x, const ConnectionPtr& c,
                     http::Exchange::Outcome outcome, int64_t started_ms) {
    std::lock_guard<std::mutex> lock(mu);
    if (stopping) return;
    auto it = peers.find(key);
    if (it == peers.end()) return;  // cannot happen: a peer with messages in flight is kept
    Peer& p = it->second;
    if (outcome.stale) {
      // The peer closed a kept-alive connection before we used it: once more, on a new one.
      CloseConn(p, c);
      ConnectionPtr fresh = NewConn(p);
      x->reused = false;
      x->done = MessageDone(key, x, fresh);
      http::Run(fresh, x);
      return;
    }
    const int64_t now = Now();
    const Result<http::ClientResponse>& r = outcome.response;
    if (r.ok()) {
      ++exchanges;
      p.rtt_ms = now - started_ms;
      if (!p.last_error.empty()) {
        PS_LOG(kInfo, "transport") << key << " answers again";
      }
      p.last_error.clear();
      if (r->status >= 300) {
        PS_LOG(kDebug, "transport") << x->url.target << " to " << key << " answered " << r->status;
      }
    } else {
      // Said once when a peer starts failing (and when that changes), not for every message.
      const std::string error = r.status().ToString();
      if (error != p.last_error) {
        PS_LOG(kWarn, "transport") << "cannot reach " << key << ": " << error;
      }
      p.last_error = error;
      PS_LOG(kDebug, "transport") << x->url.target << " to " << key << " failed: " << error;
    }
    // Any answer, even an error status, shows the peer is there.
    p.queue.Done(r.ok(), now);
    p.last_used_ms = now;
    if (r.ok() && outcome.keep_alive) {
      p.idle.push_back({c, now});
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
          if (now - c->since_ms >= o.idle_timeout.count()) {
            CloseConn(p, c->conn);
            c = p.idle.erase(c);
          } else {
            ++c;
          }
        }
        Pump(it->first, p);  // a backoff may have ended
        if (p.queue.idle() && p.open == 0 && !p.pump_posted &&
            now - p.last_used_ms > kForgetPeerMs) {
          Forget(p);
          it = peers.erase(it);
        } else {
          ++it;
        }
      }
    }
    sweep.expires_after(std::chrono::milliseconds(kSweepMs));
    sweep.async_wait(
        [weak = std::weak_ptr<Impl>(shared_from_this())](const boost::system::error_code& ec) {
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
        for (const Idle& c : p.idle) CloseConn(p, c.conn);
        p.idle.clear();
        if (p.open == 0) {
          Forget(p);
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
  auto tls = http::MakeClientTlsContext(impl_->o.ca_file);
  if (tls) {
    impl_->tls = std::move(tls).value();
  } else {
    // https:// peers then fail with a clear error; http:// ones are unaffected.
    PS_LOG(kError, "transport") << tls.status().message();
  }
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
  d.lookup_thread = std::thread([impl = impl_] { impl->lookups.run(); });
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
  d.lookups_work.reset();
  d.lookups.stop();
  if (d.lookup_thread.joinable()) d.lookup_thread.join();
  std::lock_guard<std::mutex> lock(d.mu);
  for (auto& [key, p] : d.peers) {
    for (const Impl::Idle& c : p.idle) http::CloseConnection(*c.conn);
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
    if (!url || url->target != "/" || (url->tls && !d.tls)) return false;
    if (!d.MakeRoom()) {
      PS_LOG(kWarn, "transport") << "too many peers (" << d.o.max_peers
                                 << "); dropped a message to " << m.peer;
      return false;
    }
    it = d.peers.emplace(m.peer, Impl::Peer(d.o.queue)).first;
    it->second.url = std::move(url).value();
    it->second.last_used_ms = d.Now();
  }
  Impl::Peer& p = it->second;
  const Pushed pushed =
      p.queue.Push(Outgoing{std::move(m.path), std::move(m.body), std::move(m.headers)},
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
  if (url->tls && !d.tls)
    return done(Status::Error("tls_failed", "TLS is not available: see the log"));
  // Refusals are decided under the lock and told after it (done may call back in).
  if (Status s = d.Admit(&d.fetches, d.o.max_fetches, "requests"); !s.ok()) return done(s);
  {
    std::lock_guard<std::mutex> lock(d.mu);
    ++d.connections_opened;  // a fetch has a connection of its own
  }
  auto x = std::make_shared<http::Exchange>();
  x->url = *url;
  x->method = request.method;
  x->headers = std::move(request.headers);
  x->body = std::move(request.body);
  x->keep_alive = false;
  x->deadline = std::chrono::steady_clock::now() + request.timeout;
  x->max_response_bytes = request.max_response_bytes;
  x->server_name = request.server_name;
  auto c = http::NewConnection(d.ioc, url->tls ? d.tls.get() : nullptr);
  std::weak_ptr<Impl> weak = impl_;
  x->done = [weak, c, done = std::move(done)](http::Exchange::Outcome outcome) {
    http::CloseConnection(*c);
    auto self = weak.lock();
    if (!self) return;
    {
      std::lock_guard<std::mutex> lock(self->mu);
      --self->fetches;
      if (self->stopping) return;
      if (outcome.response.ok()) ++self->exchanges;
    }
    done(std::move(outcome.response));
  };
  asio::post(d.ioc, [c, x] { http::Run(c, x); });
}

void Transport::Resolve(const std::string& host, ResolveCallback done) {
  Impl& d = *impl_;
  boost::system::error_code numeric;
  const asio::ip::address address = asio::ip::make_address(host, numeric);
  if (!numeric) return done(std::vector<std::string>{address.to_string()});  // nothing to look up
  if (Status s = d.Admit(&d.lookups_running, d.o.max_lookups, "name lookups"); !s.ok())
    return done(s);
  // On the lookups' own loop (Asio runs one lookup at a time per loop: a name that takes
  // long must not delay peer traffic), with a deadline; an answer after it is dropped.
  struct Once {
    std::atomic<bool> done{false};
  };
  auto once = std::make_shared<Once>();
  auto resolver = std::make_shared<tcp::resolver>(d.lookups);
  auto timer = std::make_shared<asio::steady_timer>(d.lookups, d.o.lookup_timeout);
  std::weak_ptr<Impl> weak = impl_;
  auto finish = [weak, once, done = std::move(done)](Result<std::vector<std::string>> r) {
    if (once->done.exchange(true)) return;
    auto self = weak.lock();
    if (!self) return;
    {
      std::lock_guard<std::mutex> lock(self->mu);
      --self->lookups_running;
      if (self->stopping) return;
    }
    done(std::move(r));
  };
  timer->async_wait([finish](const boost::system::error_code& ec) {
    if (!ec) finish(Status::Error("timeout", "name lookup timed out"));
  });
  resolver->async_resolve(
      host, "80",
      [resolver, timer, finish](boost::system::error_code ec, tcp::resolver::results_type results) {
        timer->cancel();
        if (ec) return finish(Status::Error("resolve_failed", ec.message()));
        std::vector<std::string> addresses;
        for (const auto& entry : results) {
          addresses.push_back(entry.endpoint().address().to_string());
        }
        finish(std::move(addresses));
      });
}

TransportStats Transport::stats() const {
  const Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  TransportStats s;
  s.connections_opened = d.connections_opened;
  s.exchanges = d.exchanges;
  s.totals = d.forgotten;
  const int64_t now = d.Now();
  for (const auto& [key, p] : d.peers) {
    PeerStats ps;
    ps.peer = key;
    ps.queued = p.queue.size();
    ps.in_flight = p.queue.in_flight();
    ps.connections = p.open;
    ps.backing_off = p.queue.backing_off(now);
    ps.counters = p.queue.counters();
    s.totals.sent += ps.counters.sent;
    s.totals.failed += ps.counters.failed;
    s.totals.dropped += ps.counters.dropped;
    ps.last_error = p.last_error;
    ps.rtt_ms = p.rtt_ms;
    s.peers.push_back(std::move(ps));
  }
  return s;
}

}  // namespace peerstack::transport
