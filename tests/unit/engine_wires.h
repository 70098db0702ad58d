// Engines wired to each other in one process, for engine tests (engine_test.cpp,
// invitation_test.cpp).
#pragma once

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "protocol/engine.h"

namespace peerstack::protocol {

// Engines wired to each other: messages delivered one at a time in order (or each output in
// reverse), none to the silent URLs, and those `hold` picks kept back until Release().
struct Wires {
  std::map<std::string, Engine*> engines;
  std::set<std::string> silent;
  std::function<bool(const Envelope&)> hold;
  std::map<std::string, int64_t> skew;  // how far an engine's clock is off
  bool reversed = false;
  std::deque<Envelope> wire;
  std::vector<Envelope> held;

  void Post(Output& out) {
    if (reversed) std::reverse(out.messages.begin(), out.messages.end());
    for (Envelope& e : out.messages) wire.push_back(std::move(e));
  }
  void Tick(const std::string& url, int64_t now) {
    Output out;
    engines.at(url)->Tick(now + Skew(url), &out);
    Post(out);
  }
  void Drain(int64_t now) {
    while (!wire.empty()) {
      Envelope e = std::move(wire.front());
      wire.pop_front();
      if (silent.count(e.to) || !engines.count(e.to)) continue;
      if (hold && hold(e)) {
        held.push_back(std::move(e));
        continue;
      }
      Output out;
      engines.at(e.to)->Receive(e, now + Skew(e.to), &out);
      Post(out);
    }
  }
  int64_t Skew(const std::string& url) const {
    auto it = skew.find(url);
    return it == skew.end() ? 0 : it->second;
  }
  void Release(int64_t now) {
    hold = nullptr;
    for (Envelope& e : held) wire.push_back(std::move(e));
    held.clear();
    Drain(now);
  }
};

}  // namespace peerstack::protocol
