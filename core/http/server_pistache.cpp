// http::Server on Pistache's TCP layer. Each worker thread owns a clone of ConnectionHandler
// and the connections its reactor serves, so per-connection state needs no lock; only the
// timeout registry (read by the sweeper thread) is shared.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <pistache/listener.h>
#include <pistache/peer.h>
#include <pistache/tcp.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "base/log.h"
#include "http/parser.h"
#include "http/server.h"

namespace peerstack::http {
namespace {

using Clock = std::chrono::steady_clock;
using PeerPtr = std::shared_ptr<Pistache::Tcp::Peer>;

// Answers produced for one connection before we hand them to the socket and look again.
constexpr size_t kOutputHighWater = 1 << 20;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

struct Connection {
  Connection(int fd_in, const Limits& limits) : fd(fd_in), parser(limits) {}
  const int fd;
  RequestParser parser;
  std::string in;   // bytes received and not yet consumed
  std::string out;  // response bytes not yet handed to the socket
  std::string remote;
  bool closing = false;        // no more requests: discard input, close when written
  bool shut_wr = false;        // FIN sent
  bool request_started = false;
  bool body_started = false;
  bool sent_continue = false;
  int async_pending = 0;       // writes queued in Pistache's transport
  std::atomic<int64_t> deadline_ms{0};
  std::atomic<bool> expired{false};
};
using ConnectionPtr = std::shared_ptr<Connection>;

// State shared by the server object, every handler clone and the sweeper thread.
struct Shared {
  ServerOptions options;
  std::mutex registry_mu;
  std::unordered_set<ConnectionPtr> registry;  // for the sweeper
  std::atomic<bool> stopping{false};
  std::atomic<int> inflight{0};
  std::atomic<uint64_t> connections{0}, requests{0}, rejected{0}, timeouts{0};
};

class ConnectionHandler final : public Pistache::Tcp::Handler {
 public:
  PROTOTYPE_OF(Pistache::Tcp::Handler, ConnectionHandler)

  explicit ConnectionHandler(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
  ConnectionHandler(const ConnectionHandler& other) : Handler(), shared_(other.shared_) {}

  void onConnection(const PeerPtr& peer) override {
    const int fd = peer->fd();
    const Limits& limits = shared_->options.limits;
    auto conn = std::make_shared<Connection>(fd, limits);
    conn->remote = peer->address().host();
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    shared_->connections.fetch_add(1, std::memory_order_relaxed);
    bool over_limit = false;
    {
      std::lock_guard<std::mutex> lock(shared_->registry_mu);
      over_limit = shared_->registry.size() >= limits.max_connections;
      shared_->registry.insert(conn);
    }
    conns_.emplace(peer.get(), conn);
    if (over_limit || shared_->stopping.load()) {
      conn->closing = true;
      conn->expired = true;
      ::shutdown(fd, SHUT_RDWR);
      PS_LOG(kWarn, "http") << shared_->options.name << ": connection limit reached, refusing "
                            << conn->remote;
      return;
    }
    conn->deadline_ms = NowMs() + limits.header_timeout.count();
  }

  void onDisconnection(const PeerPtr& peer) override {
    auto it = conns_.find(peer.get());
    if (it == conns_.end()) return;
    {
      std::lock_guard<std::mutex> lock(shared_->registry_mu);
      shared_->registry.erase(it->second);
    }
    conns_.erase(it);
  }

  void onInput(const char* buffer, size_t len, const PeerPtr& peer) override {
    auto it = conns_.find(peer.get());
    if (it == conns_.end()) return;
    const ConnectionPtr conn = it->second;
    Connection& c = *conn;
    if (c.closing) return;  // lingering close: read and discard
    c.in.append(buffer, len);
    Serve(conn, peer);
  }

 private:
  // Answers buffered requests. While the client is not taking our answers (writes queued in
  // the transport), input waits in c.in instead of producing more output, so a client that
  // pipelines without reading cannot make us queue unbounded responses; if it keeps sending,
  // its buffered input hits a cap and the connection is closed.
  void Serve(const ConnectionPtr& conn, const PeerPtr& peer) {
    Connection& c = *conn;
    const Limits& limits = shared_->options.limits;
    while (!c.closing) {
      if (c.async_pending > 0) {
        if (c.in.size() > limits.max_header_bytes + limits.max_body_bytes) {
          c.closing = true;
          c.in.clear();
          ::shutdown(c.fd, SHUT_RDWR);
          shared_->rejected.fetch_add(1, std::memory_order_relaxed);
        }
        break;
      }
      const bool more = ProcessInput(c);
      Flush(conn, peer);
      if (!more) break;
    }
    UpdateDeadline(c);
  }

  // Parses and answers requests from c.in until it needs more bytes or has produced
  // kOutputHighWater bytes of answers; returns true in the latter case.
  bool ProcessInput(Connection& c) {
    size_t offset = 0;
    bool high_water = false;
    while (!c.closing && offset < c.in.size()) {
      if (c.out.size() >= kOutputHighWater) {
        high_water = true;
        break;
      }
      size_t consumed = 0;
      const auto state = c.parser.Parse(std::string_view(c.in).substr(offset), &consumed);
      offset += consumed;
      if (state == RequestParser::State::kNeedMore) {
        if (c.parser.expects_continue() && !c.sent_continue) {
          c.out += "HTTP/1.1 100 Continue\r\n\r\n";
          c.sent_continue = true;
        }
        break;
      }
      if (state == RequestParser::State::kError) {
        Response r = JsonError(c.parser.error_status(), "bad_request", c.parser.error_message());
        AppendResponse(c.out, r, false, false, false);
        c.closing = true;
        shared_->rejected.fetch_add(1, std::memory_order_relaxed);
        PS_LOG(kDebug, "http") << shared_->options.name << ": " << c.parser.error_status() << " "
                               << c.parser.error_message() << " from " << c.remote;
        break;
      }
      Request& req = c.parser.request();
      req.remote_address = c.remote;
      c.request_started = c.body_started = c.sent_continue = false;
      bool keep_alive = KeepAlive(req);
      const Response resp = Call(req);
      if (resp.close || shared_->stopping.load(std::memory_order_relaxed)) keep_alive = false;
      AppendResponse(c.out, resp, req.method == "HEAD", keep_alive,
                     keep_alive && req.version_minor == 0);
      if (!keep_alive) c.closing = true;
    }
    c.in.erase(0, offset);
    if (c.closing) c.in.clear();
    return high_water && !c.closing;
  }

  static bool KeepAlive(const Request& req) {
    const std::string* conn = req.header("connection");
    auto has = [&](std::string_view token) {
      if (!conn) return false;
      std::string lower(*conn);
      for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      return lower.find(token) != std::string::npos;
    };
    if (req.version_minor == 0) return has("keep-alive");
    return !has("close");
  }

  Response Call(const Request& req) {
    shared_->inflight.fetch_add(1);
    shared_->requests.fetch_add(1, std::memory_order_relaxed);
    Response resp;
    try {
      resp = shared_->options.handler(req);
    } catch (const std::exception& e) {
      PS_LOG(kError, "http") << shared_->options.name << ": handler for " << req.method << " "
                             << req.path << " threw: " << e.what();
      resp = JsonError(500, "internal", "internal error");
    } catch (...) {
      PS_LOG(kError, "http") << shared_->options.name << ": handler for " << req.method << " "
                             << req.path << " threw a non-standard exception";
      resp = JsonError(500, "internal", "internal error");
    }
    shared_->inflight.fetch_sub(1);
    return resp;
  }

  // Writes what it can now; the rest goes through Pistache's write queue, in order.
  void Flush(const ConnectionPtr& conn, const PeerPtr& peer) {
    Connection& c = *conn;
    if (!c.out.empty() && c.async_pending == 0) {
      const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        c.out.clear();
        c.closing = true;
        ::shutdown(c.fd, SHUT_RDWR);
        return;
      }
      c.out.erase(0, n > 0 ? static_cast<size_t>(n) : 0);
    }
    if (!c.out.empty()) {
      ++c.async_pending;
      const size_t size = c.out.size();
      std::weak_ptr<Connection> weak = conn;
      std::weak_ptr<Pistache::Tcp::Peer> weak_peer = peer;
      // Runs on this worker's reactor thread when the transport has written the buffer.
      peer->send(Pistache::RawBuffer(std::move(c.out), size), MSG_NOSIGNAL)
          .then(
              [this, weak, weak_peer](ssize_t) {
                auto locked = weak.lock();
                if (!locked) return;
                --locked->async_pending;
                auto p = weak_peer.lock();
                if (locked->async_pending == 0 && !locked->closing && p) {
                  Serve(locked, p);  // input that waited for the client to catch up
                } else {
                  MaybeShutdownWrite(*locked);
                  UpdateDeadline(*locked);
                }
              },
              [weak](std::exception_ptr) {
                if (auto locked = weak.lock()) {
                  --locked->async_pending;
                  ::shutdown(locked->fd, SHUT_RDWR);
                }
              });
      c.out.clear();
    }
    MaybeShutdownWrite(c);
  }

  // Once a closing connection has written everything: send FIN, keep reading (and discarding)
  // until the client closes or the linger timeout fires, so the client sees our answer
  // instead of a reset.
  static void MaybeShutdownWrite(Connection& c) {
    if (c.closing && !c.shut_wr && c.async_pending == 0 && c.out.empty()) {
      ::shutdown(c.fd, SHUT_WR);
      c.shut_wr = true;
    }
  }

  void UpdateDeadline(Connection& c) {
    const Limits& limits = shared_->options.limits;
    const int64_t now = NowMs();
    if (c.async_pending > 0) {
      // Waiting for the client to take queued output.
      c.deadline_ms = now + limits.send_timeout.count();
    } else if (c.closing) {
      c.deadline_ms = now + limits.linger_timeout.count();
    } else if (c.in.empty() && !c.parser.head_complete()) {
      c.request_started = c.body_started = false;
      c.deadline_ms = now + limits.keepalive_timeout.count();
    } else if (!c.parser.head_complete()) {
      // The header timeout runs from the request's first byte: trickling bytes do not extend it.
      if (!c.request_started) c.deadline_ms = now + limits.header_timeout.count();
      c.request_started = true;
    } else {
      if (!c.body_started) c.deadline_ms = now + limits.body_timeout.count();
      c.body_started = true;
    }
  }

  std::shared_ptr<Shared> shared_;
  std::unordered_map<const Pistache::Tcp::Peer*, ConnectionPtr> conns_;
};

class PistacheServer final : public Server {
 public:
  explicit PistacheServer(ServerOptions options) : shared_(std::make_shared<Shared>()) {
    shared_->options = std::move(options);
  }
  ~PistacheServer() override { Stop(); }

  Status Start() override {
    const ServerOptions& o = shared_->options;
    if (!o.handler) return Status::Error("invalid_argument", "server has no handler");
    size_t threads = o.threads;
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    try {
      listener_ = std::make_unique<Pistache::Tcp::Listener>();
      listener_->init(threads,
                      Pistache::Flags<Pistache::Tcp::Options>(Pistache::Tcp::Options::ReuseAddr) |
                          Pistache::Tcp::Options::NoDelay | Pistache::Tcp::Options::CloseOnExec,
                      "ps-" + o.name);
      listener_->setHandler(std::make_shared<ConnectionHandler>(shared_));
      listener_->bind(Pistache::Address(o.bind_address, Pistache::Port(o.port)));
      port_ = static_cast<uint16_t>(listener_->getPort());
      listener_->runThreaded();
    } catch (const std::exception& e) {
      listener_.reset();
      return Status::Error("listen_failed", "cannot listen on " + o.bind_address + ":" +
                                                std::to_string(o.port) + ": " + e.what());
    }
    sweeper_ = std::thread([this] { SweepLoop(); });
    started_ = true;
    return Status::Ok();
  }

  uint16_t port() const override { return port_; }

  void Stop() override {
    if (!started_) return;
    started_ = false;
    shared_->stopping = true;
    {
      std::lock_guard<std::mutex> lock(sweep_mu_);
      sweep_stop_ = true;
    }
    sweep_cv_.notify_all();
    if (sweeper_.joinable()) sweeper_.join();
    // Stops the accept loop and the reactors; a handler already running finishes first.
    listener_->shutdown();
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (shared_->inflight.load() > 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    listener_.reset();
    std::lock_guard<std::mutex> lock(shared_->registry_mu);
    shared_->registry.clear();
  }

  ServerStats stats() const override {
    ServerStats s;
    s.connections = shared_->connections.load();
    s.requests = shared_->requests.load();
    s.rejected = shared_->rejected.load();
    s.timeouts = shared_->timeouts.load();
    std::lock_guard<std::mutex> lock(shared_->registry_mu);
    s.open_connections = shared_->registry.size();
    return s;
  }

 private:
  // Closes connections whose deadline passed. Runs under the registry lock, and connections
  // leave the registry before Pistache closes their fd, so a reused fd is never hit.
  void SweepLoop() {
    std::unique_lock<std::mutex> lock(sweep_mu_);
    while (!sweep_stop_) {
      sweep_cv_.wait_for(lock, std::chrono::milliseconds(100));
      if (sweep_stop_) break;
      const int64_t now = NowMs();
      std::lock_guard<std::mutex> reg(shared_->registry_mu);
      for (const ConnectionPtr& c : shared_->registry) {
        const int64_t d = c->deadline_ms.load(std::memory_order_relaxed);
        if (d != 0 && now > d && !c->expired.exchange(true)) {
          ::shutdown(c->fd, SHUT_RDWR);
          shared_->timeouts.fetch_add(1, std::memory_order_relaxed);
        }
      }
    }
  }

  std::shared_ptr<Shared> shared_;
  std::unique_ptr<Pistache::Tcp::Listener> listener_;
  uint16_t port_ = 0;
  bool started_ = false;
  std::thread sweeper_;
  std::mutex sweep_mu_;
  std::condition_variable sweep_cv_;
  bool sweep_stop_ = false;
};

}  // namespace

ServerPtr MakeServer(ServerOptions options) {
  return std::make_unique<PistacheServer>(std::move(options));
}

}  // namespace peerstack::http
