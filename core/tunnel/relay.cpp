#include "tunnel/relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <thread>

#include "base/log.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "tunnel/splicer.h"

namespace peerstack::tunnel {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr char kHelloDomain[] = "relay-hello";

// For waits that really wait (poll): always the system's time.
int64_t RealMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             SteadyClock::now().time_since_epoch())
      .count();
}

int Connect(const std::string& host, uint16_t port, int timeout_ms) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) return -1;
  int fd = -1;
  for (addrinfo* ai = res; ai && fd < 0; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) continue;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      ::close(fd);
      fd = -1;
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (::poll(&p, 1, timeout_ms) != 1 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
        err != 0) {
      ::close(fd);
      fd = -1;
      continue;
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ::freeaddrinfo(res);
  return fd;
}

bool SendAll(int fd, const char* data, size_t size) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::send(fd, data + done, size - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool SendAll(int fd, const std::string& data) { return SendAll(fd, data.data(), data.size()); }

// Reads one line (without the newline), byte by byte so nothing after it is consumed.
bool ReadLine(int fd, std::string* line, int timeout_ms, size_t max = 512) {
  line->clear();
  const int64_t deadline = RealMs() + timeout_ms;
  while (line->size() < max) {
    pollfd p{fd, POLLIN, 0};
    const int64_t left = deadline - RealMs();
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) != 1) return false;
    char c;
    if (::recv(fd, &c, 1, 0) != 1) return false;
    if (c == '\n') return true;
    line->push_back(c);
  }
  return false;
}

int Listen(const std::string& host, uint16_t port, uint16_t* bound) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 128) != 0) {
    ::close(fd);
    return -1;
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *bound = ntohs(addr.sin_port);
  return fd;
}

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// One event loop thread for the short, untrusted part of relay connections (handshakes):
// nothing there blocks, every step has a deadline, so a stranger who connects and says
// nothing costs a socket until the deadline, not a thread.
class Loop {
 public:
  Loop() : work_(ioc_.get_executor()), thread_([this] { ioc_.run(); }) {}
  ~Loop() { Shutdown(); }
  // Stops the loop and waits for the handler running now, if any; pending ones are dropped
  // (with their sockets). The object stays valid. Idempotent; not from the loop's thread.
  void Shutdown() {
    work_.reset();
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }
  asio::io_context& ioc() { return ioc_; }

 private:
  asio::io_context ioc_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
};

// Writes `say` (if not empty), then reads one line of at most 512 bytes, within timeout_ms
// in all; done(ok, line) on the loop thread. A peer that sends more than the line before
// being answered breaks the protocol: not ok. The socket stays open either way (the caller
// releases or closes it).
void SayThenReadLine(const std::shared_ptr<tcp::socket>& sock, std::string say, int timeout_ms,
                     std::function<void(bool, std::string)> done) {
  struct Step {
    std::shared_ptr<tcp::socket> sock;
    asio::steady_timer timer;
    asio::streambuf buf{512};
    std::string say;
    std::function<void(bool, std::string)> done;
    Step(const std::shared_ptr<tcp::socket>& s, std::string text,
         std::function<void(bool, std::string)> d)
        : sock(s), timer(s->get_executor()), say(std::move(text)), done(std::move(d)) {}
  };
  auto step = std::make_shared<Step>(sock, std::move(say), std::move(done));
  step->timer.expires_after(std::chrono::milliseconds(timeout_ms));
  step->timer.async_wait([step](const boost::system::error_code& ec) {
    if (!ec) {
      boost::system::error_code ignored;
      step->sock->cancel(ignored);  // the pending read or write ends with an error
    }
  });
  auto read = [step] {
    asio::async_read_until(*step->sock, step->buf, '\n',
                           [step](const boost::system::error_code& ec, size_t n) {
                             step->timer.cancel();
                             if (ec || step->buf.size() != n) return step->done(false, "");
                             std::string line(asio::buffers_begin(step->buf.data()),
                                              asio::buffers_begin(step->buf.data()) + n - 1);
                             step->done(true, std::move(line));
                           });
  };
  if (step->say.empty()) return read();
  asio::async_write(*step->sock, asio::buffer(step->say),
                    [step, read](const boost::system::error_code& ec, size_t) {
                      if (ec) {
                        step->timer.cancel();
                        return step->done(false, "");
                      }
                      read();
                    });
}

// Takes the descriptor out of an Asio socket for the blocking code that continues with it
// (Asio leaves it non-blocking); -1 when there is none.
int ReleaseBlocking(tcp::socket& sock) {
  boost::system::error_code ec;
  const int fd = sock.release(ec);
  if (ec || fd < 0) return -1;
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

// Threads that run for an authenticated relayed node (its control connection and its public
// port): at most max at once, joined when they end or at Clear().
class NodeThreads {
 public:
  explicit NodeThreads(size_t max) : max_(max) {}
  ~NodeThreads() { Clear(); }
  bool Spawn(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    Reap();
    if (closed_ || threads_.size() >= max_) return false;
    auto done = std::make_shared<std::atomic<bool>>(false);
    threads_.push_back({std::thread([fn = std::move(fn), done] {
                          fn();
                          *done = true;
                        }),
                        done});
    return true;
  }
  // Joins every thread; later Spawns are refused (so none can outlive this, or join itself
  // from the destructor).
  void Clear() {
    std::list<Entry> all;
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
      all.swap(threads_);
    }
    for (Entry& e : all) e.thread.join();
  }

 private:
  struct Entry {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  void Reap() {
    for (auto it = threads_.begin(); it != threads_.end();) {
      if (*it->done) {
        it->thread.join();
        it = threads_.erase(it);
      } else {
        ++it;
      }
    }
  }
  size_t max_;
  std::mutex mu_;
  std::list<Entry> threads_;
  bool closed_ = false;
};

}  // namespace

// ---- the relay server (on a reachable member) --------------------------------------------

struct RelayServer::Impl : std::enable_shared_from_this<RelayServer::Impl> {
  // Shared by the node's control thread, its public port's thread and its relayed
  // connections; its sockets are closed only here, once nobody can use their numbers.
  struct Node {
    std::string key;
    std::string address;  // of the control connection's peer
    int control = -1;
    int listener = -1;
    uint16_t port = 0;
    std::mutex write_mu;  // control writes
    std::atomic<size_t> connections{0};
    std::atomic<size_t> max_connections{0};
    std::atomic<bool> gone{false};
    std::shared_ptr<ByteRate> limit;  // guarded by Impl::mu
    int64_t joiner_until_ms = 0;      // a joiner slot: must be a member by then (0: a member)
    ~Node() {
      if (listener >= 0) ::close(listener);
      if (control >= 0) ::close(control);
    }
  };
  struct Pending {
    std::shared_ptr<Node> node;
    int client;
    int64_t at_ms;
  };

  RelayServerOptions o;
  SystemClock system_clock;  // when o.clock is null
  int64_t NowMs() const { return (o.clock ? o.clock : &system_clock)->SteadyMs(); }
  int listener = -1;
  uint16_t port = 0;
  std::atomic<bool> stopping{false};
  mutable std::mutex mu;                               // nodes, pending
  std::map<std::string, std::shared_ptr<Node>> nodes;  // by key
  std::map<std::string, Pending> pending;              // by connection id
  // Joiner slots by address: when the slot ends; then no new slot until end + cooldown. Kept
  // across reconnects and new keys, so a slot cannot be renewed by saying hello again.
  std::map<std::string, int64_t> joiner_slot_end;
  std::mutex member_mu;  // is_member is called only under it, and never once stopping
  bool members_closed = false;
  std::unique_ptr<Splicer> splicer = std::make_unique<Splicer>();  // reset (under mu) on Stop
  std::thread acceptor;
  // Handshakes (CHALLENGE, then HELLO or DATA) on one event loop, capped in all and per
  // address; only an authenticated node gets threads (two: control and public port).
  // A handshake costs a socket and a little memory on the loop, so many may wait; a few
  // addresses cannot take them all (8 each), and a silent one is gone after 3 s.
  static constexpr size_t kMaxHandshakes = 1024;
  static constexpr size_t kMaxHandshakesPerAddress = 8;
  static constexpr int kHandshakeMs = 3000;
  std::unique_ptr<Loop> loop = std::make_unique<Loop>();
  std::map<std::string, size_t> handshakes;  // by address; guarded by mu
  size_t handshaking = 0;                    // guarded by mu
  std::unique_ptr<NodeThreads> node_threads;

  // The node's membership check, never after Stop (the node that answers it may be gone).
  bool IsMember(const std::string& key) {
    std::lock_guard<std::mutex> lock(member_mu);
    return !members_closed && o.is_member && o.is_member(key);
  }

  void AcceptLoop() {
    while (!stopping) {
      const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (stopping) return;
        continue;
      }
      const std::string address = PeerAddress(fd);
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stopping || handshaking >= kMaxHandshakes ||
            handshakes[address] >= kMaxHandshakesPerAddress) {
          ::close(fd);
          continue;
        }
        ++handshaking;
        ++handshakes[address];
      }
      asio::post(loop->ioc(),
                 [self = shared_from_this(), fd, address] { self->Handshake(fd, address); });
    }
  }

  // On the loop: CHALLENGE, then one line within the deadline. DATA is spliced at once;
  // HELLO (a node asking for a port) gets its threads once its signature checks out.
  void Handshake(int fd, const std::string& address) {
    auto sock = std::make_shared<tcp::socket>(loop->ioc());
    boost::system::error_code ec;
    sock->assign(tcp::v4(), fd, ec);  // the listener is IPv4
    if (ec) {
      ::close(fd);
      return EndHandshake(address);
    }
    const std::string nonce = crypto::RandomHex(16);
    SayThenReadLine(sock, "CHALLENGE " + nonce + "\n", kHandshakeMs,
                    [self = shared_from_this(), sock, nonce, address](bool ok, std::string line) {
                      self->EndHandshake(address);
                      boost::system::error_code ignored;
                      if (!ok || self->stopping) {
                        sock->close(ignored);
                        return;
                      }
                      const int own = ReleaseBlocking(*sock);
                      if (own < 0) return;
                      if (line.rfind("DATA ", 0) == 0) return self->Data(own, line.substr(5));
                      if (line.rfind("HELLO ", 0) == 0)
                        return self->StartNode(own, nonce, line.substr(6));
                      ::close(own);
                    });
  }

  void EndHandshake(const std::string& address) {
    std::lock_guard<std::mutex> lock(mu);
    --handshaking;
    if (--handshakes[address] == 0) handshakes.erase(address);
  }

  // A HELLO: checked on the loop (a signature costs microseconds), then the node's control
  // loop runs on a thread of its own.
  void StartNode(int fd, const std::string& nonce, const std::string& rest) {
    if (!HelloSigned(nonce, rest)) {
      SendAll(fd, "ERR bad signature\n");
      ::close(fd);
      return;
    }
    if (!node_threads->Spawn(
            [self = shared_from_this(), fd, nonce, rest] { self->Hello(fd, nonce, rest); })) {
      SendAll(fd, "ERR this relay is full\n");
      ::close(fd);
    }
  }

  static bool HelloSigned(const std::string& nonce, const std::string& rest) {
    const size_t sp = rest.find(' ');
    auto k = crypto::HexDecode(rest.substr(0, sp));
    auto s = crypto::HexDecode(sp == std::string::npos ? "" : rest.substr(sp + 1));
    return k && s &&
           crypto::VerifyWithDomain(
               std::string_view(reinterpret_cast<const char*>(k->data()), k->size()), kHelloDomain,
               nonce, std::string_view(reinterpret_cast<const char*>(s->data()), s->size()))
               .ok();
  }

  void Data(int fd, const std::string& id) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = pending.find(id);  // (empty once stopping)
    if (it == pending.end() || !splicer) {
      ::close(fd);
      return;
    }
    auto node = it->second.node;
    splicer->Add(fd, it->second.client, node->limit, [node] { --node->connections; });
    pending.erase(it);
  }

  // On a node thread, after HelloSigned: registers the node, opens its port, and runs its
  // control loop until it goes.
  void Hello(int fd, const std::string& nonce, const std::string& rest) {
    const std::string key = rest.substr(0, rest.find(' '));
    auto refuse = [&](const std::string& why) {
      SendAll(fd, "ERR " + why + "\n");
      ::close(fd);
    };
    if (!HelloSigned(nonce, rest)) return refuse("bad signature");  // (checked before; kept local)
    if (stopping) return refuse("this relay is stopping");
    const bool member = IsMember(key);
    auto node = std::make_shared<Node>();
    node->key = key;
    node->address = PeerAddress(fd);
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopping) return refuse("this relay is stopping");
      if (nodes.count(key)) {
        // A reconnect: the old control connection is dead or about to be.
        auto old = nodes[key];
        old->gone = true;
        ::shutdown(old->control, SHUT_RDWR);
        ::shutdown(old->listener, SHUT_RDWR);
        nodes.erase(key);
      }
      if (nodes.size() >= o.max_nodes) return refuse("this relay is full");
      if (!member) {
        if (auto why = GrantJoinerSlot(*node); !why.empty()) return refuse(why);
      }
      SetLimits(*node, member);
      node->listener = Listen(o.bind, 0, &node->port);
      if (node->listener < 0) return refuse("cannot open a port");
      node->control = fd;
      nodes[key] = node;
    }
    SendAll(fd, "OK http://" + o.public_host + ":" + std::to_string(node->port) + "\n");
    PS_LOG(kInfo, "relay")
        << "relaying for " << key.substr(0, 16) << " on port " << node->port
        << (member ? ""
                   : " (a joining node from " + node->address + ": until it is a member, " +
                         std::to_string((node->joiner_until_ms - NowMs()) / 1000) + " s left)");
    if (!node_threads->Spawn([self = shared_from_this(), node] { self->PublicLoop(node); })) {
      node->gone = true;  // cannot happen: two threads per node fit (see Start)
    }
    ControlLoop(node);
  }

  // With mu held: gives a non-member a joiner slot (sets its end), or says why not.
  std::string GrantJoinerSlot(Node& node) {
    const std::string refused = "only members of this network may use its relays";
    if (o.max_joiner_slots == 0 || o.joiner_slot_time.count() <= 0) return refused;
    const int64_t now = NowMs();
    size_t joiners = 0;
    for (const auto& entry : nodes) {
      if (entry.second->joiner_until_ms == 0) continue;
      ++joiners;
      if (entry.second->address == node.address)
        return refused + " (one joining node per address at a time)";
    }
    for (auto it = joiner_slot_end.begin(); it != joiner_slot_end.end();) {  // forget old ones
      it =
          now >= it->second + o.joiner_cooldown.count() ? joiner_slot_end.erase(it) : std::next(it);
    }
    auto slot = joiner_slot_end.find(node.address);
    if (slot != joiner_slot_end.end() && now >= slot->second) {
      return refused + " (this address had a joiner slot recently)";
    }
    if (joiners >= o.max_joiner_slots) return refused + " (the slots for joining nodes are taken)";
    if (slot == joiner_slot_end.end())
      slot = joiner_slot_end.emplace(node.address, now + o.joiner_slot_time.count()).first;
    node.joiner_until_ms = slot->second;  // a reconnect continues the same slot
    return "";
  }

  // With mu held: a member's limits, or the smaller ones of a joining node.
  void SetLimits(Node& node, bool member) {
    node.max_connections = member ? o.max_connections_per_node
                                  : std::min(o.max_connections_per_node, o.joiner_connections);
    node.limit = std::make_shared<ByteRate>(
        member ? o.max_bytes_per_second_per_node
               : std::min(o.max_bytes_per_second_per_node, o.joiner_bytes_per_second));
  }

  static std::string PeerAddress(int fd) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    char host[INET6_ADDRSTRLEN] = "?";
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      if (addr.ss_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&addr)->sin_addr, host, sizeof host);
      } else if (addr.ss_family == AF_INET6) {
        ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&addr)->sin6_addr, host,
                    sizeof host);
      }
    }
    return host;
  }

  // Browsers' connections to the node's port: ask the node for a data connection.
  void PublicLoop(const std::shared_ptr<Node>& node) {
    while (!node->gone && !stopping) {
      const int client = ::accept4(node->listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) break;
      if (node->connections >= node->max_connections) {
        ::close(client);
        continue;
      }
      ++node->connections;
      const std::string id = crypto::RandomHex(16);
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stopping) {  // Stop has closed the pending ones already
          ::close(client);
          --node->connections;
          break;
        }
        pending[id] = Pending{node, client, NowMs()};
      }
      std::lock_guard<std::mutex> lock(node->write_mu);
      if (!SendAll(node->control, "CONNECT " + id + "\n")) break;
    }
  }

  // Pings the node; when it stops answering, its port closes.
  void ControlLoop(const std::shared_ptr<Node>& node) {
    int64_t next_ping = NowMs() + 15000;
    std::string line;
    while (!node->gone && !stopping) {
      pollfd p{node->control, POLLIN, 0};
      const int r = ::poll(&p, 1, 1000);
      if (r < 0) break;
      if (r == 1) {
        if (!ReadLine(node->control, &line, 1000)) break;  // PONG or anything: it is alive
        next_ping = NowMs() + 15000;
      }
      if (NowMs() >= next_ping) {
        std::lock_guard<std::mutex> lock(node->write_mu);
        if (!SendAll(node->control, "PING\n")) break;
        next_ping = NowMs() + 15000;
      }
      ExpirePending();
      if (!JoinerStillWelcome(*node)) break;
    }
    node->gone = true;
    ::shutdown(node->listener, SHUT_RDWR);  // ends PublicLoop; ~Node closes the sockets
    ::shutdown(node->control, SHUT_RDWR);
    std::lock_guard<std::mutex> lock(mu);
    auto it = nodes.find(node->key);
    if (it != nodes.end() && it->second == node) nodes.erase(it);
    PS_LOG(kInfo, "relay") << "stopped relaying for " << node->key.substr(0, 16);
  }

  // A joiner that became a member gets a member's slot; one whose time is up, none (its
  // address then waits for the cooldown: see GrantJoinerSlot).
  bool JoinerStillWelcome(Node& node) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (node.joiner_until_ms == 0) return true;
    }
    const bool member = IsMember(node.key);  // not under mu: it takes the node's lock
    std::lock_guard<std::mutex> lock(mu);
    if (member) {
      node.joiner_until_ms = 0;
      joiner_slot_end.erase(node.address);
      SetLimits(node, true);
      PS_LOG(kInfo, "relay") << node.key.substr(0, 16) << " is a member now: a member's slot";
      return true;
    }
    if (NowMs() < node.joiner_until_ms) return true;
    PS_LOG(kInfo, "relay") << "the joiner slot of " << node.key.substr(0, 16)
                           << " is over: not a member";
    return false;
  }

  void ExpirePending() {
    std::lock_guard<std::mutex> lock(mu);
    for (auto it = pending.begin(); it != pending.end();) {
      if (NowMs() - it->second.at_ms > 10000) {
        ::close(it->second.client);
        --it->second.node->connections;
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
  }
};

RelayServer::RelayServer(RelayServerOptions options) : impl_(std::make_shared<Impl>()) {
  impl_->o = std::move(options);
}

RelayServer::~RelayServer() { Stop(); }

Status RelayServer::Start() {
  impl_->listener = Listen(impl_->o.bind, impl_->o.port, &impl_->port);
  if (impl_->listener < 0) {
    return Status::Error("listen_failed", "cannot listen for relays on " + impl_->o.bind + ":" +
                                              std::to_string(impl_->o.port));
  }
  // Two threads per relayed node (control, public port), and one more for a node whose old
  // control connection is still closing when it reconnects.
  impl_->node_threads = std::make_unique<NodeThreads>(2 * impl_->o.max_nodes + 4);
  impl_->acceptor = std::thread([impl = impl_] { impl->AcceptLoop(); });
  PS_LOG(kInfo, "relay") << "relay for members on port " << impl_->port;
  return Status::Ok();
}

void RelayServer::Stop() {
  if (impl_->stopping.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(impl_->member_mu);
    impl_->members_closed = true;
  }
  ::shutdown(impl_->listener, SHUT_RDWR);
  if (impl_->acceptor.joinable()) impl_->acceptor.join();
  ::close(impl_->listener);
  std::unique_ptr<Splicer> splicer;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (auto& [key, node] : impl_->nodes) {
      node->gone = true;
      ::shutdown(node->control, SHUT_RDWR);
      ::shutdown(node->listener, SHUT_RDWR);
    }
    for (auto& [id, p] : impl_->pending) ::close(p.client);  // browsers still waiting
    impl_->pending.clear();
    splicer = std::move(impl_->splicer);
  }
  splicer.reset();  // relayed connections close with the relay
  if (impl_->node_threads) impl_->node_threads->Clear();  // their sockets are shut down above
  impl_->loop->Shutdown();  // handshakes in progress are dropped with their sockets
}

uint16_t RelayServer::port() const { return impl_->port; }

size_t RelayServer::relayed_nodes() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->nodes.size();
}

uint64_t RelayServer::relayed_bytes() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->splicer ? impl_->splicer->bytes() : 0;
}

// ---- the relay provider (on the node behind NAT) -------------------------------------------

namespace {

class RelayProvider final : public Provider {
 public:
  RelayProvider(RelayCandidates relays, const crypto::SigningKey& key, DeliverConnection deliver)
      : candidates_(std::move(relays)), key_(key), deliver_(std::move(deliver)) {}
  ~RelayProvider() override {
    Close();
    loop_.reset();  // data connections still being opened are dropped
  }

  std::string name() const override { return "relay"; }

  Result<std::string> Open() override {
    Close();
    const std::vector<std::string> relays = candidates_();
    std::string last_error = "no relay known (none in --relay-via, no member runs one)";
    for (size_t attempt = 0; attempt < relays.size(); ++attempt) {
      const std::string& relay = relays[(next_ + attempt) % relays.size()];
      auto url = TryRelay(relay);
      if (url) {
        next_ = (next_ + attempt) % relays.size();
        return url;
      }
      last_error = relay + ": " + url.status().message();
    }
    next_ = (next_ + 1) % std::max<size_t>(1, relays.size());  // start elsewhere next time
    return Status::Error("relay_failed", last_error);
  }

  bool Alive() override { return state_ && state_->alive; }

  void Close() override {
    if (!state_) return;
    state_->alive = false;
    ::shutdown(state_->control, SHUT_RDWR);
    if (control_thread_.joinable()) control_thread_.join();
    ::close(state_->control);
    state_.reset();
  }

 private:
  // Data connections being opened at once, at most (the relay allows 64 per node in all).
  static constexpr int kMaxForwarding = 64;

  struct State {
    int control = -1;
    std::string host;
    uint16_t port = 0;
    DeliverConnection deliver;
    std::atomic<bool> alive{true};
    Loop* loop = nullptr;  // the provider's; data connections are opened there
    std::atomic<int> forwarding{0};
  };

  Result<std::string> TryRelay(const std::string& relay) {
    const size_t colon = relay.rfind(':');
    if (colon == std::string::npos) return Status::Error("bad_relay", "expected host:port");
    const std::string host = relay.substr(0, colon);
    const uint16_t port = static_cast<uint16_t>(std::atoi(relay.c_str() + colon + 1));
    const int fd = Connect(host, port, 3000);
    if (fd < 0) return Status::Error("connect_failed", "cannot connect");
    std::string line;
    if (!ReadLine(fd, &line, 5000) || line.rfind("CHALLENGE ", 0) != 0) {
      ::close(fd);
      return Status::Error("protocol", "no challenge");
    }
    const crypto::Signature sig = key_.SignWithDomain(kHelloDomain, line.substr(10));
    const auto& pub = key_.public_key();
    if (!SendAll(fd, "HELLO " + crypto::HexEncode(pub.data(), pub.size()) + " " +
                         crypto::HexEncode(sig.data(), sig.size()) + "\n") ||
        !ReadLine(fd, &line, 5000)) {
      ::close(fd);
      return Status::Error("protocol", "no answer to hello");
    }
    if (line.rfind("OK ", 0) != 0) {
      ::close(fd);
      return Status::Error("refused", line.rfind("ERR ", 0) == 0 ? line.substr(4) : line);
    }
    state_ = std::make_shared<State>();
    state_->control = fd;
    state_->host = host;
    state_->port = port;
    state_->deliver = deliver_;
    state_->loop = loop_.get();
    control_thread_ = std::thread([s = state_] { ControlLoop(s); });
    return line.substr(3);
  }

  static void ControlLoop(const std::shared_ptr<State>& s) {
    std::string line;
    while (s->alive) {
      pollfd p{s->control, POLLIN, 0};
      const int r = ::poll(&p, 1, 60000);
      if (r <= 0 || !ReadLine(s->control, &line, 5000)) break;  // the relay pings every 15 s
      if (line == "PING") {
        if (!SendAll(s->control, "PONG\n")) break;
      } else if (line.rfind("CONNECT ", 0) == 0) {
        Forward(s, line.substr(8));
      }
    }
    s->alive = false;
  }

  // One relayed connection: a data connection to the relay, opened on the provider's loop
  // (connect 3 s, the relay's challenge 5 s), then handed to our public listener.
  static void Forward(const std::shared_ptr<State>& s, const std::string& id) {
    if (s->forwarding.fetch_add(1) >= kMaxForwarding) {
      --s->forwarding;
      return;  // the browser's connection times out at the relay
    }
    asio::io_context& ioc = s->loop->ioc();
    auto sock = std::make_shared<tcp::socket>(ioc);
    auto resolver = std::make_shared<tcp::resolver>(ioc);
    auto timer = std::make_shared<asio::steady_timer>(ioc, std::chrono::seconds(3));
    timer->async_wait([sock, resolver](const boost::system::error_code& ec) {
      if (ec) return;
      boost::system::error_code ignored;
      resolver->cancel();
      sock->cancel(ignored);
    });
    auto end = [s] { --s->forwarding; };
    resolver->async_resolve(
        s->host, std::to_string(s->port),
        [s, id, sock, resolver, timer, end](const boost::system::error_code& ec,
                                            tcp::resolver::results_type results) {
          if (ec) {
            timer->cancel();
            return end();
          }
          asio::async_connect(
              *sock, results,
              [s, id, sock, timer, end](const boost::system::error_code& ec2,
                                        const tcp::endpoint&) {
                timer->cancel();
                if (ec2) return end();
                boost::system::error_code ignored;
                sock->set_option(tcp::no_delay(true), ignored);
                SayThenReadLine(
                    sock, "", 5000, [s, id, sock, end](bool ok, const std::string& line) {
                      if (!ok || line.rfind("CHALLENGE ", 0) != 0) return end();
                      auto data_line = std::make_shared<std::string>("DATA " + id + "\n");
                      asio::async_write(
                          *sock, asio::buffer(*data_line),
                          [s, sock, data_line, end](const boost::system::error_code& ec3, size_t) {
                            end();
                            if (ec3) return;
                            const int fd = ReleaseBlocking(*sock);
                            if (fd >= 0) s->deliver(fd);
                          });
                    });
              });
        });
  }

  RelayCandidates candidates_;
  const crypto::SigningKey& key_;
  DeliverConnection deliver_;
  size_t next_ = 0;
  std::shared_ptr<State> state_;
  std::thread control_thread_;
  std::unique_ptr<Loop> loop_ = std::make_unique<Loop>();
};

}  // namespace

ProviderPtr MakeRelayProvider(RelayCandidates relays, const crypto::SigningKey& key,
                              DeliverConnection deliver) {
  return std::make_unique<RelayProvider>(std::move(relays), key, std::move(deliver));
}

ProviderPtr MakeRelayProvider(std::vector<std::string> relays, const crypto::SigningKey& key,
                              DeliverConnection deliver) {
  return MakeRelayProvider([relays = std::move(relays)] { return relays; }, key,
                           std::move(deliver));
}

}  // namespace peerstack::tunnel
