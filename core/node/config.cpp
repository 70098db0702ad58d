#include "node/config.h"

#include <algorithm>

namespace peerstack::node {

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

Status CheckConfig(const Config& c) {
  if (c.data_dir.empty()) return Status::Error("bad_flag", "--data-dir may not be empty");
  if (c.publisher_threshold > static_cast<int64_t>(std::max<size_t>(1, c.publishers.size()))) {
    return Status::Error("bad_flag", "--publisher-threshold is more than the publisher keys given");
  }
  if (c.port != 0 && c.port == c.admin_port) {
    return Status::Error("bad_flag", "--port and --admin-port must differ");
  }
  return Status::Ok();
}

}  // namespace peerstack::node
