// The wire form of a message between nodes, as a pure rule (no sockets): how an Envelope is
// sealed for POST /p2p/<type> and how a received one is opened.
//
//   body     {"body": {...}, "from": URL} in canonical JSON (sorted keys, no spaces)
//   headers  X-Peerstack-Key: the sender's node key (hex), X-Peerstack-Signature: Ed25519
//            over the exact body bytes with the domain "p2p/<type>" (a message of one type
//            cannot be replayed as another)
//
// Opening is two steps so that a receiver can spend its budget checks between them: Verify
// checks the signature over the raw bytes before anything parses them; Open then parses
// strictly (whole document, no duplicate keys, no trailing data, exactly those two fields)
// and binds the sender (BindSender).
// Thread-safe: free functions over their arguments.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/result.h"
#include "crypto/ed25519.h"
#include "protocol/engine.h"
#include "protocol/ledger.h"

namespace peerstack::protocol {

constexpr size_t kMaxEnvelopeBytes = 1 << 20;

struct Sealed {
  std::string path;  // /p2p/<type>
  std::string body;
  std::string key_hex, sig_hex;
};

Sealed Seal(const Envelope& e, const crypto::SigningKey& key);

// "too_large" (over kMaxEnvelopeBytes), "unsigned", "bad_signature".
Status Verify(std::string_view type, const std::string& body, const std::string* key_hex,
              const std::string* sig_hex);

// Binds a verified envelope to its sender's key: when the key is a member's, the envelope
// comes from that member's URL in the ledger, whatever "from" says, so nobody can make
// another member look alive or send answers there. One exception: a sync from a member's key
// naming a URL that is no member's keeps it. That is a member that moved and lost what it
// knew (admitted, then stopped before it learnt so, and restarted elsewhere as a joiner): it
// must hear the ledger at its new URL to learn that it is a member and announce where it
// now is. It is answered like any non-member's sync, under the same budget. The daemon
// (through Open) and the simulator both use this rule. ledger may be null.
void BindSender(Envelope* e, const std::string& key_hex, const Ledger* ledger);

// After Verify: "bad_json", "bad_message". ledger may be null (a node still joining).
Result<Envelope> Open(std::string_view type, std::string_view body, const std::string& key_hex,
                      const Ledger* ledger, const std::string& self_url);

}  // namespace peerstack::protocol
