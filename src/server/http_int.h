/* SPDX-License-Identifier: Apache-2.0
 *
 * Internal to src/server/http*.c: the request object, response helpers and the pieces http.c (life cycle,
 * streaming) and http_routes.c (routing, endpoints) share.
 */
#ifndef SPICE_SERVER_HTTP_INT_H
#define SPICE_SERVER_HTTP_INT_H

#include <microhttpd.h>
#include <stdbool.h>
#include <time.h>

#include "server/format.h"
#include "server/http_config.h"
#include "server/results_cache.h"
#include "server/format_value.h"
#include "server/http.h"
#include "server/http_params.h"

#define SP_HTTP_TEXT "text/plain; charset=utf-8"
#define SP_HTTP_JSON "application/json"
#define SP_HTTP_CSV "text/csv"

typedef struct sp_http_component {
  char name[32];
  char endpoint[300];
  char status[32];
} sp_http_component;

/* One request, from the URI-log callback to the completion callback. */
typedef struct sp_http_req {
  sp_http_server *s;
  char *uri;      /* raw request target, query string included */
  char method[16];
  bool started;   /* the access handler has seen the headers */
  bool too_large; /* the body passed SP_HTTP_BODY_LIMIT; it is being discarded */
  sp_buf body;
  int route;
  const char *query; /* into uri after '?', or NULL */
  char name[1024];   /* the decoded {name} path segment */
  struct timespec start;
  unsigned status;   /* the status code queued, for metrics */
  bool is_query;     /* a /v1/sql statement ran (or failed to) */
} sp_http_req;

/* Results-cache state of one /v1/sql request (see results_cache.h). */
typedef enum sp_cache_status { SP_CACHE_NONE = 0, SP_CACHE_MISS, SP_CACHE_BYPASS, SP_CACHE_HIT } sp_cache_status;
typedef struct sp_sql_cache {
  sp_cache_status status;
  sp_buf key;       /* the cache key (owned) when the result is to be stored */
  uint64_t version; /* sp__http_cache_version before the query ran */
} sp_sql_cache;

sp_runtime *sp__http_runtime(sp_http_server *s);
const sp_http_config *sp__http_config(sp_http_server *s);
sp_rcache *sp__http_cache(sp_http_server *s); /* NULL when the results cache is off */
int64_t sp__http_now_ms(void);               /* monotonic milliseconds */
/* The version cached results are stored under: the runtime's data version plus the number of statements run
 * through this server that may have written (both only grow, so the sum moves whenever either does). */
uint64_t sp__http_cache_version(sp_http_server *s);
/* Call after running a statement that may have written (sp_sql_may_write). */
void sp__http_note_write(sp_http_server *s);
/* Adds the results-cache headers for `st` (none for SP_CACHE_NONE) and counts the request for metrics. */
void sp__http_cache_headers(sp_http_server *s, struct MHD_Response *r, sp_cache_status st);
bool sp__http_stopping(sp_http_server *s);
/* Copies up to max component rows for /v1/status; returns how many. */
int sp__http_components(sp_http_server *s, sp_http_component *out, int max);

/* Queue a response (takes r; adds Content-Type and, while stopping, Connection: close). */
enum MHD_Result sp__http_queue(sp_http_server *s, struct MHD_Connection *c, unsigned code, struct MHD_Response *r,
                               const char *content_type);
enum MHD_Result sp__http_respond(sp_http_server *s, struct MHD_Connection *c, unsigned code, const char *content_type,
                                 const char *body, size_t n);
/* text/plain; charset=utf-8 */
enum MHD_Result sp__http_text(sp_http_server *s, struct MHD_Connection *c, unsigned code, const char *text);
/* application/json {"message": msg} */
enum MHD_Result sp__http_message(sp_http_server *s, struct MHD_Connection *c, unsigned code, const char *msg);
/* HTTP status for an sp_status (400 for the user's mistakes, 503 for busy/unreachable, else 500). */
unsigned sp__http_status_for(int code);

/* Runs a query and queues its streamed result in `kind`. `cache` (may be NULL) says how the response is
 * labelled and, for MISS and BYPASS, where a complete result small enough is stored; its key is taken. */
enum MHD_Result sp__http_sql(sp_http_server *s, struct MHD_Connection *c, const sp_query_request *req,
                             sp_format_kind kind, sp_sql_cache *cache);

/* Opens a listening socket on "host:port" (see sp_http_start); *out_v6 says whether it is IPv6. */
int sp__http_listen(const char *addr, int *out_fd, bool *out_v6, sp_error *err);
/* "127.0.0.1:8090" / "[::1]:8090" for a bound socket. */
void sp__http_describe_bound(int fd, char *out, size_t n);

/* The route's path template for metrics ("/v1/sql", "/v1/datasets/:name/acceleration/refresh"). */
const char *sp__http_route_path(int route);
/* Adds the CORS headers when runtime.cors is on and the request's Origin is allowed: Allow-Origin (which
 * sp__http_queue adds to every response), or with `preflight` the allowed methods and headers. */
void sp__http_cors_headers(sp_http_server *s, struct MHD_Connection *c, struct MHD_Response *r, bool preflight);
typedef struct sp_http_metrics sp_http_metrics;
sp_http_metrics *sp__http_metrics(sp_http_server *s);

/* Resolves r->uri and method to a route. Returns true when it already queued a response (404, 405, 400 for a
 * bad URL) with *early the result to return to MHD. */
bool sp__http_route(sp_http_server *s, struct MHD_Connection *c, sp_http_req *r, enum MHD_Result *early);
/* Answers a routed request once its body is complete (r->body is NUL-terminated). */
enum MHD_Result sp__http_dispatch(sp_http_server *s, struct MHD_Connection *c, sp_http_req *r);

#endif
