/* SPDX-License-Identifier: Apache-2.0
 *
 * The `s3` connector: `from: s3://bucket/key` (one object) or `s3://bucket/prefix/` (every object under the
 * prefix, read as one table; hive-style key=value folders become columns with hive_partitioning_enabled).
 * Requests are signed with libcurl's built-in SigV4 (s3_auth: key, with s3_key / s3_secret) or sent
 * unsigned (s3_auth: public); s3_endpoint points at any S3-compatible server (path-style URLs).
 *
 * A prefix is listed with ListObjectsV2, page by page (s3_list.c parses the XML). The objects are downloaded
 * (8 at a time) into a private temporary folder, keeping their relative keys as paths, and read by the file
 * connector. The last download is kept: an unchanged listing (keys, ETags, sizes) reuses it, a changed one
 * links the unchanged objects and fetches the rest. A federated scan of one Parquet object fetches only the byte
 * ranges it needs instead (ranged_read.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "connectors/http_util.h"
#include "connectors/ranged_read.h"
#include "connectors/s3_list.h"
#include "spice/arrow.h"
#include "spice/connector.h"
#include "spice/log.h"

typedef struct s3_conn {
  sp_connector base; /* must be first */
  char bucket[256];
  char key[2048];     /* object key or prefix ("" = the whole bucket) */
  char base_url[1024];/* where the bucket's keys start: "<endpoint>/<bucket>/" or "https://<bucket>.s3.<region>…/" */
  char sigv4[128];    /* "aws:amz:<region>:s3", or "" for public access */
  bool is_prefix;
  int key_is_folder;  /* atomic: the key named no object but the folder below it (no ranged reads then) */
  sp_download_cache cache;  /* the last download, revalidated by the next read */
  sp_download_cache ranged; /* the ranges federated scans of a Parquet object fetched (ranged_read.h) */
  bool has_cache;
} s3_conn;

static const sp_param_spec s3_params[] = {
    {"region", SP_PARAM_STRING, SP_PARAM_PREFIXED, "us-east-1", NULL, "region of the bucket"},
    {"endpoint", SP_PARAM_STRING, SP_PARAM_PREFIXED, NULL, NULL, "S3-compatible endpoint URL (path-style requests)"},
    {"key", SP_PARAM_STRING, SP_PARAM_PREFIXED | SP_PARAM_SECRET, NULL, NULL, "access key id (s3_auth: key)"},
    {"secret", SP_PARAM_STRING, SP_PARAM_PREFIXED | SP_PARAM_SECRET, NULL, NULL, "secret access key (s3_auth: key)"},
    {"auth", SP_PARAM_ENUM, SP_PARAM_PREFIXED, NULL, "public|key|iam_role", "public, or key (default when s3_key is set)"},
    SP_FILE_FORMAT_PARAM_SPECS,
    {NULL, 0, 0, NULL, NULL, NULL},
};

/* ---- Open -------------------------------------------------------------------------------------------------- */

static int check_auth(s3_conn *c, sp_error *err) {
  const sp_params *p = &c->base.params;
  const char *auth = sp_params_get(p, "s3_auth"), *key = sp_params_get(p, "s3_key"), *name = c->base.dataset->name;
  if (auth == NULL) auth = key ? "key" : "public";
  if (strcasecmp(auth, "iam_role") == 0)
    return sp_fail(err, SP_ENOTSUP, "dataset \"%s\": s3_auth: iam_role is not supported; use key or public", name);
  if (strcasecmp(auth, "public") == 0) {
    if (key) return sp_fail(err, SP_EINVAL, "dataset \"%s\": s3_key is only allowed with s3_auth: key", name);
    return SP_OK;
  }
  if (key == NULL || sp_params_get(p, "s3_secret") == NULL)
    return sp_fail(err, SP_EINVAL, "dataset \"%s\": s3_auth: key needs s3_key and s3_secret", name);
  snprintf(c->sigv4, sizeof c->sigv4, "aws:amz:%s:s3", sp_params_get(p, "s3_region"));
  return SP_OK;
}

static int base_url(s3_conn *c, sp_error *err) {
  const char *endpoint = sp_params_get(&c->base.params, "s3_endpoint");
  const char *region = sp_params_get(&c->base.params, "s3_region");
  int n;
  if (endpoint && *endpoint) {
    size_t len = strlen(endpoint);
    while (len > 0 && endpoint[len - 1] == '/') len--;
    if (strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0)
      return sp_fail(err, SP_EINVAL, "dataset \"%s\": s3_endpoint must start with http:// or https://",
                     c->base.dataset->name);
    n = snprintf(c->base_url, sizeof c->base_url, "%.*s/%s/", (int)len, endpoint, c->bucket);
  } else if (strchr(c->bucket, '.')) { /* a dotted bucket breaks the TLS name of virtual-hosted URLs */
    n = snprintf(c->base_url, sizeof c->base_url, "https://s3.%s.amazonaws.com/%s/", region, c->bucket);
  } else {
    n = snprintf(c->base_url, sizeof c->base_url, "https://%s.s3.%s.amazonaws.com/", c->bucket, region);
  }
  if (n < 0 || (size_t)n >= sizeof c->base_url) return sp_fail(err, SP_EINVAL, "dataset \"%s\": s3_endpoint is too long", c->base.dataset->name);
  return SP_OK;
}

static int s3_open(sp_connector *self, sp_error *err) {
  s3_conn *c = (s3_conn *)self;
  const char *from = self->dataset->path, *name = self->dataset->name;
  if (strncmp(from, "s3://", 5) != 0 || from[5] == '\0' || from[5] == '/')
    return sp_fail(err, SP_EINVAL, "dataset \"%s\": from: must be s3://bucket/key or s3://bucket/prefix/", name);
  const char *bucket = from + 5, *slash = strchr(bucket, '/');
  size_t blen = slash ? (size_t)(slash - bucket) : strlen(bucket);
  if (blen >= sizeof c->bucket || (slash && strlen(slash + 1) >= sizeof c->key))
    return sp_fail(err, SP_EINVAL, "dataset \"%s\": the bucket or key of %s is too long", name, from);
  memcpy(c->bucket, bucket, blen);
  snprintf(c->key, sizeof c->key, "%s", slash ? slash + 1 : "");
  size_t klen = strlen(c->key);
  c->is_prefix = klen == 0 || c->key[klen - 1] == '/';
  SP_TRY(check_auth(c, err));
  SP_TRY(base_url(c, err));
  sp__download_cache_init(&c->cache);
  sp__download_cache_init(&c->ranged);
  c->has_cache = true;
  return SP_OK;
}

static void s3_close(sp_connector *self) {
  s3_conn *c = (s3_conn *)self;
  if (c->has_cache) {
    sp__download_cache_destroy(&c->cache);
    sp__download_cache_destroy(&c->ranged);
  }
  c->has_cache = false;
}

/* One read: its curl handle (shared by its requests), the download it fills, the last one to revalidate. */
typedef struct s3_read_ctx {
  s3_conn *c;
  void *h;
  sp_download *d;
  const sp_download *cur; /* may be NULL */
  bool fresh;             /* false: cur is still current, d stays empty */
} s3_read_ctx;

/* ---- Requests ---------------------------------------------------------------------------------------------- */

/* A GET of `url` (under base_url) into path or buf; S3's <Error> answers give the message its Code. */
/* The fields every request of this dataset shares. */
static sp_fetch fetch_template(s3_conn *c) {
  const sp_params *p = &c->base.params;
  return (sp_fetch){
      .dataset = c->base.dataset->name,
      .username = c->sigv4[0] ? sp_params_get(p, "s3_key") : NULL,
      .password = c->sigv4[0] ? sp_params_get(p, "s3_secret") : NULL,
      .aws_sigv4 = c->sigv4[0] ? c->sigv4 : NULL,
      .timeout_ms = sp_params_get_duration_ms(p, "client_timeout", 30000),
  };
}

/* Appends the Code and Message of S3's <Error> answer (in res) to the message of a failed GET. */
static void add_s3_error(const sp_fetch_result *res, sp_error *err) {
  if (err == NULL || res->status < 300 || res->body_error.len == 0) return;
  sp_s3_listing e = {0};
  if (sp__s3_list_parse(res->body_error.data, res->body_error.len, &e, NULL) == SP_OK && e.error_code) {
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s: %s%s%s", err->msg, e.error_code, e.error_message ? ": " : "",
             e.error_message ? e.error_message : "");
    snprintf(err->msg, sizeof err->msg, "%s", msg);
  }
  sp__s3_listing_free(&e);
}

/* A GET of `url` (under base_url) into path or buf; S3's <Error> answers give the message its Code. */
static int s3_get(s3_conn *c, void *handle, const char *url, const char *path, sp_buf *buf, sp_fetch_result *res,
                  const sp_download *cur, sp_error *err) {
  char shown[2048];
  sp__url_shown(url, shown, sizeof shown);
  sp_fetch f = fetch_template(c);
  f.url = url;
  f.shown = shown;
  f.reuse = handle;
  f.if_none_match = cur && cur->by_etag ? cur->validator : NULL;
  int rc = sp__http_get(&f, path, buf, res, err);
  if (rc != SP_OK) add_s3_error(res, err);
  sp_buf_free(&res->body_error);
  return rc;
}

/* One ListObjectsV2 page; the query's parameters in the order SigV4's canonical request needs. */
static int list_page(s3_conn *c, void *h, const char *prefix, const char *token, sp_s3_listing *l, sp_error *err) {
  sp_buf url = {0}, body = {0};
  int rc = sp_buf_append_str(&url, c->base_url);
  if (rc == SP_OK) url.len--; /* the bucket's URL without its final '/' */
  rc = rc ? rc : sp_buf_append_str(&url, "?");
  if (rc == SP_OK && token) {
    rc = sp_buf_append_str(&url, "continuation-token=");
    rc = rc ? rc : sp__url_encode(&url, token, false);
    rc = rc ? rc : sp_buf_append_str(&url, "&");
  }
  rc = rc ? rc : sp_buf_append_str(&url, "list-type=2&prefix=");
  rc = rc ? rc : sp__url_encode(&url, prefix, false);
  if (rc == SP_OK && sp_buf_cstr(&url) == NULL) rc = SP_ENOMEM;
  if (rc != SP_OK) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  sp_fetch_result res;
  if (rc == SP_OK) rc = s3_get(c, h, url.data, NULL, &body, &res, NULL, err);
  if (rc == SP_OK && sp__s3_list_parse(body.data ? body.data : "", body.len, l, err) != SP_OK) {
    sp_error_prefix(err, "listing \"s3://%s/%s\" for dataset \"%s\"", c->bucket, prefix, c->base.dataset->name);
    rc = SP_EIO;
  }
  sp_buf_free(&url);
  sp_buf_free(&body);
  return rc;
}

static int list_all(s3_conn *c, void *h, const char *prefix, sp_s3_listing *l, sp_error *err) {
  for (int page = 0;; page++) {
    char *token = l->next_token ? strdup(l->next_token) : NULL;
    if (page > 0 && token == NULL) break;
    int rc = list_page(c, h, prefix, token, l, err);
    free(token);
    SP_TRY(rc);
    if (!l->truncated) break;
    if (l->next_token == NULL)
      return sp_fail(err, SP_EIO, "listing \"s3://%s/%s\" for dataset \"%s\": a truncated page without a continuation token",
                     c->bucket, prefix, c->base.dataset->name);
  }
  return SP_OK;
}

/* ---- Downloads --------------------------------------------------------------------------------------------- */

/* The object's path below the download folder: its key after the prefix, each segment checked so that no key
 * can write outside the folder. False for keys to skip (folder markers, '.', '..', empty segments). */
static bool local_path(const char *rel, char *out, size_t n) {
  if (*rel == '\0' || *rel == '/' || rel[strlen(rel) - 1] == '/' || strlen(rel) >= n) return false;
  for (const char *seg = rel; seg; ) {
    const char *next = strchr(seg, '/');
    size_t len = next ? (size_t)(next - seg) : strlen(seg);
    if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.')) return false;
    seg = next ? next + 1 : NULL;
  }
  snprintf(out, n, "%s", rel);
  return true;
}

static int mkdirs_for(char *path) {
  for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
    *p = '\0';
    int rc = mkdir(path, 0700);
    *p = '/';
    if (rc != 0 && errno != EEXIST) return -1;
  }
  return 0;
}

static const char *format_of(const char *key) {
  static const struct { const char *ext, *fmt; } map[] = {
      {".parquet", "parquet"}, {".csv", "csv"}, {".tsv", "csv"}, {".csv.gz", "csv"}, {".json", "json"},
      {".jsonl", "json"}, {".ndjson", "json"}, {".json.gz", "json"}, {".jsonl.gz", "json"}};
  size_t n = strlen(key);
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
    size_t m = strlen(map[i].ext);
    if (n >= m && strcasecmp(key + n - m, map[i].ext) == 0) return map[i].fmt;
  }
  return NULL;
}

/* GETs object `key` into dest; with cur, only if it changed (res->status 304 otherwise). */
static int download(s3_conn *c, void *h, const char *key, const char *dest, sp_fetch_result *res, const sp_download *cur,
                    sp_error *err) {
  sp_buf url = {0};
  int rc = sp_buf_append_str(&url, c->base_url);
  rc = rc ? rc : sp__url_encode(&url, key, true);
  if (rc == SP_OK && sp_buf_cstr(&url) == NULL) rc = SP_ENOMEM;
  rc = rc ? sp_fail(err, SP_ENOMEM, "out of memory") : s3_get(c, h, url.data, dest, NULL, res, cur, err);
  sp_buf_free(&url);
  return rc;
}

/* The format of a listing: file_format, or the extension of its first object that has a known one. */
static const char *listing_format(s3_conn *c, const sp_s3_listing *l) {
  const char *fmt = sp_params_get(&c->base.params, "file_format");
  if (fmt) return strcasecmp(fmt, "jsonl") == 0 || strcasecmp(fmt, "ndjson") == 0 ? "json" : fmt;
  for (size_t i = 0; i < l->n; i++)
    if ((fmt = format_of(l->objects[i].key)) != NULL) return fmt;
  return NULL;
}

/* Keeps the objects the file connector would read in a folder of this format (or with file_extension). */
static bool wanted(s3_conn *c, const char *key, const char *fmt) {
  const char *ext = sp_params_get(&c->base.params, "file_extension");
  if (ext && *ext) {
    size_t n = strlen(key), m = strlen(ext);
    return n >= m && strcasecmp(key + n - m, ext) == 0;
  }
  const char *f = format_of(key);
  return f && strcmp(f, fmt) == 0;
}

/* The listing a prefix download was made from: the next download links the objects that did not change
 * instead of fetching them again. */
typedef struct s3_manifest {
  char *prefix;
  sp_s3_listing listing;
} s3_manifest;

static void manifest_free(void *m) {
  s3_manifest *mf = m;
  if (mf == NULL) return;
  free(mf->prefix);
  sp__s3_listing_free(&mf->listing);
  free(mf);
}

/* Links object o's copy from the previous download `prev` (same prefix, same key, ETag and size) to dest. */
static bool link_unchanged(const sp_download *prev, const char *prefix, const sp_s3_object *o, const char *rel,
                           const char *dest, size_t *hint) {
  const s3_manifest *m = prev ? prev->manifest : NULL;
  if (m == NULL || o->etag == NULL || strcmp(m->prefix, prefix) != 0) return false;
  const sp_s3_listing *l = &m->listing;
  for (size_t k = 0; k < l->n; k++) {
    size_t i = (*hint + k) % l->n; /* listings come sorted: the next match is usually the next entry */
    const sp_s3_object *p = &l->objects[i];
    if (strcmp(p->key, o->key) != 0) continue;
    *hint = i + 1;
    if (p->etag == NULL || strcmp(p->etag, o->etag) != 0 || p->size != o->size) return false;
    char src[4096 + 2048];
    snprintf(src, sizeof src, "%s/%s", prev->path, rel);
    return link(src, dest) == 0;
  }
  return false;
}

/* The GETs of one download, run together by sp__http_get_many; the strings are owned here. */
typedef struct batch {
  sp_fetch *jobs;
  char **paths, **urls, **shown;
  size_t n, cap;
} batch;

static void batch_free(batch *b) {
  for (size_t i = 0; i < b->n; i++) {
    free(b->paths[i]);
    free(b->urls[i]);
    free(b->shown[i]);
  }
  free(b->jobs);
  free(b->paths);
  free(b->urls);
  free(b->shown);
}

static int batch_add(s3_conn *c, batch *b, const char *key, const char *dest) {
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 64;
    sp_fetch *j = realloc(b->jobs, cap * sizeof *j);
    if (j) b->jobs = j;
    char **p = realloc(b->paths, cap * sizeof *p);
    if (p) b->paths = p;
    char **u = realloc(b->urls, cap * sizeof *u);
    if (u) b->urls = u;
    char **sh = realloc(b->shown, cap * sizeof *sh);
    if (sh) b->shown = sh;
    if (!j || !p || !u || !sh) return SP_ENOMEM;
    b->cap = cap;
  }
  sp_buf url = {0};
  int rc = sp_buf_append_str(&url, c->base_url);
  if (rc == SP_OK) rc = sp__url_encode(&url, key, true);
  char *path = strdup(dest), *shown = rc == SP_OK && sp_buf_cstr(&url) ? malloc(url.len + 1) : NULL;
  if (path == NULL || shown == NULL) {
    free(path);
    free(shown);
    sp_buf_free(&url);
    return SP_ENOMEM;
  }
  sp__url_shown(url.data, shown, url.len + 1);
  b->jobs[b->n] = fetch_template(c);
  b->jobs[b->n].url = url.data;
  b->jobs[b->n].shown = shown;
  b->paths[b->n] = path;
  b->urls[b->n] = url.data;
  b->shown[b->n++] = shown;
  return SP_OK;
}

enum { PARALLEL_GETS = 8 }; /* objects fetched at once: latency hides behind each other, few sockets */

/* Downloads every wanted object of the listing under root, PARALLEL_GETS at a time (linking those unchanged
 * since `prev`, which may be NULL). *count receives how many objects the folder holds. */
static int download_listing(s3_conn *c, const sp_s3_listing *l, const char *prefix, const char *fmt, const char *root,
                            const sp_download *prev, size_t *count, sp_error *err) {
  size_t plen = strlen(prefix), hint = 0;
  batch b = {0};
  int rc = SP_OK;
  *count = 0;
  for (size_t i = 0; rc == SP_OK && i < l->n; i++) {
    const char *key = l->objects[i].key;
    char rel[2048], dest[4096 + 2048];
    if (strncmp(key, prefix, plen) != 0 || !wanted(c, key, fmt)) continue;
    if (!local_path(key + plen, rel, sizeof rel)) {
      sp_log_warn("dataset \"%s\": skipping S3 object \"%s\": its key cannot be a file name", c->base.dataset->name, key);
      continue;
    }
    snprintf(dest, sizeof dest, "%s/%s", root, rel);
    if (mkdirs_for(dest) != 0)
      rc = sp_fail(err, SP_EIO, "could not make a folder for \"%s\" for dataset \"%s\": %s", dest,
                   c->base.dataset->name, strerror(errno));
    else if (!link_unchanged(prev, prefix, &l->objects[i], rel, dest, &hint) && batch_add(c, &b, key, dest) != SP_OK)
      rc = sp_fail(err, SP_ENOMEM, "out of memory");
    (*count)++;
  }
  sp_fetch_result failed;
  if (rc == SP_OK) {
    rc = sp__http_get_many(b.jobs, (const char *const *)b.paths, b.n, PARALLEL_GETS, &failed, err);
    if (rc != SP_OK) add_s3_error(&failed, err);
    sp_buf_free(&failed.body_error);
  }
  batch_free(&b);
  return rc;
}

/* What says a listing's objects are unchanged: a hash of their keys, ETags and sizes. */
static void listing_validator(s3_conn *c, const sp_s3_listing *l, const char *fmt, char *out, size_t n) {
  uint64_t h = 1469598103934665603ull, count = 0;
  for (size_t i = 0; i < l->n; i++) {
    const sp_s3_object *o = &l->objects[i];
    if (!wanted(c, o->key, fmt)) continue;
    char size[24];
    snprintf(size, sizeof size, "%lld", (long long)o->size);
    const char *parts[] = {o->key, o->etag ? o->etag : "", size};
    for (size_t k = 0; k < 3; k++)
      for (const unsigned char *p = (const unsigned char *)parts[k];; p++) {
        h = (h ^ *p) * 1099511628211ull;
        if (*p == '\0') break;
      }
    count++;
  }
  snprintf(out, n, "listing:%s:%llu:%016llx", fmt, (unsigned long long)count, (unsigned long long)h);
}

/* A prefix: list, then download into x->d (unless the listing is the one x->cur was made from). */
static int fetch_prefix(s3_read_ctx *x, const char *prefix, sp_error *err) {
  s3_conn *c = x->c;
  sp_download *d = x->d;
  sp_s3_listing l = {0};
  size_t count = 0;
  const char *fmt = NULL;
  int rc = list_all(c, x->h, prefix, &l, err);
  if (rc == SP_OK && (fmt = listing_format(c, &l)) == NULL)
    rc = sp_fail(err, l.n ? SP_EINVAL : SP_ENOTFOUND,
                 l.n ? "dataset \"%s\": cannot tell the format of the objects under \"s3://%s/%s\"; set params.file_format"
                     : "dataset \"%s\": no objects under \"s3://%s/%s\"",
                 c->base.dataset->name, c->bucket, prefix);
  if (rc == SP_OK) {
    listing_validator(c, &l, fmt, d->validator, sizeof d->validator);
    snprintf(d->format, sizeof d->format, "%s", fmt);
    snprintf(d->path, sizeof d->path, "%s/data", d->dir);
    x->fresh = !(x->cur && strcmp(x->cur->validator, d->validator) == 0);
  }
  if (rc == SP_OK && x->fresh && mkdir(d->path, 0700) != 0)
    rc = sp_fail(err, SP_EIO, "could not make \"%s\": %s", d->path, strerror(errno));
  if (rc == SP_OK && x->fresh) rc = download_listing(c, &l, prefix, fmt, d->path, x->cur, &count, err);
  if (rc == SP_OK && x->fresh && count == 0)
    rc = sp_fail(err, SP_ENOTFOUND, "dataset \"%s\": no %s objects under \"s3://%s/%s\"", c->base.dataset->name, fmt,
                 c->bucket, prefix);
  s3_manifest *m = rc == SP_OK && x->fresh ? calloc(1, sizeof *m) : NULL;
  if (m && (m->prefix = strdup(prefix)) != NULL) { /* keep the listing for the next download */
    m->listing = l;
    memset(&l, 0, sizeof l);
    d->manifest = m;
    d->manifest_free = manifest_free;
  } else {
    free(m);
  }
  sp__s3_listing_free(&l);
  return rc;
}

/* Downloads what the dataset names into x->d. A key without a final '/' that is no object is tried as a
 * folder (s3://bucket/folder). */
static int fetch(s3_read_ctx *x, sp_error *err) {
  s3_conn *c = x->c;
  sp_download *d = x->d;
  if (c->is_prefix) return fetch_prefix(x, c->key, err);
  const char *base = strrchr(c->key, '/');
  base = base ? base + 1 : c->key;
  char name[300];
  if (!local_path(base, name, sizeof name)) snprintf(name, sizeof name, "object");
  snprintf(d->path, sizeof d->path, "%s/%s", d->dir, name);
  sp_error first = {0};
  sp_fetch_result res;
  const sp_download *cur = x->cur && x->cur->by_etag ? x->cur : NULL;
  int rc = download(c, x->h, c->key, d->path, &res, cur, &first);
  if (rc == SP_OK) {
    x->fresh = res.status != 304;
    d->by_etag = res.etag[0] != '\0';
    snprintf(d->validator, sizeof d->validator, "%s", res.etag);
  }
  if (rc != SP_ENOTFOUND) {
    if (rc != SP_OK && err) *err = first;
    return rc;
  }
  char prefix[2100];
  snprintf(prefix, sizeof prefix, "%s/", c->key);
  remove(d->path);
  rc = fetch_prefix(x, prefix, err);
  if (rc == SP_OK) __atomic_store_n(&c->key_is_folder, 1, __ATOMIC_RELAXED);
  if (rc == SP_ENOTFOUND && err) *err = first; /* neither an object nor a folder: say the object is missing */
  return rc;
}

/* A federated scan of one Parquet object: only the byte ranges it needs (ranged_read.h). SP_ENOTSUP when it
 * is not for this read; the caller then downloads the object, which also gives failures their S3 message
 * (<Error> codes) and tries a key that names no object as a folder. */
static int s3_read_ranged(s3_conn *c, const sp_scan *scan, struct ArrowArrayStream *out, sp_error *err) {
  const char *fmt = sp_params_get(&c->base.params, "file_format"), *f = c->key[0] ? format_of(c->key) : NULL;
  if (scan == NULL || scan->query || c->is_prefix || __atomic_load_n(&c->key_is_folder, __ATOMIC_RELAXED) ||
      strcmp(fmt ? fmt : f ? f : "", "parquet") != 0)
    return SP_ENOTSUP;
  sp_buf url = {0};
  char shown[2400], read_shown[2400], name[300];
  int rc = sp_buf_append_str(&url, c->base_url);
  if (rc == SP_OK) rc = sp__url_encode(&url, c->key, true);
  if (rc != SP_OK || sp_buf_cstr(&url) == NULL) {
    sp_buf_free(&url);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  const char *base = strrchr(c->key, '/');
  if (!local_path(base ? base + 1 : c->key, name, sizeof name)) snprintf(name, sizeof name, "object.parquet");
  sp__url_shown(url.data, shown, sizeof shown);
  sp_fetch t = fetch_template(c);
  t.url = url.data;
  t.shown = shown;
  snprintf(read_shown, sizeof read_shown, "s3://%s/%s", c->bucket, c->key);
  rc = sp__ranged_read(&c->base, &c->ranged, &t, name, scan, read_shown, out, err);
  sp_buf_free(&url);
  /* Only an unreachable server is final here: anything else is tried again by the whole download. */
  return rc == SP_OK || rc == SP_ECONNECT || rc == SP_ETIMEDOUT ? rc : SP_ENOTSUP;
}

static int s3_read(sp_connector *self, const sp_scan *scan, struct ArrowArrayStream *out, sp_error *err) {
  s3_conn *c = (s3_conn *)self;
  int ranged = s3_read_ranged(c, scan, out, err);
  if (ranged != SP_ENOTSUP) return ranged;
  sp_download *cur = sp__download_cache_get(&c->cache);
  s3_read_ctx x = {.c = c, .cur = cur, .fresh = true};
  int rc = sp__download_new("s3", &x.d, err);
  /* One handle per read: the objects of a prefix share connections. */
  if (rc == SP_OK && (x.h = sp__http_handle()) == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK) rc = fetch(&x, err);
  sp__http_handle_free(x.h);
  if (rc == SP_OK && !x.fresh) {
    sp__download_unref(x.d);
    x.d = sp__download_ref(cur);
  } else if (rc == SP_OK && x.d->validator[0]) {
    sp__download_cache_put(&c->cache, x.d);
  }
  sp__download_unref(cur);
  if (rc != SP_OK) {
    sp__download_unref(x.d);
    return rc;
  }
  char shown[2400]; /* for a prefix, the read's files are below it: "s3://b/p" + "/x.csv" */
  size_t klen = strlen(c->key);
  snprintf(shown, sizeof shown, "s3://%s/%.*s", c->bucket, (int)(klen && c->key[klen - 1] == '/' ? klen - 1 : klen), c->key);
  return sp__read_download(self, x.d, shown, scan, out, err);
}

static int s3_get_schema(sp_connector *self, struct ArrowSchema *out, sp_error *err) {
  struct ArrowArrayStream s;
  sp_scan scan = {.limit = 0};
  SP_TRY(s3_read(self, &scan, &s, err));
  int rc = s.get_schema(&s, out) == 0 ? SP_OK : sp_fail(err, SP_EIO, "%s", s.get_last_error(&s));
  sp_stream_release(&s);
  return rc;
}

static int s3_get_all_data(sp_connector *self, struct ArrowArrayStream *out, sp_error *err) {
  return s3_read(self, NULL, out, err);
}

static int s3_scan(sp_connector *self, const sp_scan *scan, struct ArrowArrayStream *out, sp_error *err) {
  return s3_read(self, scan, out, err);
}

const sp_connector_module sp_connector_s3 = {
    .abi = SP_CONNECTOR_ABI,
    .name = "s3",
    .prefix = "s3",
    .params = s3_params,
    .instance_size = sizeof(s3_conn),
    .caps = SP_CONNECTOR_CAP_SCAN_PROJECTION | SP_CONNECTOR_CAP_SCAN_LIMIT,
    .open = s3_open,
    .close = s3_close,
    .get_schema = s3_get_schema,
    .get_all_data = s3_get_all_data,
    .scan = s3_scan,
};
