// A small blocking HTTP/1.1 client (Boost.Beast on Asio) with an overall deadline and a cap
// on the response size: every outgoing call Peerstack makes is bounded in time and memory.
// http:// and https:// (certificates verified against the system's CA store plus an optional
// PEM file, host name checked). Thread-safe: each call uses its own io_context. The same
// exchange code (exchange.h) carries the peer transport's messages.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "http/message.h"
#include "http/url.h"

namespace peerstack::http {

struct ClientRequest {
  std::string method = "GET";
  std::string url;  // http://host[:port]/path?query
  std::vector<Header> headers;
  std::string body;
  std::chrono::milliseconds timeout{5000};  // connect + send + receive
  size_t max_response_bytes = 8u << 20;
  std::string ca_file;      // https: trusted besides the system's CAs (a private CA), PEM
  std::string server_name;  // https: the name to verify (and send as SNI) when the URL's
                            // host is an address that was looked up for it; empty: the host
};

struct ClientResponse {
  int status = 0;
  std::vector<Header> headers;  // names lower case
  std::string body;
  const std::string* header(std::string_view lower_name) const;
};

// Errors: "bad_url", "bad_ca_file", "timeout", "connect_failed", "tls_failed", "io_error",
// "too_large".
Result<ClientResponse> Fetch(const ClientRequest& request);

}  // namespace peerstack::http
