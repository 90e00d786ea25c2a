/* SPDX-License-Identifier: Apache-2.0
 *
 * Network fetches for the http and s3 connectors (libcurl), and the hand-over of what they download to the
 * file connector. See http_util.h.
 */
#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "connectors/http_util.h"
#include "spice/arrow.h"
#include "spice/sqltext.h"

extern const sp_connector_module sp_connector_file;

enum { ERROR_BODY_MAX = 4096 };

/* ---- GET ------------------------------------------------------------------------------------------------ */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* Where a body goes: a file (created or truncated), a buffer, or an open file at the object's offsets. */
typedef struct dest {
  const char *path;
  sp_buf *buf;
  int fd; /* >= 0: pwrite where the bytes lie in the object */
} dest;

typedef struct sink {
  CURL *h;
  sp_fetch_result *res;
  FILE *file;
  sp_buf *buf;
  int fd;
  sp_buf *error_body;
  int write_failed; /* errno of a failed write to the file, or ENOMEM */
  const char *unplaceable; /* fd: why the body cannot be written at its offsets, or NULL */
} sink;

/* fd: writes a body chunk where it lies in the object. A 206 must say where with Content-Range; a 200 holds
 * the whole object from offset 0. A compressed body has no usable offsets. */
static size_t write_at(sink *s, long status, const char *p, size_t len) {
  sp_fetch_result *r = s->res;
  if (r->encoded) s->unplaceable = "it came compressed (Content-Encoding)";
  else if (status == 206 && r->range_start < 0) s->unplaceable = "a partial answer without a Content-Range";
  else if (status != 206 && status != 200) s->unplaceable = "an unexpected status";
  if (s->unplaceable) return 0;
  int64_t at = (status == 206 ? r->range_start : 0) + r->received;
  for (size_t done = 0; done < len;) {
    ssize_t w = pwrite(s->fd, p + done, len - done, (off_t)(at + (int64_t)done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      s->write_failed = w < 0 ? errno : EIO;
      return 0;
    }
    done += (size_t)w;
  }
  r->received += (int64_t)len;
  return len;
}

/* Bodies of 2xx answers go to the file or buffer; the start of any other answer is kept for the message. */
static size_t on_data(char *p, size_t size, size_t n, void *ctx) {
  sink *s = ctx;
  size_t len = size * n;
  long status = 0;
  curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
  if (status == 304) return len; /* not modified: nothing to keep */
  if (status < 200 || status >= 300) {
    size_t room = ERROR_BODY_MAX - s->error_body->len;
    if (room > 0 && sp_buf_append(s->error_body, p, len < room ? len : room) != SP_OK) return 0;
    return len;
  }
  if (s->fd >= 0) return write_at(s, status, p, len);
  s->res->received += (int64_t)len;
  if (s->file) {
    if (fwrite(p, 1, len, s->file) != len) {
      s->write_failed = errno ? errno : EIO;
      return 0;
    }
    return len;
  }
  if (sp_buf_append(s->buf, p, len) != SP_OK) {
    s->write_failed = ENOMEM;
    return 0;
  }
  return len;
}

/* A decimal number of at most 18 digits at *p (advanced), or -1. */
static int64_t header_number(const char **p, const char *end) {
  int64_t v = 0;
  int digits = 0;
  for (; *p < end && **p >= '0' && **p <= '9' && digits < 18; (*p)++, digits++) v = v * 10 + (**p - '0');
  return digits == 0 || (*p < end && **p >= '0' && **p <= '9') ? -1 : v;
}

/* Content-Range: "bytes <first>-<last>/<size>" (a size of "*" is unknown: the range is then unusable). */
static void parse_content_range(const char *v, const char *end, sp_fetch_result *r) {
  if (end - v < 6 || strncasecmp(v, "bytes ", 6) != 0) return;
  v += 6;
  int64_t first = header_number(&v, end), last = -1, size = -1;
  if (first >= 0 && v < end && *v == '-' && (++v, last = header_number(&v, end)) >= first && v < end && *v == '/' &&
      (++v, size = header_number(&v, end)) > last && v == end) {
    r->range_start = first;
    r->range_end = last + 1;
    r->object_size = size;
  }
}

/* Keeps the validators and the placement of the last answer (after redirects, the final one's). */
static size_t on_header(char *p, size_t size, size_t n, void *ctx) {
  sink *s = ctx;
  sp_fetch_result *r = s->res;
  size_t len = size * n;
  static const struct { const char *name; size_t off, cap; } keep[] = {
      {"etag:", offsetof(sp_fetch_result, etag), sizeof ((sp_fetch_result *)0)->etag},
      {"last-modified:", offsetof(sp_fetch_result, last_modified), sizeof ((sp_fetch_result *)0)->last_modified},
  };
  if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
    r->etag[0] = r->last_modified[0] = '\0';
    r->range_start = r->range_end = r->object_size = -1;
    r->encoded = false;
  }
  const char *colon = memchr(p, ':', len), *end = p + len;
  if (colon == NULL) return len;
  const char *v = colon + 1;
  while (v < end && (*v == ' ' || *v == '\t')) v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) end--;
  size_t name_len = (size_t)(colon + 1 - p), vlen = (size_t)(end - v);
  for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
    if (name_len != strlen(keep[i].name) || strncasecmp(p, keep[i].name, name_len) != 0) continue;
    char *dst = (char *)r + keep[i].off;
    if (vlen < keep[i].cap) {
      memcpy(dst, v, vlen);
      dst[vlen] = '\0';
    }
  }
  if (name_len == 14 && strncasecmp(p, "content-range:", 14) == 0) parse_content_range(v, end, r);
  if (name_len == 15 && strncasecmp(p, "content-length:", 15) == 0 && r->range_start < 0)
    r->object_size = header_number(&v, end);
  if (name_len == 17 && strncasecmp(p, "content-encoding:", 17) == 0)
    r->encoded = !(vlen == 8 && strncasecmp(v, "identity", 8) == 0);
  return len;
}

/* True when the URL names a port itself ("host:port" in its authority). */
static bool url_has_port(const char *url) {
  const char *a = strstr(url, "://");
  a = a ? a + 3 : url;
  size_t end = strcspn(a, "/?#");
  const char *at = memchr(a, '@', end);
  if (at) {
    end -= (size_t)(at + 1 - a);
    a = at + 1;
  }
  const char *close = a[0] == '[' ? memchr(a, ']', end) : NULL; /* [v6]:port */
  const char *from = close ? close : a;
  return memchr(from, ':', end - (size_t)(from - a)) != NULL;
}

void *sp__http_handle(void) {
  pthread_once(&curl_once, curl_init_once);
  return curl_easy_init();
}

void sp__http_handle_free(void *handle) {
  if (handle) curl_easy_cleanup(handle);
}

static CURL *setup(const sp_fetch *f, sink *s, char *errbuf, struct curl_slist **headers) {
  CURL *h = f->reuse ? f->reuse : curl_easy_init();
  if (h == NULL) return NULL;
  if (f->reuse) curl_easy_reset(h); /* options from the last GET go; its open connections stay */
  curl_easy_setopt(h, CURLOPT_URL, f->url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
  /* Only http(s), on redirects too: a spicepod URL must not become file:// or anything else. */
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_USERAGENT, "spicec");
  if (f->range_len == 0) curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, s);
  if (f->timeout_ms > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)f->timeout_ms);
  if (f->port > 0 && !url_has_port(f->url)) curl_easy_setopt(h, CURLOPT_PORT, f->port);
  if (f->username) {
    curl_easy_setopt(h, CURLOPT_USERNAME, f->username);
    curl_easy_setopt(h, CURLOPT_PASSWORD, f->password ? f->password : "");
  }
  if (f->aws_sigv4) {
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, f->aws_sigv4);
    /* S3 wants the payload hash as a header; a GET's payload is empty. */
    *headers = curl_slist_append(*headers, "x-amz-content-sha256: "
                                           "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  } else if (f->username) {
    curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
  }
  /* The Range header goes with the others so that SigV4 signs it (CURLOPT_RANGE would add it unsigned). */
  char range[80];
  if (f->range_len > 0)
    snprintf(range, sizeof range, "Range: bytes=%lld-%lld", (long long)f->range_first,
             (long long)(f->range_first + f->range_len - 1));
  else if (f->range_len < 0)
    snprintf(range, sizeof range, "Range: bytes=-%lld", (long long)-f->range_len);
  if (f->range_len != 0) *headers = curl_slist_append(*headers, range);
  char cond[400];
  if (f->if_match && *f->if_match && snprintf(cond, sizeof cond, "If-Match: %s", f->if_match) < (int)sizeof cond)
    *headers = curl_slist_append(*headers, cond);
  if (f->if_none_match && *f->if_none_match && snprintf(cond, sizeof cond, "If-None-Match: %s", f->if_none_match) < (int)sizeof cond)
    *headers = curl_slist_append(*headers, cond);
  else if (f->if_modified_since && *f->if_modified_since &&
           snprintf(cond, sizeof cond, "If-Modified-Since: %s", f->if_modified_since) < (int)sizeof cond)
    *headers = curl_slist_append(*headers, cond);
  if (*headers) curl_easy_setopt(h, CURLOPT_HTTPHEADER, *headers);
  return h;
}

static bool is_tls_error(CURLcode c) {
  return c == CURLE_SSL_CONNECT_ERROR || c == CURLE_PEER_FAILED_VERIFICATION || c == CURLE_SSL_CERTPROBLEM ||
         c == CURLE_SSL_CIPHER || c == CURLE_SSL_CACERT_BADFILE || c == CURLE_SSL_ISSUER_ERROR ||
         c == CURLE_SSL_PINNEDPUBKEYNOTMATCH || c == CURLE_SSL_INVALIDCERTSTATUS || c == CURLE_SSL_ENGINE_NOTFOUND ||
         c == CURLE_SSL_CRL_BADFILE || c == CURLE_SSL_SHUTDOWN_FAILED;
}

static bool is_connect_error(CURLcode c) {
  return c == CURLE_COULDNT_RESOLVE_HOST || c == CURLE_COULDNT_CONNECT || c == CURLE_COULDNT_RESOLVE_PROXY ||
         c == CURLE_GOT_NOTHING || c == CURLE_RECV_ERROR || c == CURLE_SEND_ERROR || c == CURLE_PARTIAL_FILE;
}

/* A transport failure: the message names the URL and the dataset, with curl's own words. */
static int transport_error(const sp_fetch *f, CURLcode c, const char *errbuf, const sink *s, sp_error *err) {
  const char *why = errbuf[0] ? errbuf : curl_easy_strerror(c);
  if (c == CURLE_OPERATION_TIMEDOUT)
    return sp_fail(err, SP_ETIMEDOUT, "timed out after %.1f s fetching \"%s\" for dataset \"%s\" (client_timeout)",
                   (double)f->timeout_ms / 1000.0, f->shown, f->dataset);
  if (is_tls_error(c))
    return sp_fail(err, SP_ECONNECT, "TLS failure fetching \"%s\" for dataset \"%s\": %s", f->shown, f->dataset, why);
  if (is_connect_error(c))
    return sp_fail(err, SP_ECONNECT, "could not connect to \"%s\" for dataset \"%s\": %s", f->shown, f->dataset, why);
  if (c == CURLE_WRITE_ERROR && s->write_failed)
    return sp_fail(err, SP_EIO, "could not store the download of \"%s\" for dataset \"%s\": %s", f->shown,
                   f->dataset, strerror(s->write_failed));
  return sp_fail(err, SP_EIO, "could not fetch \"%s\" for dataset \"%s\": %s", f->shown, f->dataset, why);
}

static int status_error(const sp_fetch *f, long status, sp_error *err) {
  if (status == 401 || status == 403)
    return sp_fail(err, SP_EUNAUTH, "access to \"%s\" for dataset \"%s\" was denied (HTTP %ld)", f->shown, f->dataset,
                   status);
  if (status == 404 || status == 410)
    return sp_fail(err, SP_ENOTFOUND, "\"%s\" for dataset \"%s\" was not found (HTTP %ld)", f->shown, f->dataset, status);
  return sp_fail(err, SP_EIO, "fetching \"%s\" for dataset \"%s\" failed with HTTP %ld", f->shown, f->dataset, status);
}

/* One transfer in progress: its handle, where the body goes, what came back. */
typedef struct transfer {
  const sp_fetch *f;
  CURL *h;
  sink s;
  sp_fetch_result *res;
  struct curl_slist *headers;
  char errbuf[CURL_ERROR_SIZE];
} transfer;

/* Opens the destination and prepares the handle (f->reuse, or a new one). */
static int transfer_begin(transfer *t, const sp_fetch *f, const dest *d, sp_fetch_result *res, sp_error *err) {
  memset(t, 0, sizeof *t);
  memset(res, 0, sizeof *res);
  res->range_start = res->range_end = res->object_size = -1;
  t->f = f;
  t->res = res;
  t->s = (sink){.buf = d->buf, .fd = d->fd, .error_body = &res->body_error, .res = res};
  pthread_once(&curl_once, curl_init_once);
  if (d->path && (t->s.file = fopen(d->path, "wb")) == NULL)
    return sp_fail(err, SP_EIO, "could not create \"%s\" for dataset \"%s\": %s", d->path, f->dataset, strerror(errno));
  t->h = t->s.h = setup(f, &t->s, t->errbuf, &t->headers);
  if (t->h != NULL) return SP_OK;
  if (t->s.file) fclose(t->s.file);
  t->s.file = NULL;
  curl_slist_free_all(t->headers);
  t->headers = NULL;
  return sp_fail(err, SP_ENOMEM, "out of memory");
}

/* A body written at its offsets must be complete, and the part asked for: a 206 of exactly the range (of
 * whatever part it names, for a suffix range), or the whole object in a 200. */
static int check_placed(const transfer *t, sp_error *err) {
  const sp_fetch *f = t->f;
  const sp_fetch_result *r = t->res;
  bool ok = r->status == 200 ? r->object_size < 0 || r->received == r->object_size
                             : r->range_start >= 0 && r->received == r->range_end - r->range_start &&
                                   (f->range_len < 0 || (r->range_start == f->range_first && r->received == f->range_len));
  if (ok) return SP_OK;
  return sp_fail(err, SP_ENOTSUP, "fetching \"%s\" for dataset \"%s\": the server did not answer the range asked for",
                 f->shown, f->dataset);
}

/* Judges a finished transfer (code from curl) and frees what transfer_begin made, but f->reuse. */
static int transfer_end(transfer *t, CURLcode c, sp_error *err) {
  const sp_fetch *f = t->f;
  sp_fetch_result *res = t->res;
  int rc = SP_OK;
  curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &res->status);
  if (c == CURLE_WRITE_ERROR && t->s.unplaceable)
    rc = sp_fail(err, SP_ENOTSUP, "fetching \"%s\" for dataset \"%s\": the answer cannot be used as a part of the object: %s",
                 f->shown, f->dataset, t->s.unplaceable);
  else if (c != CURLE_OK) rc = transport_error(f, c, t->errbuf, &t->s, err);
  else if ((res->status < 200 || res->status >= 300) && !(res->status == 304 && (f->if_none_match || f->if_modified_since)))
    rc = status_error(f, res->status, err);
  else if (t->s.fd >= 0 && res->status != 304)
    rc = check_placed(t, err);
  if (t->s.file && fclose(t->s.file) != 0 && rc == SP_OK)
    rc = sp_fail(err, SP_EIO, "could not store the download of \"%s\" for dataset \"%s\": %s", f->shown, f->dataset,
                 strerror(errno));
  t->s.file = NULL;
  curl_slist_free_all(t->headers);
  t->headers = NULL;
  if (t->h != f->reuse) curl_easy_cleanup(t->h);
  t->h = NULL;
  return rc;
}

int sp__http_get(const sp_fetch *f, const char *path, sp_buf *buf, sp_fetch_result *res, sp_error *err) {
  transfer t;
  dest d = {.path = path, .buf = buf, .fd = -1};
  SP_TRY(transfer_begin(&t, f, &d, res, err));
  return transfer_end(&t, curl_easy_perform(t.h), err);
}

/* ---- Several GETs at once ----------------------------------------------------------------------------------- */

typedef struct multi {
  CURLM *m;
  transfer *slots;
  sp_fetch *fetches;       /* one per slot: the job's fetch, with the slot's handle to reuse */
  sp_fetch_result *results; /* one per slot, when the caller keeps none per job */
  void **handles;          /* one reusable handle per slot (keeps its connections) */
  size_t n_slots;
} multi;

static void multi_free(multi *mu) {
  for (size_t i = 0; i < mu->n_slots; i++) {
    if (mu->slots && mu->slots[i].h) {
      curl_multi_remove_handle(mu->m, mu->slots[i].h);
      sp_error ignored;
      transfer_end(&mu->slots[i], CURLE_ABORTED_BY_CALLBACK, &ignored);
    }
    if (mu->results) sp_buf_free(&mu->results[i].body_error);
    if (mu->handles) sp__http_handle_free(mu->handles[i]);
  }
  if (mu->m) curl_multi_cleanup(mu->m);
  free(mu->slots);
  free(mu->fetches);
  free(mu->results);
  free(mu->handles);
}

static int multi_init(multi *mu, size_t n_slots, sp_error *err) {
  memset(mu, 0, sizeof *mu);
  mu->n_slots = n_slots;
  mu->m = curl_multi_init();
  mu->slots = calloc(n_slots, sizeof *mu->slots);
  mu->fetches = calloc(n_slots, sizeof *mu->fetches);
  mu->results = calloc(n_slots, sizeof *mu->results);
  mu->handles = calloc(n_slots, sizeof *mu->handles);
  bool ok = mu->m && mu->slots && mu->fetches && mu->results && mu->handles;
  for (size_t i = 0; ok && i < n_slots; i++) ok = (mu->handles[i] = sp__http_handle()) != NULL;
  if (ok) return SP_OK;
  multi_free(mu);
  return sp_fail(err, SP_ENOMEM, "out of memory");
}

/* Starts a job in free slot i, its answer going to res (the slot's own when NULL). */
static int multi_start(multi *mu, size_t i, const sp_fetch *job, const dest *d, sp_fetch_result *res, sp_error *err) {
  mu->fetches[i] = *job;
  mu->fetches[i].reuse = mu->handles[i];
  sp_buf_free(&mu->results[i].body_error);
  SP_TRY(transfer_begin(&mu->slots[i], &mu->fetches[i], d, res ? res : &mu->results[i], err));
  if (curl_multi_add_handle(mu->m, mu->slots[i].h) == CURLM_OK) return SP_OK;
  transfer_end(&mu->slots[i], CURLE_OK, NULL);
  return sp_fail(err, SP_ENOMEM, "out of memory");
}

/* Ends the transfers curl reports done; the first failure stops everything (its result in *failed). */
static int multi_reap(multi *mu, size_t *active, sp_fetch_result *failed, sp_error *err) {
  CURLMsg *msg;
  int queued;
  while ((msg = curl_multi_info_read(mu->m, &queued)) != NULL) {
    if (msg->msg != CURLMSG_DONE) continue;
    for (size_t i = 0; i < mu->n_slots; i++) {
      if (mu->slots[i].h != msg->easy_handle) continue;
      CURLcode c = msg->data.result;
      sp_fetch_result *res = mu->slots[i].res;
      curl_multi_remove_handle(mu->m, mu->slots[i].h);
      (*active)--;
      int rc = transfer_end(&mu->slots[i], c, err);
      if (rc != SP_OK) {
        if (failed && res == &mu->results[i]) {
          *failed = mu->results[i];
          memset(&mu->results[i].body_error, 0, sizeof mu->results[i].body_error);
        }
        return rc;
      }
      break;
    }
  }
  return SP_OK;
}

/* The GETs of sp__http_get_many (paths) or sp__http_get_into (fd, results). */
static int get_many(const sp_fetch *jobs, const char *const *paths, int fd, size_t n, size_t parallel,
                    sp_fetch_result *results, sp_fetch_result *failed, sp_error *err) {
  multi mu;
  if (failed) memset(failed, 0, sizeof *failed);
  if (n == 0) return SP_OK;
  SP_TRY(multi_init(&mu, parallel < 1 ? 1 : parallel > n ? n : parallel, err));
  size_t next = 0, active = 0;
  int rc = SP_OK;
  while (rc == SP_OK && (next < n || active > 0)) {
    for (size_t i = 0; rc == SP_OK && i < mu.n_slots && next < n; i++) {
      dest d = {.path = paths ? paths[next] : NULL, .fd = paths ? -1 : fd};
      if (mu.slots[i].h == NULL &&
          (rc = multi_start(&mu, i, &jobs[next], &d, results ? &results[next] : NULL, err)) == SP_OK) {
        next++;
        active++;
      }
    }
    int running = 0;
    if (rc == SP_OK && curl_multi_perform(mu.m, &running) != CURLM_OK) rc = sp_fail(err, SP_EIO, "curl multi failed");
    if (rc == SP_OK) rc = multi_reap(&mu, &active, failed, err);
    if (rc == SP_OK && active > 0) curl_multi_poll(mu.m, NULL, 0, 200, NULL);
  }
  multi_free(&mu);
  return rc;
}

int sp__http_get_many(const sp_fetch *jobs, const char *const *paths, size_t n, size_t parallel,
                      sp_fetch_result *failed, sp_error *err) {
  return get_many(jobs, paths, -1, n, parallel, NULL, failed, err);
}

int sp__http_get_into(const sp_fetch *jobs, size_t n, int fd, size_t parallel, sp_fetch_result *results,
                      sp_error *err) {
  for (size_t i = 0; i < n; i++) memset(&results[i], 0, sizeof results[i]);
  return get_many(jobs, NULL, fd, n, parallel, results, NULL, err);
}

void sp__url_shown(const char *url, char *out, size_t n) {
  const char *scheme_end = strstr(url, "://");
  const char *auth = scheme_end ? scheme_end + 3 : url;
  size_t auth_len = strcspn(auth, "/?#");
  const char *at = NULL;
  for (const char *p = auth; p < auth + auth_len; p++)
    if (*p == '@') at = p;
  const char *rest = at ? at + 1 : auth;
  snprintf(out, n, "%.*s%.*s", (int)(auth - url), url, (int)strcspn(rest, "?#"), rest);
}

int sp__url_encode(sp_buf *out, const char *s, bool keep_slash) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
                 *p == '_' || *p == '.' || *p == '~' || (keep_slash && *p == '/');
    char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
    SP_TRY(plain ? sp_buf_append(out, p, 1) : sp_buf_append(out, esc, 3));
  }
  return SP_OK;
}

/* ---- Temporary folders ---------------------------------------------------------------------------------- */

int sp__tmpdir_make(const char *what, char *out, size_t n, sp_error *err) {
  const char *base = getenv("TMPDIR");
  if (base == NULL || *base == '\0') base = "/tmp";
  if ((size_t)snprintf(out, n, "%s/spicec-%s-XXXXXX", base, what) >= n)
    return sp_fail(err, SP_EINVAL, "TMPDIR \"%s\" is too long", base);
  if (mkdtemp(out) == NULL)
    return sp_fail(err, SP_EIO, "could not make a temporary folder in \"%s\": %s", base, strerror(errno));
  return SP_OK;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  remove(path);
  return 0;
}

void sp__tmpdir_remove(const char *dir) {
  if (dir && *dir) nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- A stream with a clean-up ------------------------------------------------------------------------------ */

typedef struct finally_stream {
  struct ArrowArrayStream inner;
  void (*done)(void *ctx);
  void *ctx;
} finally_stream;

static int finally_schema(struct ArrowArrayStream *st, struct ArrowSchema *out) {
  finally_stream *f = st->private_data;
  return f->inner.get_schema(&f->inner, out);
}

static int finally_next(struct ArrowArrayStream *st, struct ArrowArray *out) {
  finally_stream *f = st->private_data;
  return f->inner.get_next(&f->inner, out);
}

static const char *finally_error(struct ArrowArrayStream *st) {
  finally_stream *f = st->private_data;
  return f->inner.get_last_error(&f->inner);
}

static void finally_release(struct ArrowArrayStream *st) {
  if (st->release == NULL) return;
  finally_stream *f = st->private_data;
  sp_stream_release(&f->inner);
  f->done(f->ctx);
  free(f);
  st->release = NULL;
}

int sp__stream_finally(struct ArrowArrayStream *inner, void (*done)(void *ctx), void *ctx,
                       struct ArrowArrayStream *out, sp_error *err) {
  finally_stream *f = calloc(1, sizeof *f);
  if (f == NULL) {
    sp_stream_release(inner);
    done(ctx);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  sp_stream_move(&f->inner, inner);
  f->done = done;
  f->ctx = ctx;
  out->get_schema = finally_schema;
  out->get_next = finally_next;
  out->get_last_error = finally_error;
  out->release = finally_release;
  out->private_data = f;
  return SP_OK;
}

/* ---- Downloads ------------------------------------------------------------------------------------------- */

int sp__download_new(const char *what, sp_download **out, sp_error *err) {
  sp_download *d = calloc(1, sizeof *d);
  if (d == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  int rc = sp__tmpdir_make(what, d->dir, sizeof d->dir, err);
  if (rc != SP_OK) {
    free(d);
    return rc;
  }
  d->refs = 1;
  *out = d;
  return SP_OK;
}

sp_download *sp__download_ref(sp_download *d) {
  __atomic_add_fetch(&d->refs, 1, __ATOMIC_RELAXED);
  return d;
}

void sp__download_unref(sp_download *d) {
  if (d == NULL || __atomic_sub_fetch(&d->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  if (d->manifest_free) d->manifest_free(d->manifest);
  sp__tmpdir_remove(d->dir);
  free(d);
}

void sp__download_cache_init(sp_download_cache *c) {
  pthread_mutex_init(&c->lock, NULL);
  c->current = NULL;
}

void sp__download_cache_destroy(sp_download_cache *c) {
  sp__download_unref(c->current);
  c->current = NULL;
  pthread_mutex_destroy(&c->lock);
}

sp_download *sp__download_cache_get(sp_download_cache *c) {
  pthread_mutex_lock(&c->lock);
  sp_download *d = c->current ? sp__download_ref(c->current) : NULL;
  pthread_mutex_unlock(&c->lock);
  return d;
}

void sp__download_cache_put(sp_download_cache *c, sp_download *d) {
  pthread_mutex_lock(&c->lock);
  sp_download *old = c->current;
  c->current = sp__download_ref(d);
  pthread_mutex_unlock(&c->lock);
  sp__download_unref(old);
}

void sp__download_cache_drop(sp_download_cache *c, const sp_download *d) {
  pthread_mutex_lock(&c->lock);
  sp_download *old = c->current == d ? c->current : NULL;
  if (old) c->current = NULL;
  pthread_mutex_unlock(&c->lock);
  sp__download_unref(old);
}

/* ---- Reading a download ---------------------------------------------------------------------------------- */

/* One read of a download: a file connector opened on it. */
typedef struct download_read {
  sp_dataset_spec spec; /* the outer dataset's, with path pointing at the download */
  sp_download *dl;
  sp_params params;     /* a copy with file_format added, when the download has a format; else empty */
  sp_connector *inner;
} download_read;

static void download_done(void *ctx) {
  download_read *d = ctx;
  if (d->inner) {
    sp_connector_file.close(d->inner);
    free(d->inner);
  }
  sp__download_unref(d->dl);
  sp_params_free(&d->params);
  free(d);
}

/* Opens the file connector on the download; it borrows the outer instance's params (it only reads the
 * format keys, which the outer module declares with the same defaults). */
static int open_inner(download_read *d, sp_connector *outer, sp_error *err) {
  const char *format = d->dl->format[0] ? d->dl->format : NULL;
  if (format && sp_params_get(&outer->params, "file_format") == NULL &&
      (sp_params_copy(&d->params, &outer->params) != SP_OK || sp_params_set(&d->params, "file_format", format, 0, 0) != SP_OK))
    return sp_fail(err, SP_ENOMEM, "out of memory");
  d->inner = calloc(1, sp_connector_file.instance_size);
  if (d->inner == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  d->inner->module = &sp_connector_file;
  d->inner->dataset = &d->spec;
  d->inner->params = d->params.count ? d->params : outer->params;
  int rc = sp_connector_file.open(d->inner, err);
  if (rc != SP_OK) {
    free(d->inner);
    d->inner = NULL;
  }
  return rc;
}

/* Replaces each occurrence of `from` in err->msg by `to` (users know the URL, not our temporary path). */
static void replace_in_message(sp_error *err, const char *from, const char *to) {
  if (err == NULL || *from == '\0') return;
  char msg[sizeof err->msg];
  size_t o = 0, n = strlen(from);
  for (const char *p = err->msg; *p && o + 1 < sizeof msg;) {
    if (strncmp(p, from, n) == 0) {
      o += (size_t)snprintf(msg + o, sizeof msg - o, "%s", to);
      p += n;
    } else {
      msg[o++] = *p++;
    }
  }
  msg[o < sizeof msg ? o : sizeof msg - 1] = '\0';
  snprintf(err->msg, sizeof err->msg, "%s", msg);
}

/* A federated scan's pushed conditions, applied while the file is read: `SELECT <columns> FROM
 * (<filter_query>) [LIMIT n]`, run by the file connector as a source query (the dataset's name bound to the
 * file). malloc'd, or NULL when out of memory. */
static char *filtered_query(const sp_scan *scan) {
  sp_buf b = {0};
  int rc = sp_buf_append_str(&b, "SELECT ");
  for (size_t i = 0; rc == SP_OK && i < scan->n_columns && scan->columns; i++) {
    char q[1100];
    rc = sp_sql_ident(q, sizeof q, scan->columns[i]) == 0 ? SP_OK : SP_EINVAL;
    if (rc == SP_OK) rc = sp_buf_append_str(&b, i ? ", " : "");
    if (rc == SP_OK) rc = sp_buf_append_str(&b, q);
  }
  if (rc == SP_OK && (scan->columns == NULL || scan->n_columns == 0)) rc = sp_buf_append_str(&b, "*");
  if (rc == SP_OK) rc = sp_buf_append_str(&b, " FROM (");
  if (rc == SP_OK) rc = sp_buf_append_str(&b, scan->filter_query);
  if (rc == SP_OK) rc = sp_buf_append_str(&b, ") AS sp_filtered");
  if (rc == SP_OK && scan->limit >= 0) {
    char lim[48];
    snprintf(lim, sizeof lim, " LIMIT %lld", (long long)scan->limit);
    rc = sp_buf_append_str(&b, lim);
  }
  if (rc == SP_OK && sp_buf_cstr(&b) != NULL) return b.data;
  sp_buf_free(&b);
  return NULL;
}

/* The file connector's scan; with conditions to push, they are tried first (they are only a help: the engine
 * applies the whole WHERE again, so when the file reader cannot bind them the plain scan runs). */
static int inner_scan(download_read *d, const sp_scan *scan, struct ArrowArrayStream *out, sp_error *err) {
  if (scan->query == NULL && scan->filter_query && *scan->filter_query) {
    char *q = filtered_query(scan);
    sp_scan pushed = {.limit = -1, .query = q};
    int rc = q ? sp_connector_file.scan(d->inner, &pushed, out, NULL) : SP_ENOMEM;
    free(q);
    if (rc == SP_OK) return SP_OK;
  }
  return sp_connector_file.scan(d->inner, scan, out, err);
}

int sp__read_download(sp_connector *outer, sp_download *dl, const char *shown, const sp_scan *scan,
                      struct ArrowArrayStream *out, sp_error *err) {
  download_read *d = calloc(1, sizeof *d);
  if (d == NULL) {
    sp__download_unref(dl);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  d->dl = dl;
  d->spec = *outer->dataset;
  d->spec.path = dl->path;
  struct ArrowArrayStream s;
  int rc = open_inner(d, outer, err);
  if (rc == SP_OK)
    rc = scan ? inner_scan(d, scan, &s, err) : sp_connector_file.get_all_data(d->inner, &s, err);
  if (rc != SP_OK) {
    replace_in_message(err, dl->path, shown);
    download_done(d);
    return rc;
  }
  return sp__stream_finally(&s, download_done, d, out, err);
}
