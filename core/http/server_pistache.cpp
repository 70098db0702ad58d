// http::Server on Pistache's TCP layer. Each worker thread owns a clone of ConnectionHandler
// and the connections its reactor serves. A connection is served by its reactor thread, or
// by the thread that completes a deferred answer; its mutex makes those take turns. The
// timeout registry (read by the sweeper thread) has its own lock.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pistache/listener.h>
#include <pistache/peer.h>
#include <pistache/tcp.h>
#include <pistache/transport.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/log.h"
#include "http/parser.h"
#include "http/server.h"
#include "http/url.h"

namespace peerstack::http {
namespace {

using Clock = std::chrono::steady_clock;
using PeerPtr = std::shared_ptr<Pistache::Tcp::Peer>;

// Answers produced for one connection before we hand them to the socket and look again.
constexpr size_t kOutputHighWater = 1 << 20;

struct DeferredState;

struct Connection {
  Connection(int fd_in, const Limits& limits) : fd(fd_in), parser(limits) {}
  const int fd;
  // Guards everything below: the reactor thread and threads completing deferred responses
  // both serve the connection. Never held while waiting for anything else.
  std::mutex mu;
  std::weak_ptr<Pistache::Tcp::Peer> peer;
  RequestParser parser;
  std::string in;      // bytes received and not yet consumed
  std::string out;     // response bytes, those before out_off already handed to the socket
  size_t out_off = 0;  // (kept instead of erased: a 16 MB answer is not moved per write)
  std::string remote;
  bool dead = false;     // Pistache reported the disconnection: never touch fd again
  bool closing = false;  // no more requests: discard input, close when written
  bool shut_wr = false;  // FIN sent
  bool request_started = false;
  bool body_started = false;
  bool sent_continue = false;
  int async_pending = 0;  // writes queued in Pistache's transport
  // A handler deferred its answer: input waits until the responder sends it.
  std::shared_ptr<DeferredState> parked;
  // Responses' holds (Response::hold), released once out is written and nothing is queued.
  std::vector<std::shared_ptr<void>> holds;
  bool parked_head = false, parked_keep_alive = false, parked_http10 = false;
  std::atomic<int64_t> deadline_ms{0};
  std::atomic<bool> expired{false};
};
using ConnectionPtr = std::shared_ptr<Connection>;

// State shared by the server object, every handler clone, responders and the sweeper.
struct Shared : std::enable_shared_from_this<Shared> {
  ServerOptions options;
  SystemClock system_clock;  // when options.clock is null
  int64_t Now() const { return (options.clock ? options.clock : &system_clock)->SteadyMs(); }
  std::mutex registry_mu;
  std::unordered_set<ConnectionPtr> registry;           // for the sweeper
  std::unordered_map<std::string, size_t> per_address;  // open connections counted against the cap
  std::atomic<bool> stopping{false};
  std::atomic<int> inflight{0};
  std::atomic<uint64_t> connections{0}, requests{0}, rejected{0}, timeouts{0};
  std::array<std::atomic<uint64_t>, 6> by_class{};  // answers by status / 100
  void Count(int status) {
    by_class[status >= 100 && status < 600 ? status / 100 : 0].fetch_add(1,
                                                                         std::memory_order_relaxed);
  }

  void Serve(const ConnectionPtr& conn);  // conn->mu held
  bool ProcessInput(const ConnectionPtr& conn);
  Response Call(Request& req);
  void Finish(Connection& c, const Response& resp, bool head_only, bool keep_alive, bool http10);
  void Flush(const ConnectionPtr& conn);
  void UpdateDeadline(Connection& c);
  static void MaybeShutdownWrite(Connection& c);
  static bool KeepAlive(const Request& req);
  void Resume(const ConnectionPtr& conn, Response resp);  // from a responder
};

// One deferred request: who answers first (the handler's thread or the server) decides.
struct DeferredState {
  std::mutex mu;
  bool done = false;      // Send() happened
  bool attached = false;  // the connection is parked waiting for it
  Response response;      // kept here when Send() comes before parking
};

class ResponderImpl final : public Responder {
 public:
  ResponderImpl(std::weak_ptr<Shared> shared, std::weak_ptr<Connection> conn,
                std::shared_ptr<DeferredState> state)
      : shared_(std::move(shared)), conn_(std::move(conn)), state_(std::move(state)) {}
  ~ResponderImpl() override {
    if (!sent_) Send(JsonError(500, "internal", "the handler dropped the request"));
  }

  void Send(Response response) override {
    sent_ = true;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      if (state_->done) return;
      state_->done = true;
      if (!state_->attached) {
        state_->response = std::move(response);
        return;  // the serving thread picks it up when the handler returns
      }
    }
    auto shared = shared_.lock();
    auto conn = conn_.lock();
    if (shared && conn) {
      shared->Resume(conn, std::move(response));
    } else if (shared) {
      shared->inflight.fetch_sub(1);
    }
  }

 private:
  std::weak_ptr<Shared> shared_;
  std::weak_ptr<Connection> conn_;
  std::shared_ptr<DeferredState> state_;
  bool sent_ = false;
};

// Lives for one handler call; hands out at most one responder.
class DeferrerImpl final : public Deferrer {
 public:
  DeferrerImpl(std::weak_ptr<Shared> shared, std::weak_ptr<Connection> conn)
      : shared_(std::move(shared)), conn_(std::move(conn)) {}
  std::shared_ptr<Responder> Defer() override {
    if (!state_) state_ = std::make_shared<DeferredState>();
    return std::make_shared<ResponderImpl>(shared_, conn_, state_);
  }
  std::shared_ptr<DeferredState> state() const { return state_; }

 private:
  std::weak_ptr<Shared> shared_;
  std::weak_ptr<Connection> conn_;
  std::shared_ptr<DeferredState> state_;
};

// Answers buffered requests. While the client is not taking our answers (writes queued in
// the transport), or a handler's deferred answer is pending, input waits in c.in instead of
// producing more output, so a client that pipelines without reading cannot make us queue
// unbounded responses; if it keeps sending, its buffered input hits a cap and it is closed.
void Shared::Serve(const ConnectionPtr& conn) {
  Connection& c = *conn;
  const Limits& limits = options.limits;
  while (!c.closing && !c.dead) {
    if (c.async_pending > 0 || c.parked) {
      if (c.in.size() > limits.max_header_bytes + limits.max_body_bytes) {
        c.closing = true;
        c.in.clear();
        ::shutdown(c.fd, SHUT_RDWR);
        rejected.fetch_add(1, std::memory_order_relaxed);
      }
      break;
    }
    const bool more = ProcessInput(conn);
    Flush(conn);
    if (!more) break;
  }
  UpdateDeadline(c);
}

// Parses and answers requests from c.in until it needs more bytes, a handler defers, or
// kOutputHighWater bytes of answers are waiting; returns true in the last case.
bool Shared::ProcessInput(const ConnectionPtr& conn) {
  Connection& c = *conn;
  size_t offset = 0;
  bool high_water = false;
  while (!c.closing && !c.parked && offset < c.in.size()) {
    if (c.out.size() - c.out_off >= kOutputHighWater) {
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
      Count(r.status);
      c.closing = true;
      rejected.fetch_add(1, std::memory_order_relaxed);
      PS_LOG(kDebug, "http") << options.name << ": " << c.parser.error_status() << " "
                             << c.parser.error_message() << " from " << c.remote;
      break;
    }
    Request& req = c.parser.request();
    req.remote_address = c.remote;
    c.request_started = c.body_started = c.sent_continue = false;
    const bool keep_alive = KeepAlive(req);
    const bool head_only = req.method == "HEAD";
    const bool http10 = req.version_minor == 0;
    DeferrerImpl deferrer(weak_from_this(), conn);
    req.deferrer = &deferrer;
    Response resp = Call(req);
    req.deferrer = nullptr;
    if (resp.deferred) {
      auto st = deferrer.state();
      bool ready = false;
      if (st) {
        std::lock_guard<std::mutex> lock(st->mu);
        ready = st->done;
        if (ready) {
          resp = std::move(st->response);
        } else {
          st->attached = true;
        }
      } else {
        resp = JsonError(500, "internal", "handler deferred without a responder");
        ready = true;
      }
      if (ready) {
        inflight.fetch_sub(1);
      } else {
        c.parked = st;
        c.parked_head = head_only;
        c.parked_keep_alive = keep_alive;
        c.parked_http10 = http10;
        break;
      }
    } else {
      inflight.fetch_sub(1);
    }
    Finish(c, resp, head_only, keep_alive, http10);
  }
  c.in.erase(0, offset);
  if (c.closing) c.in.clear();
  return high_water && !c.closing;
}

void Shared::Finish(Connection& c, const Response& resp, bool head_only, bool keep_alive,
                    bool http10) {
  if (resp.close || stopping.load(std::memory_order_relaxed)) keep_alive = false;
  AppendResponse(c.out, resp, head_only, keep_alive, keep_alive && http10);
  Count(resp.status);
  if (resp.hold) c.holds.push_back(resp.hold);
  if (!keep_alive) c.closing = true;
}

void Shared::Resume(const ConnectionPtr& conn, Response resp) {
  std::lock_guard<std::mutex> lock(conn->mu);
  inflight.fetch_sub(1);
  Connection& c = *conn;
  if (c.dead) return;
  c.parked.reset();
  Finish(c, resp, c.parked_head, c.parked_keep_alive, c.parked_http10);
  Flush(conn);
  Serve(conn);  // pipelined requests that waited
}

bool Shared::KeepAlive(const Request& req) {
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

// Calls the handler; exceptions become a generic 500. The caller decrements inflight once
// the answer exists (now, or when a deferred one arrives).
Response Shared::Call(Request& req) {
  inflight.fetch_add(1);
  requests.fetch_add(1, std::memory_order_relaxed);
  try {
    return options.handler(req);
  } catch (const std::exception& e) {
    PS_LOG(kError, "http") << options.name << ": handler for " << req.method << " " << req.path
                           << " threw: " << e.what();
  } catch (...) {
    PS_LOG(kError, "http") << options.name << ": handler for " << req.method << " " << req.path
                           << " threw a non-standard exception";
  }
  return JsonError(500, "internal", "internal error");
}

// Writes what it can now; the rest goes through Pistache's write queue, in order, at most
// kHandOff bytes at a time: Pistache copies what remains of a buffer after each partial
// write, so a large answer handed whole costs a copy per socket-buffer's worth. When a piece
// is written, the next write starts here again (directly, as much as the socket takes).
void Shared::Flush(const ConnectionPtr& conn) {
  constexpr size_t kHandOff = 256 * 1024;
  Connection& c = *conn;
  if (c.dead) return;
  if (c.out_off < c.out.size() && c.async_pending == 0) {
    const ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      c.out.clear();
      c.out_off = 0;
      c.holds.clear();
      c.closing = true;
      ::shutdown(c.fd, SHUT_RDWR);
      return;
    }
    c.out_off += n > 0 ? static_cast<size_t>(n) : 0;
  }
  auto peer = c.peer.lock();
  if (c.out_off < c.out.size() && c.async_pending == 0 && peer) {
    ++c.async_pending;
    const size_t size = std::min(c.out.size() - c.out_off, kHandOff);
    std::string piece = c.out.substr(c.out_off, size);
    c.out_off += size;
    std::weak_ptr<Connection> weak = conn;
    std::weak_ptr<Shared> self = weak_from_this();
    // Runs on the connection's reactor thread once the transport has written the piece.
    peer->send(Pistache::RawBuffer(std::move(piece), size), MSG_NOSIGNAL)
        .then(
            [weak, self](ssize_t) {
              auto locked = weak.lock();
              auto shared = self.lock();
              if (!locked || !shared) return;
              std::lock_guard<std::mutex> lock(locked->mu);
              --locked->async_pending;
              if (locked->async_pending == 0 && !locked->dead &&
                  locked->out_off < locked->out.size()) {
                shared->Flush(locked);  // the rest of a large answer
              }
              if (locked->async_pending == 0 && locked->out.empty()) locked->holds.clear();
              if (locked->async_pending == 0 && !locked->closing && !locked->dead) {
                shared->Serve(locked);  // input that waited for the client to catch up
              } else {
                MaybeShutdownWrite(*locked);
                shared->UpdateDeadline(*locked);
              }
            },
            [weak](std::exception_ptr) {
              auto locked = weak.lock();
              if (!locked) return;
              std::lock_guard<std::mutex> lock(locked->mu);
              --locked->async_pending;
              locked->holds.clear();  // the answer will not be written
              if (!locked->dead) ::shutdown(locked->fd, SHUT_RDWR);
            });
  }
  if (c.out_off == c.out.size()) {
    c.out.clear();
    c.out_off = 0;
    if (c.async_pending == 0) c.holds.clear();
  }
  MaybeShutdownWrite(c);
}

// Once a closing connection has written everything: send FIN, keep reading (and discarding)
// until the client closes or the linger timeout fires, so the client sees our answer
// instead of a reset.
void Shared::MaybeShutdownWrite(Connection& c) {
  if (c.closing && !c.shut_wr && !c.dead && c.async_pending == 0 && c.out.empty()) {
    ::shutdown(c.fd, SHUT_WR);
    c.shut_wr = true;
  }
}

void Shared::UpdateDeadline(Connection& c) {
  const Limits& limits = options.limits;
  const int64_t now = Now();
  if (c.async_pending > 0 || c.parked) {
    // Waiting for the client to take queued output, or for a deferred answer (whose own
    // timeout belongs to whoever deferred it; this is only a safety net).
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
    conn->peer = peer;
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    shared_->connections.fetch_add(1, std::memory_order_relaxed);
    bool over_limit = false;
    {
      std::lock_guard<std::mutex> lock(shared_->registry_mu);
      over_limit = shared_->registry.size() >= limits.max_connections;
      if (!limits.loopback_exempt || !IsLoopbackHost(conn->remote)) {
        size_t& n = shared_->per_address[conn->remote];
        over_limit |= n >= limits.max_connections_per_address;
        ++n;  // undone in onDisconnection, like the registry entry
      }
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
    conn->deadline_ms = shared_->Now() + limits.header_timeout.count();
  }

  // Called before Pistache closes the fd: after this nobody may use it.
  void onDisconnection(const PeerPtr& peer) override {
    auto it = conns_.find(peer.get());
    if (it == conns_.end()) return;
    {
      std::lock_guard<std::mutex> lock(it->second->mu);
      it->second->dead = true;
      it->second->holds.clear();  // what was not written never will be
    }
    {
      std::lock_guard<std::mutex> lock(shared_->registry_mu);
      shared_->registry.erase(it->second);
      // (Not counted, as loopback is when exempt: not found.)
      auto n = shared_->per_address.find(it->second->remote);
      if (n != shared_->per_address.end() && --n->second == 0) shared_->per_address.erase(n);
    }
    conns_.erase(it);
  }

  void onInput(const char* buffer, size_t len, const PeerPtr& peer) override {
    auto it = conns_.find(peer.get());
    if (it == conns_.end()) return;
    const ConnectionPtr conn = it->second;
    std::lock_guard<std::mutex> lock(conn->mu);
    if (conn->closing) return;  // lingering close: read and discard
    conn->in.append(buffer, len);
    shared_->Serve(conn);
  }

 private:
  std::shared_ptr<Shared> shared_;
  std::unordered_map<const Pistache::Tcp::Peer*, ConnectionPtr> conns_;
};

// Pistache's listener hands accepted sockets to the transport of one of its workers and keeps
// those transports to itself. This transport records every per-worker copy the reactor makes
// of it (clone()), so the server can hand them sockets it did not accept (Adopt).
struct TransportRegistry {
  std::mutex mu;
  std::vector<std::weak_ptr<Pistache::Tcp::Transport>> workers;
};

class AdoptingTransport final : public Pistache::Tcp::Transport {
 public:
  AdoptingTransport(const std::shared_ptr<Pistache::Tcp::Handler>& handler,
                    std::shared_ptr<TransportRegistry> registry)
      : Transport(handler), handler_prototype_(handler), registry_(std::move(registry)) {}

  std::shared_ptr<Pistache::Aio::Handler> clone() const override {
    auto copy = std::make_shared<AdoptingTransport>(handler_prototype_->clone(), registry_);
    std::lock_guard<std::mutex> lock(registry_->mu);
    registry_->workers.push_back(copy);
    return copy;
  }

 private:
  std::shared_ptr<Pistache::Tcp::Handler> handler_prototype_;
  std::shared_ptr<TransportRegistry> registry_;
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
      auto handler = std::make_shared<ConnectionHandler>(shared_);
      listener_->setHandler(handler);
      listener_->setTransportFactory([handler, registry = registry_] {
        return std::make_shared<AdoptingTransport>(handler, registry);
      });
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
    std::lock_guard<std::mutex> lock(adopt_mu_);
    adoptable_ = true;
    return Status::Ok();
  }

  uint16_t port() const override { return port_; }

  void Stop() override {
    if (!started_) return;
    started_ = false;
    {
      std::lock_guard<std::mutex> lock(adopt_mu_);
      adoptable_ = false;
    }
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
    // Pistache's shutdown leaves the accepted sockets open: close the conversations we still
    // have (their fds are still Pistache's, so shut down, not close).
    {
      std::lock_guard<std::mutex> lock(shared_->registry_mu);
      for (const ConnectionPtr& c : shared_->registry) {
        std::lock_guard<std::mutex> conn_lock(c->mu);
        if (!c->dead) ::shutdown(c->fd, SHUT_RDWR);
        c->dead = true;
      }
      shared_->registry.clear();
    }
    listener_.reset();
  }

  bool Adopt(int fd) override {
    // Under adopt_mu_: Stop closes the door before the reactors go, so no socket is handed to
    // a transport that is shutting down.
    std::lock_guard<std::mutex> adopt_lock(adopt_mu_);
    std::shared_ptr<Pistache::Tcp::Transport> transport;
    if (adoptable_) {
      std::lock_guard<std::mutex> lock(registry_->mu);
      if (!registry_->workers.empty()) {
        transport = registry_->workers[static_cast<size_t>(fd) % registry_->workers.size()].lock();
      }
    }
    if (!transport) {
      ::close(fd);
      return false;
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    transport->handleNewPeer(
        Pistache::Tcp::Peer::Create(fd, Pistache::Address("127.0.0.1", Pistache::Port(0))));
    return true;
  }

  ServerStats stats() const override {
    ServerStats s;
    s.connections = shared_->connections.load();
    s.requests = shared_->requests.load();
    for (size_t i = 0; i < s.by_class.size(); ++i) s.by_class[i] = shared_->by_class[i].load();
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
      const int64_t now = shared_->Now();
      std::lock_guard<std::mutex> reg(shared_->registry_mu);
      for (const ConnectionPtr& c : shared_->registry) {
        const int64_t d = c->deadline_ms.load(std::memory_order_relaxed);
        if (d != 0 && now > d && !c->expired.exchange(true)) {
          // Counted first: whoever sees the close may read the stats right away.
          shared_->timeouts.fetch_add(1);
          // Registry membership means Pistache has not closed the fd yet (see onDisconnection).
          ::shutdown(c->fd, SHUT_RDWR);
        }
      }
    }
  }

  std::shared_ptr<Shared> shared_;
  std::shared_ptr<TransportRegistry> registry_ = std::make_shared<TransportRegistry>();
  std::mutex adopt_mu_;
  bool adoptable_ = false;  // guarded by adopt_mu_
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
