// An incremental, strict HTTP/1.1 request parser: pure code, no I/O, fed the bytes a
// connection has buffered. It frames requests (so pipelining and keep-alive work) and
// refuses what a hardened server must refuse, before anything is allocated for it:
//   400  malformed request line or header, bare LF, obs-fold, missing Host on HTTP/1.1,
//        invalid, duplicate or conflicting Content-Length, Transfer-Encoding together with
//        Content-Length (the request smuggling shape) or in an HTTP/1.0 request, a malformed
//        chunked body (chunk size not hex or over 64 bits, chunk line over 1 KiB, chunk data
//        not followed by CRLF, malformed trailer field)
//   413  a body larger than Limits::max_body_bytes: known from Content-Length alone, or from
//        each chunk's size before its data is read; also a chunked body whose bytes on the
//        wire (data plus sizes, extensions, CRLFs, trailers) pass 2 * max_body_bytes +
//        max_header_bytes, so a stream of tiny chunks with long extensions cannot run on
//   417  an Expect other than 100-continue
//   431  request line + headers over Limits::max_header_bytes or max_headers; the same limits
//        for a chunked body's trailer section
//   501  a Transfer-Encoding other than exactly "chunked" (another coding, or a list)
//   505  an HTTP version other than 1.0 and 1.1
// Chunked bodies (RFC 9112 7.1) are decoded as they arrive: chunk extensions are checked for
// control characters and ignored, trailer fields are checked and discarded. Memory per request
// stays bounded by the decoded body (<= max_body_bytes) plus one unfinished line.
// After an error the connection must be closed: the parser cannot find the next request.
#pragma once

#include <cstddef>
#include <cstdint>
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
  // at the first unconsumed byte). *consumed is how many bytes at the front of buf the parser
  // has taken: the caller drops them and passes the rest, plus what arrives, next time. On
  // kRequest that is the rest of the request (call Parse again with what follows for a
  // pipelined request); on kNeedMore it can be non-zero too (empty lines before a request,
  // the head and decoded part of a chunked body), which is what keeps a chunked body's
  // framing from piling up in the caller's buffer.
  State Parse(std::string_view buf, size_t* consumed);

  const Request& request() const { return request_; }
  Request& request() { return request_; }
  // True once the headers of the current request are parsed (its body may be pending).
  bool head_complete() const { return phase_ != Phase::kHead; }
  // The current request asked for "Expect: 100-continue" and its body is not here yet.
  bool expects_continue() const { return expect_continue_; }
  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }

 private:
  enum class Phase {
    kHead,          // looking for the end of the request line and headers
    kFixedBody,     // Content-Length (or none): the head and body stay in buf until complete
    kChunkSize,     // chunked: a chunk-size line (with extensions) is next
    kChunkData,     // chunked: chunk_left_ bytes of data are next
    kChunkDataEnd,  // chunked: the CRLF after a chunk's data is next
    kTrailer,       // chunked: trailer fields, then the empty line ending the request
  };
  enum class Line { kComplete, kNeedMore, kBareLf, kTooLong };

  State Fail(int status, std::string message);
  State ParseHead(std::string_view head);
  State ParseChunked(std::string_view buf, size_t* consumed);
  // Finds the CRLF ending the line at the front of buf (at most max_len bytes before it).
  Line NextLine(std::string_view buf, size_t max_len, std::string_view* line);
  void Reset();

  Limits limits_;
  Request request_;
  Phase phase_ = Phase::kHead;
  size_t scanned_ = 0;       // bytes of the line (or head) at the front of buf already searched
  size_t blank_bytes_ = 0;   // CRLFs skipped before the current request
  size_t head_len_ = 0;      // kFixedBody: length of the head including the blank line
  size_t body_len_ = 0;      // kFixedBody: Content-Length
  bool chunked_ = false;     // set by ParseHead
  uint64_t chunk_left_ = 0;  // kChunkData: bytes of the current chunk still to come
  size_t chunked_wire_bytes_ = 0;  // bytes of the chunked body consumed so far
  size_t trailer_bytes_ = 0;
  size_t trailer_fields_ = 0;
  bool expect_continue_ = false;
  int error_status_ = 0;
  std::string error_message_;
};

}  // namespace peerstack::http
