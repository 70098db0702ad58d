// Serves GET /builtin/hello (a C++ route), /api/hello/ (the hello plugin, which runs on the
// network thread) and, when PLUGINS_DIR has it, /api/hellopool/ (the same code without
// PS_PLUGIN_NONBLOCKING, so through the worker pool) from one http::Server, so wrk can
// compare them in the same process.
//   plugin_bench_server PLUGINS_DIR WORK_DIR THREADS   -> prints the port, runs until SIGTERM

#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench/common/server_process.h"
#include "bench/plugin/common.h"
#include "http/router.h"
#include "http/server.h"
#include "plugins/plugin_host.h"
#include "store/store.h"

int main(int argc, char** argv) {
  using namespace peerstack;
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s PLUGINS_DIR WORK_DIR THREADS\n", argv[0]);
    return 2;
  }
  const sigset_t stop = bench::PrepareServerProcess();

  const std::string work = argv[2];
  auto store = store::OpenSqliteStore(work + "/bench.db");
  if (!store) return 1;
  plugins::PluginHostOptions po;
  po.plugins_dir = argv[1];
  po.cache_dir = work + "/cache";
  po.store = std::shared_ptr<store::Store>(std::move(store).value());
  po.info.node_id = bench::kNodeId;
  if (const char* w = std::getenv("PEERSTACK_PLUGIN_WORKERS")) po.workers = std::stoul(w);
  plugins::PluginHost host(po);
  host.Start();

  const std::string body = bench::HelloBody(bench::kNodeId);
  http::Router router;
  router.Add("GET", "/builtin/hello", [&body](const http::Request&) {
    http::Response r;
    r.set("content-type", "application/json");
    r.body = body;
    return r;
  });
  router.AddPrefix("*", "/api/", [&host](const http::Request& r) { return host.Handle(r, false); });
  http::ServerOptions so;
  so.name = "bench";
  so.port = 0;
  so.threads = static_cast<size_t>(std::stoul(argv[3]));
  so.handler = [&router](const http::Request& r) { return router.Handle(r); };
  auto server = http::MakeServer(so);
  if (!server->Start().ok()) return 1;
  std::printf("%u\n", server->port());
  std::fflush(stdout);
  bench::WaitForStop(stop);
  server->Stop();
  host.Stop();
  return 0;
}
