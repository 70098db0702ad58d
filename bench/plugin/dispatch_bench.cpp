// One request's worth of work three ways, to see what the plugin boundary costs:
//   BM_DirectCall      the C++ a built-in route runs (build the same JSON body)
//   BM_CAbiCall        the hello plugin's handle() through the C ABI (dlopen'd, with a host
//                      table that builds the response), no threads involved
//   BM_HostDispatch    PluginHost::Handle for hello (PS_PLUGIN_NONBLOCKING): match the
//                      route, call the plugin on this thread, build the HTTP response
//   BM_HostDispatchPooled  the same code without the flag: copy the request, hand it to a
//                      worker thread, run the plugin, deliver the deferred answer back
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <condition_variable>
#include <cstring>
#include <mutex>

#include "bench/plugin/common.h"
#include "peerstack/plugin.hpp"
#include "plugins/plugin_host.h"
#include "store/store.h"

namespace {

using namespace peerstack;

std::string DirectHandler(const std::string& node_id) { return bench::HelloBody(node_id); }

void BM_DirectCall(benchmark::State& state) {
  const std::string node = bench::kNodeId;
  for (auto _ : state) {
    std::string body = DirectHandler(node);
    benchmark::DoNotOptimize(body);
  }
}
BENCHMARK(BM_DirectCall);

struct Resp {
  int status = 200;
  std::string body;
};

void BM_CAbiCall(benchmark::State& state) {
  void* lib = ::dlopen(PEERSTACK_BUILD_DIR "/plugins/libhello.so", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    state.SkipWithError("libhello.so not built");
    return;
  }
  auto entry = reinterpret_cast<ps_plugin_entry_fn>(::dlsym(lib, "peerstack_plugin_entry"));
  ps_host_api api{};
  api.struct_size = sizeof api;
  api.abi_major = PEERSTACK_PLUGIN_ABI_MAJOR;
  api.abi_minor = PEERSTACK_PLUGIN_ABI_MINOR;
  api.log_enabled = [](ps_host*, ps_log_level) { return 0; };
  api.log = [](ps_host*, ps_log_level, ps_str) {};
  api.info = [](ps_host*, ps_info_key, char* buf, size_t cap) {
    const size_t n = std::strlen(bench::kNodeId);
    std::memcpy(buf, bench::kNodeId, std::min(cap, n));
    return n;
  };
  api.response_status = [](ps_response* r, int s) {
    reinterpret_cast<Resp*>(r)->status = s;
    return PS_OK;
  };
  api.response_header = [](ps_response*, ps_str, ps_str) { return PS_OK; };
  api.response_write = [](ps_response* r, ps_str b) {
    reinterpret_cast<Resp*>(r)->body.append(b.data, b.size);
    return PS_OK;
  };
  const ps_plugin* d = entry(&api, nullptr);
  d->init(d->state);
  ps_request req{};
  req.struct_size = sizeof req;
  for (auto _ : state) {
    Resp resp;
    d->handle(d->state, 0, &req, reinterpret_cast<ps_response*>(&resp));
    benchmark::DoNotOptimize(resp.body);
  }
  d->shutdown(d->state);
}
BENCHMARK(BM_CAbiCall);

// Receives the deferred answer and wakes the benchmark loop.
class Waiter final : public http::Deferrer, public http::Responder,
                     public std::enable_shared_from_this<Waiter> {
 public:
  std::shared_ptr<http::Responder> Defer() override { return shared_from_this(); }
  void Send(http::Response r) override {
    std::lock_guard<std::mutex> lock(mu_);
    response_ = std::move(r);
    done_ = true;
    cv_.notify_one();
  }
  http::Response Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return done_; });
    done_ = false;
    return std::move(response_);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  http::Response response_;
};

void HostDispatch(benchmark::State& state, const std::string& name, const std::string& lib) {
  char tmpl[] = "/tmp/peerstack-bench-XXXXXX";
  const std::string work = ::mkdtemp(tmpl);
  const std::string plugins = work + "/plugins";
  std::string cmd = "mkdir -p " + plugins + " && cp " + lib + " " + plugins;
  if (std::system(cmd.c_str()) != 0) {
    state.SkipWithError("cannot prepare the plugins dir");
    return;
  }
  plugins::PluginHostOptions po;
  po.plugins_dir = plugins;
  po.cache_dir = work + "/cache";
  po.store = std::shared_ptr<store::Store>(std::move(store::OpenSqliteStore(work + "/b.db")).value());
  po.info.node_id = bench::kNodeId;
  plugins::PluginHost host(po);
  host.Start();
  auto waiter = std::make_shared<Waiter>();
  http::Request req;
  req.method = "GET";
  req.path = "/api/" + name + "/";
  req.deferrer = waiter.get();
  for (auto _ : state) {
    http::Response r = host.Handle(req, false);
    if (r.deferred) r = waiter->Wait();
    benchmark::DoNotOptimize(r.body);
  }
  host.Stop();
  std::system(("rm -rf " + work).c_str());
}
void BM_HostDispatch(benchmark::State& state) {
  HostDispatch(state, "hello", PEERSTACK_BUILD_DIR "/plugins/libhello.so");
}
void BM_HostDispatchPooled(benchmark::State& state) {
  HostDispatch(state, "hellopool", PEERSTACK_BUILD_DIR "/bench/plugins/libhellopool.so");
}
BENCHMARK(BM_HostDispatch)->UseRealTime();
BENCHMARK(BM_HostDispatchPooled)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
