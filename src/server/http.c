/* SPDX-License-Identifier: Apache-2.0
 *
 * The HTTP API on libmicrohttpd: socket setup, request life cycle (routing, bodies, limits), the streamed
 * /v1/sql response, and shutdown. The other endpoints live in http_routes.c.
 *
 * A request object is created by the URI-log callback (so the raw URI, query string included, is ours to
 * decode), filled while the body arrives, and freed by the completion callback. MHD's own unescaping is
 * turned off: path segments and query values are percent-decoded here, after splitting.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/http_int.h"
#include "server/http_metrics.h"
#include "spice/log.h"

#define POOL_MAX 16
#define POOL_KEEP_BYTES ((size_t)8 << 20) /* larger buffers are freed, not pooled */
#define MAX_COMPONENTS 8
#define DRAIN_TIMEOUT_MS 30000   /* Spice's default runtime.shutdown_timeout */
#define INTERRUPT_GRACE_MS 2000  /* after interrupting queries, for their threads to answer */

struct sp_http_server {
  struct MHD_Daemon *daemon;
  sp_runtime *rt;
  int listen_fd;
  char endpoint[300];
  atomic_int inflight;
  atomic_bool stopping;
  pthread_mutex_t mu; /* components and the buffer pool */
  sp_http_component comps[MAX_COMPONENTS];
  int n_comps;
  sp_buf pool[POOL_MAX];
  int n_pool;
  sp_http_config cfg;
  sp_rcache *cache;        /* NULL when runtime.results_cache is off */
  sp_http_metrics *metrics;
  bool tls;
  atomic_uint_fast64_t write_epoch; /* statements run here that may have written (see sp__http_cache_version) */
};

/* The request whose access handler runs on this thread: responses are queued synchronously from it, so
 * sp__http_queue can note the status code for metrics without threading the request through every call. */
static _Thread_local sp_http_req *tl_req;

/* ---- Accessors for http_routes.c ---------------------------------------------------------------------- */

sp_runtime *sp__http_runtime(sp_http_server *s) { return s->rt; }
const sp_http_config *sp__http_config(sp_http_server *s) { return &s->cfg; }
sp_rcache *sp__http_cache(sp_http_server *s) { return s->cache; }
sp_http_metrics *sp__http_metrics(sp_http_server *s) { return s->metrics; }

uint64_t sp__http_cache_version(sp_http_server *s) {
  return sp_runtime_data_version(s->rt) + (uint64_t)atomic_load(&s->write_epoch);
}

void sp__http_note_write(sp_http_server *s) { atomic_fetch_add(&s->write_epoch, 1); }

int64_t sp__http_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
bool sp__http_stopping(sp_http_server *s) { return atomic_load(&s->stopping); }

int sp__http_components(sp_http_server *s, sp_http_component *out, int max) {
  pthread_mutex_lock(&s->mu);
  int n = s->n_comps < max ? s->n_comps : max;
  memcpy(out, s->comps, (size_t)n * sizeof *out);
  pthread_mutex_unlock(&s->mu);
  return n;
}

const char *sp_http_endpoint(const sp_http_server *s) { return s->endpoint; }

static void set_comp(sp_http_component *c, const char *name, const char *endpoint, const char *status) {
  snprintf(c->name, sizeof c->name, "%s", name);
  snprintf(c->endpoint, sizeof c->endpoint, "%s", endpoint);
  snprintf(c->status, sizeof c->status, "%s", status);
}

int sp_http_set_component(sp_http_server *s, const char *name, const char *endpoint, const char *status,
                          sp_error *err) {
  if (s == NULL || name == NULL || endpoint == NULL || status == NULL)
    return sp_fail(err, SP_EINVAL, "component name, endpoint and status are required");
  pthread_mutex_lock(&s->mu);
  int i = 0;
  while (i < s->n_comps && strcmp(s->comps[i].name, name) != 0) i++;
  int rc = SP_OK;
  if (i == MAX_COMPONENTS) rc = sp_fail(err, SP_EINVAL, "too many components for /v1/status");
  else set_comp(&s->comps[i], name, endpoint, status);
  if (rc == SP_OK && i == s->n_comps) s->n_comps++;
  pthread_mutex_unlock(&s->mu);
  return rc;
}

/* ---- Buffer pool -------------------------------------------------------------------------------------- */

/* Response buffers are reused: a fresh large buffer costs a page fault per 4 KiB on first touch, which is
 * slower than formatting the JSON (performance-anchors §7.3). */
static void pool_get(sp_http_server *s, sp_buf *b) {
  memset(b, 0, sizeof *b);
  pthread_mutex_lock(&s->mu);
  if (s->n_pool > 0) *b = s->pool[--s->n_pool];
  pthread_mutex_unlock(&s->mu);
  b->len = 0;
}

static void pool_put(sp_http_server *s, sp_buf *b) {
  if (b->cap > 0 && b->cap <= POOL_KEEP_BYTES) {
    pthread_mutex_lock(&s->mu);
    if (s->n_pool < POOL_MAX) {
      s->pool[s->n_pool++] = *b;
      memset(b, 0, sizeof *b);
    }
    pthread_mutex_unlock(&s->mu);
  }
  sp_buf_free(b);
}

/* ---- Responses ---------------------------------------------------------------------------------------- */

static bool origin_allowed(const sp_http_config *cfg, const char *origin, bool *any) {
  *any = false;
  for (size_t i = 0; i < cfg->n_cors_origins; i++) {
    if (strcmp(cfg->cors_origins[i], "*") == 0) *any = true;
    else if (strcmp(cfg->cors_origins[i], origin) == 0) return true;
  }
  return *any;
}

void sp__http_cors_headers(sp_http_server *s, struct MHD_Connection *c, struct MHD_Response *r, bool preflight) {
  if (!s->cfg.cors_enabled) return;
  const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
  bool any;
  if (origin == NULL || !origin_allowed(&s->cfg, origin, &any)) return;
  if (!preflight) {
    MHD_add_response_header(r, "Access-Control-Allow-Origin", any ? "*" : origin);
    if (!any) MHD_add_response_header(r, "Vary", "Origin");
    return;
  }
  MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, PATCH, OPTIONS");
  MHD_add_response_header(r, "Access-Control-Allow-Headers", "Accept, Content-Type, Authorization, X-API-Key");
  MHD_add_response_header(r, "Access-Control-Max-Age", "3600");
}

void sp__http_cache_headers(sp_http_server *s, struct MHD_Response *r, sp_cache_status st) {
  if (st == SP_CACHE_NONE) return;
  static const char *const names[] = {"", "MISS", "BYPASS", "HIT"};
  MHD_add_response_header(r, "Results-Cache-Status", names[st]);
  if (st != SP_CACHE_BYPASS) MHD_add_response_header(r, "X-Cache", st == SP_CACHE_HIT ? "Hit from spiceai" : "Miss from spiceai");
  if (st != SP_CACHE_BYPASS) sp_http_metrics_cache(s->metrics, st == SP_CACHE_HIT);
}

enum MHD_Result sp__http_queue(sp_http_server *s, struct MHD_Connection *c, unsigned code, struct MHD_Response *r,
                               const char *content_type) {
  if (r == NULL) return MHD_NO;
  if (content_type) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  sp__http_cors_headers(s, c, r, false);
  if (tl_req) tl_req->status = code;
  if (atomic_load(&s->stopping)) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
  enum MHD_Result ret = MHD_queue_response(c, code, r);
  MHD_destroy_response(r);
  return ret;
}

enum MHD_Result sp__http_respond(sp_http_server *s, struct MHD_Connection *c, unsigned code, const char *content_type,
                                 const char *body, size_t n) {
  struct MHD_Response *r = MHD_create_response_from_buffer(n, (void *)body, MHD_RESPMEM_MUST_COPY);
  return sp__http_queue(s, c, code, r, content_type);
}

enum MHD_Result sp__http_text(sp_http_server *s, struct MHD_Connection *c, unsigned code, const char *text) {
  return sp__http_respond(s, c, code, SP_HTTP_TEXT, text, strlen(text));
}

enum MHD_Result sp__http_message(sp_http_server *s, struct MHD_Connection *c, unsigned code, const char *msg) {
  sp_buf b = {0};
  int rc = sp_buf_append_str(&b, "{\"message\":");
  if (rc == SP_OK) rc = sp__json_string(&b, msg, strlen(msg));
  if (rc == SP_OK) rc = sp_buf_append(&b, "}", 1);
  enum MHD_Result ret = rc == SP_OK ? sp__http_respond(s, c, code, SP_HTTP_JSON, b.data, b.len) : MHD_NO;
  sp_buf_free(&b);
  return ret;
}

unsigned sp__http_status_for(int code) {
  switch (code) {
  case SP_EINVAL: case SP_EDENIED: case SP_ENOTFOUND: case SP_ENOTSUP: return MHD_HTTP_BAD_REQUEST;
  case SP_EUNAUTH: return MHD_HTTP_UNAUTHORIZED;
  case SP_EBUSY: case SP_ECONNECT: case SP_ECANCELED: return MHD_HTTP_SERVICE_UNAVAILABLE;
  case SP_ETIMEDOUT: return MHD_HTTP_GATEWAY_TIMEOUT; /* runtime.query.timeout, or a source's client_timeout */
  default: return MHD_HTTP_INTERNAL_SERVER_ERROR;
  }
}

/* ---- /v1/sql: streamed results ------------------------------------------------------------------------ */

#define PREFETCH_BYTES ((size_t)256 << 10) /* formatted before the headers go out */
#define BLOCK_BYTES ((size_t)256 << 10)    /* MHD's send buffer per response */

typedef struct sql_resp {
  sp_http_server *s;
  struct ArrowArrayStream stream;
  sp_formatter *fmt;
  struct ArrowArray batch;
  int64_t row;
  bool stream_done, ended;
  sp_buf out;
  size_t out_pos;
  int stream_errno; /* the get_next error, for the status code of an early failure */
  sp_sql_cache cache; /* key and version when the result is to be stored */
  sp_buf capture;     /* the body so far, while it stays under the cache's item limit */
  bool capturing;
} sql_resp;

static void sql_resp_free(void *cls) {
  sql_resp *q = cls;
  if (q == NULL) return;
  if (q->batch.release) q->batch.release(&q->batch);
  if (q->stream.release) q->stream.release(&q->stream);
  sp_formatter_destroy(q->fmt);
  pool_put(q->s, &q->out);
  sp_buf_free(&q->cache.key);
  sp_buf_free(&q->capture);
  free(q);
}

/* Copies the bytes just formatted (q->out from 0) into the capture; a body that outgrows the cache's item
 * limit stops being captured, and once the result is complete it is stored. */
static void capture(sql_resp *q) {
  if (!q->capturing) return;
  sp_rcache *c = q->s->cache;
  if (q->capture.len + q->out.len > sp_rcache_item_limit(c) || sp_buf_append(&q->capture, q->out.data, q->out.len) != SP_OK) {
    q->capturing = false;
    sp_buf_free(&q->capture);
    return;
  }
  if (!q->ended) return;
  q->capturing = false;
  if (sp_rcache_put(c, q->cache.key.data, q->cache.key.len, q->cache.version, sp__http_now_ms(), q->capture.data,
                    q->capture.len) != SP_OK)
    sp_log_debug("results cache: out of memory storing a result");
  sp_buf_free(&q->capture);
}

static int next_batch(sql_resp *q, sp_error *err) {
  if (q->batch.release) q->batch.release(&q->batch);
  memset(&q->batch, 0, sizeof q->batch);
  q->row = 0;
  int rc = q->stream.get_next(&q->stream, &q->batch);
  if (rc != 0) {
    const char *m = q->stream.get_last_error ? q->stream.get_last_error(&q->stream) : NULL;
    q->stream_errno = rc;
    q->batch.release = NULL;
    return sp_fail(err, sp_status_from_errno(rc, SP_EINVAL), "%s", m && *m ? m : "query failed while producing results");
  }
  if (q->batch.release == NULL) q->stream_done = true;
  return SP_OK;
}

/* Formats until at least `want` bytes are pending in q->out or the result is complete. */
static int pump(sql_resp *q, size_t want, sp_error *err) {
  while (q->out.len - q->out_pos < want && !q->ended) {
    if (q->batch.release != NULL && q->row < q->batch.length) {
      SP_TRY(sp_format_rows(q->fmt, &q->batch, &q->row, q->out_pos + want, &q->out, err));
    } else if (!q->stream_done) {
      SP_TRY(next_batch(q, err));
    } else {
      SP_TRY(sp_format_end(q->fmt, &q->out, err));
      q->ended = true;
    }
  }
  return SP_OK;
}

static ssize_t sql_reader(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  sql_resp *q = cls;
  if (q->out_pos == q->out.len) {
    q->out.len = q->out_pos = 0;
    sp_error err = {0};
    if (pump(q, max, &err) != SP_OK) {
      sp_log_error("query results cut short after the response started: %s", err.msg);
      return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    capture(q);
    if (q->out.len == 0) return MHD_CONTENT_READER_END_OF_STREAM;
  }
  size_t n = q->out.len - q->out_pos;
  if (n > max) n = max;
  memcpy(buf, q->out.data + q->out_pos, n);
  q->out_pos += n;
  return (ssize_t)n;
}

/* Runs the query and formats the first PREFETCH_BYTES, so that planning errors and errors in the first
 * batches are answered as a clean 400 before any header is sent. */
static int sql_prepare(sql_resp *q, const sp_query_request *req, sp_format_kind kind, sp_error *err) {
  SP_TRY(sp_runtime_query(q->s->rt, req, &q->stream, err));
  struct ArrowSchema schema = {0};
  int rc = q->stream.get_schema(&q->stream, &schema);
  if (rc != 0) {
    const char *m = q->stream.get_last_error ? q->stream.get_last_error(&q->stream) : NULL;
    return sp_fail(err, SP_EINTERNAL, "could not read the result schema: %s", m ? m : "unknown error");
  }
  rc = sp_formatter_create(kind, &schema, &q->fmt, err);
  if (schema.release) schema.release(&schema);
  if (rc == SP_ENOTSUP) rc = err->code = SP_EINTERNAL; /* the server's limitation, not the user's: 500 */
  if (rc != SP_OK) return rc;
  SP_TRY(sp_format_begin(q->fmt, &q->out, err));
  return pump(q, PREFETCH_BYTES, err);
}

enum MHD_Result sp__http_sql(sp_http_server *s, struct MHD_Connection *c, const sp_query_request *req,
                             sp_format_kind kind, sp_sql_cache *cache) {
  sp_cache_status st = cache ? cache->status : SP_CACHE_NONE;
  if (atomic_load(&s->stopping)) {
    if (cache) sp_buf_free(&cache->key);
    return sp__http_text(s, c, MHD_HTTP_SERVICE_UNAVAILABLE, "Runtime is shutting down");
  }
  sql_resp *q = calloc(1, sizeof *q);
  if (q == NULL) {
    if (cache) sp_buf_free(&cache->key);
    return sp__http_text(s, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
  }
  q->s = s;
  if (cache) {
    q->cache = *cache;
    memset(&cache->key, 0, sizeof cache->key);
    q->capturing = s->cache != NULL && q->cache.key.len > 0 && (st == SP_CACHE_MISS || st == SP_CACHE_BYPASS);
  }
  pool_get(s, &q->out);
  sp_error err = {0};
  int rc = sql_prepare(q, req, kind, &err);
  if (rc != SP_OK) {
    unsigned code = sp__http_status_for(rc);
    if (q->stream_errno == ENOMEM) code = MHD_HTTP_INTERNAL_SERVER_ERROR;
    sql_resp_free(q);
    sp_log_debug("query failed (%u): %s", code, err.msg);
    return sp__http_text(s, c, code, err.msg);
  }
  capture(q);
  uint64_t size = q->ended ? (uint64_t)q->out.len : MHD_SIZE_UNKNOWN;
  struct MHD_Response *r = MHD_create_response_from_callback(size, BLOCK_BYTES, sql_reader, q, sql_resp_free);
  if (r == NULL) {
    sql_resp_free(q);
    return MHD_NO;
  }
  sp__http_cache_headers(s, r, st);
  return sp__http_queue(s, c, MHD_HTTP_OK, r, sp_format_content_type(kind));
}

/* ---- Request life cycle ------------------------------------------------------------------------------- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c) {
  (void)c;
  sp_http_server *s = cls;
  sp_http_req *r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  r->s = s;
  r->uri = strdup(uri ? uri : "");
  r->body.limit = SP_HTTP_BODY_LIMIT;
  clock_gettime(CLOCK_MONOTONIC, &r->start);
  atomic_fetch_add(&s->inflight, 1);
  return r;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
  (void)c;
  sp_http_server *s = cls;
  sp_http_req *r = *con_cls;
  if (r == NULL) return;
  if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && r->method[0])
    sp_log_debug("%s %s ended early (MHD code %d)", r->method, r->uri, (int)toe);
  if (r->started && r->status) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double secs = (double)(now.tv_sec - r->start.tv_sec) + (double)(now.tv_nsec - r->start.tv_nsec) / 1e9;
    sp_http_metrics_request(s->metrics, r->method, sp__http_route_path(r->route), r->status, secs);
    if (r->is_query)
      sp_http_metrics_query(s->metrics, r->status == MHD_HTTP_OK && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK, secs);
  }
  free(r->uri);
  sp_buf_free(&r->body);
  free(r);
  *con_cls = NULL;
  atomic_fetch_sub(&s->inflight, 1);
}

/* Keeps the raw URI: we split first, then percent-decode each part. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s) {
  (void)cls;
  (void)c;
  return strlen(s);
}

static bool content_length_too_large(struct MHD_Connection *c) {
  const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  if (cl == NULL) return false;
  char *end;
  errno = 0;
  unsigned long long n = strtoull(cl, &end, 10);
  return errno == ERANGE || n > SP_HTTP_BODY_LIMIT;
}

static enum MHD_Result handle_request(sp_http_server *s, struct MHD_Connection *c, sp_http_req *r, const char *method,
                                      const char *upload, size_t *upload_size);

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
  (void)url;
  (void)version;
  sp_http_server *s = cls;
  sp_http_req *r = *con_cls;
  if (r == NULL || r->uri == NULL) return MHD_NO; /* out of memory in on_uri */
  tl_req = r;
  enum MHD_Result ret = handle_request(s, c, r, method, upload, upload_size);
  tl_req = NULL;
  return ret;
}

static enum MHD_Result handle_request(sp_http_server *s, struct MHD_Connection *c, sp_http_req *r, const char *method,
                                      const char *upload, size_t *upload_size) {
  if (!r->started) {
    r->started = true;
    snprintf(r->method, sizeof r->method, "%s", method);
    enum MHD_Result early;
    if (sp__http_route(s, c, r, &early)) return early;
    if (content_length_too_large(c))
      return sp__http_text(s, c, MHD_HTTP_CONTENT_TOO_LARGE, "request body is larger than 128 MiB");
    return MHD_YES;
  }
  if (*upload_size > 0) {
    if (!r->too_large && sp_buf_append(&r->body, upload, *upload_size) != SP_OK) {
      r->too_large = true;
      sp_buf_free(&r->body);
    }
    *upload_size = 0;
    return MHD_YES;
  }
  if (r->too_large) return sp__http_text(s, c, MHD_HTTP_CONTENT_TOO_LARGE, "request body is larger than 128 MiB");
  if (sp_buf_cstr(&r->body) == NULL) return sp__http_text(s, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
  return sp__http_dispatch(s, c, r);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  if (SP_LOG_WARN > sp_log_threshold) return;
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
  sp_log_warn("http: %s", msg);
}

/* ---- Start / stop ------------------------------------------------------------------------------------- */

/* Splits "host:port" / "[v6]:port" into host and port strings. */
static int split_addr(const char *addr, char *host, size_t hn, char *port, size_t pn, sp_error *err) {
  const char *colon = strrchr(addr, ':');
  if (colon == NULL || colon[1] == '\0')
    return sp_fail(err, SP_EINVAL, "HTTP address \"%s\" must be host:port", addr);
  const char *h = addr;
  size_t hl = (size_t)(colon - addr);
  if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
    h++;
    hl -= 2;
  }
  if (hl == 0 || hl >= hn || strlen(colon + 1) >= pn)
    return sp_fail(err, SP_EINVAL, "HTTP address \"%s\" must be host:port", addr);
  memcpy(host, h, hl);
  host[hl] = '\0';
  snprintf(port, pn, "%s", colon + 1);
  for (const char *p = port; *p; p++)
    if (*p < '0' || *p > '9') return sp_fail(err, SP_EINVAL, "HTTP address \"%s\" has a bad port", addr);
  return SP_OK;
}

void sp__http_describe_bound(int fd, char *out, size_t n) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  char ip[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET6) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
      inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
      port = ntohs(a->sin6_port);
      snprintf(out, n, "[%s]:%d", ip, port);
      return;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
    port = ntohs(a->sin_port);
  }
  snprintf(out, n, "%s:%d", ip, port);
}

int sp__http_listen(const char *addr, int *out_fd, bool *out_v6, sp_error *err) {
  char host[256], port[16];
  SP_TRY(split_addr(addr, host, sizeof host, port, sizeof port, err));
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
  struct addrinfo *res = NULL;
  int gai = getaddrinfo(host, port, &hints, &res);
  if (gai != 0) return sp_fail(err, SP_EINVAL, "could not resolve HTTP address \"%s\": %s", addr, gai_strerror(gai));
  int fd = -1, last = 0;
  for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last = errno;
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
      last = errno;
      close(fd);
      fd = -1;
      continue;
    }
    *out_v6 = ai->ai_family == AF_INET6;
  }
  freeaddrinfo(res);
  if (fd < 0) return sp_fail(err, SP_EIO, "could not listen on %s: %s", addr, strerror(last));
  *out_fd = fd;
  return SP_OK;
}

static unsigned pool_threads(void) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  return cores > 0 ? (unsigned)cores * 2 : 2;
}

static void server_free(sp_http_server *s) {
  sp_rcache_destroy(s->cache);
  sp_http_metrics_destroy(s->metrics);
  sp_http_config_free(&s->cfg);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

/* The spicepod's settings, with the command line's TLS files taking the place of runtime.tls. */
static int server_config(sp_http_server *s, const sp_http_options *opts, sp_error *err) {
  SP_TRY(sp_http_config_load(sp_runtime_pod(s->rt), &s->cfg, err));
  if (opts && (opts->tls_certificate_file || opts->tls_key_file)) {
    if (!opts->tls_certificate_file || !opts->tls_key_file)
      return sp_fail(err, SP_EINVAL, "--tls-certificate-file and --tls-key-file must be given together");
    free(s->cfg.tls_cert_pem);
    free(s->cfg.tls_key_pem);
    s->cfg.tls_cert_pem = s->cfg.tls_key_pem = NULL;
    SP_TRY(sp_http_read_file(opts->tls_certificate_file, &s->cfg.tls_cert_pem, err));
    SP_TRY(sp_http_read_file(opts->tls_key_file, &s->cfg.tls_key_pem, err));
    s->cfg.tls_enabled = true;
  }
  if (s->cfg.tls_enabled && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
    return sp_fail(err, SP_ENOTSUP, "TLS is configured but this libmicrohttpd was built without TLS support");
  s->tls = s->cfg.tls_enabled;
  if (s->cfg.cache_enabled) SP_TRY(sp_rcache_create(s->cfg.cache_max_bytes, s->cfg.cache_ttl_ms, &s->cache, err));
  if ((s->metrics = sp_http_metrics_create()) == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  return SP_OK;
}

static struct MHD_Daemon *start_daemon(sp_http_server *s, bool v6) {
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
  if (v6) flags |= MHD_USE_IPv6;
  if (s->tls) flags |= MHD_USE_TLS;
  struct MHD_OptionItem tls[] = {
      {s->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, s->cfg.tls_cert_pem},
      {MHD_OPTION_HTTPS_MEM_KEY, 0, s->cfg.tls_key_pem},
      {MHD_OPTION_END, 0, NULL},
  };
  return MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                          MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, /* first, or MHD logs to stderr */
                          MHD_OPTION_LISTEN_SOCKET, s->listen_fd,
                          MHD_OPTION_THREAD_POOL_SIZE, pool_threads(),
                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
                          MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
                          MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                          MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
                          MHD_OPTION_ARRAY, tls,
                          MHD_OPTION_END);
}

int sp_http_start(sp_runtime *rt, const char *addr, sp_http_server **out, sp_error *err) {
  return sp_http_start_opts(rt, addr, NULL, out, err);
}

int sp_http_start_opts(sp_runtime *rt, const char *addr, const sp_http_options *opts, sp_http_server **out,
                       sp_error *err) {
  if (rt == NULL || addr == NULL) return sp_fail(err, SP_EINVAL, "sp_http_start needs a runtime and an address");
  sp_http_server *s = calloc(1, sizeof *s);
  if (s == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  s->rt = rt;
  pthread_mutex_init(&s->mu, NULL);
  bool v6 = false;
  int rc = server_config(s, opts, err);
  if (rc == SP_OK) rc = sp__http_listen(addr, &s->listen_fd, &v6, err);
  if (rc != SP_OK) {
    server_free(s);
    return rc;
  }
  sp__http_describe_bound(s->listen_fd, s->endpoint, sizeof s->endpoint);
  set_comp(&s->comps[0], "http", s->endpoint, "Ready");
  set_comp(&s->comps[1], "flight", "N/A", "Disabled");
  set_comp(&s->comps[2], "metrics", "N/A", "Disabled");
  set_comp(&s->comps[3], "opentelemetry", "N/A", "Disabled");
  s->n_comps = 4;
  s->daemon = start_daemon(s, v6);
  if (s->daemon == NULL) {
    bool tls = s->tls;
    close(s->listen_fd);
    server_free(s);
    return sp_fail(err, SP_EIO, "%s", tls ? "the TLS certificate or key was refused (see the warning above)"
                                          : "libmicrohttpd could not start its daemon");
  }
  sp_log_debug("HTTP API listening on %s%s with %u threads", s->endpoint, s->tls ? " (TLS)" : "", pool_threads());
  if (s->cfg.auth_enabled) sp_log_info("HTTP API requires an API key (%zu configured)", s->cfg.n_api_keys);
  *out = s;
  return SP_OK;
}

bool sp_http_tls(const sp_http_server *s) { return s->tls; }

/* Waits up to ms for the requests in flight to finish; true when none is left. */
static bool drain(sp_http_server *s, int64_t ms) {
  for (int64_t waited = 0; atomic_load(&s->inflight) > 0 && waited < ms; waited += 10) {
    struct timespec ts = {0, 10 * 1000000};
    nanosleep(&ts, NULL);
  }
  return atomic_load(&s->inflight) == 0;
}

void sp_http_stop_within(sp_http_server *s, int64_t timeout_ms) {
  if (s == NULL) return;
  atomic_store(&s->stopping, true);
  int fd = MHD_quiesce_daemon(s->daemon);
  if (fd >= 0) close(fd);
  if (!drain(s, timeout_ms)) {
    /* Past runtime.shutdown_timeout: stop the queries still running so their threads can end. */
    int n = sp_engine_interrupt_all(sp_runtime_engine(s->rt));
    sp_log_warn("shutdown_timeout (%lld ms) reached with %d HTTP requests in flight; interrupted %d queries",
                (long long)timeout_ms, atomic_load(&s->inflight), n);
    if (!drain(s, INTERRUPT_GRACE_MS))
      sp_log_warn("HTTP server stopping with %d requests still running", atomic_load(&s->inflight));
  }
  MHD_stop_daemon(s->daemon);
  for (int i = 0; i < s->n_pool; i++) sp_buf_free(&s->pool[i]);
  server_free(s);
}

void sp_http_stop(sp_http_server *s) { sp_http_stop_within(s, DRAIN_TIMEOUT_MS); }
