// One http::Server (the "node") reachable two ways in the same process: directly, and
// through a member relay (RelayServer + the relay provider), for bench/relay/run.sh.
// Prints "<direct port> <relay port>" and serves until SIGTERM.
//   GET /nodes  a small JSON answer      GET /file  1 MiB

#include <cstdio>
#include <string>

#include "bench/common/server_process.h"
#include "crypto/encoding.h"
#include "http/server.h"
#include "tunnel/relay.h"

int main() {
  using namespace peerstack;
  const sigset_t stop = bench::PrepareServerProcess();

  const std::string small =
      R"({"network":"fed6145189a2f3a5f711b4c55b6d82772aa397e4c62b77dcd8d672a109722fde","nodes":[]})";
  const std::string big(1 << 20, 'x');
  http::ServerOptions so;
  so.threads = 1;
  so.handler = [&](const http::Request& r) {
    http::Response resp;
    resp.body = r.path == "/file" ? big : small;
    return resp;
  };
  auto node = http::MakeServer(so);
  if (!node->Start().ok()) return 1;
  const auto key = crypto::SigningKey::Generate();
  tunnel::RelayServerOptions ro;
  ro.is_member = [](const std::string&) { return true; };
  ro.max_connections_per_node = 1024;
  ro.max_bytes_per_second_per_node = 1ull << 40;  // unthrottled: measure the relay itself
  tunnel::RelayServer relay(ro);
  if (!relay.Start().ok()) return 1;
  // As the node does it: relayed connections handed straight to the server (Adopt).
  const std::string relay_address = "127.0.0.1:" + std::to_string(relay.port());
  auto provider = tunnel::MakeRelayProvider([relay_address] { return std::vector<std::string>{relay_address}; },
                                            key, [&](int fd) { return node->Adopt(fd); });
  auto url = provider->Open();
  if (!url) return 1;
  std::printf("%u %s\n", node->port(), url->substr(url->rfind(':') + 1).c_str());
  std::fflush(stdout);
  bench::WaitForStop(stop);
  provider->Close();
  relay.Stop();
  node->Stop();
  return 0;
}
