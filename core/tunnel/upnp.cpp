// The `upnp` provider: asks the home router for a port mapping, by UPnP IGD first, then by
// NAT-PMP; renews the lease at half-time and removes the mapping on Close.
#include <arpa/inet.h>
#include <sys/select.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

extern "C" {
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#include <natpmp.h>
}

#include "base/log.h"
#include "tunnel/tunnel.h"

namespace peerstack::tunnel {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kConflict = 718;       // ConflictInMappingEntry
constexpr int kOnlyPermanent = 725;  // OnlyPermanentLeasesSupported

std::string Url(const std::string& host, uint16_t port) {
  return "http://" + host + ":" + std::to_string(port);
}

// Waits for a NAT-PMP answer for at most `budget` (libnatpmp alone would retry for a minute).
int AwaitNatPmp(natpmp_t* n, natpmpresp_t* resp, std::chrono::milliseconds budget) {
  const auto deadline = Clock::now() + budget;
  int r;
  do {
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(n->s, &fds);
    timeval tv{};
    getnatpmprequesttimeout(n, &tv);
    const auto left =
        std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
    if (left.count() <= 0) return NATPMP_ERR_RECVFROM;
    const int64_t wait_us = std::min<int64_t>(left.count(), tv.tv_sec * 1000000 + tv.tv_usec);
    tv.tv_sec = wait_us / 1000000;
    tv.tv_usec = wait_us % 1000000;
    ::select(n->s + 1, &fds, nullptr, nullptr, &tv);
    r = readnatpmpresponseorretry(n, resp);
  } while (r == NATPMP_TRYAGAIN);
  return r;
}

class UpnpProvider final : public Provider {
 public:
  UpnpProvider(std::string bind, uint16_t local_port, std::chrono::seconds lease)
      : bind_(std::move(bind)), local_port_(local_port), lease_(lease) {}
  ~UpnpProvider() override { Close(); }

  std::string name() const override { return "upnp"; }

  Result<std::string> Open() override {
    Close();
    if (bind_ == "127.0.0.1" || bind_ == "localhost" || bind_ == "::1") {
      return Status::Error("loopback_only",
                           "the public listener is on " + bind_ +
                               ": a router cannot forward to it (use --bind 0.0.0.0)");
    }
    Result<std::string> url = Status::Error("unset", "");
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto upnp = OpenUpnp();
      if (upnp) {
        url = upnp;
      } else {
        auto pmp = OpenNatPmp();
        if (!pmp) {
          return Status::Error("no_port_mapping", "UPnP: " + upnp.status().message() +
                                                      "; NAT-PMP: " + pmp.status().message());
        }
        url = pmp;
      }
      stop_renewing_ = false;
      renew_at_ = NextRenewal();
    }
    renewer_ = std::thread([this] { RenewLoop(); });
    return url;
  }

  // The lease is renewed at half-time by a thread of its own (the manager's checks may be
  // late); a failed renewal, or one that moves the port, makes the path dead and the manager
  // fails over.
  bool Alive() override {
    std::lock_guard<std::mutex> lock(mu_);
    return kind_ != Kind::kNone && !renewal_failed_;
  }

  void Close() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_renewing_ = true;
    }
    cv_.notify_all();
    if (renewer_.joinable()) renewer_.join();
    std::lock_guard<std::mutex> lock(mu_);
    if (kind_ == Kind::kUpnp) {
      const std::string port = std::to_string(ext_port_);
      const int r = UPNP_DeletePortMapping(control_url_.c_str(), service_.c_str(), port.c_str(),
                                           "TCP", nullptr);
      PS_LOG(kInfo, "tunnel") << "upnp: removed the mapping of port " << ext_port_
                              << (r == 0 ? ""
                                         : std::string(" (router said: ") + strupnperror(r) + ")");
    } else if (kind_ == Kind::kNatPmp) {
      MapNatPmp(std::chrono::seconds(0));  // lifetime 0 deletes
      PS_LOG(kInfo, "tunnel") << "nat-pmp: removed the mapping of port " << ext_port_;
    }
    kind_ = Kind::kNone;
    renewal_failed_ = false;
  }

 private:
  enum class Kind { kNone, kUpnp, kNatPmp };

  // The router is asked without holding mu_ (it may be slow to answer): the manager's
  // Alive() never waits for it. Only Close() stops this thread, and Close() joins it before
  // touching the mapping, so the fields it reads stay put meanwhile.
  Clock::time_point NextRenewal() const {
    return Clock::now() + std::max<std::chrono::seconds>(lease_ / 2, std::chrono::seconds(1));
  }

  void RenewLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_renewing_ && !renewal_failed_) {
      if (cv_.wait_until(lock, renew_at_, [this] { return stop_renewing_; })) break;
      const Kind kind = kind_;
      lock.unlock();
      const bool ok =
          kind == Kind::kUpnp ? AddUpnp(ext_port_) == 0 : MapNatPmp(lease_) == ext_port_;
      lock.lock();
      if (!ok) {  // (a NAT-PMP answer with another port would be another URL)
        PS_LOG(kWarn, "tunnel") << "upnp: renewing the mapping of port " << ext_port_ << " failed";
        renewal_failed_ = true;
        break;
      }
      renew_at_ = NextRenewal();
      PS_LOG(kInfo, "tunnel") << (kind == Kind::kUpnp ? "upnp" : "nat-pmp")
                              << ": renewed the mapping of port " << ext_port_ << " (lease "
                              << lease_.count() << " s)";
    }
  }

  Result<std::string> OpenUpnp() {
    int err = 0;
    UPNPDev* devs = upnpDiscover(1000, nullptr, nullptr, 0, 0, 2, &err);
    if (!devs) return Status::Error("no_igd", "no UPnP device answered discovery");
    UPNPUrls urls{};
    IGDdatas data{};
    char lan[64] = {0};
    const int found = UPNP_GetValidIGD(devs, &urls, &data, lan, sizeof lan);
    freeUPNPDevlist(devs);
    if (found != 1) {
      if (found != 0) FreeUPNPUrls(&urls);
      return Status::Error("no_igd", found == 0 ? "no Internet Gateway Device found"
                                     : found == 2
                                         ? "the gateway says it is not connected"
                                         : "a UPnP device answered, but it is not a gateway");
    }
    control_url_ = urls.controlURL;
    service_ = data.first.servicetype;
    lan_ = lan;
    FreeUPNPUrls(&urls);
    char ext[40] = {0};
    if (UPNP_GetExternalIPAddress(control_url_.c_str(), service_.c_str(), ext) != 0 ||
        ext[0] == '\0') {
      return Status::Error("no_external_ip", "the gateway did not tell its external address");
    }
    // Same port outside as inside if free; otherwise a few random ones.
    std::mt19937 rng(std::random_device{}());
    int r = -1;
    uint16_t port = local_port_;
    for (int attempt = 0; attempt < 5; ++attempt) {
      r = AddUpnp(port);
      if (r == kOnlyPermanent) {
        permanent_ = true;
        r = AddUpnp(port);
      }
      if (r != kConflict) break;
      port = static_cast<uint16_t>(20000 + rng() % 40000);
    }
    if (r != 0)
      return Status::Error("mapping_refused",
                           std::string("the gateway refused the mapping: ") + strupnperror(r));
    kind_ = Kind::kUpnp;
    ext_port_ = port;
    PS_LOG(kInfo, "tunnel") << "upnp: " << ext << ":" << port << " -> " << lan_ << ":"
                            << local_port_
                            << (permanent_ ? " (permanent)"
                                           : " (lease " + std::to_string(lease_.count()) + " s)");
    return Url(ext, port);
  }

  int AddUpnp(uint16_t ext_port) {
    const std::string ext = std::to_string(ext_port), in = std::to_string(local_port_);
    const std::string lease = permanent_ ? "0" : std::to_string(lease_.count());
    const std::string desc = "peerstack " + in;
    return UPNP_AddPortMapping(control_url_.c_str(), service_.c_str(), ext.c_str(), in.c_str(),
                               lan_.c_str(), desc.c_str(), "TCP", nullptr, lease.c_str());
  }

  Result<std::string> OpenNatPmp() {
    natpmp_t n;
    if (initnatpmp(&n, 0, 0) < 0) return Status::Error("no_gateway", "no default gateway to ask");
    natpmpresp_t resp{};
    int r = sendpublicaddressrequest(&n);
    if (r >= 0) r = AwaitNatPmp(&n, &resp, std::chrono::milliseconds(2000));
    closenatpmp(&n);
    if (r < 0)
      return Status::Error("no_nat_pmp",
                           "the gateway does not answer NAT-PMP (error " + std::to_string(r) + ")");
    char ext[INET_ADDRSTRLEN] = {0};
    ::inet_ntop(AF_INET, &resp.pnu.publicaddress.addr, ext, sizeof ext);
    ext_port_ = local_port_;
    const int mapped = MapNatPmp(lease_);
    if (mapped <= 0)
      return Status::Error("mapping_refused", "the gateway refused the NAT-PMP mapping");
    kind_ = Kind::kNatPmp;
    ext_port_ = static_cast<uint16_t>(mapped);
    PS_LOG(kInfo, "tunnel") << "nat-pmp: " << ext << ":" << ext_port_ << " -> port " << local_port_;
    return Url(ext, ext_port_);
  }

  // Returns the mapped public port (0 for a deletion that worked), or -1.
  int MapNatPmp(std::chrono::seconds lifetime) {
    natpmp_t n;
    if (initnatpmp(&n, 0, 0) < 0) return -1;
    natpmpresp_t resp{};
    int r = sendnewportmappingrequest(&n, NATPMP_PROTOCOL_TCP, local_port_, ext_port_,
                                      static_cast<uint32_t>(lifetime.count()));
    if (r >= 0) r = AwaitNatPmp(&n, &resp, std::chrono::milliseconds(2000));
    closenatpmp(&n);
    if (r < 0) return -1;
    return lifetime.count() == 0 ? 0 : resp.pnu.newportmapping.mappedpublicport;
  }

  std::string bind_;
  uint16_t local_port_;
  std::chrono::seconds lease_;
  Kind kind_ = Kind::kNone;
  bool permanent_ = false;
  std::string control_url_, service_, lan_;
  uint16_t ext_port_ = 0;
  Clock::time_point renew_at_{};
  std::mutex mu_;  // all of the above, between the manager's thread and the renewer
  std::condition_variable cv_;
  bool stop_renewing_ = false;
  bool renewal_failed_ = false;
  std::thread renewer_;
};

}  // namespace

ProviderPtr MakeUpnpProvider(std::string bind_address, uint16_t local_port,
                             std::chrono::seconds lease) {
  return std::make_unique<UpnpProvider>(std::move(bind_address), local_port, lease);
}

}  // namespace peerstack::tunnel
