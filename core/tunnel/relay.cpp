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
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "base/log.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "tunnel/splicer.h"

namespace peerstack::tunnel {
namespace {

using Clock = std::chrono::steady_clock;
constexpr char kHelloDomain[] = "relay-hello";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
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
  const int64_t deadline = NowMs() + timeout_ms;
  while (line->size() < max) {
    pollfd p{fd, POLLIN, 0};
    const int64_t left = deadline - NowMs();
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
  int listener = -1;
  uint16_t port = 0;
  std::atomic<bool> stopping{false};
  mutable std::mutex mu;  // nodes, pending
  std::map<std::string, std::shared_ptr<Node>> nodes;  // by key
  std::map<std::string, Pending> pending;              // by connection id
  // Joiner slots by address: when the slot ends; then no new slot until end + cooldown. Kept
  // across reconnects and new keys, so a slot cannot be renewed by saying hello again.
  std::map<std::string, int64_t> joiner_slot_end;
  std::mutex member_mu;  // is_member is called only under it, and never once stopping
  bool members_closed = false;
  std::unique_ptr<Splicer> splicer = std::make_unique<Splicer>();  // reset (under mu) on Stop
  std::thread acceptor;

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
      std::thread([self = shared_from_this(), fd] { self->Handle(fd); }).detach();
    }
  }

  void Handle(int fd) {
    const std::string nonce = crypto::RandomHex(16);
    std::string line;
    if (!SendAll(fd, "CHALLENGE " + nonce + "\n") || !ReadLine(fd, &line, 5000)) {
      ::close(fd);
      return;
    }
    if (line.rfind("DATA ", 0) == 0) return Data(fd, line.substr(5));
    if (line.rfind("HELLO ", 0) == 0) return Hello(fd, nonce, line.substr(6));
    ::close(fd);
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

  void Hello(int fd, const std::string& nonce, const std::string& rest) {
    const size_t sp = rest.find(' ');
    const std::string key = rest.substr(0, sp);
    const std::string sig = sp == std::string::npos ? "" : rest.substr(sp + 1);
    auto k = crypto::HexDecode(key);
    auto s = crypto::HexDecode(sig);
    auto refuse = [&](const std::string& why) {
      SendAll(fd, "ERR " + why + "\n");
      ::close(fd);
    };
    if (!k || !s ||
        !crypto::VerifyWithDomain(std::string_view(reinterpret_cast<const char*>(k->data()), k->size()),
                                  kHelloDomain, nonce,
                                  std::string_view(reinterpret_cast<const char*>(s->data()), s->size()))
             .ok()) {
      return refuse("bad signature");
    }
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
    PS_LOG(kInfo, "relay") << "relaying for " << key.substr(0, 16) << " on port " << node->port
                           << (member ? "" : " (a joining node from " + node->address + ": until it is a member, " +
                                                 std::to_string((node->joiner_until_ms - NowMs()) / 1000) + " s left)");
    std::thread([self = shared_from_this(), node] { self->PublicLoop(node); }).detach();
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
      if (entry.second->address == node.address) return refused + " (one joining node per address at a time)";
    }
    for (auto it = joiner_slot_end.begin(); it != joiner_slot_end.end();) {  // forget old ones
      it = now >= it->second + o.joiner_cooldown.count() ? joiner_slot_end.erase(it) : std::next(it);
    }
    auto slot = joiner_slot_end.find(node.address);
    if (slot != joiner_slot_end.end() && now >= slot->second) {
      return refused + " (this address had a joiner slot recently)";
    }
    if (joiners >= o.max_joiner_slots) return refused + " (the slots for joining nodes are taken)";
    if (slot == joiner_slot_end.end()) slot = joiner_slot_end.emplace(node.address, now + o.joiner_slot_time.count()).first;
    node.joiner_until_ms = slot->second;  // a reconnect continues the same slot
    return "";
  }

  // With mu held: a member's limits, or the smaller ones of a joining node.
  void SetLimits(Node& node, bool member) {
    node.max_connections = member ? o.max_connections_per_node
                                  : std::min(o.max_connections_per_node, o.joiner_connections);
    node.limit = std::make_shared<ByteRate>(member ? o.max_bytes_per_second_per_node
                                                   : std::min(o.max_bytes_per_second_per_node,
                                                              o.joiner_bytes_per_second));
  }

  static std::string PeerAddress(int fd) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    char host[INET6_ADDRSTRLEN] = "?";
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      if (addr.ss_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&addr)->sin_addr, host, sizeof host);
      } else if (addr.ss_family == AF_INET6) {
        ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&addr)->sin6_addr, host, sizeof host);
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
    PS_LOG(kInfo, "relay") << "the joiner slot of " << node.key.substr(0, 16) << " is over: not a member";
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
}

uint16_t RelayServer::port() const { return impl_->port; }

size_t RelayServer::relayed_nodes() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->nodes.size();
}

// ---- the relay provider (on the node behind NAT) -------------------------------------------

namespace {

class RelayProvider final : public Provider {
 public:
  RelayProvider(RelayCandidates relays, const crypto::SigningKey& key, DeliverConnection deliver)
      : candidates_(std::move(relays)), key_(key), deliver_(std::move(deliver)) {}
  ~RelayProvider() override { Close(); }

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
  struct State {
    int control = -1;
    std::string host;
    uint16_t port = 0;
    DeliverConnection deliver;
    std::atomic<bool> alive{true};
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
        std::thread([s, id = line.substr(8)] { Forward(s, id); }).detach();
      }
    }
    s->alive = false;
  }

  // One relayed connection: a data connection to the relay, handed to our public listener.
  static void Forward(const std::shared_ptr<State>& s, const std::string& id) {
    const int data = Connect(s->host, s->port, 3000);
    if (data < 0) return;
    std::string line;
    if (!ReadLine(data, &line, 5000) || !SendAll(data, "DATA " + id + "\n")) {
      ::close(data);
      return;
    }
    s->deliver(data);
  }

  RelayCandidates candidates_;
  const crypto::SigningKey& key_;
  DeliverConnection deliver_;
  size_t next_ = 0;
  std::shared_ptr<State> state_;
  std::thread control_thread_;
};

}  // namespace

ProviderPtr MakeRelayProvider(RelayCandidates relays, const crypto::SigningKey& key, DeliverConnection deliver) {
  return std::make_unique<RelayProvider>(std::move(relays), key, std::move(deliver));
}

ProviderPtr MakeRelayProvider(std::vector<std::string> relays, const crypto::SigningKey& key,
                              DeliverConnection deliver) {
  return MakeRelayProvider([relays = std::move(relays)] { return relays; }, key, std::move(deliver));
}

}  // namespace peerstack::tunnel
