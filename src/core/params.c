/* SPDX-License-Identifier: Apache-2.0
 *
 * Parameter maps and their validation against a module's declarative table (params.h), plus the two
 * scalar parsers every part of the runtime shares: Spice durations and boolean words.
 *
 * Validation follows Spice's prefix rule (spice-compat §1.4): connector-type params (SP_PARAM_PREFIXED) are
 * written `<prefix>_<name>`, runtime-type params bare. Keys in the wrong form and unknown keys are dropped
 * with a warning; the rest are type-checked and canonicalised into a fresh map. Values of SP_PARAM_SECRET
 * params never reach a message or a log line.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spice/log.h"
#include "spice/params.h"
#include "spice/secrets.h"

/* Keys every dataset may carry whatever its connector declares: the pod loader stores
 * `unsupported_type_action` here so that connectors can read it from their validated params. */
static const char *const universal_keys[] = {"unsupported_type_action", NULL};

/* ------------------------------------------------------------------------------------------------------ */
/* Maps                                                                                                    */
/* ------------------------------------------------------------------------------------------------------ */

int sp_params_set(sp_params *p, const char *key, const char *value, int line, int col) {
  sp_kv *items = realloc(p->items, (p->count + 1) * sizeof *items);
  if (items == NULL) return SP_ENOMEM;
  p->items = items;
  char *k = strdup(key), *v = strdup(value);
  if (k == NULL || v == NULL) {
    free(k);
    free(v);
    return SP_ENOMEM;
  }
  items[p->count++] = (sp_kv){.key = k, .value = v, .line = line, .col = col};
  return SP_OK;
}

const sp_kv *sp_params_find(const sp_params *p, const char *key) {
  if (p == NULL || key == NULL) return NULL;
  for (size_t i = 0; i < p->count; i++)
    if (strcmp(p->items[i].key, key) == 0) return &p->items[i];
  return NULL;
}

const char *sp_params_get(const sp_params *p, const char *key) {
  const sp_kv *kv = sp_params_find(p, key);
  return kv ? kv->value : NULL;
}

bool sp_params_get_bool(const sp_params *p, const char *key, bool fallback) {
  const char *v = sp_params_get(p, key);
  bool b = fallback;
  if (v == NULL || sp_bool_parse(v, &b, NULL) != SP_OK) return fallback;
  return b;
}

/* Parses a whole string as a signed 64-bit decimal (leading '+' or '-' allowed, nothing after). */
static int parse_int64(const char *s, int64_t *out) {
  if (s == NULL || *s == '\0' || isspace((unsigned char)*s)) return SP_EINVAL;
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || *end != '\0' || end == s) return SP_EINVAL;
  *out = (int64_t)v;
  return SP_OK;
}

int64_t sp_params_get_int(const sp_params *p, const char *key, int64_t fallback) {
  const char *v = sp_params_get(p, key);
  int64_t n;
  if (v == NULL || parse_int64(v, &n) != SP_OK) return fallback;
  return n;
}

int64_t sp_params_get_duration_ms(const sp_params *p, const char *key, int64_t fallback) {
  const char *v = sp_params_get(p, key);
  int64_t ms;
  if (v == NULL || sp_duration_parse(v, &ms, NULL) != SP_OK) return fallback;
  return ms;
}

int sp_params_copy(sp_params *out, const sp_params *src) {
  sp_params tmp = {.file = src->file};
  for (size_t i = 0; i < src->count; i++) {
    const sp_kv *kv = &src->items[i];
    if (sp_params_set(&tmp, kv->key, kv->value, kv->line, kv->col) != SP_OK) {
      sp_params_free(&tmp);
      return SP_ENOMEM;
    }
  }
  *out = tmp;
  return SP_OK;
}

void sp_params_free(sp_params *p) {
  if (p == NULL) return;
  for (size_t i = 0; i < p->count; i++) {
    free(p->items[i].key);
    free(p->items[i].value);
  }
  free(p->items);
  p->items = NULL;
  p->count = 0;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Scalars: durations and booleans                                                                        */
/* ------------------------------------------------------------------------------------------------------ */

/* Units as the Rust `fundu` crate accepts them in Spice; longest spelling first so "ms" wins over "m". */
static const struct {
  const char *unit;
  double ms;
} duration_units[] = {
    {"ns", 1e-6}, {"us", 1e-3},  {"\xc2\xb5s", 1e-3}, {"ms", 1.0},     {"s", 1e3},
    {"m", 60e3},  {"h", 3600e3}, {"d", 86400e3},      {"w", 604800e3},
};

/* Matches the unit at *s (exact letters, up to the next digit, space or end). Returns ms per unit or 0. */
static double match_unit(const char **s) {
  size_t n = 0;
  while ((*s)[n] != '\0' && !isdigit((unsigned char)(*s)[n]) && (*s)[n] != ' ' && (*s)[n] != '.')
    n++;
  for (size_t i = 0; i < sizeof duration_units / sizeof duration_units[0]; i++) {
    if (strlen(duration_units[i].unit) == n && strncmp(*s, duration_units[i].unit, n) == 0) {
      *s += n;
      return duration_units[i].ms;
    }
  }
  return 0;
}

/* Reads "<digits>[.<digits>]" at *s into *out. */
static int read_number(const char **s, double *out) {
  const char *p = *s;
  double v = 0;
  int digits = 0;
  for (; isdigit((unsigned char)*p); p++, digits++)
    v = v * 10 + (*p - '0');
  if (*p == '.') {
    double scale = 0.1;
    for (p++; isdigit((unsigned char)*p); p++, digits++, scale /= 10)
      v += (*p - '0') * scale;
  }
  if (digits == 0) return SP_EINVAL;
  *s = p;
  *out = v;
  return SP_OK;
}

int sp_duration_parse(const char *s, int64_t *out_ms, sp_error *err) {
  const char *p = s;
  double total = 0;
  int parts = 0;
  if (s == NULL) return sp_fail(err, SP_EINVAL, "invalid duration: empty");
  while (*p == ' ')
    p++;
  while (*p != '\0') {
    double v, unit;
    if (read_number(&p, &v) != SP_OK) goto bad;
    while (*p == ' ')
      p++;
    if (*p == '\0' && parts == 0) {
      unit = 1e3; /* a bare number is seconds, as in fundu */
    } else if ((unit = match_unit(&p)) == 0) {
      goto bad;
    }
    total += v * unit;
    parts++;
    while (*p == ' ')
      p++;
  }
  if (parts == 0 || total > 9.2e18) goto bad;
  *out_ms = (int64_t)total;
  return SP_OK;
bad:
  return sp_fail(err, SP_EINVAL,
                 "invalid duration \"%s\" (expected a number and a unit: 250ms, 10s, 5m, 1h, 2d, 1w, 1h30m)", s);
}

int sp_bool_parse(const char *s, bool *out, sp_error *err) {
  static const char *const yes[] = {"true", "yes", "on", "enabled", "1", NULL};
  static const char *const no[] = {"false", "no", "off", "disabled", "0", NULL};
  for (int i = 0; s != NULL && yes[i] != NULL; i++) {
    if (strcasecmp(s, yes[i]) == 0) return (*out = true), SP_OK;
    if (strcasecmp(s, no[i]) == 0) return (*out = false), SP_OK;
  }
  return sp_fail(err, SP_EINVAL, "invalid boolean \"%s\" (expected true or false)", s ? s : "");
}

/* ------------------------------------------------------------------------------------------------------ */
/* Closest key                                                                                             */
/* ------------------------------------------------------------------------------------------------------ */

static bool same_letter(char a, char b) { return tolower((unsigned char)a) == tolower((unsigned char)b); }

/* Optimal-string-alignment distance (Levenshtein plus adjacent transpositions) of a[0..na) and b[0..nb),
 * capped at 255 so that long inputs stay cheap. */
static int edit_distance(const char *a, size_t na, const char *b, size_t nb) {
  enum { CAP = 64 };
  if (na > CAP || nb > CAP) return 255;
  int d[CAP + 1][CAP + 1];
  for (size_t i = 0; i <= na; i++)
    d[i][0] = (int)i;
  for (size_t j = 0; j <= nb; j++)
    d[0][j] = (int)j;
  for (size_t i = 1; i <= na; i++) {
    for (size_t j = 1; j <= nb; j++) {
      int best = d[i - 1][j - 1] + !same_letter(a[i - 1], b[j - 1]);
      if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && same_letter(a[i - 1], b[j - 2]) && same_letter(a[i - 2], b[j - 1]) &&
          d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  }
  return d[na][nb];
}

/* True when every '_'-separated word of `key` is, within one edit, a word of `cand`
 * ("refresh_intervall" and "refresh_check_interval"). Short words (< 4 letters) must match exactly. */
static bool words_covered(const char *key, const char *cand) {
  int words = 0;
  for (const char *w = key; *w != '\0';) {
    size_t wl = strcspn(w, "_");
    if (wl > 0) {
      bool found = false;
      for (const char *c = cand; *c != '\0' && !found;) {
        size_t cl = strcspn(c, "_");
        found = cl > 0 && edit_distance(w, wl, c, cl) <= (wl >= 4 ? 1 : 0);
        c += cl + (c[cl] == '_');
      }
      if (!found) return false;
      words++;
    }
    w += wl + (w[wl] == '_');
  }
  return words > 0;
}

/* Writes the full form of spec `sp` (prefixed or bare) into buf. */
static const char *full_name(const sp_param_spec *sp, const char *prefix, char *buf, size_t n) {
  if (buf == NULL || n == 0) return sp->name;
  if ((sp->flags & SP_PARAM_PREFIXED) && prefix != NULL && *prefix != '\0')
    snprintf(buf, n, "%s_%s", prefix, sp->name);
  else
    snprintf(buf, n, "%s", sp->name);
  return buf;
}

const char *sp_params_closest(const sp_param_spec *specs, const char *prefix, const char *key, char *buf, size_t n) {
  const sp_param_spec *best = NULL;
  int best_d = 4, best_words_d = INT_MAX;
  const sp_param_spec *best_words = NULL;
  char full[256];
  for (const sp_param_spec *sp = specs; sp != NULL && sp->name != NULL; sp++) {
    full_name(sp, prefix, full, sizeof full);
    int d = edit_distance(key, strlen(key), full, strlen(full));
    if (d < best_d) best_d = d, best = sp;
    if (best == NULL && d < best_words_d && words_covered(key, full)) best_words_d = d, best_words = sp;
  }
  if (best == NULL) best = best_words;
  return best ? full_name(best, prefix, buf, n) : NULL;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Validation                                                                                              */
/* ------------------------------------------------------------------------------------------------------ */

static const sp_param_spec *spec_named(const sp_param_spec *specs, const char *name, bool prefixed) {
  for (const sp_param_spec *sp = specs; sp != NULL && sp->name != NULL; sp++)
    if (strcmp(sp->name, name) == 0 && ((sp->flags & SP_PARAM_PREFIXED) != 0) == prefixed) return sp;
  return NULL;
}

/* The name after "<prefix>_" when key has that form, else NULL. */
static const char *strip_prefix(const char *prefix, const char *key) {
  size_t n = prefix ? strlen(prefix) : 0;
  if (n == 0 || strncmp(key, prefix, n) != 0 || key[n] != '_' || key[n + 1] == '\0') return NULL;
  return key + n + 1;
}

/* "file:line:col: " for a value that came from a file, else "". */
static void where(const sp_params *raw, const sp_kv *kv, char *buf, size_t n) {
  if (kv != NULL && kv->line > 0 && raw->file != NULL)
    snprintf(buf, n, "%s:%d:%d: ", raw->file, kv->line, kv->col);
  else
    buf[0] = '\0';
}

/* Finds the spec a raw key refers to in its correct form. When the key is in the wrong form, or unknown,
 * logs why it is ignored and returns NULL. */
static const sp_param_spec *resolve_key(const sp_param_spec *specs, const char *prefix, const sp_params *raw,
                                        const sp_kv *kv, const char *what) {
  const char *key = kv->key, *rest = strip_prefix(prefix, key);
  const sp_param_spec *sp;
  char at[512], right[256];
  bool no_prefix = prefix == NULL || *prefix == '\0';
  if ((sp = spec_named(specs, key, false)) != NULL) return sp;
  if (rest != NULL && (sp = spec_named(specs, rest, true)) != NULL) return sp;
  if (no_prefix && (sp = spec_named(specs, key, true)) != NULL) return sp; /* a module without a prefix */
  where(raw, kv, at, sizeof at);
  if (spec_named(specs, key, true) != NULL) {
    sp_log_warn("%s%s: ignoring parameter \"%s\": connector parameters take the prefix, write \"%s_%s\"", at, what, key,
                prefix, key);
  } else if (rest != NULL && spec_named(specs, rest, false) != NULL) {
    sp_log_warn("%s%s: ignoring parameter \"%s\": runtime parameters take no prefix, write \"%s\"", at, what, key,
                rest);
  } else if (sp_params_closest(specs, prefix, key, right, sizeof right) != NULL) {
    sp_log_warn("%s%s: ignoring unknown parameter \"%s\" (did you mean \"%s\"?)", at, what, key, right);
  } else {
    sp_log_warn("%s%s: ignoring unknown parameter \"%s\"", at, what, key);
  }
  return NULL;
}

/* True when s is exactly one UTF-8 character. */
static bool one_char(const char *s) {
  size_t n = strlen(s);
  if (n == 1) return true;
  unsigned char c = (unsigned char)s[0];
  size_t want = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
  return want > 1 && n == want;
}

/* The choice in "a|b|c" equal to v ignoring case, copied into buf; NULL if none. */
static const char *match_choice(const char *choices, const char *v, char *buf, size_t n) {
  for (const char *c = choices; c != NULL && *c != '\0';) {
    size_t len = strcspn(c, "|");
    if (len == strlen(v) && strncasecmp(c, v, len) == 0 && len < n) {
      memcpy(buf, c, len);
      buf[len] = '\0';
      return buf;
    }
    c += len;
    if (*c == '|') c++;
  }
  return NULL;
}

/* "a|b|c" as "a, b, c" for messages. */
static void show_choices(const char *choices, char *buf, size_t n) {
  size_t len = 0;
  for (const char *c = choices ? choices : ""; *c != '\0' && len + 3 < n; c++) {
    if (*c == '|')
      buf[len++] = ',', buf[len++] = ' ';
    else
      buf[len++] = *c;
  }
  buf[len] = '\0';
}

bool sp_param_is_password(const char *key) {
  /* Secret-capable params include user names and hosts (Spice lets them come from a secret store); only these
   * hide their values in logs, or every message naming the user would be blanked. */
  static const char *const words[] = {"pass", "secret", "token", "key", NULL};
  for (int i = 0; words[i]; i++)
    if (strstr(key, words[i])) return true;
  return false;
}

/* Checks value against the spec's type; on success *canon is the value to store (borrowed from value or
 * buf). Secret values are never quoted back. */
static int check_type(const sp_param_spec *sp, const char *key, const char *value, const char **canon, char *buf,
                      size_t n, sp_error *err) {
  bool secret = (sp->flags & SP_PARAM_SECRET) != 0, b;
  int64_t i;
  const char *expected = NULL;
  *canon = value;
  if (secret && sp_param_is_password(key)) sp_log_redact(value);
  switch (sp->type) {
  case SP_PARAM_STRING: return SP_OK;
  case SP_PARAM_INT: expected = parse_int64(value, &i) == SP_OK ? NULL : "an integer"; break;
  case SP_PARAM_BOOL: expected = sp_bool_parse(value, &b, NULL) == SP_OK ? NULL : "true or false"; break;
  case SP_PARAM_DURATION:
    expected = sp_duration_parse(value, &i, NULL) == SP_OK ? NULL : "a duration such as 10s, 5m or 1h";
    break;
  case SP_PARAM_CHAR: expected = one_char(value) ? NULL : "a single character"; break;
  case SP_PARAM_ENUM:
    if ((*canon = match_choice(sp->choices, value, buf, n)) == NULL) {
      char shown[256];
      *canon = value;
      show_choices(sp->choices, shown, sizeof shown);
      if (secret) return sp_fail(err, SP_EINVAL, "parameter \"%s\" must be one of %s", key, shown);
      return sp_fail(err, SP_EINVAL, "parameter \"%s\" must be one of %s, got \"%s\"", key, shown, value);
    }
    return SP_OK;
  }
  if (expected == NULL) return SP_OK;
  if (secret) return sp_fail(err, SP_EINVAL, "parameter \"%s\" must be %s", key, expected);
  return sp_fail(err, SP_EINVAL, "parameter \"%s\" must be %s, got \"%s\"", key, expected, value);
}

/* The raw entry for spec `sp` written in its correct form (last one wins, as in a YAML map), or NULL. */
static const sp_kv *raw_for(const sp_param_spec *sp, const char *prefix, const sp_params *raw) {
  const sp_kv *hit = NULL;
  for (size_t i = 0; i < raw->count; i++) {
    const char *key = raw->items[i].key;
    bool prefixed = (sp->flags & SP_PARAM_PREFIXED) != 0 && prefix != NULL && *prefix != '\0';
    const char *name = prefixed ? strip_prefix(prefix, key) : key;
    if (name != NULL && strcmp(name, sp->name) == 0) hit = &raw->items[i];
  }
  return hit;
}

/* Fills one spec's entry into out: the written value, else a secret from the stores, else the default.
 * A required one that is still absent is an error. */
static int fill_one(const sp_param_spec *sp, const char *prefix, const sp_params *raw, sp_secrets *secrets,
                    const char *what, sp_params *out, sp_error *err) {
  char key[256], canon_buf[256], at[512];
  full_name(sp, prefix, key, sizeof key);
  const sp_kv *kv = raw_for(sp, prefix, raw);
  if (kv != NULL) {
    const char *canon;
    if (check_type(sp, key, kv->value, &canon, canon_buf, sizeof canon_buf, err) != SP_OK) {
      where(raw, kv, at, sizeof at);
      sp_error_prefix(err, "%s%s", at, what);
      return SP_EINVAL;
    }
    return sp_params_set(out, key, canon, kv->line, kv->col) == SP_OK ? SP_OK
                                                                      : sp_fail(err, SP_ENOMEM, "out of memory");
  }
  if ((sp->flags & SP_PARAM_SECRET) && secrets != NULL) {
    char *v = sp_secrets_get(secrets, "secrets", key);
    if (v != NULL) {
      if (sp_param_is_password(key)) sp_log_redact(v);
      int rc = sp_params_set(out, key, v, 0, 0);
      free(v);
      return rc == SP_OK ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
    }
  }
  if (sp->default_value != NULL)
    return sp_params_set(out, key, sp->default_value, 0, 0) == SP_OK ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  if (sp->flags & SP_PARAM_REQUIRED) return sp_fail(err, SP_EINVAL, "%s: missing required parameter: %s", what, key);
  return SP_OK;
}

/* Keeps the universal keys (see universal_keys) that raw carries. */
static int keep_universal(const sp_params *raw, sp_params *out) {
  for (size_t i = 0; i < raw->count; i++) {
    for (int u = 0; universal_keys[u] != NULL; u++) {
      const sp_kv *kv = &raw->items[i];
      if (strcmp(kv->key, universal_keys[u]) == 0 && sp_params_find(out, kv->key) == NULL &&
          sp_params_set(out, kv->key, kv->value, kv->line, kv->col) != SP_OK)
        return SP_ENOMEM;
    }
  }
  return SP_OK;
}

static bool is_universal(const sp_param_spec *specs, const char *key) {
  for (int u = 0; universal_keys[u] != NULL; u++)
    if (strcmp(key, universal_keys[u]) == 0) return spec_named(specs, key, false) == NULL;
  return false;
}

int sp_params_validate(const sp_param_spec *specs, const char *prefix, const sp_params *raw, sp_secrets *secrets,
                       const char *what, sp_params *out, sp_error *err) {
  static const sp_params empty = {0};
  sp_params res = {.file = raw ? raw->file : NULL};
  if (raw == NULL) raw = &empty;
  if (what == NULL) what = "parameters";
  for (size_t i = 0; i < raw->count; i++)
    if (!is_universal(specs, raw->items[i].key)) resolve_key(specs, prefix, raw, &raw->items[i], what);
  for (const sp_param_spec *sp = specs; sp != NULL && sp->name != NULL; sp++) {
    int rc = fill_one(sp, prefix, raw, secrets, what, &res, err);
    if (rc != SP_OK) {
      sp_params_free(&res);
      return rc;
    }
  }
  if (keep_universal(raw, &res) != SP_OK) {
    sp_params_free(&res);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  *out = res;
  return SP_OK;
}
