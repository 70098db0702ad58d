// An incremental, strict HTTP/1.1 request parser: pure code, no I/O, fed the bytes a
// connection has buffered. It frames requests (so pipelining and keep-alive work) and
// refuses what a hardened server must refuse, before anything is allocated for it:
//   400  malformed request line or header, bare LF, obs-fold, missing Host on HTTP/1.1,
//        invalid, duplicate or conflicting Content-Length
//   413  a declared body larger than Limits::max_body_bytes (known from the headers alone)
//   431  request line + headers over Limits::max_header_bytes or max_headers
//   501  Transfer-Encoding (send Content-Length instead)
//   505  an HTTP version other than 1.0 and 1.1
// After an error the connection must be closed: the parser cannot find the next request.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "http/message.h"

namespace peerstack::http {

class RequestParser {
 public:
  enum class State {
    kNeedMore,  // keep reading; see head_complete() for which timeout applies
    kRequest,   // request() is complete; consumed bytes reported by Parse
    kError,     // error_status() / error_message(); close the connection after answering
  };

  explicit RequestParser(const Limits& limits) : limits_(limits) {}

  // Parses the request at the front of buf (which holds everything buffered so far, starting
  // at the first unconsumed byte). On kRequest, *consumed is the request's length; call
  // Parse again with the rest for a pipelined request.
  State Parse(std::string_view buf, size_t* consumed);

  const Request& request() const { return request_; }
  Request& request() { return request_; }
  // True once the headers of the current request are parsed (its body may be pending).
  bool head_complete() const { return head_len_ != 0; }
  // The current request asked for "Expect: 100-continue" and its body is not here yet.
  bool expects_continue() const { return expect_continue_; }
  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }

 private:
  State Fail(int status, std::string message);
  State ParseHead(std::string_view head);

  Limits limits_;
  Request request_;
  size_t scanned_ = 0;   // bytes of the head already searched for its end
  size_t head_len_ = 0;  // length of the head including the blank line, once found
  size_t body_len_ = 0;
  bool expect_continue_ = false;
  int error_status_ = 0;
  std::string error_message_;
};

}  // namespace peerstack::http
