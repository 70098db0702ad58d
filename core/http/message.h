// HTTP/1.1 messages as the rest of Peerstack sees them: plain structs, no I/O.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace peerstack::http {

struct Header {
  std::string name;  // lower case
  std::string value;
};

class Responder;
class Deferrer;

struct Request {
  std::string method;  // as sent, e.g. "GET"
  std::string target;  // the raw request-target
  std::string path;    // target up to '?', still percent-encoded
  std::string query;   // after '?', without it
  int version_minor = 1;
  std::vector<Header> headers;
  std::string body;
  std::string remote_address;  // the TCP peer; through a tunnel this is loopback: not trust

  // First header with this (lower-case) name, or nullptr.
  const std::string* header(std::string_view lower_name) const;

  // To answer later (from any thread): keep the responder, return Response::Deferred().
  // Only available inside a server handler (nullptr elsewhere, e.g. in unit tests).
  std::shared_ptr<Responder> Defer() const;
  Deferrer* deferrer = nullptr;  // set by the server for the duration of the handler call
};

struct Response {
  int status = 200;
  std::vector<Header> headers;  // Content-Length, Connection, Date, Server are added for you
  std::string body;
  bool close = false;     // close the connection after this response
  bool deferred = false;  // the answer comes later through Request::Defer()'s responder
  // Kept alive until the response's bytes are written to the socket (or the connection
  // ends): a handler that limits how many large answers are in flight releases its slot in
  // this object's destructor, not when it returns.
  std::shared_ptr<void> hold;

  static Response Deferred() {
    Response r;
    r.deferred = true;
    return r;
  }

  Response& set(std::string name, std::string value) {
    headers.push_back({std::move(name), std::move(value)});
    return *this;
  }
  const std::string* header(std::string_view lower_name) const;
};

// Completes a deferred request. Send() may be called from any thread, once; later calls are
// ignored. A responder destroyed without Send() answers 500, so a request is never lost.
class Responder {
 public:
  virtual ~Responder() = default;
  virtual void Send(Response response) = 0;
};

class Deferrer {
 public:
  virtual ~Deferrer() = default;
  virtual std::shared_ptr<Responder> Defer() = 0;
};

// A handler turns a request into a response. Called on a server worker thread; it must not
// throw (the server turns an escaped exception into a bare 500 and logs it).
using Handler = std::function<Response(const Request&)>;

// {"error": {"code": code, "message": message}} with the given status.
Response JsonError(int status, std::string_view code, std::string_view message);
// 429 {"error": {"code": "busy", "message": message}} with Retry-After: 1, what every rate
// limit answers.
Response TooMany(std::string_view message);
// A JSON body (already serialised) with Content-Type application/json.
Response JsonResponse(int status, std::string body);
// A whole body that a client may fetch in parts (RFC 9110 14): 200 with all of it, or 206 with
// the one byte range the request's Range header asks for ("bytes=a-b", "bytes=a-",
// "bytes=-n") when its If-Range, if any, is etag; 416 when the range starts past the end.
// Several ranges, or a Range header it cannot read, get the whole body (the RFC allows it).
// Sets ETag (etag, quoted as given) and Accept-Ranges.
Response RangedBody(const Request& request, std::string_view body, const std::string& etag,
                    const std::string& content_type);

const char* ReasonPhrase(int status);

// Appends the wire form of a response. head_only omits the body but keeps its length.
void AppendResponse(std::string& out, const Response& response, bool head_only, bool keep_alive,
                    bool http10_keep_alive);

// Limits and timeouts for a server; defaults suit a public listener.
struct Limits {
  size_t max_header_bytes = 16 * 1024;  // request line + headers; over it: 431
  size_t max_headers = 100;             // header lines; over it: 431
  size_t max_body_bytes = 1024 * 1024;  // over it: 413
  size_t max_connections = 4096;        // further connections are closed at once
  // From one address (loopback exempt: tunnelled and relayed connections all come from there;
  // a household or an office shares one address, so this is generous).
  size_t max_connections_per_address = 256;
  bool loopback_exempt = true;                         // tests of the cap turn it off
  std::chrono::milliseconds header_timeout{5000};      // from first byte to end of headers
  std::chrono::milliseconds body_timeout{30000};       // from end of headers to end of body
  std::chrono::milliseconds keepalive_timeout{30000};  // idle between requests
  std::chrono::milliseconds linger_timeout{2000};      // reading and discarding before close
  std::chrono::milliseconds send_timeout{60000};       // for the client to take queued output
};

}  // namespace peerstack::http
