// Our route table (Pistache's Rest::Router races on its map across workers; see
// docs/dependencies.md). Routes are added while the node is being wired, before the server
// starts; lookups afterwards are read-only and safe from any worker thread.
#pragma once

#include <string>
#include <vector>

#include "http/message.h"

namespace peerstack::http {

class Router {
 public:
  // Exact path (as sent, percent-encoded) for one method. HEAD is served by GET routes.
  void Add(std::string method, std::string path, Handler handler);
  // Every path that starts with prefix, for one method ("*" = any method).
  void AddPrefix(std::string method, std::string prefix, Handler handler);
  // For paths no route claims; the default answers a JSON 404.
  void SetFallback(Handler handler) { fallback_ = std::move(handler); }

  // Dispatches: a path that exists under another method gets 405 with an Allow header.
  Response Handle(const Request& request) const;

 private:
  struct Route {
    std::string method;
    std::string path;
    bool prefix;
    Handler handler;
  };
  bool Matches(const Route& r, const std::string& path) const;

  std::vector<Route> routes_;
  Handler fallback_;
};

}  // namespace peerstack::http
