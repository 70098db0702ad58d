// `direct`: the node is reachable at its own address; the manager verifies it.
#include "tunnel/tunnel.h"

namespace peerstack::tunnel {
namespace {

class DirectProvider final : public Provider {
 public:
  explicit DirectProvider(std::string url) : url_(std::move(url)) {}
  std::string name() const override { return "direct"; }
  Result<std::string> Open() override { return url_; }

 private:
  std::string url_;
};

}  // namespace

ProviderPtr MakeDirectProvider(std::string url) {
  return std::make_unique<DirectProvider>(std::move(url));
}

}  // namespace peerstack::tunnel
