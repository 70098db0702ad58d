#include "json/json.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace peerstack::json {
namespace {

Status BadJson(std::string message) { return Status::Error("bad_json", std::move(message)); }

Result<Value> Convert(simdjson::dom::element el, size_t depth, size_t max_depth) {
  if (depth > max_depth) return BadJson("nesting deeper than " + std::to_string(max_depth));
  using simdjson::dom::element_type;
  switch (el.type()) {
    case element_type::NULL_VALUE:
      return Value(nullptr);
    case element_type::BOOL: {
      bool b = false;
      if (el.get(b) != simdjson::SUCCESS) return BadJson("bad scalar");
      return Value(b);
    }
    case element_type::INT64: {
      int64_t i = 0;
      if (el.get(i) != simdjson::SUCCESS) return BadJson("bad scalar");
      return Value(i);
    }
    case element_type::UINT64:
      return BadJson("integer out of range");
    case element_type::DOUBLE: {
      double d = 0;
      if (el.get(d) != simdjson::SUCCESS) return BadJson("bad scalar");
      return Value(d);
    }
    case element_type::STRING: {
      std::string_view sv;
      if (el.get(sv) != simdjson::SUCCESS) return BadJson("bad scalar");
      return Value(std::string(sv));
    }
    case element_type::ARRAY: {
      Array out;
      simdjson::dom::array arr;
      if (el.get(arr) != simdjson::SUCCESS) return BadJson("bad array");
      for (simdjson::dom::element child : arr) {
        auto v = Convert(child, depth + 1, max_depth);
        if (!v) return v.status();
        out.push_back(std::move(v).value());
      }
      return Value(std::move(out));
    }
    case element_type::OBJECT: {
      Object out;
      simdjson::dom::object obj;
      if (el.get(obj) != simdjson::SUCCESS) return BadJson("bad object");
      for (simdjson::dom::key_value_pair field : obj) {
        auto v = Convert(field.value, depth + 1, max_depth);
        if (!v) return v.status();
        auto [it, inserted] = out.emplace(std::string(field.key), std::move(v).value());
        if (!inserted) return BadJson("duplicate key \"" + it->first.substr(0, 64) + "\"");
      }
      return Value(std::move(out));
    }
  }
  return BadJson("unknown element");
}

void Write(std::string& out, const Value& v) {
  switch (v.type()) {
    case Value::Type::kNull:
      out += "null";
      return;
    case Value::Type::kBool:
      out += v.as_bool() ? "true" : "false";
      return;
    case Value::Type::kInt: {
      char buf[24];
      auto r = std::to_chars(buf, buf + sizeof buf, v.as_int());
      out.append(buf, r.ptr);
      return;
    }
    case Value::Type::kDouble: {
      const double d = v.as_double();
      if (!std::isfinite(d)) {
        out += "null";
        return;
      }
      char buf[32];
      auto r = std::to_chars(buf, buf + sizeof buf, d);
      out.append(buf, r.ptr);
      // Digits alone would read back as an integer: -0.0 as 0, 1e20 as one beyond int64
      // (refused). ".0" keeps it a double, so Parse(Serialize(v)) is v.
      if (std::find_if(buf, r.ptr, [](char c) { return c == '.' || c == 'e'; }) == r.ptr) {
        out += ".0";
      }
      return;
    }
    case Value::Type::kString:
      AppendQuoted(out, v.as_string());
      return;
    case Value::Type::kArray: {
      out.push_back('[');
      bool first = true;
      for (const Value& item : v.as_array()) {
        if (!first) out.push_back(',');
        first = false;
        Write(out, item);
      }
      out.push_back(']');
      return;
    }
    case Value::Type::kObject: {
      out.push_back('{');
      bool first = true;
      for (const auto& [key, item] : v.as_object()) {  // std::map: sorted by bytes
        if (!first) out.push_back(',');
        first = false;
        AppendQuoted(out, key);
        out.push_back(':');
        Write(out, item);
      }
      out.push_back('}');
      return;
    }
  }
}

bool HasDouble(const Value& v) {
  switch (v.type()) {
    case Value::Type::kDouble:
      return true;
    case Value::Type::kArray:
      for (const Value& item : v.as_array()) {
        if (HasDouble(item)) return true;
      }
      return false;
    case Value::Type::kObject:
      for (const auto& [key, item] : v.as_object()) {
        if (HasDouble(item)) return true;
      }
      return false;
    default:
      return false;
  }
}

}  // namespace

const Value* Value::find(std::string_view key) const {
  if (!is_object()) return nullptr;
  const Object& o = as_object();
  auto it = o.find(key);
  return it == o.end() ? nullptr : &it->second;
}

const std::string* Value::find_string(std::string_view key) const {
  const Value* v = find(key);
  return v && v->is_string() ? &v->as_string() : nullptr;
}

const int64_t* Value::find_int(std::string_view key) const {
  const Value* v = find(key);
  return v && v->is_int() ? &std::get<int64_t>(v->v_) : nullptr;
}

Result<Value> Parse(std::string_view text, const ParseLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return BadJson("document larger than " + std::to_string(limits.max_bytes) + " bytes");
  }
  simdjson::dom::parser parser;
  // The depth limit is enforced by simdjson itself as well as by Convert.
  if (parser.allocate(text.size() + 1, limits.max_depth + 1) != simdjson::SUCCESS) {
    return BadJson("cannot allocate parser");
  }
  const simdjson::padded_string padded(text);
  simdjson::dom::element root;
  const auto error = parser.parse(padded).get(root);
  if (error) return BadJson(simdjson::error_message(error));
  return Convert(root, 0, limits.max_depth);
}

std::string Serialize(const Value& value) {
  std::string out;
  Write(out, value);
  return out;
}

Result<std::string> Canonical(const Value& value) {
  if (HasDouble(value)) {
    return Status::Error("not_canonical", "floating point numbers have no canonical form");
  }
  return Serialize(value);
}

void AppendQuoted(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + s.size() + 2);
  out.push_back('"');
  size_t run = 0;  // start of the current run of characters that need no escaping
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out.push_back(kHex[u >> 4]);
        out.push_back(kHex[u & 0xf]);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

}  // namespace peerstack::json
