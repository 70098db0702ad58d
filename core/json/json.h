// JSON for Peerstack: a small value type, a strict parser (simdjson's DOM parser underneath)
// and our own writer.
//
// The writer's output is canonical: object keys sorted by their UTF-8 bytes, no white space,
// minimal string escaping, integers as plain decimals. Signatures are made over these bytes,
// so two nodes that build the same Value get the same bytes. Canonical() refuses floating
// point numbers (they have no single textual form); Serialize() writes them for responses.
//
// Parse() reads the whole document: it refuses invalid UTF-8, duplicate keys, trailing
// content, nesting deeper than the limit and documents over the size limit, so a message is
// either fully valid or refused. Values are plain data: copyable, not synchronised.
#pragma once

#include <concepts>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"

namespace peerstack::json {

class Value;
using Array = std::vector<Value>;
using Object = std::map<std::string, Value, std::less<>>;

class Value {
 public:
  enum class Type { kNull, kBool, kInt, kDouble, kString, kArray, kObject };

  Value() = default;
  Value(std::nullptr_t) {}  // NOLINT
  Value(bool b) : v_(b) {}  // NOLINT
  template <std::integral I>
  requires(!std::same_as<I, bool>) Value(I i) : v_(static_cast<int64_t>(i)) {}  // NOLINT
  Value(double d) : v_(d) {}                                                    // NOLINT
  Value(std::string s) : v_(std::move(s)) {}                                    // NOLINT
  Value(std::string_view s) : v_(std::string(s)) {}                             // NOLINT
  Value(const char* s) : v_(std::string(s)) {}                                  // NOLINT
  Value(Array a) : v_(std::move(a)) {}                                          // NOLINT
  Value(Object o) : v_(std::move(o)) {}                                         // NOLINT

  Type type() const { return static_cast<Type>(v_.index()); }
  bool is_null() const { return type() == Type::kNull; }
  bool is_bool() const { return type() == Type::kBool; }
  bool is_int() const { return type() == Type::kInt; }
  bool is_double() const { return type() == Type::kDouble; }
  bool is_string() const { return type() == Type::kString; }
  bool is_array() const { return type() == Type::kArray; }
  bool is_object() const { return type() == Type::kObject; }

  // Accessors; calling the wrong one is a programming error (std::bad_variant_access).
  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_double() const { return std::get<double>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const Array& as_array() const { return std::get<Array>(v_); }
  Array& as_array() { return std::get<Array>(v_); }
  const Object& as_object() const { return std::get<Object>(v_); }
  Object& as_object() { return std::get<Object>(v_); }

  // Member lookup on an object; nullptr when absent or when this is not an object.
  const Value* find(std::string_view key) const;
  // Typed lookups for message decoding: nullptr when absent or of another type.
  const std::string* find_string(std::string_view key) const;
  const int64_t* find_int(std::string_view key) const;

  bool operator==(const Value& other) const = default;

 private:
  std::variant<std::nullptr_t, bool, int64_t, double, std::string, Array, Object> v_;
};

struct ParseLimits {
  size_t max_bytes = 1 << 20;
  size_t max_depth = 64;
};

// Errors have code "bad_json" and a message that says what is wrong (never the input).
Result<Value> Parse(std::string_view text, const ParseLimits& limits = {});

// Compact, sorted-key JSON; doubles as the shortest text that reads back the same, with ".0"
// added when that text is all digits (so a double never reads back as an integer).
std::string Serialize(const Value& value);
// Canonical bytes for signing; "not_canonical" if the value holds a floating point number.
Result<std::string> Canonical(const Value& value);

// Appends s as a JSON string literal (quotes included) with minimal escaping.
void AppendQuoted(std::string& out, std::string_view s);

}  // namespace peerstack::json
