// GET  /api/greet/           {"greeting": "hello from <node id>"}
// GET  /api/greet/:name      {"greeting": "hello, <name>"}
// POST /api/greet/greeting   (admin) {"text": "..."} sets the greeting, kept across restarts
#include "peerstack/plugin.hpp"

using namespace peerstack::sdk;

class Greet : public Plugin {
 public:
  Greet() : Plugin("greet", PEERSTACK_PLUGIN_VERSION) {
    Get("/", [this](const Request&, Response& res) {
      res.Json(200, Json::Object{{"greeting", Greeting() + " from " + host().NodeId()}});
    });
    Get("/:name", [this](const Request& req, Response& res) {
      res.Json(200, Json::Object{{"greeting", Greeting() + ", " + std::string(req.param("name"))}});
    });
    Private("POST", "/greeting", [this](const Request& req, Response& res) {
      const Json body = req.json();
      const std::string* text = body.get_string("text");
      if (!text || text->empty()) throw HttpError(400, "invalid", "send {\"text\": \"...\"}");
      host().KvPut("greeting", *text);
      res.Json(200, Json::Object{{"greeting", *text}});
    });
  }

 private:
  std::string Greeting() const { return host().KvGet("greeting").value_or("hello"); }
};

PEERSTACK_PLUGIN(Greet)
