// Telling a service manager how the process is doing: systemd's notify protocol (sd_notify(3)),
// a datagram "KEY=VALUE\n..." to the unix socket NOTIFY_SOCKET names (a path, or "@name" for
// the abstract namespace). Written here rather than linked from libsystemd: the protocol is
// one sendto(), and the one-file runtime links nothing it does not carry. Without
// NOTIFY_SOCKET (not run by systemd with Type=notify) it does nothing. Thread-safe.
#pragma once

#include <string_view>

namespace peerstack::service {

// Sends state ("READY=1\nSTATUS=serving ...", "STOPPING=1"); false when NOTIFY_SOCKET is set
// but the message could not be sent.
bool Notify(std::string_view state);

}  // namespace peerstack::service
