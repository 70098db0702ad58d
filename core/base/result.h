// Errors as values for the core: Status (ok or an error code + message) and Result<T>
// (a value or a Status). No exceptions cross module interfaces on the request path.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace peerstack {

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(std::string code, std::string message) {
    Status s;
    s.code_ = std::move(code);
    s.message_ = std::move(message);
    return s;
  }

  bool ok() const { return code_.empty(); }
  explicit operator bool() const { return ok(); }
  // A short machine-readable code ("not_found", "bad_signature", ...), empty when ok.
  const std::string& code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const { return ok() ? "ok" : code_ + ": " + message_; }

 private:
  std::string code_;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok() && "Result built from an ok Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  const T& value() const& { return std::get<T>(v_); }
  T& value() & { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace peerstack
