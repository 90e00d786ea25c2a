/* SPDX-License-Identifier: Apache-2.0
 *
 * The `http` and `https` connectors: one Parquet, CSV or JSON file at a URL (`from: https://host/x.parquet`),
 * format from `file_format` or the URL's extension, basic auth from `http_username` / `http_password`
 * (secrets: `${secrets:…}` or the secret stores), a deadline per request from `client_timeout`.
 *
 * Each read downloads the body with libcurl into a private temporary folder and hands it to the file
 * connector (one reader of every format, with projection, pushed conditions and refresh_sql at the read). The
 * last download is kept (refcounted) and revalidated with If-None-Match / If-Modified-Since by the next read,
 * so an unchanged file is not fetched again. A federated scan of a Parquet file fetches only the byte ranges it
 * needs (ranged_read.h), or the whole file from a server without Range support.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "connectors/http_util.h"
#include "connectors/ranged_read.h"
#include "spice/arrow.h"
#include "spice/connector.h"

typedef struct http_conn {
  sp_connector base; /* must be first */
  char shown[4096];  /* the URL without credentials or query, for messages */
  char file_name[256];
  sp_download_cache cache;  /* the last download, revalidated by the next read */
  sp_download_cache ranged; /* the ranges federated scans of a Parquet file fetched (ranged_read.h) */
  bool has_cache;
} http_conn;

static const sp_param_spec http_params[] = {
    {"username", SP_PARAM_STRING, SP_PARAM_PREFIXED | SP_PARAM_SECRET, NULL, NULL, "basic auth user"},
    {"password", SP_PARAM_STRING, SP_PARAM_PREFIXED | SP_PARAM_SECRET, NULL, NULL, "basic auth password"},
    {"port", SP_PARAM_INT, SP_PARAM_PREFIXED, NULL, NULL, "port when the URL names none (default 80 / 443)"},
    SP_FILE_FORMAT_PARAM_SPECS,
    {NULL, 0, 0, NULL, NULL, NULL},
};

static bool known_extension(const char *name) {
  static const char *const exts[] = {".parquet", ".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".csv.gz", ".json.gz",
                                     ".jsonl.gz", NULL};
  size_t n = strlen(name);
  for (int i = 0; exts[i]; i++) {
    size_t m = strlen(exts[i]);
    if (n >= m && strcasecmp(name + n - m, exts[i]) == 0) return true;
  }
  return false;
}

/* The download's file name: the last segment of the URL's path (its extension tells the file connector the
 * format and compression), reduced to characters that are safe in a file name. */
static void file_name_of(const char *shown, char *out, size_t n) {
  const char *auth = strstr(shown, "://");
  auth = auth ? auth + 3 : shown;
  const char *slash = strrchr(auth, '/');
  const char *base = slash ? slash + 1 : "";
  size_t o = 0;
  for (const char *p = base; *p && o + 1 < n; p++) {
    char ch = *p;
    bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
              (ch == '.' && o > 0);
    out[o++] = ok ? ch : '_';
  }
  out[o] = '\0';
  if (o == 0) snprintf(out, n, "data");
}

static int http_open(sp_connector *self, sp_error *err) {
  http_conn *c = (http_conn *)self;
  const char *url = self->dataset->path, *name = self->dataset->name;
  size_t scheme = strlen(self->module->name);
  if (strncasecmp(url, self->module->name, scheme) != 0 || strncmp(url + scheme, "://", 3) != 0 || url[scheme + 3] == '\0')
    return sp_fail(err, SP_EINVAL, "dataset \"%s\": from: must be a URL such as %s://host/data.parquet", name,
                   self->module->name);
  sp__url_shown(url, c->shown, sizeof c->shown);
  file_name_of(c->shown, c->file_name, sizeof c->file_name);
  if (sp_params_get(&self->params, "file_format") == NULL && !known_extension(c->file_name))
    return sp_fail(err, SP_EINVAL,
                   "dataset \"%s\": cannot tell the format of \"%s\" from its extension; set params.file_format "
                   "(parquet, csv, json)", name, c->shown);
  sp__download_cache_init(&c->cache);
  sp__download_cache_init(&c->ranged);
  c->has_cache = true;
  return SP_OK;
}

static void http_close(sp_connector *self) {
  http_conn *c = (http_conn *)self;
  if (c->has_cache) {
    sp__download_cache_destroy(&c->cache);
    sp__download_cache_destroy(&c->ranged);
  }
  c->has_cache = false;
}

/* What every GET of the URL shares. */
static sp_fetch fetch_template(http_conn *c) {
  const sp_params *p = &c->base.params;
  sp_fetch f = {
      .url = c->base.dataset->path,
      .shown = c->shown,
      .dataset = c->base.dataset->name,
      .username = sp_params_get(p, "http_username"),
      .password = sp_params_get(p, "http_password"),
      .timeout_ms = sp_params_get_duration_ms(p, "client_timeout", 30000),
      .port = (long)sp_params_get_int(p, "http_port", 0),
  };
  if (f.username == NULL && f.password != NULL) f.username = "";
  return f;
}

/* GETs the URL into d, revalidating `cur` (the last download, may be NULL). *fresh is false when the server
 * said cur is still current (HTTP 304): d then holds nothing. */
static int http_fetch(http_conn *c, sp_download *d, const sp_download *cur, bool *fresh, sp_error *err) {
  snprintf(d->path, sizeof d->path, "%s/%s", d->dir, c->file_name);
  sp_fetch f = fetch_template(c);
  f.if_none_match = cur && cur->by_etag ? cur->validator : NULL;
  f.if_modified_since = cur && !cur->by_etag ? cur->validator : NULL;
  sp_fetch_result res;
  int rc = sp__http_get(&f, d->path, NULL, &res, err);
  sp_buf_free(&res.body_error);
  *fresh = res.status != 304;
  d->by_etag = res.etag[0] != '\0';
  snprintf(d->validator, sizeof d->validator, "%s", d->by_etag ? res.etag : res.last_modified);
  return rc;
}

/* A Parquet file: file_format says so, or (without it) the URL's extension. */
static bool is_parquet(http_conn *c) {
  const char *fmt = sp_params_get(&c->base.params, "file_format");
  size_t n = strlen(c->file_name);
  return fmt ? strcasecmp(fmt, "parquet") == 0 : n > 8 && strcasecmp(c->file_name + n - 8, ".parquet") == 0;
}

/* One read: a federated scan of a Parquet file fetches the ranges it needs (a server that cannot serve ranges
 * gets a whole download); anything else fetches (or revalidates) the last download, then the file connector's
 * scan (or every row when scan is NULL). */
static int http_read(sp_connector *self, const sp_scan *scan, struct ArrowArrayStream *out, sp_error *err) {
  http_conn *c = (http_conn *)self;
  if (scan && scan->query == NULL && is_parquet(c)) {
    sp_fetch f = fetch_template(c);
    int rc = sp__ranged_read(self, &c->ranged, &f, c->file_name, scan, c->shown, out, err);
    if (rc != SP_ENOTSUP) return rc;
  }
  sp_download *cur = sp__download_cache_get(&c->cache), *d = NULL;
  bool fresh = true;
  int rc = sp__download_new("http", &d, err);
  if (rc == SP_OK) rc = http_fetch(c, d, cur, &fresh, err);
  if (rc == SP_OK && !fresh) {
    sp__download_unref(d);
    d = sp__download_ref(cur);
  } else if (rc == SP_OK && d->validator[0]) {
    sp__download_cache_put(&c->cache, d); /* a copy worth revalidating next time */
  }
  sp__download_unref(cur);
  if (rc != SP_OK) {
    sp__download_unref(d);
    return rc;
  }
  return sp__read_download(self, d, c->shown, scan, out, err);
}

static int http_get_schema(sp_connector *self, struct ArrowSchema *out, sp_error *err) {
  struct ArrowArrayStream s;
  sp_scan scan = {.limit = 0};
  SP_TRY(http_read(self, &scan, &s, err));
  int rc = s.get_schema(&s, out) == 0 ? SP_OK : sp_fail(err, SP_EIO, "%s", s.get_last_error(&s));
  sp_stream_release(&s);
  return rc;
}

static int http_get_all_data(sp_connector *self, struct ArrowArrayStream *out, sp_error *err) {
  return http_read(self, NULL, out, err);
}

static int http_scan(sp_connector *self, const sp_scan *scan, struct ArrowArrayStream *out, sp_error *err) {
  return http_read(self, scan, out, err);
}

#define HTTP_MODULE(scheme)                                                                                          \
  {                                                                                                                  \
    .abi = SP_CONNECTOR_ABI, .name = scheme, .prefix = "http", .params = http_params,                               \
    .instance_size = sizeof(http_conn), .caps = SP_CONNECTOR_CAP_SCAN_PROJECTION | SP_CONNECTOR_CAP_SCAN_LIMIT,     \
    .open = http_open, .close = http_close, .get_schema = http_get_schema, .get_all_data = http_get_all_data,        \
    .scan = http_scan,                                                                                               \
  }

const sp_connector_module sp_connector_http = HTTP_MODULE("http");
const sp_connector_module sp_connector_https = HTTP_MODULE("https");
