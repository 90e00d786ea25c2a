/* SPDX-License-Identifier: Apache-2.0
 *
 * Routing and the endpoints of the HTTP API (spice-compat §4 and §3.4); shapes and messages match Spice.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/http_int.h"
#include "spice/log.h"

enum { R_HEALTH = 1, R_READY, R_SQL, R_DATASETS, R_STATUS, R_SPICEPODS, R_REFRESH, R_ACCEL };

#define MAX_SEGMENTS 8

/* ---- Routing -------------------------------------------------------------------------------------------- */

typedef struct segs {
  char text[MAX_SEGMENTS][1024];
  int n;
} segs;

/* Splits the raw path at '/' and percent-decodes each segment (so %2F stays inside its segment).
 * Returns 0, or -1 when the path is not one we could route (too many/long segments: a 404), or -2 with
 * err set for bad percent-encoding (a 400). */
static int split_path(const char *uri, segs *out, sp_error *err) {
  const char *end = strchr(uri, '?');
  size_t len = end ? (size_t)(end - uri) : strlen(uri);
  if (len == 0 || uri[0] != '/') return -1;
  out->n = 0;
  const char *p = uri + 1, *stop = uri + len;
  for (;;) {
    const char *slash = memchr(p, '/', (size_t)(stop - p));
    const char *seg_end = slash ? slash : stop;
    size_t n = (size_t)(seg_end - p);
    if (out->n == MAX_SEGMENTS || n >= sizeof out->text[0]) return -1;
    if (sp_http_percent_decode(p, n, false, out->text[out->n], NULL, err) != SP_OK) return -2;
    out->n++;
    if (slash == NULL) return 0;
    p = slash + 1;
  }
}

static bool seg_is(const segs *s, int i, const char *want) { return strcmp(s->text[i], want) == 0; }

/* Route id for the path, or 0; the dataset name goes to r->name. */
static int match(const segs *s, sp_http_req *r) {
  if (s->n == 1 && seg_is(s, 0, "health")) return R_HEALTH;
  if (s->n < 2 || !seg_is(s, 0, "v1")) return 0;
  if (s->n == 2) {
    if (seg_is(s, 1, "ready")) return R_READY;
    if (seg_is(s, 1, "sql")) return R_SQL;
    if (seg_is(s, 1, "datasets")) return R_DATASETS;
    if (seg_is(s, 1, "status")) return R_STATUS;
    if (seg_is(s, 1, "spicepods")) return R_SPICEPODS;
    return 0;
  }
  if ((s->n == 4 || s->n == 5) && seg_is(s, 1, "datasets") && seg_is(s, 3, "acceleration") && s->text[2][0]) {
    snprintf(r->name, sizeof r->name, "%s", s->text[2]);
    if (s->n == 4) return R_ACCEL;
    if (seg_is(s, 4, "refresh")) return R_REFRESH;
  }
  return 0;
}

static const char *allowed_methods(int route) {
  switch (route) {
  case R_SQL: case R_REFRESH: return "POST";
  case R_ACCEL: return "PATCH";
  default: return "GET, HEAD";
  }
}

static bool method_allowed(int route, const char *method) {
  if (route == R_SQL || route == R_REFRESH) return strcmp(method, "POST") == 0;
  if (route == R_ACCEL) return strcmp(method, "PATCH") == 0;
  return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

const char *sp__http_route_path(int route) {
  switch (route) {
  case R_HEALTH: return "/health";
  case R_READY: return "/v1/ready";
  case R_SQL: return "/v1/sql";
  case R_DATASETS: return "/v1/datasets";
  case R_STATUS: return "/v1/status";
  case R_SPICEPODS: return "/v1/spicepods";
  case R_REFRESH: return "/v1/datasets/:name/acceleration/refresh";
  case R_ACCEL: return "/v1/datasets/:name/acceleration";
  default: return "unmatched";
  }
}

/* ---- API keys ------------------------------------------------------------------------------------------- */

/* The key a request presents: X-API-Key, else an `Authorization: Bearer` token. */
static const char *presented_key(struct MHD_Connection *c) {
  const char *k = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-API-Key");
  if (k) return k;
  const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  if (a == NULL || strncasecmp(a, "Bearer ", 7) != 0) return NULL;
  for (a += 7; *a == ' ';) a++;
  return a;
}

/* /health and /v1/ready stay open, as in Spice; everything else needs a key when runtime.auth is on. */
static bool authorized(sp_http_server *s, struct MHD_Connection *c, const sp_http_req *r) {
  const sp_http_config *cfg = sp__http_config(s);
  if (!cfg->auth_enabled || r->route == R_HEALTH || r->route == R_READY) return true;
  const char *k = presented_key(c);
  return k != NULL && sp_http_key_valid(cfg, k, strlen(k));
}

/* A CORS preflight (OPTIONS while runtime.cors is on) is answered before routing and authentication: browsers
 * send it without credentials. */
static enum MHD_Result preflight(sp_http_server *s, struct MHD_Connection *c) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  if (resp) sp__http_cors_headers(s, c, resp, true);
  return sp__http_queue(s, c, MHD_HTTP_OK, resp, NULL);
}

bool sp__http_route(sp_http_server *s, struct MHD_Connection *c, sp_http_req *r, enum MHD_Result *early) {
  segs *sg = malloc(sizeof *sg);
  if (sg == NULL) {
    *early = MHD_NO;
    return true;
  }
  sp_error err = {0};
  int rc = split_path(r->uri, sg, &err);
  r->route = rc == 0 ? match(sg, r) : 0;
  free(sg);
  const char *q = strchr(r->uri, '?');
  r->query = q ? q + 1 : NULL;
  if (sp__http_config(s)->cors_enabled && strcmp(r->method, "OPTIONS") == 0) {
    *early = preflight(s, c);
    return true;
  }
  if (!authorized(s, c, r)) {
    *early = sp__http_text(s, c, MHD_HTTP_UNAUTHORIZED, "Unauthorized");
    return true;
  }
  if (rc == -2) {
    *early = sp__http_text(s, c, MHD_HTTP_BAD_REQUEST, err.msg);
    return true;
  }
  if (r->route == 0) {
    *early = sp__http_respond(s, c, MHD_HTTP_NOT_FOUND, SP_HTTP_TEXT, "", 0);
    return true;
  }
  if (!method_allowed(r->route, r->method)) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (resp) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allowed_methods(r->route));
    *early = sp__http_queue(s, c, MHD_HTTP_METHOD_NOT_ALLOWED, resp, SP_HTTP_TEXT);
    return true;
  }
  return false;
}

/* ---- Query-string options ------------------------------------------------------------------------------- */

typedef enum list_format { LIST_JSON, LIST_CSV } list_format;

/* ?format=json|csv (default json). Returns false with a message in err for anything else. */
static bool parse_list_format(const sp_http_req *r, list_format *out, sp_error *err) {
  char v[32];
  int found = sp_http_query_param(r->query, "format", v, sizeof v, err);
  *out = LIST_JSON;
  if (found < 0) return false;
  if (found == 0 || strcasecmp(v, "json") == 0) return true;
  if (strcasecmp(v, "csv") == 0) {
    *out = LIST_CSV;
    return true;
  }
  sp_fail(err, SP_EINVAL, "unknown format \"%s\": expected json or csv", v);
  return false;
}

static bool parse_bool_param(const sp_http_req *r, const char *key, bool *out, sp_error *err) {
  char v[32];
  int found = sp_http_query_param(r->query, key, v, sizeof v, err);
  *out = false;
  if (found < 0) return false;
  if (found == 0 || strcmp(v, "false") == 0) return true;
  if (strcmp(v, "true") == 0) {
    *out = true;
    return true;
  }
  sp_fail(err, SP_EINVAL, "query parameter \"%s\" must be true or false", key);
  return false;
}

/* ---- Small writers -------------------------------------------------------------------------------------- */

static int json_field(sp_buf *b, bool first, const char *key, const char *value) {
  SP_TRY(sp_buf_append_str(b, first ? "\"" : ",\""));
  SP_TRY(sp_buf_append_str(b, key));
  SP_TRY(sp_buf_append_str(b, "\":"));
  return sp__json_string(b, value, strlen(value));
}

static int json_bool_field(sp_buf *b, const char *key, bool v) {
  SP_TRY(sp_buf_append_str(b, ",\""));
  SP_TRY(sp_buf_append_str(b, key));
  return sp_buf_append_str(b, v ? "\":true" : "\":false");
}

/* One CSV cell with RFC 4180 quoting, followed by `sep` (',' or '\n'). */
static int csv_cell(sp_buf *b, const char *v, char sep) {
  bool quote = v[0] == '\0' ? false : strpbrk(v, ",\"\r\n") != NULL;
  if (!quote) SP_TRY(sp_buf_append_str(b, v));
  else {
    SP_TRY(sp_buf_append(b, "\"", 1));
    for (const char *p = v; *p; p++) {
      if (*p == '"') SP_TRY(sp_buf_append(b, "\"", 1));
      SP_TRY(sp_buf_append(b, p, 1));
    }
    SP_TRY(sp_buf_append(b, "\"", 1));
  }
  return sp_buf_append(b, &sep, 1);
}

static enum MHD_Result send_buf(sp_http_server *s, struct MHD_Connection *c, int rc, sp_buf *b, const char *ctype) {
  enum MHD_Result ret = rc == SP_OK ? sp__http_respond(s, c, MHD_HTTP_OK, ctype, b->data, b->len)
                                    : sp__http_text(s, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
  sp_buf_free(b);
  return ret;
}

/* ---- /v1/sql -------------------------------------------------------------------------------------------- */

/* `Cache-Control: no-cache` (or no-store) among the request's directives. */
static bool no_cache_requested(struct MHD_Connection *c) {
  const char *cc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CACHE_CONTROL);
  return cc && (strcasestr(cc, "no-cache") || strcasestr(cc, "no-store"));
}

/* False while any dataset is loading or refreshing. The runtime makes a refresh's rows visible a moment before
 * it moves the data version, so in that window an entry of the old version may already be stale; lookups
 * then miss (the answer is computed and stored as usual). */
static bool data_settled(sp_runtime *rt) {
  sp_dataset_info *d = malloc(sizeof *d);
  if (d == NULL) return false;
  bool settled = true;
  size_t n = sp_runtime_dataset_count(rt);
  for (size_t i = 0; i < n && settled; i++)
    if (sp_runtime_dataset_info(rt, i, d) == SP_OK)
      settled = d->status != SP_STATUS_REFRESHING && d->status != SP_STATUS_INITIALIZING;
  free(d);
  return settled;
}

/* Decides the cache status of a query and answers a hit. Returns true when it queued the response (*ret);
 * otherwise *cache says MISS/BYPASS with the key, or NONE (cache off, or a statement that is not cached). */
static bool cache_lookup(sp_http_server *s, struct MHD_Connection *c, const sp_query_request *q, sp_format_kind kind,
                         sp_sql_cache *cache, enum MHD_Result *ret) {
  sp_rcache *rc = sp__http_cache(s);
  bool cacheable = false;
  if (rc == NULL || sp__http_stopping(s)) return false; /* while stopping, queries answer 503 */
  if (sp_cache_key(q->sql, q->params, q->n_params, (int)kind, &cache->key, &cacheable) != SP_OK || !cacheable) {
    sp_buf_free(&cache->key);
    return false;
  }
  /* The version is read before the query runs: a refresh that lands meanwhile makes the entry stale. */
  cache->version = sp__http_cache_version(s);
  if (no_cache_requested(c)) {
    cache->status = SP_CACHE_BYPASS;
    return false;
  }
  sp_buf hit = {0};
  /* Version, then settled, then the same version again: a hit is served only when no refresh was between
   * making its rows visible and moving the version at any point of this check. */
  bool settled = data_settled(sp__http_runtime(s)) && sp__http_cache_version(s) == cache->version;
  if (!settled || !sp_rcache_get(rc, cache->key.data, cache->key.len, cache->version, sp__http_now_ms(), &hit)) {
    cache->status = SP_CACHE_MISS;
    return false;
  }
  sp_buf_free(&cache->key);
  struct MHD_Response *resp = MHD_create_response_from_buffer(hit.len, hit.data ? hit.data : (void *)"",
                                                              hit.data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
  if (resp == NULL) sp_buf_free(&hit);
  else sp__http_cache_headers(s, resp, SP_CACHE_HIT);
  *ret = sp__http_queue(s, c, MHD_HTTP_OK, resp, sp_format_content_type(kind));
  return true;
}

static enum MHD_Result handle_sql(sp_http_server *s, struct MHD_Connection *c, sp_http_req *r) {
  const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
  const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
  sp_sql_body body;
  sp_error err = {0};
  if (sp_http_parse_sql_body(r->body.data, r->body.len, sp_http_is_json_content_type(ct), &body, &err) != SP_OK)
    return sp__http_text(s, c, MHD_HTTP_BAD_REQUEST, err.msg);
  sp_query_request q = {.sql = body.sql, .params = body.params, .n_params = body.n_params};
  sp_format_kind kind = sp_http_negotiate(accept);
  r->is_query = true;
  sp_sql_cache cache = {0};
  enum MHD_Result ret;
  if (cache_lookup(s, c, &q, kind, &cache, &ret)) {
    sp_sql_body_free(&body);
    return ret;
  }
  bool plain_query = cache.status != SP_CACHE_NONE;
  ret = sp__http_sql(s, c, &q, kind, &cache);
  /* The runtime's data version follows refreshes; a write made here ends the cached answers too. */
  if (sp__http_cache(s) && !plain_query && sp_sql_may_write(q.sql, strlen(q.sql))) sp__http_note_write(s);
  sp_sql_body_free(&body);
  return ret;
}

/* ---- /v1/datasets --------------------------------------------------------------------------------------- */

/* The connector id of a `from` (spice-compat §1.2: split at the first ':'; none → sink or spice.ai). */
static void connector_of(const char *from, char *out, size_t n) {
  const char *colon = strchr(from, ':');
  if (colon) snprintf(out, n, "%.*s", (int)(colon - from), from);
  else snprintf(out, n, "%s", from[0] == '\0' || strcmp(from, "sink") == 0 ? "sink" : "spice.ai");
}

static int dataset_row(sp_buf *b, const sp_dataset_info *d, list_format fmt, bool status, bool first) {
  const char *st = sp_status_kind_name(d->status);
  if (fmt == LIST_CSV) {
    SP_TRY(csv_cell(b, d->from, ','));
    SP_TRY(csv_cell(b, d->name, ','));
    SP_TRY(csv_cell(b, d->replication_enabled ? "true" : "false", ','));
    SP_TRY(csv_cell(b, d->acceleration_enabled ? "true" : "false", status ? ',' : '\n'));
    return status ? csv_cell(b, st ? st : "", '\n') : SP_OK;
  }
  SP_TRY(sp_buf_append_str(b, first ? "{" : ",{"));
  SP_TRY(json_field(b, true, "from", d->from));
  SP_TRY(json_field(b, false, "name", d->name));
  SP_TRY(json_bool_field(b, "replication_enabled", d->replication_enabled));
  SP_TRY(json_bool_field(b, "acceleration_enabled", d->acceleration_enabled));
  if (status) SP_TRY(json_field(b, false, "status", st ? st : ""));
  return sp_buf_append(b, "}", 1);
}

static enum MHD_Result handle_datasets(sp_http_server *s, struct MHD_Connection *c, sp_http_req *r) {
  list_format fmt;
  bool status;
  char source[256];
  sp_error err = {0};
  int has_source = 0;
  if (!parse_list_format(r, &fmt, &err) || !parse_bool_param(r, "status", &status, &err) ||
      (has_source = sp_http_query_param(r->query, "source", source, sizeof source, &err)) < 0)
    return sp__http_text(s, c, MHD_HTTP_BAD_REQUEST, err.msg);
  sp_runtime *rt = sp__http_runtime(s);
  sp_buf b = {0};
  int rc = fmt == LIST_CSV ? sp_buf_append_str(&b, status ? "from,name,replication_enabled,acceleration_enabled,status\n"
                                                          : "from,name,replication_enabled,acceleration_enabled\n")
                           : sp_buf_append(&b, "[", 1);
  sp_dataset_info *d = malloc(sizeof *d);
  if (d == NULL) rc = SP_ENOMEM;
  bool first = true;
  size_t n = sp_runtime_dataset_count(rt);
  for (size_t i = 0; i < n && rc == SP_OK; i++) {
    if (sp_runtime_dataset_info(rt, i, d) != SP_OK) continue;
    char conn[256];
    connector_of(d->from, conn, sizeof conn);
    if (has_source && strcmp(conn, source) != 0) continue;
    rc = dataset_row(&b, d, fmt, status, first);
    first = false;
  }
  free(d);
  if (rc == SP_OK && fmt == LIST_JSON) rc = sp_buf_append(&b, "]", 1);
  return send_buf(s, c, rc, &b, fmt == LIST_CSV ? SP_HTTP_CSV : SP_HTTP_JSON);
}

/* ---- /v1/status ----------------------------------------------------------------------------------------- */

static enum MHD_Result handle_status(sp_http_server *s, struct MHD_Connection *c, sp_http_req *r) {
  list_format fmt;
  sp_error err = {0};
  if (!parse_list_format(r, &fmt, &err)) return sp__http_text(s, c, MHD_HTTP_BAD_REQUEST, err.msg);
  sp_http_component comps[8];
  int n = sp__http_components(s, comps, 8);
  sp_buf b = {0};
  int rc = sp_buf_append_str(&b, fmt == LIST_CSV ? "name,endpoint,status\n" : "[");
  for (int i = 0; i < n && rc == SP_OK; i++) {
    if (fmt == LIST_CSV) {
      rc = csv_cell(&b, comps[i].name, ',');
      if (rc == SP_OK) rc = csv_cell(&b, comps[i].endpoint, ',');
      if (rc == SP_OK) rc = csv_cell(&b, comps[i].status, '\n');
      continue;
    }
    rc = sp_buf_append_str(&b, i ? ",{" : "{");
    if (rc == SP_OK) rc = json_field(&b, true, "name", comps[i].name);
    if (rc == SP_OK) rc = json_field(&b, false, "endpoint", comps[i].endpoint);
    if (rc == SP_OK) rc = json_field(&b, false, "status", comps[i].status);
    if (rc == SP_OK) rc = sp_buf_append(&b, "}", 1);
  }
  if (rc == SP_OK && fmt == LIST_JSON) rc = sp_buf_append(&b, "]", 1);
  return send_buf(s, c, rc, &b, fmt == LIST_CSV ? SP_HTTP_CSV : SP_HTTP_JSON);
}

/* ---- /v1/spicepods -------------------------------------------------------------------------------------- */

static size_t json_list_size(json_t *pod, const char *key) {
  json_t *v = pod ? json_object_get(pod, key) : NULL;
  return json_is_array(v) ? json_array_size(v) : 0;
}

static enum MHD_Result handle_spicepods(sp_http_server *s, struct MHD_Connection *c, sp_http_req *r) {
  list_format fmt;
  sp_error err = {0};
  if (!parse_list_format(r, &fmt, &err)) return sp__http_text(s, c, MHD_HTTP_BAD_REQUEST, err.msg);
  const sp_pod *pod = sp_runtime_pod(sp__http_runtime(s));
  const char *pj = pod && pod->json ? pod->json : "{}";
  sp_buf b = {0};
  int rc;
  if (fmt == LIST_JSON) {
    rc = sp_buf_append(&b, "[", 1);
    if (rc == SP_OK) rc = sp_buf_append_str(&b, pj);
    if (rc == SP_OK) rc = sp_buf_append(&b, "]", 1);
    return send_buf(s, c, rc, &b, SP_HTTP_JSON);
  }
  json_t *doc = json_loads(pj, 0, NULL);
  char counts[3][32];
  snprintf(counts[0], sizeof counts[0], "%zu", pod ? pod->n_datasets : 0);
  snprintf(counts[1], sizeof counts[1], "%zu", json_list_size(doc, "models"));
  snprintf(counts[2], sizeof counts[2], "%zu", json_list_size(doc, "dependencies"));
  json_decref(doc);
  rc = sp_buf_append_str(&b, "name,version,datasets_count,models_count,dependencies_count\n");
  if (rc == SP_OK) rc = csv_cell(&b, pod && pod->name ? pod->name : "", ',');
  if (rc == SP_OK) rc = csv_cell(&b, pod && pod->version ? pod->version : "", ',');
  for (int i = 0; i < 3 && rc == SP_OK; i++) rc = csv_cell(&b, counts[i], i == 2 ? '\n' : ',');
  return send_buf(s, c, rc, &b, SP_HTTP_CSV);
}

/* ---- Acceleration refresh ------------------------------------------------------------------------------- */

/* The optional JSON body of a refresh or PATCH: string members only. A malformed body means "no overrides",
 * as in Spice. Returned pointers borrow from *doc (json_decref it). */
static const char *body_string(json_t *doc, const char *key) {
  json_t *v = json_is_object(doc) ? json_object_get(doc, key) : NULL;
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static enum MHD_Result handle_refresh(sp_http_server *s, struct MHD_Connection *c, sp_http_req *r) {
  json_t *doc = r->body.len ? json_loadb(r->body.data, r->body.len, 0, NULL) : NULL;
  sp_refresh_overrides ov = {.refresh_sql = body_string(doc, "refresh_sql"),
                             .refresh_mode = body_string(doc, "refresh_mode")};
  char canonical[256] = "", msg[2048];
  sp_error err = {0};
  int rc = sp_runtime_refresh(sp__http_runtime(s), r->name, &ov, canonical, &err);
  json_decref(doc);
  unsigned code;
  if (rc == SP_OK) {
    code = MHD_HTTP_CREATED;
    snprintf(msg, sizeof msg, "Dataset refresh triggered for %s.", canonical[0] ? canonical : r->name);
  } else if (rc == SP_ENOTFOUND) {
    code = MHD_HTTP_NOT_FOUND;
    snprintf(msg, sizeof msg, "Dataset %s not found", r->name);
  } else if (rc == SP_EINVAL) {
    code = MHD_HTTP_BAD_REQUEST;
    snprintf(msg, sizeof msg, "%s", err.msg);
  } else {
    code = MHD_HTTP_INTERNAL_SERVER_ERROR;
    snprintf(msg, sizeof msg, "Failed to trigger refresh for %s: %s.", r->name, err.msg);
  }
  return sp__http_message(s, c, code, msg);
}

static enum MHD_Result handle_accel_patch(sp_http_server *s, struct MHD_Connection *c, sp_http_req *r) {
  json_error_t je;
  json_t *doc = r->body.len ? json_loadb(r->body.data, r->body.len, 0, &je) : NULL;
  if (r->body.len && !json_is_object(doc)) {
    json_decref(doc);
    return sp__http_message(s, c, MHD_HTTP_BAD_REQUEST, "Invalid request body: expected a JSON object");
  }
  const char *sql = body_string(doc, "refresh_sql");
  enum MHD_Result ret;
  if (sql == NULL) {
    ret = sp__http_respond(s, c, MHD_HTTP_OK, NULL, "", 0); /* nothing to change */
  } else {
    sp_error err = {0};
    int rc = sp_runtime_set_refresh_sql(sp__http_runtime(s), r->name, sql, &err);
    char msg[2048];
    if (rc == SP_OK) {
      ret = sp__http_respond(s, c, MHD_HTTP_OK, NULL, "", 0);
    } else if (rc == SP_ENOTFOUND) {
      snprintf(msg, sizeof msg, "Dataset %s not found", r->name);
      ret = sp__http_message(s, c, MHD_HTTP_NOT_FOUND, msg);
    } else {
      snprintf(msg, sizeof msg, "Request failed. %s", err.msg);
      ret = sp__http_message(s, c, MHD_HTTP_INTERNAL_SERVER_ERROR, msg);
    }
  }
  json_decref(doc);
  return ret;
}

/* ---- Dispatch ------------------------------------------------------------------------------------------- */

enum MHD_Result sp__http_dispatch(sp_http_server *s, struct MHD_Connection *c, sp_http_req *r) {
  switch (r->route) {
  case R_HEALTH: return sp__http_text(s, c, MHD_HTTP_OK, "ok\n");
  case R_READY:
    return sp_runtime_ready(sp__http_runtime(s)) ? sp__http_text(s, c, MHD_HTTP_OK, "Ready")
                                                 : sp__http_text(s, c, MHD_HTTP_SERVICE_UNAVAILABLE, "Not Ready");
  case R_SQL: return handle_sql(s, c, r);
  case R_DATASETS: return handle_datasets(s, c, r);
  case R_STATUS: return handle_status(s, c, r);
  case R_SPICEPODS: return handle_spicepods(s, c, r);
  case R_REFRESH: return handle_refresh(s, c, r);
  case R_ACCEL: return handle_accel_patch(s, c, r);
  default: return sp__http_respond(s, c, MHD_HTTP_NOT_FOUND, SP_HTTP_TEXT, "", 0);
  }
}
