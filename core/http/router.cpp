#include "http/router.h"

namespace peerstack::http {

void Router::Add(std::string method, std::string path, Handler handler) {
  routes_.push_back({std::move(method), std::move(path), false, std::move(handler)});
}

void Router::AddPrefix(std::string method, std::string prefix, Handler handler) {
  routes_.push_back({std::move(method), std::move(prefix), true, std::move(handler)});
}

bool Router::Matches(const Route& r, const std::string& path) const {
  return r.prefix ? path.compare(0, r.path.size(), r.path) == 0 : path == r.path;
}

Response Router::Handle(const Request& request) const {
  const std::string& method = request.method;
  std::string allow;
  for (const Route& r : routes_) {
    if (!Matches(r, request.path)) continue;
    if (r.method == "*" || r.method == method || (method == "HEAD" && r.method == "GET")) {
      return r.handler(request);
    }
    if (allow.find(r.method) == std::string::npos) {
      if (!allow.empty()) allow += ", ";
      allow += r.method;
      if (r.method == "GET") allow += ", HEAD";
    }
  }
  if (!allow.empty()) {
    Response r = JsonError(405, "method_not_allowed", method + " is not allowed here");
    r.set("allow", allow);
    return r;
  }
  if (fallback_) return fallback_(request);
  return JsonError(404, "not_found", "no such route");
}

}  // namespace peerstack::http
