// The network's operator routes on the admin listener: a thin HTTP layer over
// NetworkService's typed operations (JSON bodies in; JSON answers or the standard
// {"error": {"code", "message"}} out). The admin listener has checked the token already.
//
//   POST /join     {"url"?}                          202 {"joining": URL}
//   GET  /sync                                       200 {"added", "events", "state_hash_before",
//   "state_hash"} POST /leave                                      200 {"left": true} POST /evict
//   {"id"}                            202 {"evicting": id} POST /releases {"manifest",
//   "signatures"}      201 {"code", "version"}; 424 when a file
//                                                    is not in the blob store; 409 refused by the
//                                                    ledger
//   GET  /releases                                   200 the rollout, member by member
//   GET  /publishers                                 200 {"next_seq"}
//   POST /publishers {"publishers", "threshold", "signatures"}  201
//   POST /recover  {"keep"?: [node ids]}             200 {"kept": N}
#pragma once

#include "base/result.h"
#include "http/router.h"
#include "node/network_service.h"
#include "release/manager.h"

namespace peerstack::node {

// The HTTP status of an operation's error: 400 for bad input, 404 for an unknown member,
// 507 when the store refused the write (a full disk), 409 for everything the network's state
// forbids (not a member, already one, the last member, a rollback, ...).
int HttpStatusOf(const Status& s);

// network and releases must outlive the router.
void AddNetworkAdminRoutes(http::Router& router, NetworkService& network,
                           release::ReleaseManager& releases);

}  // namespace peerstack::node
