/* SPDX-License-Identifier: Apache-2.0
 *
 * Request parsing for the HTTP server: /v1/sql bodies (raw SQL or JSON with parameters), Accept negotiation,
 * percent-decoding and query strings.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/format_value.h"
#include "server/http_params.h"

/* ---- /v1/sql bodies ------------------------------------------------------------------------------------- */

static int parse_raw(const char *body, size_t len, sp_sql_body *out, sp_error *err) {
  size_t ok = sp__utf8_valid_prefix(body, len);
  if (ok != len) return sp_fail(err, SP_EINVAL, "request body is not valid UTF-8 (invalid byte at offset %zu)", ok);
  if (memchr(body, '\0', len) != NULL) return sp_fail(err, SP_EINVAL, "request body contains a NUL byte");
  memset(out, 0, sizeof *out);
  out->sql = body;
  return SP_OK;
}

/* Converts one JSON parameter; `what` names it in messages ("$2", "\"id\""). */
static int json_to_value(json_t *v, const char *what, sp_value *out, sp_error *err) {
  switch (json_typeof(v)) {
  case JSON_NULL: out->type = SP_VALUE_NULL; return SP_OK;
  case JSON_TRUE:
  case JSON_FALSE:
    out->type = SP_VALUE_BOOL;
    out->v.b = json_is_true(v);
    return SP_OK;
  case JSON_INTEGER:
    out->type = SP_VALUE_INT;
    out->v.i = (int64_t)json_integer_value(v);
    return SP_OK;
  case JSON_REAL:
    out->type = SP_VALUE_DOUBLE;
    out->v.d = json_real_value(v);
    return SP_OK;
  case JSON_STRING:
    out->type = SP_VALUE_STRING;
    out->v.s = json_string_value(v);
    return SP_OK;
  default:
    return sp_fail(err, SP_EINVAL, "parameter %s must be null, a boolean, a number or a string", what);
  }
}

static int parse_params(json_t *p, sp_sql_body *out, sp_error *err) {
  size_t n = json_is_array(p) ? json_array_size(p) : json_object_size(p);
  if (n == 0) return SP_OK;
  if (n > SP_HTTP_MAX_PARAMS) return sp_fail(err, SP_EINVAL, "too many parameters (%zu; at most %d)", n, SP_HTTP_MAX_PARAMS);
  out->params = calloc(n, sizeof *out->params);
  if (out->params == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  char what[300];
  if (json_is_array(p)) {
    for (size_t i = 0; i < n; i++) {
      snprintf(what, sizeof what, "$%zu", i + 1);
      SP_TRY(json_to_value(json_array_get(p, i), what, &out->params[i], err));
    }
  } else {
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach(p, key, v) {
      const char *name = (key[0] == '$' || key[0] == ':') ? key + 1 : key;
      if (name[0] == '\0') return sp_fail(err, SP_EINVAL, "parameter names must not be empty");
      snprintf(what, sizeof what, "\"%s\"", name);
      out->params[i].name = name;
      SP_TRY(json_to_value(v, what, &out->params[i], err));
      i++;
    }
  }
  out->n_params = n;
  return SP_OK;
}

static int parse_json(const char *body, size_t len, sp_sql_body *out, sp_error *err) {
  json_error_t je;
  json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
  if (root == NULL) return sp_fail(err, SP_EINVAL, "request body is not valid JSON: %s (at offset %d)", je.text, je.position);
  sp_sql_body b = {.json = root};
  int rc = SP_OK;
  json_t *sql = json_is_object(root) ? json_object_get(root, "sql") : NULL;
  json_t *params = json_is_object(root) ? json_object_get(root, "parameters") : NULL;
  if (!json_is_object(root)) rc = sp_fail(err, SP_EINVAL, "request body must be a JSON object with a \"sql\" string");
  else if (!json_is_string(sql)) rc = sp_fail(err, SP_EINVAL, "request body must have a \"sql\" string");
  else if (params != NULL && !json_is_null(params) && !json_is_array(params) && !json_is_object(params))
    rc = sp_fail(err, SP_EINVAL, "\"parameters\" must be an array (positional) or an object (named)");
  else if (params != NULL && !json_is_null(params)) rc = parse_params(params, &b, err);
  if (rc != SP_OK) {
    sp_sql_body_free(&b);
    return rc;
  }
  b.sql = json_string_value(sql);
  *out = b;
  return SP_OK;
}

int sp_http_parse_sql_body(const char *body, size_t len, bool is_json, sp_sql_body *out, sp_error *err) {
  if (body == NULL) body = "";
  return is_json ? parse_json(body, len, out, err) : parse_raw(body, len, out, err);
}

void sp_sql_body_free(sp_sql_body *b) {
  if (b == NULL) return;
  free(b->params);
  if (b->json) json_decref((json_t *)b->json);
  memset(b, 0, sizeof *b);
}

/* ---- Headers -------------------------------------------------------------------------------------------- */

/* Media type of one list item: s[0..n) without parameters and surrounding spaces. */
static void media_type(const char *s, size_t n, const char **out, size_t *out_n) {
  const char *semi = memchr(s, ';', n);
  if (semi) n = (size_t)(semi - s);
  while (n > 0 && (*s == ' ' || *s == '\t')) s++, n--;
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
  *out = s;
  *out_n = n;
}

static bool media_is(const char *s, size_t n, const char *want) {
  return n == strlen(want) && strncasecmp(s, want, n) == 0;
}

bool sp_http_is_json_content_type(const char *ct) {
  if (ct == NULL) return false;
  const char *m;
  size_t n;
  media_type(ct, strlen(ct), &m, &n);
  return media_is(m, n, "application/json");
}

sp_format_kind sp_http_negotiate(const char *accept) {
  static const struct {
    const char *type;
    sp_format_kind kind;
  } known[] = {{"application/json", SP_FORMAT_JSON},
               {"text/csv", SP_FORMAT_CSV},
               {"text/plain", SP_FORMAT_TABLE},
               {"application/vnd.spiceai.sql.v1+json", SP_FORMAT_SQL_V1}};
  if (accept == NULL) return SP_FORMAT_JSON;
  const char *s = accept;
  while (*s) {
    const char *comma = strchr(s, ',');
    size_t len = comma ? (size_t)(comma - s) : strlen(s);
    const char *m;
    size_t n;
    media_type(s, len, &m, &n);
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
      if (media_is(m, n, known[k].type)) return known[k].kind;
    if (comma == NULL) break;
    s = comma + 1;
  }
  return SP_FORMAT_JSON;
}

/* ---- URLs ----------------------------------------------------------------------------------------------- */

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int sp_http_percent_decode(const char *in, size_t n, bool plus_is_space, char *out, size_t *out_len, sp_error *err) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = in[i];
    if (c == '%') {
      int hi = i + 2 < n ? hexval(in[i + 1]) : -1;
      int lo = i + 2 < n ? hexval(in[i + 2]) : -1;
      if (hi < 0 || lo < 0) return sp_fail(err, SP_EINVAL, "invalid percent-encoding in \"%.*s\"", (int)n, in);
      c = (char)(hi * 16 + lo);
      if (c == '\0') return sp_fail(err, SP_EINVAL, "encoded NUL (%%00) in \"%.*s\"", (int)n, in);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    } else if (c == '\0') {
      return sp_fail(err, SP_EINVAL, "NUL byte in URL");
    }
    out[o++] = c;
  }
  out[o] = '\0';
  if (out_len) *out_len = o;
  return SP_OK;
}

int sp_http_query_param(const char *query, const char *key, char *out, size_t cap, sp_error *err) {
  if (query == NULL || cap == 0) return 0;
  size_t klen = strlen(key);
  const char *s = query;
  while (*s) {
    const char *amp = strchr(s, '&');
    size_t len = amp ? (size_t)(amp - s) : strlen(s);
    const char *eq = memchr(s, '=', len);
    size_t name_len = eq ? (size_t)(eq - s) : len;
    char name[256];
    if (name_len < sizeof name &&
        sp_http_percent_decode(s, name_len, true, name, NULL, NULL) == SP_OK && strlen(name) == klen &&
        memcmp(name, key, klen) == 0) {
      const char *v = eq ? eq + 1 : s + len;
      size_t vlen = eq ? len - name_len - 1 : 0;
      if (vlen >= cap) {
        sp_fail(err, SP_EINVAL, "query parameter \"%s\" is too long", key);
        return -1;
      }
      if (sp_http_percent_decode(v, vlen, true, out, NULL, err) != SP_OK) return -1;
      return 1;
    }
    if (amp == NULL) break;
    s = amp + 1;
  }
  return 0;
}
