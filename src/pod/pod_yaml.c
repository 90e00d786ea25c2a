/* SPDX-License-Identifier: Apache-2.0
 *
 * libyaml document helpers for the spicepod loader: node positions (1-based), scalar typing under the YAML
 * 1.2 core schema (what serde_yaml, and so Spice, uses: `yes` is a string, `true` a boolean), typed getters
 * that name the key in their errors, mapping walks with "did you mean", and the document as JSON.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pod/pod_int.h"
#include "spice/log.h"

/* Guards against documents that expand through aliases (`&a [*b, *b, ...]`) or nest without end. */
#define POD_JSON_MAX_DEPTH 128
#define POD_JSON_MAX_NODES 200000

/* ------------------------------------------------------------------------------------------------------ */
/* Nodes                                                                                                   */
/* ------------------------------------------------------------------------------------------------------ */

yaml_node_t *sp__pod_node(pod_ctx *c, int id) { return yaml_document_get_node(c->doc, id); }
int sp__pod_line(const yaml_node_t *n) { return n ? (int)n->start_mark.line + 1 : 0; }
int sp__pod_col(const yaml_node_t *n) { return n ? (int)n->start_mark.column + 1 : 0; }

const char *sp__pod_text(const yaml_node_t *n) {
  return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : "";
}

static bool all_digits(const char *s, const char *set) {
  if (*s == '\0') return false;
  for (; *s; s++)
    if (strchr(set, *s) == NULL) return false;
  return true;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool is_float_text(const char *s) {
  if (*s == '-' || *s == '+') s++;
  size_t before = strspn(s, "0123456789"), after = 0;
  s += before;
  if (*s == '.') {
    s++;
    after = strspn(s, "0123456789");
    s += after;
  }
  if (before == 0 && after == 0) return false;
  if (*s == 'e' || *s == 'E') {
    s++;
    if (*s == '-' || *s == '+') s++;
    if (strspn(s, "0123456789") == 0) return false;
    s += strspn(s, "0123456789");
  }
  return *s == '\0';
}

static bool is_special_float(const char *s) {
  static const char *const words[] = {".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN", NULL};
  const char *t = (*s == '-' || *s == '+') && s[1] == '.' && strncasecmp(s + 2, "inf", 3) == 0 ? s + 1 : s;
  for (int i = 0; words[i]; i++)
    if (strcmp(t, words[i]) == 0) return true;
  return false;
}

pod_scalar_kind sp__pod_scalar_kind(const yaml_node_t *n) {
  if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return POD_STRING;
  const char *s = sp__pod_text(n);
  static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
  static const char *const bools[] = {"true", "True", "TRUE", "false", "False", "FALSE", NULL};
  for (int i = 0; nulls[i]; i++)
    if (strcmp(s, nulls[i]) == 0) return POD_NULL;
  for (int i = 0; bools[i]; i++)
    if (strcmp(s, bools[i]) == 0) return POD_BOOL;
  const char *d = (*s == '-' || *s == '+') ? s + 1 : s;
  if (all_digits(d, "0123456789")) return POD_INT;
  if ((strncmp(s, "0x", 2) == 0 && all_digits(s + 2, "0123456789abcdefABCDEF")) ||
      (strncmp(s, "0o", 2) == 0 && all_digits(s + 2, "01234567")))
    return POD_INT;
  if (is_float_text(s) || is_special_float(s)) return POD_FLOAT;
  return POD_STRING;
}

bool sp__pod_is_null(const yaml_node_t *n) {
  return n == NULL || (n->type == YAML_SCALAR_NODE && sp__pod_scalar_kind(n) == POD_NULL);
}

const char *sp__pod_type_name(const yaml_node_t *n) {
  if (n == NULL) return "nothing";
  if (n->type == YAML_MAPPING_NODE) return "a mapping";
  if (n->type == YAML_SEQUENCE_NODE) return "a list";
  switch (sp__pod_scalar_kind(n)) {
  case POD_NULL: return "null";
  case POD_BOOL: return "a boolean";
  case POD_INT: return "an integer";
  case POD_FLOAT: return "a number";
  case POD_STRING: break;
  }
  return "a string";
}

yaml_node_t *sp__pod_get(pod_ctx *c, yaml_node_t *map, const char *name, yaml_node_t **key_out) {
  if (map == NULL || map->type != YAML_MAPPING_NODE) return NULL;
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
    yaml_node_t *k = sp__pod_node(c, p->key);
    if (k != NULL && k->type == YAML_SCALAR_NODE && strcmp(sp__pod_text(k), name) == 0) {
      if (key_out) *key_out = k;
      return sp__pod_node(c, p->value);
    }
  }
  return NULL;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Messages                                                                                                */
/* ------------------------------------------------------------------------------------------------------ */

int sp__pod_fail(pod_ctx *c, int code, const yaml_node_t *at, const char *fmt, ...) {
  char msg[sizeof c->err->msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (at == NULL) return sp_fail(c->err, (sp_status)code, "%s: %s", c->file, msg);
  return sp_fail(c->err, (sp_status)code, "%s:%d:%d: %s", c->file, sp__pod_line(at), sp__pod_col(at), msg);
}

void sp__pod_warn(pod_ctx *c, const yaml_node_t *at, const char *fmt, ...) {
  if (SP_LOG_WARN > sp_log_threshold) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  sp_log_warn("%s:%d:%d: %s", c->file, sp__pod_line(at), sp__pod_col(at), msg);
}

/* " (did you mean \"x\"?)" for the closest of `keys`, or "". */
static void suggest(const pod_key *keys, const char *key, char *buf, size_t n) {
  sp_param_spec specs[96];
  size_t k = 0;
  for (; keys[k].name != NULL && k + 1 < sizeof specs / sizeof specs[0]; k++)
    specs[k] = (sp_param_spec){.name = keys[k].name};
  specs[k] = (sp_param_spec){0};
  char best[128];
  if (sp_params_closest(specs, NULL, key, best, sizeof best) != NULL)
    snprintf(buf, n, " (did you mean \"%s\"?)", best);
  else
    buf[0] = '\0';
}

int sp__pod_walk(pod_ctx *c, yaml_node_t *map, const pod_key *keys, bool strict, void *obj, const char *owner,
                 const char *where) {
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
    yaml_node_t *k = sp__pod_node(c, p->key), *v = sp__pod_node(c, p->value);
    const char *name = sp__pod_text(k);
    const pod_key *hit = NULL;
    for (const pod_key *e = keys; e->name != NULL && hit == NULL; e++)
      if (strcmp(e->name, name) == 0) hit = e;
    if (hit == NULL) {
      char hint[192];
      suggest(keys, name, hint, sizeof hint);
      if (strict) return sp__pod_fail(c, SP_EINVAL, k, "unknown key \"%s\" in %s%s", name, where, hint);
      sp__pod_warn(c, k, "ignoring unknown key \"%s\" in %s%s", name, where, hint);
      continue;
    }
    if (hit->fn != NULL) SP_TRY(hit->fn(c, obj, owner, k, v));
  }
  return SP_OK;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Typed getters                                                                                           */
/* ------------------------------------------------------------------------------------------------------ */

static bool is_value_scalar(const yaml_node_t *v) {
  return v != NULL && v->type == YAML_SCALAR_NODE && !sp__pod_is_null(v);
}

int sp__pod_string(pod_ctx *c, const char *owner, yaml_node_t *key, yaml_node_t *val, char **out) {
  if (!is_value_scalar(val))
    return sp__pod_fail(c, SP_EINVAL, key, "%s: \"%s\" must be a string", owner, sp__pod_text(key));
  char *s = strdup(sp__pod_text(val));
  if (s == NULL) return sp_fail(c->err, SP_ENOMEM, "out of memory");
  free(*out);
  *out = s;
  return SP_OK;
}

int sp__pod_bool(pod_ctx *c, const char *owner, yaml_node_t *key, yaml_node_t *val, bool *out) {
  if (!is_value_scalar(val))
    return sp__pod_fail(c, SP_EINVAL, key, "%s: \"%s\" must be true or false", owner, sp__pod_text(key));
  if (sp_bool_parse(sp__pod_text(val), out, NULL) != SP_OK)
    return sp__pod_fail(c, SP_EINVAL, key, "%s: \"%s\" must be true or false, got \"%s\"", owner, sp__pod_text(key),
                        sp__pod_text(val));
  return SP_OK;
}

int sp__pod_int(pod_ctx *c, const char *owner, yaml_node_t *key, yaml_node_t *val, int64_t *out) {
  if (!is_value_scalar(val))
    return sp__pod_fail(c, SP_EINVAL, key, "%s: \"%s\" must be an integer", owner, sp__pod_text(key));
  const char *s = sp__pod_text(val);
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0')
    return sp__pod_fail(c, SP_EINVAL, key, "%s: \"%s\" must be an integer, got \"%s\"", owner, sp__pod_text(key), s);
  *out = (int64_t)v;
  return SP_OK;
}

int sp__pod_duration(pod_ctx *c, const char *owner, yaml_node_t *key, yaml_node_t *val, int64_t *out_ms) {
  if (!is_value_scalar(val))
    return sp__pod_fail(c, SP_EINVAL, key, "%s: \"%s\" must be a duration such as 10s, 5m or 1h", owner,
                        sp__pod_text(key));
  if (sp_duration_parse(sp__pod_text(val), out_ms, NULL) != SP_OK)
    return sp__pod_fail(c, SP_EINVAL, key,
                        "%s: invalid duration \"%s\" for \"%s\" (expected e.g. 250ms, 10s, 5m, 1h, 2d, 1w or 1h30m)",
                        owner, sp__pod_text(val), sp__pod_text(key));
  return SP_OK;
}

/* "a|b|c" as "a, b, c". */
static void list_choices(const char *choices, char *buf, size_t n) {
  size_t len = 0;
  buf[0] = '\0';
  for (const char *p = choices; *p && len + 3 < n; p++) {
    if (*p == '|') {
      buf[len++] = ',';
      buf[len++] = ' ';
    } else {
      buf[len++] = *p;
    }
  }
  buf[len] = '\0';
}

int sp__pod_enum(pod_ctx *c, const char *owner, yaml_node_t *key, yaml_node_t *val, const char *choices, char *out_buf,
                 size_t n) {
  char shown[256];
  list_choices(choices, shown, sizeof shown);
  if (!is_value_scalar(val))
    return sp__pod_fail(c, SP_EINVAL, key, "%s: \"%s\" must be one of %s", owner, sp__pod_text(key), shown);
  const char *v = sp__pod_text(val);
  for (const char *p = choices; *p;) {
    size_t len = strcspn(p, "|");
    if (len == strlen(v) && strncasecmp(p, v, len) == 0 && len < n) {
      memcpy(out_buf, p, len);
      out_buf[len] = '\0';
      return SP_OK;
    }
    p += len + (p[len] == '|');
  }
  return sp__pod_fail(c, SP_EINVAL, key, "%s: \"%s\" must be one of %s, got \"%s\"", owner, sp__pod_text(key), shown,
                      v);
}

int sp__pod_expect(pod_ctx *c, const char *owner, yaml_node_t *key, yaml_node_t *val, yaml_node_type_t type) {
  if (val != NULL && val->type == type) return SP_OK;
  if (sp__pod_is_null(val)) return SP_OK; /* `metadata:` with nothing after it is an empty map */
  return sp__pod_fail(c, SP_EINVAL, key, "%s: \"%s\" must be %s", owner, sp__pod_text(key),
                      type == YAML_MAPPING_NODE ? "a mapping" : "a list");
}

sp_secrets *sp__pod_secrets(pod_ctx *c) {
  if (c->secrets == NULL && sp_secrets_create(c->dir, &c->own_secrets, NULL) == SP_OK) c->secrets = c->own_secrets;
  return c->secrets;
}

/* Writes a 0x/0o integer in decimal, as Spice stringifies the number it read. False if not such a number. */
static bool int_decimal(const char *s, char *buf, size_t n) {
  int base = strncmp(s, "0x", 2) == 0 ? 16 : strncmp(s, "0o", 2) == 0 ? 8 : 0;
  if (base == 0) return false;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s + 2, &end, base);
  if (errno != 0 || *end != '\0') return false;
  snprintf(buf, n, "%llu", v);
  return true;
}

/* Stores one param: the value stringified (booleans as true/false) and, when asked, interpolated. */
static int put_param(pod_ctx *c, const char *owner, yaml_node_t *k, yaml_node_t *v, bool interpolate, sp_params *out) {
  const char *key = sp__pod_text(k);
  if (v == NULL || v->type != YAML_SCALAR_NODE || sp__pod_is_null(v))
    return sp__pod_fail(c, SP_EINVAL, k, "%s: parameter \"%s\" must be a string, number or boolean, not %s", owner, key,
                        sp__pod_type_name(v));
  const char *text = sp__pod_text(v);
  char number[32];
  bool b;
  if (sp__pod_scalar_kind(v) == POD_BOOL && sp_bool_parse(text, &b, NULL) == SP_OK) text = b ? "true" : "false";
  if (sp__pod_scalar_kind(v) == POD_INT && int_decimal(text, number, sizeof number)) text = number;
  char *resolved = NULL;
  if (interpolate && strstr(text, "${") != NULL) {
    sp_error e = {0};
    if (sp_secrets_interpolate(sp__pod_secrets(c), text, &resolved, &e) != SP_OK)
      return sp__pod_fail(c, e.code, k, "%s: parameter \"%s\": %s", owner, key, e.msg);
  }
  int rc = sp_params_set(out, key, resolved ? resolved : text, sp__pod_line(k), sp__pod_col(k));
  free(resolved);
  return rc == SP_OK ? SP_OK : sp_fail(c->err, SP_ENOMEM, "out of memory");
}

int sp__pod_params(pod_ctx *c, const char *owner, yaml_node_t *key, yaml_node_t *val, bool interpolate,
                   sp_params *out) {
  SP_TRY(sp__pod_expect(c, owner, key, val, YAML_MAPPING_NODE));
  if (val == NULL || val->type != YAML_MAPPING_NODE) return SP_OK;
  for (yaml_node_pair_t *p = val->data.mapping.pairs.start; p < val->data.mapping.pairs.top; p++)
    SP_TRY(put_param(c, owner, sp__pod_node(c, p->key), sp__pod_node(c, p->value), interpolate, out));
  return SP_OK;
}

/* ------------------------------------------------------------------------------------------------------ */
/* JSON                                                                                                    */
/* ------------------------------------------------------------------------------------------------------ */

typedef struct json_walk {
  pod_ctx *c;
  long nodes;
} json_walk;

static json_t *scalar_json(const yaml_node_t *n) {
  const char *s = sp__pod_text(n);
  size_t len = n->data.scalar.length;
  switch (sp__pod_scalar_kind(n)) {
  case POD_NULL: return json_null();
  case POD_BOOL: return json_boolean(s[0] == 't' || s[0] == 'T');
  case POD_INT: {
    char *end;
    int base = strncmp(s, "0x", 2) == 0 ? 16 : strncmp(s, "0o", 2) == 0 ? 8 : 10;
    errno = 0;
    long long v = strtoll(base == 10 ? s : s + 2, &end, base);
    if (errno == 0 && *end == '\0') return json_integer(v);
    break;
  }
  case POD_FLOAT:
    if (!is_special_float(s)) return json_real(strtod(s, NULL));
    break;
  case POD_STRING: break;
  }
  return json_stringn(s, len);
}

static int node_json(json_walk *w, yaml_node_t *n, int depth, json_t **out);

/* Converts a mapping, failing on a non-scalar key or a key written twice (YAML forbids both; serde_yaml,
 * and so Spice, rejects them). */
static int mapping_json(json_walk *w, yaml_node_t *n, int depth, json_t **out) {
  pod_ctx *c = w->c;
  json_t *obj = json_object();
  if (obj == NULL) return sp_fail(c->err, SP_ENOMEM, "out of memory");
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = sp__pod_node(c, p->key), *v = sp__pod_node(c, p->value);
    int rc = SP_OK;
    json_t *jv = NULL;
    if (k == NULL || k->type != YAML_SCALAR_NODE) {
      rc = sp__pod_fail(c, SP_EINVAL, k, "mapping keys must be plain values, not %s", sp__pod_type_name(k));
    } else if (json_object_get(obj, sp__pod_text(k)) != NULL) {
      yaml_node_t *first = NULL;
      sp__pod_get(c, n, sp__pod_text(k), &first);
      rc = sp__pod_fail(c, SP_EINVAL, k, "duplicate key \"%s\" (first at line %d)", sp__pod_text(k),
                        sp__pod_line(first));
    } else if ((rc = node_json(w, v, depth + 1, &jv)) == SP_OK && json_object_set_new(obj, sp__pod_text(k), jv) != 0) {
      rc = sp_fail(c->err, SP_ENOMEM, "out of memory");
    }
    if (rc != SP_OK) {
      json_decref(obj);
      return rc;
    }
  }
  *out = obj;
  return SP_OK;
}

static int sequence_json(json_walk *w, yaml_node_t *n, int depth, json_t **out) {
  json_t *arr = json_array();
  if (arr == NULL) return sp_fail(w->c->err, SP_ENOMEM, "out of memory");
  for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
    json_t *jv = NULL;
    int rc = node_json(w, sp__pod_node(w->c, *i), depth + 1, &jv);
    if (rc == SP_OK && json_array_append_new(arr, jv) != 0) rc = sp_fail(w->c->err, SP_ENOMEM, "out of memory");
    if (rc != SP_OK) {
      json_decref(arr);
      return rc;
    }
  }
  *out = arr;
  return SP_OK;
}

static int node_json(json_walk *w, yaml_node_t *n, int depth, json_t **out) {
  if (n == NULL) return (*out = json_null()) ? SP_OK : sp_fail(w->c->err, SP_ENOMEM, "out of memory");
  if (depth > POD_JSON_MAX_DEPTH)
    return sp__pod_fail(w->c, SP_EINVAL, n, "the spicepod nests deeper than %d levels", POD_JSON_MAX_DEPTH);
  if (++w->nodes > POD_JSON_MAX_NODES)
    return sp__pod_fail(w->c, SP_EINVAL, n, "the spicepod expands to more than %d values (check its aliases)",
                        POD_JSON_MAX_NODES);
  switch (n->type) {
  case YAML_MAPPING_NODE: return mapping_json(w, n, depth, out);
  case YAML_SEQUENCE_NODE: return sequence_json(w, n, depth, out);
  case YAML_SCALAR_NODE:
    if ((*out = scalar_json(n)) == NULL) return sp__pod_fail(w->c, SP_EINVAL, n, "value is not valid UTF-8");
    return SP_OK;
  case YAML_NO_NODE: break;
  }
  return (*out = json_null()) ? SP_OK : sp_fail(w->c->err, SP_ENOMEM, "out of memory");
}

int sp__pod_to_json(pod_ctx *c, yaml_node_t *root, char **out) {
  json_walk w = {.c = c};
  json_t *j = NULL;
  SP_TRY(node_json(&w, root, 0, &j));
  char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
  json_decref(j);
  if (s == NULL) return sp_fail(c->err, SP_ENOMEM, "out of memory");
  *out = s;
  return SP_OK;
}
