// Peerstack plugin SDK, C++ layer: header-only, compiled into the plugin, on top of the C ABI
// in plugin.h. It gives a plugin:
//   - sdk::Plugin, a base class with a router: Get/Post/Put/Delete/Patch("/posts/:id", fn),
//     Private routes for the admin listener, Init/Shutdown hooks;
//   - Request/Response wrappers, a Host wrapper (log, info, config, key/value store, and
//     replicated collections: host().Replicated("posts").Put(key, value), ABI 1.1);
//   - a small JSON value with a strict parser and a writer;
//   - the exception barrier: nothing thrown in plugin code crosses into the host. Throwing
//     sdk::HttpError answers that status with a JSON error; anything else becomes a 500.
//
//   class Hello : public peerstack::sdk::Plugin {
//    public:
//     Hello() : Plugin("hello", "1.0.0") {
//       Get("/", [](const Request&, Response& res) { res.JsonText(200, R"({"hi":true})"); });
//     }
//   };
//   PEERSTACK_PLUGIN(Hello)
//
// One instance of the class is created per load (entry call) and deleted at shutdown.
#ifndef PEERSTACK_PLUGIN_HPP_
#define PEERSTACK_PLUGIN_HPP_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "peerstack/plugin.h"

namespace peerstack::sdk {

inline ps_str ToPs(std::string_view s) { return ps_str{s.data(), s.size()}; }
inline std::string_view FromPs(ps_str s) {
  return s.size == 0 ? std::string_view() : std::string_view(s.data, s.size);
}

// ---------------------------------------------------------------------------------------
// Route patterns: "/", "/posts", "/posts/:id". A ":name" segment matches one non-empty
// segment; everything else matches literally. A trailing slash on the path is ignored
// except for the root. Shared by the host's router and by plugin tests.
inline bool MatchPattern(std::string_view pattern, std::string_view path,
                         std::vector<std::pair<std::string, std::string>>* params) {
  if (path.empty()) path = "/";
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (pattern.size() > 1 && pattern.back() == '/') pattern.remove_suffix(1);
  std::vector<std::pair<std::string, std::string>> found;
  size_t pi = 0, si = 0;
  while (pi < pattern.size() && si < path.size()) {
    if (pattern[pi] != '/' || path[si] != '/') return false;
    ++pi;
    ++si;
    const size_t pend = std::min(pattern.find('/', pi), pattern.size());
    const size_t send = std::min(path.find('/', si), path.size());
    const std::string_view pseg = pattern.substr(pi, pend - pi);
    const std::string_view sseg = path.substr(si, send - si);
    if (!pseg.empty() && pseg.front() == ':') {
      if (sseg.empty()) return false;
      found.emplace_back(std::string(pseg.substr(1)), std::string(sseg));
    } else if (pseg != sseg) {
      return false;
    }
    pi = pend;
    si = send;
  }
  if (pi != pattern.size() || si != path.size()) return false;
  if (params) *params = std::move(found);
  return true;
}

// True for patterns the host accepts: starts with '/', segments of [A-Za-z0-9._~-] (not "."
// or "..") or ":name" with name [A-Za-z0-9_]+, no empty inner segments, at most 256 bytes.
inline bool ValidPattern(std::string_view p) {
  if (p.empty() || p.front() != '/' || p.size() > 256) return false;
  size_t i = 1;
  while (i < p.size()) {
    const size_t end = std::min(p.find('/', i), p.size());
    std::string_view seg = p.substr(i, end - i);
    if (seg.empty() || seg == "." || seg == "..") return false;  // "//", dot segments
    bool param = seg.front() == ':';
    if (param) seg.remove_prefix(1);
    if (seg.empty()) return false;
    for (char c : seg) {
      const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      if (!(alnum || c == '_' || (!param && (c == '.' || c == '~' || c == '-')))) return false;
    }
    i = end + 1;
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// JSON: a small value type with a strict parser (RFC 8259; no duplicate keys, no trailing
// data, depth <= 64) and a compact writer. Numbers are doubles, with integers kept exact up
// to 2^53.
class Json {
 public:
  using Array = std::vector<Json>;
  using Object = std::map<std::string, Json>;

  Json() = default;
  Json(std::nullptr_t) {}                           // NOLINT
  Json(bool b) : v_(b) {}                           // NOLINT
  Json(int i) : v_(static_cast<double>(i)) {}       // NOLINT
  Json(int64_t i) : v_(static_cast<double>(i)) {}   // NOLINT
  Json(double d) : v_(d) {}                         // NOLINT
  Json(const char* s) : v_(std::string(s)) {}       // NOLINT
  Json(std::string s) : v_(std::move(s)) {}         // NOLINT
  Json(std::string_view s) : v_(std::string(s)) {}  // NOLINT
  Json(Array a) : v_(std::move(a)) {}               // NOLINT
  Json(Object o) : v_(std::move(o)) {}              // NOLINT

  bool is_null() const { return v_.index() == 0; }
  bool is_bool() const { return v_.index() == 1; }
  bool is_number() const { return v_.index() == 2; }
  bool is_string() const { return v_.index() == 3; }
  bool is_array() const { return v_.index() == 4; }
  bool is_object() const { return v_.index() == 5; }
  bool as_bool() const { return std::get<bool>(v_); }
  double as_number() const { return std::get<double>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const Array& as_array() const { return std::get<Array>(v_); }
  const Object& as_object() const { return std::get<Object>(v_); }
  Object& as_object() { return std::get<Object>(v_); }

  // Member of an object, or nullptr.
  const Json* get(const std::string& key) const {
    if (!is_object()) return nullptr;
    auto it = as_object().find(key);
    return it == as_object().end() ? nullptr : &it->second;
  }
  // A string member, or nullptr.
  const std::string* get_string(const std::string& key) const {
    const Json* v = get(key);
    return v && v->is_string() ? &v->as_string() : nullptr;
  }

  // Parses text; nullopt (and *error set) when it is not one valid JSON document.
  static std::optional<Json> Parse(std::string_view text, std::string* error = nullptr) {
    Parser p{text, 0, {}};
    Json out;
    if (!p.Value(&out, 0) || (p.SkipWs(), p.pos != text.size())) {
      if (error) *error = p.error.empty() ? "trailing data" : p.error;
      return std::nullopt;
    }
    return out;
  }

  std::string Dump() const {
    std::string out;
    Write(out);
    return out;
  }

  static void Quote(std::string& out, std::string_view s) {
    static const char kHex[] = "0123456789abcdef";
    out.push_back('"');
    for (char c : s) {
      const auto u = static_cast<unsigned char>(c);
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
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
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        default:
          if (u < 0x20) {
            out += "\\u00";
            out.push_back(kHex[u >> 4]);
            out.push_back(kHex[u & 15]);
          } else {
            out.push_back(c);
          }
      }
    }
    out.push_back('"');
  }

 private:
  void Write(std::string& out) const {
    switch (v_.index()) {
      case 0:
        out += "null";
        break;
      case 1:
        out += as_bool() ? "true" : "false";
        break;
      case 2: {
        const double d = as_number();
        char buf[32];
        // The range test comes first: converting a double outside int64's range (1e300, inf,
        // NaN) to an integer is undefined behaviour.
        if (d < 9.007199254740992e15 && d > -9.007199254740992e15 &&
            d == static_cast<double>(static_cast<int64_t>(d))) {
          std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(d));
        } else if (d != d || d == 1.0 / 0.0 || d == -1.0 / 0.0) {
          std::snprintf(buf, sizeof buf, "null");
        } else {
          std::snprintf(buf, sizeof buf, "%.17g", d);
        }
        out += buf;
        break;
      }
      case 3:
        Quote(out, as_string());
        break;
      case 4: {
        out.push_back('[');
        bool first = true;
        for (const Json& j : as_array()) {
          if (!first) out.push_back(',');
          first = false;
          j.Write(out);
        }
        out.push_back(']');
        break;
      }
      case 5: {
        out.push_back('{');
        bool first = true;
        for (const auto& [k, j] : as_object()) {
          if (!first) out.push_back(',');
          first = false;
          Quote(out, k);
          out.push_back(':');
          j.Write(out);
        }
        out.push_back('}');
        break;
      }
    }
  }

  struct Parser {
    std::string_view s;
    size_t pos;
    std::string error;

    bool Fail(const char* what) {
      if (error.empty()) error = std::string(what) + " at offset " + std::to_string(pos);
      return false;
    }
    void SkipWs() {
      while (pos < s.size() &&
             (s[pos] == ' ' || s[pos] == '\n' || s[pos] == '\r' || s[pos] == '\t'))
        ++pos;
    }
    bool Literal(std::string_view word) {
      if (s.substr(pos, word.size()) != word) return Fail("bad literal");
      pos += word.size();
      return true;
    }
    bool Value(Json* out, int depth) {
      if (depth > 64) return Fail("nesting too deep");
      SkipWs();
      if (pos >= s.size()) return Fail("unexpected end");
      const char c = s[pos];
      if (c == 'n') {
        *out = nullptr;
        return Literal("null");
      }
      if (c == 't') {
        *out = true;
        return Literal("true");
      }
      if (c == 'f') {
        *out = false;
        return Literal("false");
      }
      if (c == '"') {
        std::string str;
        if (!String(&str)) return false;
        *out = std::move(str);
        return true;
      }
      if (c == '[') {
        ++pos;
        Array arr;
        SkipWs();
        if (pos < s.size() && s[pos] == ']') {
          ++pos;
          *out = std::move(arr);
          return true;
        }
        while (true) {
          Json item;
          if (!Value(&item, depth + 1)) return false;
          arr.push_back(std::move(item));
          SkipWs();
          if (pos < s.size() && s[pos] == ',') {
            ++pos;
            continue;
          }
          if (pos < s.size() && s[pos] == ']') {
            ++pos;
            break;
          }
          return Fail("expected , or ]");
        }
        *out = std::move(arr);
        return true;
      }
      if (c == '{') {
        ++pos;
        Object obj;
        SkipWs();
        if (pos < s.size() && s[pos] == '}') {
          ++pos;
          *out = std::move(obj);
          return true;
        }
        while (true) {
          SkipWs();
          std::string key;
          if (pos >= s.size() || s[pos] != '"' || !String(&key)) return Fail("expected a key");
          SkipWs();
          if (pos >= s.size() || s[pos] != ':') return Fail("expected :");
          ++pos;
          Json item;
          if (!Value(&item, depth + 1)) return false;
          if (!obj.emplace(std::move(key), std::move(item)).second) return Fail("duplicate key");
          SkipWs();
          if (pos < s.size() && s[pos] == ',') {
            ++pos;
            continue;
          }
          if (pos < s.size() && s[pos] == '}') {
            ++pos;
            break;
          }
          return Fail("expected , or }");
        }
        *out = std::move(obj);
        return true;
      }
      return Number(out);
    }
    bool Number(Json* out) {
      const size_t start = pos;
      if (pos < s.size() && s[pos] == '-') ++pos;
      if (pos >= s.size()) return Fail("bad number");
      if (s[pos] == '0') {
        ++pos;
      } else if (s[pos] >= '1' && s[pos] <= '9') {
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
      } else {
        return Fail("unexpected character");
      }
      if (pos < s.size() && s[pos] == '.') {
        ++pos;
        if (pos >= s.size() || s[pos] < '0' || s[pos] > '9') return Fail("bad number");
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
      }
      if (pos < s.size() && (s[pos] == 'e' || s[pos] == 'E')) {
        ++pos;
        if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) ++pos;
        if (pos >= s.size() || s[pos] < '0' || s[pos] > '9') return Fail("bad number");
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
      }
      *out = std::strtod(std::string(s.substr(start, pos - start)).c_str(), nullptr);
      return true;
    }
    static void Utf8(std::string* out, uint32_t cp) {
      if (cp < 0x80) {
        out->push_back(static_cast<char>(cp));
      } else if (cp < 0x800) {
        out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
        out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
      } else if (cp < 0x10000) {
        out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
        out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
        out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
      } else {
        out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
        out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
        out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
        out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
      }
    }
    bool Hex4(uint32_t* out) {
      if (pos + 4 > s.size()) return Fail("bad escape");
      uint32_t v = 0;
      for (int i = 0; i < 4; ++i) {
        const char h = s[pos++];
        v <<= 4;
        if (h >= '0' && h <= '9')
          v |= static_cast<uint32_t>(h - '0');
        else if (h >= 'a' && h <= 'f')
          v |= static_cast<uint32_t>(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F')
          v |= static_cast<uint32_t>(h - 'A' + 10);
        else
          return Fail("bad escape");
      }
      *out = v;
      return true;
    }
    bool String(std::string* out) {
      ++pos;  // opening quote
      while (pos < s.size()) {
        const char c = s[pos++];
        if (c == '"') return true;
        if (static_cast<unsigned char>(c) < 0x20) return Fail("control character in string");
        if (c != '\\') {
          out->push_back(c);
          continue;
        }
        if (pos >= s.size()) break;
        const char e = s[pos++];
        switch (e) {
          case '"':
            out->push_back('"');
            break;
          case '\\':
            out->push_back('\\');
            break;
          case '/':
            out->push_back('/');
            break;
          case 'b':
            out->push_back('\b');
            break;
          case 'f':
            out->push_back('\f');
            break;
          case 'n':
            out->push_back('\n');
            break;
          case 'r':
            out->push_back('\r');
            break;
          case 't':
            out->push_back('\t');
            break;
          case 'u': {
            uint32_t cp = 0;
            if (!Hex4(&cp)) return false;
            if (cp >= 0xd800 && cp <= 0xdbff) {
              uint32_t lo = 0;
              if (s.substr(pos, 2) != "\\u") return Fail("lone surrogate");
              pos += 2;
              if (!Hex4(&lo) || lo < 0xdc00 || lo > 0xdfff) return Fail("lone surrogate");
              cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
              return Fail("lone surrogate");
            }
            Utf8(out, cp);
            break;
          }
          default:
            return Fail("bad escape");
        }
      }
      return Fail("unterminated string");
    }
  };

  std::variant<std::nullptr_t, bool, double, std::string, Array, Object> v_;
};

// ---------------------------------------------------------------------------------------
// An HTTP error with a status: thrown from a handler, answered as
// {"error": {"code": code, "message": message}}.
class HttpError : public std::runtime_error {
 public:
  HttpError(int status, std::string code, const std::string& message)
      : std::runtime_error(message), status_(status), code_(std::move(code)) {}
  int status() const { return status_; }
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string code_;
};

namespace detail {
inline void AppendSink(void* user, ps_str bytes) {
  static_cast<std::string*>(user)->append(FromPs(bytes));
}
inline void PairSink(void* user, ps_str key, ps_str value) {
  static_cast<std::vector<std::pair<std::string, std::string>>*>(user)->emplace_back(
      std::string(FromPs(key)), std::string(FromPs(value)));
}
}  // namespace detail

// Who may write to a replicated collection (PS_REP_* in plugin.h).
enum class Rule : uint32_t {
  kPublishers = PS_REP_PUBLISHERS,  // the network's publishers (the app's authors)
  kMembers = PS_REP_MEMBERS,        // any member
  kOwnKeys = PS_REP_OWN_KEYS,       // any member, keys "<its node id>/..." only
};

// A replicated collection (ABI 1.1): held by every node, merged last writer wins per key.
// Errors become HttpError: 400 invalid, 403 forbidden (the rule), 413 too large, 429 busy,
// 503 not_member (this node has not been admitted yet), 501 when the host is older than 1.1.
class Replicated {
 public:
  Replicated(const ps_host_api* api, ps_host* host, std::string name)
      : api_(api), host_(host), name_(std::move(name)) {}

  std::optional<std::string> Get(std::string_view key) const {
    Supported();
    std::string out;
    const ps_status st = api_->rep_get(host_, ToPs(name_), ToPs(key), &detail::AppendSink, &out);
    if (st == PS_ERR_NOT_FOUND) return std::nullopt;
    Check(st, "get");
    return out;
  }
  void Put(std::string_view key, std::string_view value) const {
    Supported();
    Check(api_->rep_put(host_, ToPs(name_), ToPs(key), ToPs(value)), "put");
  }
  // False when the key held nothing.
  bool Delete(std::string_view key) const {
    Supported();
    const ps_status st = api_->rep_delete(host_, ToPs(name_), ToPs(key));
    if (st == PS_ERR_NOT_FOUND) return false;
    Check(st, "delete");
    return true;
  }
  std::vector<std::pair<std::string, std::string>> List(std::string_view prefix = {},
                                                        size_t limit = 1000) const {
    Supported();
    std::vector<std::pair<std::string, std::string>> out;
    Check(api_->rep_list(host_, ToPs(name_), ToPs(prefix), limit, &detail::PairSink, &out), "list");
    return out;
  }
  // Grows whenever the collection changes on this node.
  uint64_t Changes() const {
    Supported();
    return api_->rep_changes(host_, ToPs(name_));
  }

 private:
  void Supported() const {
    if (api_->abi_minor < 1 ||
        api_->struct_size < offsetof(ps_host_api, rep_changes) + sizeof(api_->rep_changes)) {
      throw HttpError(501, "unsupported",
                      "this node's host is older than plugin ABI 1.1: no replicated collections");
    }
  }
  void Check(ps_status st, const char* what) const {
    const std::string where = "collection " + name_ + ": " + what;
    switch (st) {
      case PS_OK:
        return;
      case PS_ERR_INVALID:
        throw HttpError(400, "invalid", where + ": invalid collection or key");
      case PS_ERR_TOO_LARGE:
        throw HttpError(413, "too_large", where + ": too large");
      case PS_ERR_FORBIDDEN:
        throw HttpError(403, "forbidden", where + ": this node may not write it");
      case PS_ERR_BUSY:
        throw HttpError(429, "busy", where + ": too many writes, try again shortly");
      case PS_ERR_UNSUPPORTED:
        throw HttpError(503, "not_member", where + ": this node is not a member yet");
      default:
        throw std::runtime_error(where + " failed");
    }
  }

  const ps_host_api* api_;
  ps_host* host_;
  std::string name_;
};

// The host's callbacks for this plugin instance. Thread-safe (the host's callbacks are).
class Host {
 public:
  Host() = default;
  Host(const ps_host_api* api, ps_host* host) : api_(api), host_(host) {}

  bool LogEnabled(ps_log_level level) const { return api_->log_enabled(host_, level) != 0; }
  void Log(ps_log_level level, std::string_view message) const {
    if (LogEnabled(level)) api_->log(host_, level, ToPs(message));
  }
  std::string Info(ps_info_key key) const {
    std::string out(64, '\0');
    size_t n = api_->info(host_, key, out.data(), out.size());
    if (n > out.size()) {
      out.resize(n);
      n = api_->info(host_, key, out.data(), out.size());
    }
    out.resize(std::min(n, out.size()));
    return out;
  }
  std::string NodeId() const { return Info(PS_INFO_NODE_ID); }
  std::string NetworkId() const { return Info(PS_INFO_NETWORK_ID); }
  std::string Config() const {
    std::string out;
    api_->config(host_, &AppendSink, &out);
    return out;
  }
  std::optional<std::string> KvGet(std::string_view key) const {
    std::string out;
    const ps_status st = api_->kv_get(host_, ToPs(key), &AppendSink, &out);
    if (st == PS_ERR_NOT_FOUND) return std::nullopt;
    Check(st, "kv_get");
    return out;
  }
  void KvPut(std::string_view key, std::string_view value) const {
    Check(api_->kv_put(host_, ToPs(key), ToPs(value)), "kv_put");
  }
  // False when the key did not exist.
  bool KvDelete(std::string_view key) const {
    const ps_status st = api_->kv_delete(host_, ToPs(key));
    if (st == PS_ERR_NOT_FOUND) return false;
    Check(st, "kv_delete");
    return true;
  }
  std::vector<std::pair<std::string, std::string>> KvList(std::string_view prefix,
                                                          size_t limit = 1000) const {
    std::vector<std::pair<std::string, std::string>> out;
    Check(api_->kv_list(host_, ToPs(prefix), limit, &PairSink, &out), "kv_list");
    return out;
  }
  // A replicated collection the plugin declared (Plugin::Collection). ABI 1.1.
  sdk::Replicated Replicated(std::string name) const {
    return sdk::Replicated(api_, host_, std::move(name));
  }
  const ps_host_api* api() const { return api_; }
  ps_host* handle() const { return host_; }

 private:
  static void AppendSink(void* user, ps_str bytes) {
    static_cast<std::string*>(user)->append(FromPs(bytes));
  }
  static void PairSink(void* user, ps_str key, ps_str value) {
    static_cast<std::vector<std::pair<std::string, std::string>>*>(user)->emplace_back(
        std::string(FromPs(key)), std::string(FromPs(value)));
  }
  static void Check(ps_status st, const char* what) {
    if (st == PS_ERR_TOO_LARGE)
      throw HttpError(413, "too_large", std::string(what) + ": too large");
    if (st == PS_ERR_INVALID) throw HttpError(400, "invalid", std::string(what) + ": invalid");
    if (st != PS_OK) throw std::runtime_error(std::string(what) + " failed");
  }

  const ps_host_api* api_ = nullptr;
  ps_host* host_ = nullptr;
};

// A view of the host's request; valid during the handler call only.
class Request {
 public:
  explicit Request(const ps_request* r) : r_(r) {}
  std::string_view method() const { return FromPs(r_->method); }
  std::string_view path() const { return FromPs(r_->path); }
  std::string_view route_path() const { return FromPs(r_->route_path); }
  std::string_view query() const { return FromPs(r_->query); }
  std::string_view body() const { return FromPs(r_->body); }
  bool is_admin() const { return r_->is_admin != 0; }
  std::optional<std::string_view> header(std::string_view lower_name) const {
    for (size_t i = 0; i < r_->header_count; ++i) {
      if (FromPs(r_->headers[i].name) == lower_name) return FromPs(r_->headers[i].value);
    }
    return std::nullopt;
  }
  // A path parameter of the matched route; throws HttpError 500 if the route has none.
  std::string_view param(std::string_view name) const {
    for (size_t i = 0; i < r_->param_count; ++i) {
      if (FromPs(r_->params[i].name) == name) return FromPs(r_->params[i].value);
    }
    throw HttpError(500, "internal", "route has no parameter " + std::string(name));
  }
  // The body parsed as JSON; throws HttpError 400 when it is not valid JSON.
  Json json() const {
    std::string error;
    auto v = Json::Parse(body(), &error);
    if (!v) throw HttpError(400, "bad_json", "request body is not valid JSON: " + error);
    return *v;
  }
  const ps_request* raw() const { return r_; }

 private:
  const ps_request* r_;
};

// Builds the host's response; valid during the handler call only.
class Response {
 public:
  Response(const ps_host_api* api, ps_response* r) : api_(api), r_(r) {}
  Response& Status(int status) {
    api_->response_status(r_, status);
    return *this;
  }
  Response& Header(std::string_view name, std::string_view value) {
    if (api_->response_header(r_, ToPs(name), ToPs(value)) != PS_OK) {
      throw std::invalid_argument("invalid response header");
    }
    return *this;
  }
  Response& Write(std::string_view bytes) {
    api_->response_write(r_, ToPs(bytes));
    return *this;
  }
  // Status, Content-Type application/json, and a body that already is JSON text.
  Response& JsonText(int status, std::string_view body) {
    return Status(status).Header("content-type", "application/json").Write(body);
  }
  // Status, Content-Type application/json, and the value serialised.
  Response& Json(int status, const sdk::Json& value) { return JsonText(status, value.Dump()); }
  Response& Error(int status, std::string_view code, std::string_view message) {
    std::string body = "{\"error\":{\"code\":";
    sdk::Json::Quote(body, code);
    body += ",\"message\":";
    sdk::Json::Quote(body, message);
    body += "}}";
    return JsonText(status, body);
  }

 private:
  const ps_host_api* api_;
  ps_response* r_;
};

// The base class of a C++ plugin. Register routes in the constructor; override Init and
// Shutdown if needed. Handlers run on host worker threads (concurrently when constructed
// with kConcurrent, otherwise one at a time).
class Plugin {
 public:
  using Handler = std::function<void(const Request&, Response&)>;
  static constexpr uint32_t kConcurrent = PS_PLUGIN_CONCURRENT;

  Plugin(std::string name, std::string version, uint32_t flags = 0)
      : name_(std::move(name)), version_(std::move(version)), flags_(flags) {}
  virtual ~Plugin() = default;
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;

  // Called once after the host accepted the plugin; throw to refuse loading.
  virtual void Init() {}
  // Called once when the plugin is retired.
  virtual void Shutdown() {}

  const Host& host() const { return host_; }

  // Binds this instance to the host and returns its descriptor (called by the entry point).
  const ps_plugin* Attach(const ps_host_api* api, ps_host* host) {
    host_ = Host(api, host);
    c_routes_.clear();
    for (size_t i = 0; i < routes_.size(); ++i) {
      c_routes_.push_back(ps_route{routes_[i].method.c_str(), routes_[i].pattern.c_str(),
                                   routes_[i].flags, static_cast<uint32_t>(i)});
    }
    desc_ = ps_plugin{};
    desc_.struct_size = sizeof(ps_plugin);
    desc_.abi_major = PEERSTACK_PLUGIN_ABI_MAJOR;
    desc_.abi_minor = PEERSTACK_PLUGIN_ABI_MINOR;
    desc_.name = name_.c_str();
    desc_.version = version_.c_str();
    desc_.routes = c_routes_.data();
    desc_.route_count = c_routes_.size();
    desc_.flags = flags_;
    desc_.state = this;
    desc_.init = &InitThunk;
    desc_.handle = &HandleThunk;
    desc_.shutdown = &ShutdownThunk;
    c_collections_.clear();
    for (const auto& c : collections_) {
      c_collections_.push_back(ps_collection{sizeof(ps_collection), c.first.c_str(), c.second});
    }
    desc_.collections = c_collections_.empty() ? nullptr : c_collections_.data();
    desc_.collection_count = c_collections_.size();
    return &desc_;
  }

  // Dispatches one request to route `id` (what the host's handle() call does).
  ps_status Dispatch(uint32_t id, const ps_request* request, ps_response* response) {
    Response res(host_.api(), response);
    try {
      if (id >= routes_.size()) throw HttpError(404, "not_found", "no such route");
      Request req(request);
      routes_[id].handler(req, res);
      return PS_OK;
    } catch (const HttpError& e) {
      res.Error(e.status(), e.code(), e.what());
      return PS_OK;
    } catch (const std::exception& e) {
      host_.Log(PS_LOG_ERROR, std::string("handler failed: ") + e.what());
    } catch (...) {
      host_.Log(PS_LOG_ERROR, "handler threw a non-standard exception");
    }
    return PS_ERR_INTERNAL;
  }

 protected:
  void Get(std::string pattern, Handler h) { Route("GET", std::move(pattern), std::move(h), 0); }
  void Post(std::string pattern, Handler h) { Route("POST", std::move(pattern), std::move(h), 0); }
  void Put(std::string pattern, Handler h) { Route("PUT", std::move(pattern), std::move(h), 0); }
  void Delete(std::string pattern, Handler h) {
    Route("DELETE", std::move(pattern), std::move(h), 0);
  }
  void Patch(std::string pattern, Handler h) {
    Route("PATCH", std::move(pattern), std::move(h), 0);
  }
  // A route on the admin listener only (bearer token required there).
  void Private(std::string method, std::string pattern, Handler h) {
    Route(std::move(method), std::move(pattern), std::move(h), PS_ROUTE_PRIVATE);
  }
  void Route(std::string method, std::string pattern, Handler h, uint32_t flags) {
    routes_.push_back({std::move(method), std::move(pattern), flags, std::move(h)});
  }
  // Declares a replicated collection (ABI 1.1) and who may write it; public_writes lets
  // handlers of public routes write to it too. Use it through host().Replicated(name).
  void Collection(std::string name, Rule rule, bool public_writes = false) {
    collections_.emplace_back(
        std::move(name), static_cast<uint32_t>(rule) | (public_writes ? PS_REP_PUBLIC_WRITES : 0u));
  }

 private:
  struct RouteEntry {
    std::string method;
    std::string pattern;
    uint32_t flags;
    Handler handler;
  };

  static ps_status InitThunk(void* state) {
    auto* self = static_cast<Plugin*>(state);
    try {
      self->Init();
      return PS_OK;
    } catch (const std::exception& e) {
      self->host_.Log(PS_LOG_ERROR, std::string("init failed: ") + e.what());
    } catch (...) {
      self->host_.Log(PS_LOG_ERROR, "init threw a non-standard exception");
    }
    return PS_ERR_INTERNAL;
  }
  static ps_status HandleThunk(void* state, uint32_t id, const ps_request* req, ps_response* res) {
    return static_cast<Plugin*>(state)->Dispatch(id, req, res);
  }
  static void ShutdownThunk(void* state) {
    auto* self = static_cast<Plugin*>(state);
    try {
      self->Shutdown();
    } catch (...) {
    }
    delete self;
  }

  std::string name_;
  std::string version_;
  uint32_t flags_;
  Host host_;
  std::vector<RouteEntry> routes_;
  std::vector<ps_route> c_routes_;
  std::vector<std::pair<std::string, uint32_t>> collections_;
  std::vector<ps_collection> c_collections_;
  ps_plugin desc_{};
};

namespace detail {
template <typename T>
const ps_plugin* Entry(const ps_host_api* api, ps_host* host) {
  try {
    if (api == nullptr || api->abi_major != PEERSTACK_PLUGIN_ABI_MAJOR) return nullptr;
    auto* plugin = new T();
    return plugin->Attach(api, host);
  } catch (...) {
    return nullptr;
  }
}
}  // namespace detail

}  // namespace peerstack::sdk

// Defines the plugin's entry point for class T (derived from peerstack::sdk::Plugin).
#define PEERSTACK_PLUGIN(T)                                                   \
  extern "C" PEERSTACK_PLUGIN_EXPORT const ps_plugin* peerstack_plugin_entry( \
      const ps_host_api* api, ps_host* host) {                                \
    return ::peerstack::sdk::detail::Entry<T>(api, host);                     \
  }

#endif  // PEERSTACK_PLUGIN_HPP_
