/*
 * Peerstack plugin ABI, version 1.1: the stable C boundary between the node (host) and a
 * plugin (a shared library). C99, no C++ types cross it.
 *
 * A plugin exports exactly one symbol, PEERSTACK_PLUGIN_ENTRY_SYMBOL. The host loads the
 * library (RTLD_NOW | RTLD_LOCAL), calls the entry once with its callback table, and gets
 * the plugin's descriptor back. Plugins never link against host symbols.
 *
 * Compatibility policy
 *   - ABI major: changes only when a compatible evolution is impossible. The host refuses a
 *     plugin of another major.
 *   - ABI minor: grows when members are added. Every struct starts with struct_size and only
 *     grows at the end; a reader uses a member only if struct_size covers it. A changed
 *     signature becomes a new member named *_v2; the old one stays. The host refuses a plugin
 *     built for a newer minor than its own (it might rely on callbacks the host lacks).
 *   - A test hashes this file: changing it without bumping the version fails the build.
 *
 * Memory and lifetime
 *   - ps_str is a borrowed (pointer, length) view, not NUL-terminated; valid only as long as
 *     the call that handed it out, unless a member's comment says otherwise.
 *   - Whatever a plugin passes to a host callback is copied before the callback returns.
 *   - The side that allocates frees: the host owns requests, responses and the callback
 *     table; the plugin owns its descriptor, routes and state.
 *
 * Errors: functions return ps_status. No C++ exception may cross the boundary; the C++ layer
 * (plugin.hpp) catches everything. A handler returning anything but PS_OK gets the client
 * a generic 500 (the plugin's partial response is discarded).
 *
 * Threading: each member says which thread calls it. Unless the descriptor sets
 * PS_PLUGIN_CONCURRENT, the host never runs two calls of handle() of one plugin at once.
 */
#ifndef PEERSTACK_PLUGIN_H_
#define PEERSTACK_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PEERSTACK_PLUGIN_ABI_MAJOR 1
#define PEERSTACK_PLUGIN_ABI_MINOR 1
#define PEERSTACK_PLUGIN_ENTRY_SYMBOL "peerstack_plugin_entry"

#if defined(__GNUC__)
#define PEERSTACK_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define PEERSTACK_PLUGIN_EXPORT
#endif

typedef enum ps_status {
  PS_OK = 0,
  PS_ERR_INVALID = 1,     /* bad argument (name, size, pattern, header) */
  PS_ERR_NOT_FOUND = 2,   /* no such key */
  PS_ERR_TOO_LARGE = 3,   /* over a documented size limit */
  PS_ERR_INTERNAL = 4,    /* anything else; details go to the log */
  PS_ERR_UNSUPPORTED = 5, /* not available in this host or context */
  /* ABI 1.1 (returned only by the 1.1 members below) */
  PS_ERR_FORBIDDEN = 6, /* a replicated collection's rule does not let this node write */
  PS_ERR_BUSY = 7       /* over a rate limit: try again later */
} ps_status;

typedef enum ps_log_level {
  PS_LOG_DEBUG = 0,
  PS_LOG_INFO = 1,
  PS_LOG_WARN = 2,
  PS_LOG_ERROR = 3
} ps_log_level;

/* Borrowed bytes: data may be NULL when size is 0. */
typedef struct ps_str {
  const char* data;
  size_t size;
} ps_str;

typedef struct ps_header {
  ps_str name; /* lower case */
  ps_str value;
} ps_header;

/* A path parameter matched by a route pattern such as "/posts/:id". */
typedef struct ps_param {
  ps_str name;  /* without the colon */
  ps_str value; /* percent-decoded */
} ps_param;

/* An incoming request. Owned by the host; everything in it is valid until handle() returns. */
typedef struct ps_request {
  size_t struct_size;
  ps_str method;     /* "GET", "POST", ... */
  ps_str path;       /* full path as sent, e.g. "/api/blog/posts/42" */
  ps_str route_path; /* path below the plugin's mount, e.g. "/posts/42" */
  ps_str query;      /* after '?', without it; may be empty */
  const ps_header* headers;
  size_t header_count;
  const ps_param* params;
  size_t param_count;
  ps_str body;
  ps_str remote_address; /* the TCP peer: loopback for tunnelled requests, never trust it */
  int is_admin;          /* 1 when the request came through the admin listener */
} ps_request;

/* The response being built; opaque, owned by the host, valid until handle() returns. */
typedef struct ps_response ps_response;
/* This plugin's handle on the host; opaque, valid from the entry call until shutdown returns. */
typedef struct ps_host ps_host;

/* Keys for ps_host_api.info. */
typedef enum ps_info_key {
  PS_INFO_NODE_ID = 0,
  PS_INFO_NETWORK_ID = 1,
  PS_INFO_PUBLIC_URL = 2,
  PS_INFO_HOST_VERSION = 3,
  PS_INFO_PLUGIN_NAME = 4
} ps_info_key;

/* Receives bytes the host lends for the duration of the call; copy what you keep. */
typedef void (*ps_bytes_sink)(void* user, ps_str bytes);
/* Receives one key/value pair of a listing, lent for the duration of the call. */
typedef void (*ps_kv_sink)(void* user, ps_str key, ps_str value);

/*
 * The host's callbacks. Passed to the entry point; valid until shutdown returns. Every
 * callback takes the ps_host handed to the entry point. All may be called from any thread
 * the host calls the plugin on (entry, init, handle, shutdown), concurrently.
 */
typedef struct ps_host_api {
  size_t struct_size;
  uint32_t abi_major;
  uint32_t abi_minor;

  /* ---- ABI 1.0 ---- */

  /* Logging through the node's logger, module "plugin:<name>". log_enabled lets a plugin skip
   * building a message that would be dropped. */
  int (*log_enabled)(ps_host* host, ps_log_level level);
  void (*log)(ps_host* host, ps_log_level level, ps_str message);

  /* Copies the requested value into buf (cap bytes, not NUL-terminated) and returns its full
   * length; call again with a larger buf if the result exceeds cap. Unknown keys give 0. */
  size_t (*info)(ps_host* host, ps_info_key key, char* buf, size_t cap);

  /* The plugin's configuration: the JSON text of plugins/<name>.json, "{}" if absent
   * (the host refuses to load a plugin whose file is not valid JSON). */
  void (*config)(ps_host* host, ps_bytes_sink sink, void* user);

  /* A key/value store private to this plugin, kept in the node's database: it survives
   * restarts and new versions of the plugin, and is not replicated. Keys up to 1 KiB, values
   * up to 1 MiB (PS_ERR_TOO_LARGE beyond). Each call is atomic and durable on return. */
  ps_status (*kv_get)(ps_host* host, ps_str key, ps_bytes_sink sink, void* user);
  ps_status (*kv_put)(ps_host* host, ps_str key, ps_str value);
  ps_status (*kv_delete)(ps_host* host, ps_str key); /* PS_ERR_NOT_FOUND if absent */
  /* Calls sink for every key starting with prefix, in byte order of keys, at most limit. */
  ps_status (*kv_list)(ps_host* host, ps_str prefix, size_t limit, ps_kv_sink sink, void* user);

  /* Building the response inside handle(). Status defaults to 200 and the body to empty. A
   * header name must be a token and a value must not hold CR, LF or NUL (PS_ERR_INVALID);
   * Content-Length, Connection, Date and Server are the host's. */
  ps_status (*response_status)(ps_response* response, int status);
  ps_status (*response_header)(ps_response* response, ps_str name, ps_str value);
  ps_status (*response_write)(ps_response* response, ps_str bytes); /* appends */

  /* ---- ABI 1.1 ---- */

  /* Replicated collections: the ones the descriptor declares (ps_plugin.collections), held
   * by every node of the network that runs the plugin. Every write is an operation signed with
   * this node's key and sent to the others; each node merges them, last writer wins per key,
   * after checking the collection's rule (PS_REP_*) against the network's membership at the
   * time of the write. Keys: 1..256 bytes of UTF-8 without control characters; values: up to
   * 64 KiB of any bytes. A write is atomic and survives the node being killed once it returns;
   * it is synced to disk before it leaves the node (within 50 ms), so a power loss can lose
   * only writes no other node has seen. It reaches the other nodes within about a second while
   * they are reachable (later, by anti-entropy, when they are not).
   * Errors: PS_ERR_NOT_FOUND (get or delete of an absent key), PS_ERR_INVALID (an undeclared
   * collection, a bad key), PS_ERR_TOO_LARGE, PS_ERR_FORBIDDEN (the rule, or a write from a
   * public route to a collection without PS_REP_PUBLIC_WRITES), PS_ERR_BUSY (this node writes
   * faster than its peers accept), PS_ERR_UNSUPPORTED (this node is not a member yet, or
   * during the entry call). */
  ps_status (*rep_get)(ps_host* host, ps_str collection, ps_str key, ps_bytes_sink sink,
                       void* user);
  ps_status (*rep_put)(ps_host* host, ps_str collection, ps_str key, ps_str value);
  ps_status (*rep_delete)(ps_host* host, ps_str collection, ps_str key);
  /* Calls sink for every live key starting with prefix, in byte order of keys, at most limit
   * keys and 32 MiB of keys and values (at least one key). */
  ps_status (*rep_list)(ps_host* host, ps_str collection, ps_str prefix, size_t limit,
                        ps_kv_sink sink, void* user);
  /* A number that grows whenever the collection changes here (a local write or one merged
   * from another node): poll it to learn of changes. 0 for an undeclared collection. */
  uint64_t (*rep_changes)(ps_host* host, ps_str collection);
} ps_host_api;

/* Route flags. */
#define PS_ROUTE_PRIVATE 1 /* mount on the admin listener instead of the public one */

typedef struct ps_route {
  const char* method;  /* NUL-terminated: "GET", "POST", "PUT", "DELETE", "PATCH" */
  const char* pattern; /* NUL-terminated, below the mount: "/", "/posts", "/posts/:id" */
  uint32_t flags;      /* PS_ROUTE_* */
  uint32_t id;         /* passed back to handle() */
} ps_route;

/* Plugin flags. */
#define PS_PLUGIN_CONCURRENT 1 /* handle() may run on several threads at once */
/* handle() never blocks (no I/O waits, no locks held long, no sleeping): the host may call
 * it directly on a network thread, skipping the hop to a worker thread. Such a call has no
 * 504 deadline and stalls that thread's connections while it runs; a plugin whose call
 * overruns the host's budget loses this treatment (logged). Without it, handle() runs on a
 * worker thread and a call past the host's time limit is answered 504. */
#define PS_PLUGIN_NONBLOCKING 2

/* Who may write to a replicated collection (ABI 1.1), in ps_collection.rule. Checked by every
 * node when it merges a write, as of the time of the write. */
#define PS_REP_PUBLISHERS 1 /* nodes whose key is one of the network's publisher keys */
#define PS_REP_MEMBERS 2    /* any member */
#define PS_REP_OWN_KEYS 3   /* any member, only keys that start with its node id and "/" */
/* Or-ed into rule: handlers of public routes may write too. Without it only private routes'
 * handlers and init may (a public write is signed with this node's key on a visitor's
 * behalf); a write from any other thread (one the plugin started) counts as public. */
#define PS_REP_PUBLIC_WRITES 0x100

/* One element of ps_plugin.collections. The host steps through the array by the first
 * element's struct_size (sizeof(ps_collection) of the plugin's header), so the struct may
 * grow at the end like the others; every element carries the same struct_size. */
typedef struct ps_collection {
  size_t struct_size;
  const char* name; /* NUL-terminated, [a-z0-9][a-z0-9_-]{0,31}, unique in the plugin */
  uint32_t rule;    /* PS_REP_* */
} ps_collection;

/*
 * What a plugin is. Returned by the entry point; owned by the plugin and valid (unchanged)
 * until shutdown returns. Routes are mounted under /api/<name>/.
 */
typedef struct ps_plugin {
  size_t struct_size;
  uint32_t abi_major;  /* PEERSTACK_PLUGIN_ABI_MAJOR the plugin was built with */
  uint32_t abi_minor;  /* PEERSTACK_PLUGIN_ABI_MINOR the plugin was built with */
  const char* name;    /* [a-z0-9][a-z0-9_-]{0,31}, unique in a node */
  const char* version; /* semantic version, e.g. "1.2.0" */
  const ps_route* routes;
  size_t route_count;
  uint32_t flags; /* PS_PLUGIN_* */
  void* state;    /* the plugin's own pointer, passed back to the functions below */

  /* Called once on the host's loading thread after the descriptor was accepted, before any
   * handle(). An error refuses the plugin (logged with its name). May be NULL. */
  ps_status (*init)(void* state);
  /* Called per request for route `route_id`, on a host worker thread (or a network thread
   * with PS_PLUGIN_NONBLOCKING). Build the response with the host's response_* callbacks.
   * Must not block indefinitely: the host answers 504 after its time limit (the call's
   * eventual result is then discarded). */
  ps_status (*handle)(void* state, uint32_t route_id, const ps_request* request,
                      ps_response* response);
  /* Called once when the plugin is retired (node stop or replacement by a new version),
   * after its last handle() returned; also when the host refuses a descriptor it could read
   * (a failed init, a duplicate name, a bad route), so the plugin can free its state.
   * Not called for a descriptor of another ABI major or a too-small struct_size. May be NULL. */
  void (*shutdown)(void* state);

  /* ---- ABI 1.1 ---- */
  /* The replicated collections (at most 16); read once, before init. May be NULL. */
  const ps_collection* collections;
  size_t collection_count;
} ps_plugin;

/*
 * The entry point, called once per load on the host's loading thread. api and host stay
 * valid until shutdown returns. Returns the descriptor, or NULL to refuse loading (log why).
 */
typedef const ps_plugin* (*ps_plugin_entry_fn)(const ps_host_api* api, ps_host* host);

#ifdef __cplusplus
}
#endif

#endif /* PEERSTACK_PLUGIN_H_ */
