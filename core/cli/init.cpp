#include <sys/stat.h>

#include <filesystem>
#include <iostream>
#include <string>

#include "appdata/op.h"
#include "base/files.h"
#include "cli/commands.h"

namespace peerstack::cli {
namespace {

// @NAME@ is replaced by the app's name.
constexpr const char kCMake[] =
    R"tpl(# @NAME@: a Peerstack app (a plugin and a frontend), made by `peerstack init`.
cmake_minimum_required(VERSION 3.20)
project(@NAME@ LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 17)
if(NOT CMAKE_BUILD_TYPE)
  set(CMAKE_BUILD_TYPE Release)
endif()

# The plugin SDK, installed from a Peerstack build:
#   cmake --install <peerstack>/build --component sdk --prefix <dir>, then -DCMAKE_PREFIX_PATH=<dir>.
find_package(PeerstackPluginSDK 1.0 REQUIRED)

# build/plugins/lib@NAME@.so: the directory a node runs (--plugins) and a release lists.
set(CMAKE_LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/plugins)
peerstack_add_plugin(NAME @NAME@ SOURCES plugin.cpp VERSION 0.1.0)
)tpl";

constexpr const char kPlugin[] =
    R"tpl(// @NAME@: made by `peerstack init`. Messages that every node of the network holds (a replicated
// collection, plugin ABI 1.1: docs/plugin-sdk.md in the Peerstack repository).
//
//   GET  /api/@NAME@/messages                  every message, oldest first      (public)
//   POST /api/@NAME@/messages  {"text": "..."}  -> 201 with the message          (admin listener)
#include <algorithm>
#include <chrono>
#include <string>

#include "peerstack/plugin.hpp"

#ifndef PEERSTACK_PLUGIN_VERSION
#define PEERSTACK_PLUGIN_VERSION "0.1.0"
#endif

namespace {

using peerstack::sdk::HttpError;
using peerstack::sdk::Json;
using peerstack::sdk::Request;
using peerstack::sdk::Response;
using peerstack::sdk::Rule;

class App : public peerstack::sdk::Plugin {
 public:
  App() : Plugin("@NAME@", PEERSTACK_PLUGIN_VERSION) {
    // Each member writes its own keys ("<its node id>/..."), everyone reads them all.
    Collection("messages", Rule::kOwnKeys);

    Get("/messages", [this](const Request&, Response& res) {
      Json::Array list;
      for (const auto& [key, value] : host().Replicated("messages").List("", 1000)) {
        if (auto m = Json::Parse(value)) list.push_back(*m);
      }
      std::stable_sort(list.begin(), list.end(), [](const Json& a, const Json& b) {
        return a.get("at")->as_number() < b.get("at")->as_number();
      });
      res.Json(200, Json(Json::Object{{"messages", Json(std::move(list))}}));
    });

    // Private: on the admin listener only, so this node's owner writes (with its key).
    Private("POST", "/messages", [this](const Request& req, Response& res) {
      const Json in = req.json();
      const std::string* text = in.get_string("text");
      if (!text || text->empty() || text->size() > 1000) {
        throw HttpError(400, "invalid", "text must be a string of 1 to 1000 bytes");
      }
      const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
      const std::string node = host().NodeId();
      Json message(Json::Object{{"text", Json(*text)}, {"node", Json(node)}, {"at", Json(now)}});
      host().Replicated("messages").Put(node + "/" + std::to_string(now), message.Dump());
      res.Json(201, message);
    });
  }
};

}  // namespace

PEERSTACK_PLUGIN(App)
)tpl";

constexpr const char kIndex[] = R"tpl(<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>@NAME@</title>
</head>
<body>
  <h1>@NAME@</h1>
  <p>Messages every node of this network holds:</p>
  <ul id="messages"><li>Loading…</li></ul>
  <script>
    // Text only (textContent): messages are what members wrote.
    fetch('/api/@NAME@/messages').then(function (r) { return r.json(); }).then(function (data) {
      var list = document.getElementById('messages');
      list.textContent = '';
      (data.messages || []).forEach(function (m) {
        var li = document.createElement('li');
        li.textContent = m.text + ' (' + String(m.node).slice(0, 8) + ')';
        list.appendChild(li);
      });
      if (!list.children.length) list.textContent = 'No messages yet.';
    }).catch(function (e) {
      document.getElementById('messages').textContent = 'The @NAME@ plugin did not answer: ' + e;
    });
  </script>
</body>
</html>
)tpl";

constexpr const char kReadme[] = R"tpl(# @NAME@

A Peerstack app made by `peerstack init`: a plugin (`plugin.cpp`, routes under `/api/@NAME@/`)
and a frontend (`front/`). Every node that runs it serves both; the messages are a replicated
collection, so every node of the network holds them.

Build the plugin against the installed plugin SDK (from a Peerstack build:
`cmake --install build --component sdk --prefix <dir>`):

```sh
cmake -S . -B build -DCMAKE_PREFIX_PATH=<dir> && cmake --build build
```

Run it on one node while you work (`--dev`: unsigned local files, reloaded when they change):

```sh
peerstack run --dev --plugins build/plugins --front front
curl -s -H "Authorization: Bearer $(cat .peerstack/admin.token)" \
     -d '{"text": "hello"}' http://127.0.0.1:8081/api/@NAME@/messages
curl -s http://127.0.0.1:8080/api/@NAME@/messages
```

Ship it to every node of a network as a signed release (the node's key is the publisher of the
network it created):

```sh
peerstack release create --plugins build/plugins --front front -o release.json &&
  peerstack release sign release.json --key .peerstack/node.key &&
  peerstack release publish release.json
```
)tpl";

std::string Fill(std::string text, const std::string& name) {
  for (size_t at; (at = text.find("@NAME@")) != std::string::npos;) text.replace(at, 6, name);
  return text;
}

}  // namespace

int Init(const Values& a) {
  if (a.positional.size() != 1)
    return Fail("init needs one directory (see peerstack init --help)", 2);
  const std::string dir = a.positional[0];
  std::string name = a.Get("name");
  if (name.empty()) {
    for (char c : std::filesystem::path(dir).lexically_normal().filename().string()) {
      const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      name.push_back(
          (lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9') || lower == '-' ? lower
                                                                                           : '_');
    }
    while (!name.empty() && (name[0] == '_' || name[0] == '-')) name.erase(0, 1);
    if (name.size() > 32) name.resize(32);
  }
  if (!appdata::ValidCollectionName(name)) {  // a plugin's name follows the same rule
    return Fail(
        "the app's name '" + name + "' is not [a-z0-9][a-z0-9_-]{0,31}: give one with --name", 2);
  }
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_empty(dir, ec)) {
    return Fail(
        dir + " exists and is not empty: init writes a new app into an empty or new directory", 2);
  }
  const struct {
    const char* path;
    const char* text;
  } files[] = {{"CMakeLists.txt", kCMake},
               {"plugin.cpp", kPlugin},
               {"front/index.html", kIndex},
               {"README.md", kReadme}};
  for (const auto& f : files) {
    const std::string path = dir + "/" + f.path;
    if (auto s = files::MakeDirs(std::filesystem::path(path).parent_path().string()); !s.ok())
      return Fail(s.message());
    if (auto s = files::WriteFileAtomic(path, Fill(f.text, name), 0644); !s.ok())
      return Fail(s.message());
  }
  std::cout << "wrote the app " << name << " into " << dir
            << " (plugin.cpp, CMakeLists.txt, front/, README.md)\n"
            << "next: the three commands in " << dir
            << "/README.md (build, run with --dev, publish)\n";
  return 0;
}

}  // namespace peerstack::cli
