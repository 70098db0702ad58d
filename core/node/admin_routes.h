// The network's operator routes on the admin listener: a thin HTTP layer over
// NetworkService's typed operations (JSON bodies in; JSON answers or the standard
// {"error": {"code", "message"}} out). The admin listener has checked the token already.
//
//   POST /join     {"url"?}                          202 {"joining": URL}
//   GET  /sync                                       200 {"added", "events", "state_hash_before", "state_hash"}
//   POST /leave                                      200 {"left": true}
//   POST /evict    {"id"}                            202 {"evicting": id}
//   POST /releases {"plugins"?: [{name, version, sha256}], "expires_in_days"?: N}
//                                                    201 {"code", "manifest"} (default: the loaded plugins, 90 days)
//   POST /recover  {"keep"?: [node ids]}             200 {"kept": N}
#pragma once

#include "base/result.h"
#include "http/router.h"
#include "node/network_service.h"
#include "plugins/plugin_host.h"

namespace peerstack::node {

// The HTTP status of an operation's error: 400 for bad input, 404 for an unknown member,
// 507 when the store refused the write (a full disk), 409 for everything the network's state
// forbids (not a member, already one, the last member, a rollback, ...).
int HttpStatusOf(const Status& s);

// network and plugins must outlive the router.
void AddNetworkAdminRoutes(http::Router& router, NetworkService& network, const plugins::PluginHost& plugins);

}  // namespace peerstack::node
