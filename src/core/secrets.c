/* SPDX-License-Identifier: Apache-2.0
 *
 * Secret stores and `${store:key}` interpolation (spice-compat §8).
 *
 * Only the `env` store exists: the process environment, then the dotenv files `.env.local` and `.env` in the
 * pod folder (or one `file_path` given in the store's params). The files are read once, when the store is
 * made; the environment is read at each lookup, so a variable exported later is seen. As in Spice (which
 * loads the files into the environment without overriding it), a lookup of `pg_pass` tries SPICE_PG_PASS
 * in every source, then PG_PASS in every source.
 *
 * Stores are kept in declaration order; `${secrets:key}` searches them from the last to the first (stores
 * declared later win). A mutex guards the list so lookups may run on any thread while a pod adds stores.
 * Values are never logged and never appear in an error message.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spice/log.h"
#include "spice/params.h"
#include "spice/secrets.h"

#define SP_DOTENV_MAX (16u << 20) /* a dotenv file larger than this is not a dotenv file */

typedef struct env_var {
  char *key;
  char *value;
} env_var;

/* One store. `vars` holds the dotenv files' variables in file order; the first of equal keys wins. */
typedef struct secret_store {
  char *name; /* as written in `${name:key}` */
  env_var *vars;
  size_t n_vars;
} secret_store;

struct sp_secrets {
  pthread_mutex_t mu;
  char *dir;            /* pod folder, for dotenv files */
  secret_store *stores; /* declaration order */
  size_t n_stores;
  bool declared; /* a spicepod listed its stores: the default one was replaced */
};

/* ------------------------------------------------------------------------------------------------------ */
/* Dotenv files                                                                                            */
/* ------------------------------------------------------------------------------------------------------ */

/* A growable string. */
typedef struct sbuf {
  char *p;
  size_t len, cap;
} sbuf;

static int sbuf_putn(sbuf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) return SP_ENOMEM;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
  return SP_OK;
}

static int sbuf_putc(sbuf *b, char c) { return sbuf_putn(b, &c, 1); }

static const env_var *vars_find(const env_var *vars, size_t n, const char *key) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(vars[i].key, key) == 0) return &vars[i];
  return NULL;
}

/* Adds key=value to the store unless the key is already there (an earlier file wins). */
static int store_add_var(secret_store *st, const char *key, size_t klen, const char *value) {
  char *k = strndup(key, klen);
  if (k == NULL) return SP_ENOMEM;
  if (vars_find(st->vars, st->n_vars, k) != NULL) {
    free(k);
    return SP_OK;
  }
  env_var *vars = realloc(st->vars, (st->n_vars + 1) * sizeof *vars);
  char *v = strdup(value);
  if (vars != NULL) st->vars = vars;
  if (vars == NULL || v == NULL) {
    free(k);
    free(v);
    return SP_ENOMEM;
  }
  st->vars[st->n_vars++] = (env_var){.key = k, .value = v};
  return SP_OK;
}

/* Reads a double-quoted dotenv value at *p (after the quote), with \n \t \r \\ \" \$ escapes; it may span
 * lines. Leaves *p after the closing quote. */
static int read_double_quoted(const char **p, sbuf *out) {
  const char *s = *p;
  for (; *s != '\0' && *s != '"'; s++) {
    char c = *s;
    if (c == '\\' && s[1] != '\0') {
      s++;
      c = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s == 'r' ? '\r' : *s;
    }
    if (sbuf_putc(out, c) != SP_OK) return SP_ENOMEM;
  }
  *p = *s == '"' ? s + 1 : s;
  return SP_OK;
}

/* Reads one value at *p (quoted or bare, bare ends at the line end or at a " #" comment). */
static int read_value(const char **p, sbuf *out) {
  const char *s = *p;
  if (*s == '"') {
    *p = s + 1;
    return read_double_quoted(p, out);
  }
  if (*s == '\'') {
    const char *end = strchr(s + 1, '\'');
    if (end == NULL) end = s + strlen(s);
    *p = *end ? end + 1 : end;
    return sbuf_putn(out, s + 1, (size_t)(end - s - 1));
  }
  const char *end = s;
  while (*end != '\0' && *end != '\n' && !(*end == '#' && end > s && isspace((unsigned char)end[-1])))
    end++;
  *p = end;
  while (end > s && isspace((unsigned char)end[-1]))
    end--;
  return sbuf_putn(out, s, (size_t)(end - s));
}

static void skip_blanks(const char **p) {
  while (**p == ' ' || **p == '\t')
    (*p)++;
}

/* Parses dotenv text: KEY=VALUE lines, `export ` allowed, `#` comments, quoted values. Lines that are not
 * assignments are skipped, as dotenv tools do. */
static int parse_dotenv(secret_store *st, const char *text) {
  const char *p = text;
  while (*p != '\0') {
    skip_blanks(&p);
    if (strncmp(p, "export ", 7) == 0) p += 7, skip_blanks(&p);
    const char *key = p;
    while (isalnum((unsigned char)*p) || *p == '_' || *p == '.' || *p == '-')
      p++;
    size_t klen = (size_t)(p - key);
    skip_blanks(&p);
    if (klen > 0 && *p == '=') {
      p++;
      skip_blanks(&p);
      sbuf v = {0};
      int rc = read_value(&p, &v);
      if (rc == SP_OK) rc = store_add_var(st, key, klen, v.p ? v.p : "");
      free(v.p);
      if (rc != SP_OK) return rc;
    }
    p += strcspn(p, "\n");
    if (*p == '\n') p++;
  }
  return SP_OK;
}

/* Loads `dir/name` into the store. A missing file is fine unless `must_exist`. */
static int load_dotenv(secret_store *st, const char *dir, const char *name, bool must_exist, sp_error *err) {
  char path[4096];
  if (name[0] == '/' || dir == NULL)
    snprintf(path, sizeof path, "%s", name);
  else
    snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    if (!must_exist && errno == ENOENT) return SP_OK;
    return sp_fail(err, SP_ENOTFOUND, "could not read env file \"%s\": %s", path, strerror(errno));
  }
  sbuf text = {0};
  char chunk[8192];
  size_t n;
  int rc = SP_OK;
  while (rc == SP_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
    rc = text.len + n > SP_DOTENV_MAX ? SP_EINVAL : sbuf_putn(&text, chunk, n);
  fclose(f);
  if (rc == SP_OK && text.p != NULL) rc = parse_dotenv(st, text.p);
  free(text.p);
  if (rc == SP_EINVAL) return sp_fail(err, rc, "env file \"%s\" is too large", path);
  return rc == SP_OK ? SP_OK : sp_fail(err, rc, "out of memory reading env file \"%s\"", path);
}

/* ------------------------------------------------------------------------------------------------------ */
/* Stores                                                                                                  */
/* ------------------------------------------------------------------------------------------------------ */

static void store_free(secret_store *st) {
  for (size_t i = 0; i < st->n_vars; i++) {
    free(st->vars[i].key);
    free(st->vars[i].value);
  }
  free(st->vars);
  free(st->name);
  memset(st, 0, sizeof *st);
}

/* Makes an env store named `name` reading `file_path` (relative to dir) or .env.local then .env. */
static int env_store_make(const char *dir, const char *name, const char *file_path, secret_store *out, sp_error *err) {
  secret_store st = {.name = strdup(name)};
  if (st.name == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  int rc =
      file_path != NULL ? load_dotenv(&st, dir, file_path, true, err) : load_dotenv(&st, dir, ".env.local", false, err);
  if (rc == SP_OK && file_path == NULL) rc = load_dotenv(&st, dir, ".env", false, err);
  if (rc != SP_OK) {
    store_free(&st);
    return rc;
  }
  *out = st;
  return SP_OK;
}

/* Looks `key` up as Spice's env store does: SPICE_<KEY> then <KEY>, each in the environment, then in the
 * files. Returns a malloc'd copy or NULL. */
static char *env_store_get(const secret_store *st, const char *key) {
  char upper[512], name[520];
  size_t n = strlen(key);
  if (n >= sizeof upper) return NULL;
  for (size_t i = 0; i <= n; i++)
    upper[i] = (char)toupper((unsigned char)key[i]);
  for (int pass = 0; pass < 2; pass++) {
    snprintf(name, sizeof name, "%s%s", pass == 0 ? "SPICE_" : "", upper);
    const char *v = getenv(name);
    if (v == NULL) {
      const env_var *ev = vars_find(st->vars, st->n_vars, name);
      v = ev ? ev->value : NULL;
    }
    if (v != NULL) return strdup(v);
  }
  return NULL;
}

int sp_secrets_create(const char *pod_dir, sp_secrets **out, sp_error *err) {
  sp_secrets *s = calloc(1, sizeof *s);
  if (s == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  s->dir = strdup(pod_dir ? pod_dir : ".");
  s->stores = calloc(1, sizeof *s->stores);
  if (s->dir == NULL || s->stores == NULL) {
    free(s->dir);
    free(s->stores);
    free(s);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  int rc = env_store_make(s->dir, "env", NULL, &s->stores[0], err);
  if (rc != SP_OK) {
    free(s->dir);
    free(s->stores);
    free(s);
    return rc;
  }
  s->n_stores = 1;
  pthread_mutex_init(&s->mu, NULL);
  *out = s;
  return SP_OK;
}

void sp_secrets_destroy(sp_secrets *s) {
  if (s == NULL) return;
  for (size_t i = 0; i < s->n_stores; i++)
    store_free(&s->stores[i]);
  free(s->stores);
  free(s->dir);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

/* Puts st into the list (replacing a store of the same name), under the lock. Takes st even on failure. */
static int stores_put(sp_secrets *s, secret_store *st) {
  if (!s->declared) {
    for (size_t i = 0; i < s->n_stores; i++)
      store_free(&s->stores[i]);
    s->n_stores = 0;
    s->declared = true;
  }
  for (size_t i = 0; i < s->n_stores; i++) {
    if (strcmp(s->stores[i].name, st->name) == 0) {
      store_free(&s->stores[i]);
      memmove(&s->stores[i], &s->stores[i + 1], (s->n_stores - i - 1) * sizeof *s->stores);
      s->n_stores--;
      break;
    }
  }
  secret_store *stores = realloc(s->stores, (s->n_stores + 1) * sizeof *stores);
  if (stores == NULL) {
    store_free(st);
    return SP_ENOMEM;
  }
  s->stores = stores;
  s->stores[s->n_stores++] = *st;
  return SP_OK;
}

int sp_secrets_add_store(sp_secrets *s, const char *from, const char *name, const sp_params *params, sp_error *err) {
  size_t kind_len = strcspn(from, ":");
  if (strncmp(from, "env", kind_len) != 0 || kind_len != 3)
    return sp_fail(err, SP_ENOTSUP, "secret store \"%.*s\" is not supported (supported: env)", (int)kind_len, from);
  if (from[kind_len] == ':') return sp_fail(err, SP_EINVAL, "secret store \"env\" takes no selector: \"%s\"", from);
  secret_store st;
  SP_TRY(env_store_make(s->dir, name ? name : "env", sp_params_get(params, "file_path"), &st, err));
  pthread_mutex_lock(&s->mu);
  int rc = stores_put(s, &st);
  pthread_mutex_unlock(&s->mu);
  return rc == SP_OK ? SP_OK : sp_fail(err, rc, "out of memory");
}

/* Looks key up under the lock; `found_store` tells whether the store name exists. */
static char *lookup(sp_secrets *s, const char *store, const char *key, bool *found_store) {
  char *v = NULL;
  *found_store = false;
  if (s == NULL) return NULL;
  bool all = strcmp(store, "secrets") == 0;
  pthread_mutex_lock(&s->mu);
  for (size_t i = s->n_stores; i-- > 0 && v == NULL;) {
    if (!all && strcmp(s->stores[i].name, store) != 0) continue;
    *found_store = true;
    v = env_store_get(&s->stores[i], key);
  }
  pthread_mutex_unlock(&s->mu);
  if (all) *found_store = true;
  return v;
}

char *sp_secrets_get(sp_secrets *s, const char *store, const char *key) {
  bool found_store;
  if (store == NULL || key == NULL) return NULL;
  return lookup(s, store, key, &found_store);
}

/* ------------------------------------------------------------------------------------------------------ */
/* Interpolation                                                                                           */
/* ------------------------------------------------------------------------------------------------------ */

/* Reads an identifier [A-Za-z][A-Za-z0-9_-]* at *p; returns its length (0: none). */
static size_t read_ident(const char **p) {
  const char *s = *p;
  if (!isalpha((unsigned char)*s)) return 0;
  while (isalnum((unsigned char)*s) || *s == '_' || *s == '-')
    s++;
  size_t n = (size_t)(s - *p);
  *p = s;
  return n;
}

static void skip_space(const char **p) {
  while (isspace((unsigned char)**p))
    (*p)++;
}

/* Parses "${ store : key }" at p (pointing at '$'). On a match fills the names and returns the length of the
 * reference; 0 when p does not start a reference (the text is then kept as written). */
static size_t parse_ref(const char *p, char *store, size_t ns, char *key, size_t nk) {
  const char *s = p + 2, *a, *b;
  size_t la, lb;
  skip_space(&s);
  a = s;
  if ((la = read_ident(&s)) == 0) return 0;
  skip_space(&s);
  if (*s++ != ':') return 0;
  skip_space(&s);
  b = s;
  if ((lb = read_ident(&s)) == 0) return 0;
  skip_space(&s);
  if (*s != '}' || la >= ns || lb >= nk) return 0;
  memcpy(store, a, la);
  store[la] = '\0';
  memcpy(key, b, lb);
  key[lb] = '\0';
  return (size_t)(s + 1 - p);
}

int sp_secrets_interpolate(sp_secrets *s, const char *in, char **out, sp_error *err) {
  sbuf b = {0};
  int rc = sbuf_putn(&b, "", 0);
  for (const char *p = in; rc == SP_OK && *p != '\0';) {
    char store[256], key[512];
    size_t n = p[0] == '$' && p[1] == '{' ? parse_ref(p, store, sizeof store, key, sizeof key) : 0;
    if (n == 0) {
      rc = sbuf_putc(&b, *p++);
      continue;
    }
    bool found_store;
    char *v = lookup(s, store, key, &found_store);
    if (v == NULL) {
      free(b.p);
      if (!found_store)
        return sp_fail(err, SP_ENOTFOUND, "unknown secret store \"%s\" in \"${%s:%s}\"", store, store, key);
      return sp_fail(err, SP_ENOTFOUND, "secret \"${%s:%s}\" not found", store, key);
    }
    sp_log_redact(v);
    rc = sbuf_putn(&b, v, strlen(v));
    free(v);
    p += n;
  }
  if (rc != SP_OK) {
    free(b.p);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  *out = b.p;
  return SP_OK;
}
