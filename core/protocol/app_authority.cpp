#include "protocol/app_authority.h"

namespace peerstack::protocol {

appdata::Authority AppAuthority(const Ledger& ledger) {
  appdata::Authority a;
  a.network_id = ledger.network_id();
  const Ledger::History history = ledger.MembershipHistory();
  auto fill = [&](const std::map<std::string, std::vector<Ledger::History::Span>>& from,
                  bool publisher) {
    for (const auto& [key, spans] : from) {
      appdata::Authority::Who& who = a.keys[key];
      if (who.node_id.empty()) who.node_id = NodeIdForHex(key);
      for (const auto& [start, end] : spans)
        (publisher ? who.publisher : who.member).push_back({start, end});
    }
  };
  fill(history.member, false);
  fill(history.publisher, true);
  return a;
}

}  // namespace peerstack::protocol
