/* SPDX-License-Identifier: Apache-2.0
 *
 * The runtime settings the HTTP server honours, read from the spicepod's JSON form. The pod loader has
 * already checked the keys and their types (unknown keys are warnings there), so this reads what it needs
 * and falls back to Spice's defaults for anything absent.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/http_config.h"
#include "spice/log.h"
#include "spice/params.h"
#include "spice/secrets.h"

#define DEFAULT_CACHE_BYTES ((uint64_t)128 << 20)
#define DEFAULT_CACHE_TTL_MS 1000
#define PEM_MAX ((long)1 << 20)

/* ---- Small readers ------------------------------------------------------------------------------------- */

static json_t *obj_get(json_t *o, const char *key) { return json_is_object(o) ? json_object_get(o, key) : NULL; }

/* A boolean written as YAML true/false (a JSON boolean) or as a word ("yes", "enabled"). */
static int get_bool(json_t *o, const char *key, bool fallback, bool *out, sp_error *err) {
  json_t *v = obj_get(o, key);
  *out = fallback;
  if (v == NULL || json_is_null(v)) return SP_OK;
  if (json_is_boolean(v)) {
    *out = json_is_true(v);
    return SP_OK;
  }
  if (json_is_string(v) && sp_bool_parse(json_string_value(v), out, NULL) == SP_OK) return SP_OK;
  return sp_fail(err, SP_EINVAL, "runtime setting \"%s\" must be true or false", key);
}

int sp_http_parse_size(const char *s, uint64_t *out, sp_error *err) {
  static const struct { const char *unit; uint64_t mul; } units[] = {
      {"", 1},           {"b", 1},           {"kb", 1000},        {"kib", 1024},       {"k", 1024},
      {"mb", 1000000},   {"mib", 1u << 20},  {"m", 1u << 20},     {"gb", 1000000000u}, {"gib", 1u << 30},
      {"g", 1u << 30},   {"tb", 1000000000000u}, {"tib", (uint64_t)1 << 40},
  };
  const char *p = s ? s : "";
  while (*p == ' ') p++;
  if (!isdigit((unsigned char)*p)) return sp_fail(err, SP_EINVAL, "invalid size \"%s\": expected e.g. 128MiB", s ? s : "");
  errno = 0;
  char *end;
  double n = strtod(p, &end);
  while (*end == ' ') end++;
  for (size_t i = 0; errno == 0 && i < sizeof units / sizeof units[0]; i++) {
    if (strcasecmp(end, units[i].unit) != 0) continue;
    double bytes = n * (double)units[i].mul;
    if (bytes < 0 || bytes > 9.0e18) break;
    *out = (uint64_t)bytes;
    return SP_OK;
  }
  return sp_fail(err, SP_EINVAL, "invalid size \"%s\": expected e.g. 128MiB", s);
}

static int get_size(json_t *o, const char *key, uint64_t *out, sp_error *err) {
  json_t *v = obj_get(o, key);
  if (v == NULL || json_is_null(v)) return SP_OK;
  if (json_is_integer(v) && json_integer_value(v) >= 0) {
    *out = (uint64_t)json_integer_value(v);
    return SP_OK;
  }
  if (json_is_string(v)) return sp_http_parse_size(json_string_value(v), out, err);
  return sp_fail(err, SP_EINVAL, "runtime setting \"%s\" must be a size such as 128MiB", key);
}

static int get_duration(json_t *o, const char *key, int64_t *out, sp_error *err) {
  json_t *v = obj_get(o, key);
  if (v == NULL || json_is_null(v)) return SP_OK;
  if (json_is_string(v)) return sp_duration_parse(json_string_value(v), out, err);
  return sp_fail(err, SP_EINVAL, "runtime setting \"%s\" must be a duration such as 1s", key);
}

int sp_http_read_file(const char *path, char **out, sp_error *err) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return sp_fail(err, SP_EIO, "could not read %s: %s", path, strerror(errno));
  char *buf = malloc((size_t)PEM_MAX + 1);
  size_t n = buf ? fread(buf, 1, (size_t)PEM_MAX + 1, f) : 0;
  int bad = ferror(f);
  fclose(f);
  if (buf == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  if (bad || n > (size_t)PEM_MAX) {
    free(buf);
    return sp_fail(err, SP_EIO, "could not read %s: %s", path, bad ? "read error" : "larger than 1 MiB");
  }
  buf[n] = '\0';
  *out = buf;
  return SP_OK;
}

/* ---- Secrets ------------------------------------------------------------------------------------------- */

/* The secret stores the spicepod declares, made as the pod loader makes them (sp_pod_load). */
static sp_secrets *make_secrets(const sp_pod *pod, json_t *doc) {
  sp_secrets *s = NULL;
  if (sp_secrets_create(pod->dir, &s, NULL) != SP_OK) return NULL;
  json_t *list = obj_get(doc, "secrets"), *item;
  size_t i;
  json_array_foreach(list, i, item) {
    json_t *from = obj_get(item, "from"), *name = obj_get(item, "name"), *params = obj_get(item, "params");
    if (!json_is_string(from)) continue;
    sp_params p = {0};
    const char *k;
    json_t *v;
    json_object_foreach(params, k, v) {
      char *txt = json_is_string(v) ? strdup(json_string_value(v)) : json_dumps(v, JSON_ENCODE_ANY);
      if (txt) sp_params_set(&p, k, txt, 0, 0);
      free(txt);
    }
    sp_secrets_add_store(s, json_string_value(from), json_is_string(name) ? json_string_value(name) : NULL, &p, NULL);
    sp_params_free(&p);
  }
  return s;
}

/* Resolves ${store:key} in `in` (a malloc'd copy either way). *secrets is made on first need. */
static int resolve(const sp_pod *pod, json_t *doc, sp_secrets **secrets, const char *in, char **out, sp_error *err) {
  if (strstr(in, "${") == NULL) {
    *out = strdup(in);
    return *out ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  }
  if (*secrets == NULL && (*secrets = make_secrets(pod, doc)) == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  return sp_secrets_interpolate(*secrets, in, out, err);
}

/* ---- Sections ------------------------------------------------------------------------------------------ */

static int read_auth(const sp_pod *pod, json_t *doc, json_t *rt, sp_secrets **secrets, sp_http_config *c,
                     sp_error *err) {
  json_t *ak = obj_get(obj_get(rt, "auth"), "api-key");
  if (!json_is_object(ak)) return SP_OK;
  /* A block that lists keys turns them on unless it says otherwise: safer closed than open. */
  SP_TRY(get_bool(ak, "enabled", true, &c->auth_enabled, err));
  json_t *keys = obj_get(ak, "keys"), *k;
  size_t n = json_is_array(keys) ? json_array_size(keys) : 0, i;
  c->api_keys = calloc(n ? n : 1, sizeof *c->api_keys);
  if (c->api_keys == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  json_array_foreach(keys, i, k) {
    char *v = NULL;
    sp_error e = {0};
    if (!json_is_string(k)) {
      sp_log_warn("runtime.auth.api-key: key #%zu is not a string; ignored", i + 1);
    } else if (resolve(pod, doc, secrets, json_string_value(k), &v, &e) != SP_OK) {
      sp_log_warn("runtime.auth.api-key: key #%zu is ignored: %s", i + 1, e.msg);
    } else if (v[0] == '\0') {
      sp_log_warn("runtime.auth.api-key: key #%zu is empty; ignored", i + 1);
      free(v);
    } else {
      sp_log_redact(v);
      c->api_keys[c->n_api_keys++] = v;
    }
  }
  if (c->auth_enabled && c->n_api_keys == 0)
    sp_log_warn("runtime.auth.api-key is enabled without a usable key: every authenticated request is refused");
  return SP_OK;
}

static int read_cache(json_t *rt, sp_http_config *c, sp_error *err) {
  json_t *sr = obj_get(obj_get(rt, "caching"), "sql_results"), *rc = obj_get(rt, "results_cache");
  if (json_is_object(sr)) {
    SP_TRY(get_bool(sr, "enabled", true, &c->cache_enabled, err));
    SP_TRY(get_size(sr, "max_size", &c->cache_max_bytes, err));
    SP_TRY(get_duration(sr, "item_ttl", &c->cache_ttl_ms, err));
  }
  if (json_is_object(rc)) { /* the older block wins, as in the pod loader */
    SP_TRY(get_bool(rc, "enabled", true, &c->cache_enabled, err));
    SP_TRY(get_size(rc, "cache_max_size", &c->cache_max_bytes, err));
    SP_TRY(get_duration(rc, "item_ttl", &c->cache_ttl_ms, err));
  }
  return SP_OK;
}

static int push_origin(sp_http_config *c, const char *o, sp_error *err) {
  char **grown = realloc(c->cors_origins, (c->n_cors_origins + 1) * sizeof *grown);
  if (grown == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  c->cors_origins = grown;
  if ((grown[c->n_cors_origins] = strdup(o)) == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  c->n_cors_origins++;
  return SP_OK;
}

static int read_cors(json_t *rt, sp_http_config *c, sp_error *err) {
  json_t *cors = obj_get(rt, "cors");
  if (!json_is_object(cors)) return SP_OK;
  SP_TRY(get_bool(cors, "enabled", false, &c->cors_enabled, err));
  json_t *list = obj_get(cors, "allowed_origins"), *o;
  size_t i;
  json_array_foreach(list, i, o)
    if (json_is_string(o)) SP_TRY(push_origin(c, json_string_value(o), err));
  return c->n_cors_origins ? SP_OK : push_origin(c, "*", err);
}

/* One PEM: inline (`name`) or from a file (`name_file`), ${secrets} resolved in either. */
static int read_pem(const sp_pod *pod, json_t *doc, json_t *tls, sp_secrets **secrets, const char *name,
                    char **out, sp_error *err) {
  char file_key[64];
  snprintf(file_key, sizeof file_key, "%s_file", name);
  json_t *inl = obj_get(tls, name), *file = obj_get(tls, file_key);
  if (json_is_string(inl)) return resolve(pod, doc, secrets, json_string_value(inl), out, err);
  if (!json_is_string(file)) return sp_fail(err, SP_EINVAL, "runtime.tls is enabled but has no %s or %s", name, file_key);
  char *path = NULL;
  SP_TRY(resolve(pod, doc, secrets, json_string_value(file), &path, err));
  int rc = sp_http_read_file(path, out, err);
  free(path);
  return rc;
}

static int read_tls(const sp_pod *pod, json_t *doc, json_t *rt, sp_secrets **secrets, sp_http_config *c,
                    sp_error *err) {
  json_t *tls = obj_get(rt, "tls");
  if (!json_is_object(tls)) return SP_OK;
  SP_TRY(get_bool(tls, "enabled", false, &c->tls_enabled, err));
  if (!c->tls_enabled) return SP_OK;
  SP_TRY(read_pem(pod, doc, tls, secrets, "certificate", &c->tls_cert_pem, err));
  return read_pem(pod, doc, tls, secrets, "key", &c->tls_key_pem, err);
}

int sp_http_config_load(const sp_pod *pod, sp_http_config *out, sp_error *err) {
  memset(out, 0, sizeof *out);
  out->cache_enabled = true;
  out->cache_max_bytes = DEFAULT_CACHE_BYTES;
  out->cache_ttl_ms = DEFAULT_CACHE_TTL_MS;
  json_t *doc = pod && pod->json ? json_loads(pod->json, 0, NULL) : NULL;
  json_t *rt = obj_get(doc, "runtime");
  sp_secrets *secrets = NULL;
  int rc = read_auth(pod, doc, rt, &secrets, out, err);
  if (rc == SP_OK) rc = read_cache(rt, out, err);
  if (rc == SP_OK) rc = read_cors(rt, out, err);
  if (rc == SP_OK) rc = read_tls(pod, doc, rt, &secrets, out, err);
  sp_secrets_destroy(secrets);
  json_decref(doc);
  return rc;
}

static void free_list(char **list, size_t n) {
  for (size_t i = 0; i < n; i++) free(list[i]);
  free(list);
}

void sp_http_config_free(sp_http_config *c) {
  if (c == NULL) return;
  for (size_t i = 0; i < c->n_api_keys; i++) {
    volatile char *p = c->api_keys[i]; /* keys do not outlive the server in freed memory */
    while (*p) *p++ = 0;
  }
  free_list(c->api_keys, c->n_api_keys);
  free_list(c->cors_origins, c->n_cors_origins);
  free(c->tls_cert_pem);
  free(c->tls_key_pem);
  memset(c, 0, sizeof *c);
}

/* ---- Keys ---------------------------------------------------------------------------------------------- */

/* Compares every byte position up to the longer length; the result depends on all of them. */
static unsigned ct_differs(const char *a, size_t an, const char *b, size_t bn) {
  size_t n = an > bn ? an : bn;
  unsigned d = an != bn;
  for (size_t i = 0; i < n; i++) {
    unsigned char x = i < an ? (unsigned char)a[i] : 0, y = i < bn ? (unsigned char)b[i] : 0;
    d |= (unsigned)(x ^ y);
  }
  return d;
}

bool sp_http_key_valid(const sp_http_config *c, const char *key, size_t n) {
  if (key == NULL) return false;
  unsigned ok = 0;
  for (size_t i = 0; i < c->n_api_keys; i++) {
    const char *k = c->api_keys[i];
    ok |= ct_differs(k, strlen(k), key, n) == 0;
  }
  return ok != 0;
}
