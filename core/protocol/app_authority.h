// The ledger as app data's write rules see it (appdata/replica.h's Authority): the network,
// every key that was a member with its node id, and when it was a member and a publisher
// (Ledger::MembershipHistory). One conversion for the daemon and the simulator.
#pragma once

#include "appdata/replica.h"
#include "protocol/ledger.h"

namespace peerstack::protocol {

appdata::Authority AppAuthority(const Ledger& ledger);

}  // namespace peerstack::protocol
