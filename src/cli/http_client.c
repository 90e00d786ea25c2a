/* SPDX-License-Identifier: Apache-2.0
 *
 * One blocking HTTP exchange with spiced through libcurl. The CLI makes a handful of requests per run, so each
 * request gets its own easy handle; nothing is shared between threads.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"

typedef struct xfer {
  CURL *curl;
  const sp_cli_http_req *req;
  sp_cli_http_resp *resp;
  int cb_rc; /* code returned by on_data, which stopped the transfer */
  sp_error *err;
} xfer;

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp) {
  xfer *x = userp;
  size_t n = size * nmemb;
  long status = 0;
  curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
  if (x->req->on_data != NULL && status >= 200 && status < 300) {
    x->cb_rc = x->req->on_data(x->req->ctx, data, n, x->err);
  } else {
    x->cb_rc = sp_cli_buf_append(&x->resp->body, data, n, x->err);
  }
  return x->cb_rc == SP_OK ? n : 0;
}

static bool header_is(const char *line, size_t n, const char *name, const char *value_prefix) {
  size_t nl = strlen(name), vl = strlen(value_prefix);
  if (n < nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':') return false;
  const char *v = line + nl + 1;
  const char *end = line + n;
  while (v < end && (*v == ' ' || *v == '\t')) v++;
  return (size_t)(end - v) >= vl && strncasecmp(v, value_prefix, vl) == 0;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userp) {
  xfer *x = userp;
  size_t n = size * nmemb;
  if (header_is(line, n, "x-cache", "hit") || header_is(line, n, "results-cache-status", "hit")) {
    x->resp->cached = true;
  }
  return n;
}

static int on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  return sp_cli_interrupted ? 1 : 0; /* non-zero aborts the transfer */
}

static struct curl_slist *build_headers(const sp_cli_conn *c, const sp_cli_http_req *r, bool *oom) {
  struct curl_slist *h = NULL;
  char line[1024];
  const char *names[] = {"Accept", "Content-Type", "X-API-Key"};
  const char *values[] = {r->accept, r->content_type, c->api_key};
  for (size_t i = 0; i < 3; i++) {
    if (values[i] == NULL || values[i][0] == '\0') continue;
    snprintf(line, sizeof line, "%s: %s", names[i], values[i]);
    struct curl_slist *next = curl_slist_append(h, line);
    if (next == NULL) *oom = true;
    else h = next;
  }
  struct curl_slist *ua = curl_slist_append(h, "User-Agent: spice-cli/" SPICE_VERSION);
  if (ua == NULL) *oom = true;
  else h = ua;
  return h;
}

static char *build_url(const char *endpoint, const char *path) {
  size_t el = strlen(endpoint);
  while (el > 0 && endpoint[el - 1] == '/') el--;
  size_t n = el + strlen(path) + 1;
  char *url = malloc(n);
  if (url != NULL) snprintf(url, n, "%.*s%s", (int)el, endpoint, path);
  return url;
}

static int transfer_failed(CURLcode rc, const char *endpoint, const char *errbuf, sp_error *err) {
  switch (rc) {
  case CURLE_COULDNT_CONNECT:
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    return sp_fail(err, SP_ECONNECT,
                   "could not connect to the Spice runtime at %s: is it running? Start it with `spice run`.",
                   endpoint);
  case CURLE_ABORTED_BY_CALLBACK:
    return sp_fail(err, SP_ECANCELED, "query cancelled");
  default:
    return sp_fail(err, SP_EIO, "request to the Spice runtime at %s failed: %s", endpoint,
                   errbuf[0] ? errbuf : curl_easy_strerror(rc));
  }
}

static void set_method(CURL *curl, const sp_cli_http_req *r) {
  if (strcmp(r->method, "GET") == 0) {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    return;
  }
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, r->body ? r->body : "");
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(r->body ? r->body_len : 0));
  if (strcmp(r->method, "POST") != 0) curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, r->method);
}

/* A proxy from http_proxy must never see requests to the local runtime; other NO_PROXY entries still hold. */
static void set_no_proxy(CURL *curl, char *buf, size_t cap) {
  const char *env = getenv("NO_PROXY");
  if (env == NULL) env = getenv("no_proxy");
  snprintf(buf, cap, "localhost,127.0.0.1,::1%s%s", env && *env ? "," : "", env ? env : "");
  curl_easy_setopt(curl, CURLOPT_NOPROXY, buf);
}

static int perform(CURL *curl, const sp_cli_conn *c, xfer *x, sp_error *err) {
  char errbuf[CURL_ERROR_SIZE] = "";
  char no_proxy[2048];
  set_no_proxy(curl, no_proxy, sizeof no_proxy);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, ""); /* whatever compression curl supports */
  CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_WRITE_ERROR && x->cb_rc != SP_OK) return x->cb_rc; /* err already set by the callback */
  if (rc != CURLE_OK) return transfer_failed(rc, c->endpoint, errbuf, err);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &x->resp->status);
  return SP_OK;
}

int sp_cli_http_do(const sp_cli_conn *c, const sp_cli_http_req *r, sp_cli_http_resp *out, sp_error *err) {
  static bool global_done = false;
  if (!global_done) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    global_done = true;
  }
  out->status = 0;
  out->cached = false;
  char *url = build_url(c->endpoint, r->path);
  CURL *curl = curl_easy_init();
  bool oom = false;
  struct curl_slist *headers = build_headers(c, r, &oom);
  int rc;
  if (url == NULL || curl == NULL || oom) {
    rc = sp_fail(err, SP_ENOMEM, "out of memory preparing a request to %s", c->endpoint);
  } else {
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    set_method(curl, r);
    xfer x = {.curl = curl, .req = r, .resp = out, .err = err};
    rc = perform(curl, c, &x, err);
  }
  curl_slist_free_all(headers);
  if (curl) curl_easy_cleanup(curl);
  free(url);
  return rc;
}

static sp_status status_code(long status) {
  switch (status) {
  case 400: return SP_EINVAL;
  case 401:
  case 403: return SP_EUNAUTH;
  case 404: return SP_ENOTFOUND;
  case 503: return SP_EBUSY;
  default: return status >= 400 && status < 500 ? SP_EINVAL : SP_EINTERNAL;
  }
}

int sp_cli_http_fail(const sp_cli_http_resp *r, sp_error *err) {
  sp_status code = status_code(r->status);
  const char *body = r->body.data ? r->body.data : "";
  json_t *j = json_loadb(body, r->body.len, 0, NULL);
  const char *msg = json_is_object(j) ? json_string_value(json_object_get(j, "message")) : NULL;
  if (msg != NULL) {
    sp_fail(err, code, "%s", msg);
    json_decref(j);
    return code;
  }
  json_decref(j);
  size_t b = 0, e = r->body.len;
  while (b < e && isspace((unsigned char)body[b])) b++;
  while (e > b && isspace((unsigned char)body[e - 1])) e--;
  if (e == b) return sp_fail(err, code, "HTTP status %ld", r->status);
  return sp_fail(err, code, "%.*s", (int)(e - b), body + b);
}

/* RFC 3986 unreserved characters, in ASCII whatever the locale says. */
static bool is_unreserved(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

char *sp_cli_url_segment(const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(s);
  char *out = malloc(n * 3 + 1);
  if (out == NULL) return NULL;
  char *o = out;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (is_unreserved(*p)) {
      *o++ = (char)*p;
    } else {
      *o++ = '%';
      *o++ = hex[*p >> 4];
      *o++ = hex[*p & 15];
    }
  }
  *o = '\0';
  return out;
}
