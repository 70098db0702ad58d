#include "http/client.h"

#include <boost/asio/io_context.hpp>
#include <cctype>
#include <charconv>
#include <optional>

#include "http/exchange.h"

namespace peerstack::http {

namespace asio = boost::asio;

const std::string* ClientResponse::header(std::string_view lower_name) const {
  for (const Header& h : headers) {
    if (h.name == lower_name) return &h.value;
  }
  return nullptr;
}

Result<ClientResponse> Fetch(const ClientRequest& request) {
  auto url = ParseUrl(request.url);
  if (!url) return url.status();
  std::unique_ptr<asio::ssl::context> tls;
  if (url->tls) {
    auto ctx = MakeClientTlsContext(request.ca_file);
    if (!ctx) return ctx.status();
    tls = std::move(ctx).value();
  }
  asio::io_context ioc;
  auto x = std::make_shared<Exchange>();
  x->url = *url;
  x->method = request.method;
  x->headers = request.headers;
  x->body = request.body;
  x->keep_alive = false;
  x->deadline = std::chrono::steady_clock::now() + request.timeout;
  x->max_response_bytes = request.max_response_bytes;
  x->server_name = request.server_name;
  std::optional<Result<ClientResponse>> result;
  x->done = [&result](Exchange::Outcome o) { result = std::move(o.response); };
  auto c = NewConnection(ioc, tls.get());
  Run(c, x);
  ioc.run_until(*x->deadline + std::chrono::milliseconds(100));
  CloseConnection(*c);
  if (!result) return Status::Error("timeout", "request timed out");
  return std::move(*result);
}

}  // namespace peerstack::http
