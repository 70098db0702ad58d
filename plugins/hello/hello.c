/* The smallest Peerstack plugin, in plain C against plugin.h only.
 * GET /api/hello/ answers {"greeting": "hello", "node": <node id>, "plugin": "hello",
 * "version": <this plugin's version>}. Stateless and never blocking, so it declares itself
 * concurrent and non-blocking (the host may run it on its network threads). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peerstack/plugin.h"

#ifndef PEERSTACK_PLUGIN_VERSION
#define PEERSTACK_PLUGIN_VERSION "1.0.0"
#endif
/* The benchmark builds this file a second time as "hellopool", without the non-blocking flag. */
#ifndef HELLO_NAME
#define HELLO_NAME "hello"
#endif
#ifdef HELLO_POOLED
#define HELLO_FLAGS PS_PLUGIN_CONCURRENT
#else
#define HELLO_FLAGS (PS_PLUGIN_CONCURRENT | PS_PLUGIN_NONBLOCKING)
#endif

typedef struct hello_state {
  const ps_host_api* api;
  ps_host* host;
  ps_plugin descriptor;
  char node_id[128];
} hello_state;

static const ps_route kRoutes[] = {
    {"GET", "/", 0, 0},
};

static ps_str str_of(const char* s) {
  ps_str out;
  out.data = s;
  out.size = strlen(s);
  return out;
}

static ps_status hello_init(void* state) {
  hello_state* s = (hello_state*)state;
  size_t n = s->api->info(s->host, PS_INFO_NODE_ID, s->node_id, sizeof s->node_id - 1);
  if (n >= sizeof s->node_id) n = sizeof s->node_id - 1;
  s->node_id[n] = '\0';
  s->api->log(s->host, PS_LOG_INFO, str_of("hello plugin ready"));
  return PS_OK;
}

static ps_status hello_handle(void* state, uint32_t route_id, const ps_request* request,
                              ps_response* response) {
  hello_state* s = (hello_state*)state;
  char body[320];
  (void)request;
  if (route_id != 0) return PS_ERR_INVALID;
  /* node_id is hex: no JSON escaping needed. */
  int n = snprintf(body, sizeof body,
                   "{\"greeting\":\"hello\",\"node\":\"%s\",\"plugin\":\"%s\",\"version\":\"%s\"}",
                   s->node_id, HELLO_NAME, PEERSTACK_PLUGIN_VERSION);
  if (n < 0 || (size_t)n >= sizeof body) return PS_ERR_INTERNAL;
  s->api->response_header(response, str_of("content-type"), str_of("application/json"));
  ps_str out = {body, (size_t)n};
  return s->api->response_write(response, out);
}

static void hello_shutdown(void* state) { free(state); }

PEERSTACK_PLUGIN_EXPORT const ps_plugin* peerstack_plugin_entry(const ps_host_api* api,
                                                                ps_host* host) {
  if (api == NULL || api->abi_major != PEERSTACK_PLUGIN_ABI_MAJOR) return NULL;
  hello_state* s = (hello_state*)calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  s->api = api;
  s->host = host;
  s->descriptor.struct_size = sizeof s->descriptor;
  s->descriptor.abi_major = PEERSTACK_PLUGIN_ABI_MAJOR;
  s->descriptor.abi_minor = PEERSTACK_PLUGIN_ABI_MINOR;
  s->descriptor.name = HELLO_NAME;
  s->descriptor.version = PEERSTACK_PLUGIN_VERSION;
  s->descriptor.routes = kRoutes;
  s->descriptor.route_count = sizeof kRoutes / sizeof kRoutes[0];
  s->descriptor.flags = HELLO_FLAGS;
  s->descriptor.state = s;
  s->descriptor.init = hello_init;
  s->descriptor.handle = hello_handle;
  s->descriptor.shutdown = hello_shutdown;
  return &s->descriptor;
}
