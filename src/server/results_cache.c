/* SPDX-License-Identifier: Apache-2.0
 *
 * The results cache: the SQL normaliser that builds its keys, and a byte-bounded LRU (a chained hash table
 * plus a doubly linked recency list under one mutex). See results_cache.h for what is and is not cached.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/results_cache.h"

/* ---- Normaliser ------------------------------------------------------------------------------------------ */

/* Reserved words only (DuckDB's reserved and type/function-name keywords): none of them can be an unquoted
 * column name, so lower-casing them never changes a result's column names. */
static const char *const KEYWORDS[] = {
    "all", "and", "any", "array", "as", "asc", "asymmetric", "both", "case", "cast", "collate", "cross", "desc",
    "distinct", "else", "end", "except", "false", "fetch", "for", "from", "full", "group", "having", "ilike", "in",
    "inner", "intersect", "is", "join", "lateral", "leading", "left", "like", "limit", "natural", "not", "null",
    "offset", "on", "only", "or", "order", "outer", "qualify", "right", "select", "some", "symmetric", "table",
    "then", "trailing", "true", "union", "using", "when", "where", "window", "with", NULL};

/* Words that make a statement uncacheable: writes and settings, volatile functions, and names whose result
 * does not depend only on the datasets' data. */
static const char *const UNCACHEABLE[] = {
    "insert", "update", "delete", "create", "drop", "alter", "copy", "attach", "detach", "pragma", "set", "reset",
    "call", "export", "import", "install", "load", "checkpoint", "vacuum", "truncate", "merge", "begin", "commit",
    "rollback", "use", "explain", "describe", "show", "summarize", "random", "rand", "setseed", "uuid",
    "gen_random_uuid", "uuidv4", "uuidv7", "now", "today", "current_timestamp", "current_date", "current_time",
    "localtimestamp", "localtime", "get_current_timestamp", "get_current_time", "transaction_timestamp",
    "epoch_ms_now", "nextval", "currval", "current_setting", "information_schema", "pg_catalog", "sqlite_master",
    "glob", "query", "query_table", "runtime", NULL};
/* Words of statements that change data or the catalog (a subset of UNCACHEABLE). */
static const char *const WRITES[] = {"insert", "update", "delete", "create", "drop", "alter", "copy", "attach",
                                     "detach", "call", "import", "load", "checkpoint", "vacuum", "truncate",
                                     "merge", "commit", "rollback", NULL};
static const char *const UNCACHEABLE_PREFIXES[] = {"read_", "duckdb_", "pragma_", "parquet_", "sniff_", NULL};
static const char *const QUERY_STARTS[] = {"select", "with", "from", "values", "table", "pivot", "unpivot", NULL};

typedef struct norm {
  sp_buf *out;
  bool pending_space;
  bool cacheable;
  bool may_write;
  bool seen_word;      /* a word was read (the first decides whether this is a query) */
  char prev_word[16];  /* the previous word, lower case, "" when it was long or not a word */
} norm;

static bool is_word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}

static bool in_list(const char *const *list, const char *w) {
  for (size_t i = 0; list[i]; i++)
    if (strcmp(list[i], w) == 0) return true;
  return false;
}

static char last_out(const norm *z) { return z->out->len ? z->out->data[z->out->len - 1] : '\0'; }

/* Emits the pending space unless the next token `next` or the last one makes it needless. */
static int flush_space(norm *z, char next) {
  bool need = z->pending_space && z->out->len > 0;
  z->pending_space = false;
  char last = last_out(z);
  if (!need || last == '(' || last == ',' || next == '(' || next == ')' || next == ',') return SP_OK;
  return sp_buf_append(z->out, " ", 1);
}

/* The end (exclusive) of a quoted run starting at s[i] == q; doubled quotes continue it, and `backslash`
 * escapes (E'' strings) skip one byte. Unterminated: n. */
static size_t quoted_end(const char *s, size_t n, size_t i, char q, bool backslash) {
  for (size_t j = i + 1; j < n; j++) {
    if (backslash && s[j] == '\\') j++;
    else if (s[j] == q && j + 1 < n && s[j + 1] == q) j++;
    else if (s[j] == q) return j + 1;
  }
  return n;
}

/* A dollar-quoted string at s[i] == '$' ("$$…$$", "$tag$…$tag$"): its end, or 0 when this '$' starts no
 * such string (a parameter such as $1 or $name). */
static size_t dollar_end(const char *s, size_t n, size_t i) {
  size_t j = i + 1;
  if (j < n && (is_word_byte((unsigned char)s[j]) && !(s[j] >= '0' && s[j] <= '9')))
    while (j < n && is_word_byte((unsigned char)s[j])) j++;
  if (j >= n || s[j] != '$') return 0;
  size_t tag = j + 1 - i;
  for (size_t k = j + 1; k + tag <= n; k++)
    if (s[k] == '$' && memcmp(s + k, s + i, tag) == 0) return k + tag;
  return n;
}

/* The end of a comment at s[i] ("--" to the line end, or a nested block comment), or 0 when none starts. */
static size_t comment_end(const char *s, size_t n, size_t i) {
  if (i + 1 < n && s[i] == '-' && s[i + 1] == '-') {
    const char *nl = memchr(s + i, '\n', n - i);
    return nl ? (size_t)(nl - s) : n;
  }
  if (!(i + 1 < n && s[i] == '/' && s[i + 1] == '*')) return 0;
  int depth = 0;
  for (size_t j = i; j + 1 < n; j++) {
    if (s[j] == '/' && s[j + 1] == '*') depth++, j++;
    else if (s[j] == '*' && s[j + 1] == '/' && --depth == 0) return j + 2;
  }
  return n;
}

static void check_word(norm *z, const char *lw, bool fits) {
  if (!z->seen_word) {
    z->seen_word = true;
    if (!fits || !in_list(QUERY_STARTS, lw)) z->cacheable = false;
  }
  if (!fits) return;
  if (in_list(UNCACHEABLE, lw)) z->cacheable = false;
  if (in_list(WRITES, lw)) z->may_write = true;
  for (size_t i = 0; UNCACHEABLE_PREFIXES[i]; i++)
    if (strncmp(lw, UNCACHEABLE_PREFIXES[i], strlen(UNCACHEABLE_PREFIXES[i])) == 0) z->cacheable = false;
}

/* True when s[e..n) starts, after blanks, with '(': the word before is a function name (or a type or
 * table alias with columns after AS, which emit_word leaves alone). */
static size_t comment_end(const char *s, size_t n, size_t i);

static bool call_follows(const char *s, size_t e, size_t n) {
  for (size_t c; e < n;) {
    if (s[e] == ' ' || s[e] == '\t' || s[e] == '\n' || s[e] == '\r' || s[e] == '\f' || s[e] == '\v') e++;
    else if ((c = comment_end(s, n, e)) != 0) e = c;
    else break;
  }
  return e < n && s[e] == '(';
}

/* A word at s[i..e): lower-cased when a reserved keyword, or a function name (DuckDB lower-cases those in
 * result column names itself: "Count(x)" is named "count(x)"), except right after AS or '.'; else copied. */
static int emit_word(norm *z, const char *s, size_t i, size_t e, size_t n) {
  char lw[32];
  size_t len = e - i;
  bool fits = len < sizeof lw;
  for (size_t k = 0; fits && k < len; k++) lw[k] = (char)(s[i + k] >= 'A' && s[i + k] <= 'Z' ? s[i + k] + 32 : s[i + k]);
  if (fits) lw[len] = '\0';
  check_word(z, lw, fits);
  bool after_dot = last_out(z) == '.' && !z->pending_space;
  bool keyword = fits && !after_dot && strcmp(z->prev_word, "as") != 0 &&
                 (in_list(KEYWORDS, lw) || call_follows(s, e, n) ||
                  (strcmp(lw, "by") == 0 && (strcmp(z->prev_word, "group") == 0 || strcmp(z->prev_word, "order") == 0)));
  SP_TRY(flush_space(z, s[i]));
  snprintf(z->prev_word, sizeof z->prev_word, "%s", fits && len < sizeof z->prev_word ? lw : "");
  return sp_buf_append(z->out, keyword ? lw : s + i, len);
}

/* An E'' string: the word before the quote is exactly "e"/"E", adjacent to it. */
static bool escape_string(const char *s, size_t i) {
  return i > 0 && (s[i - 1] == 'e' || s[i - 1] == 'E') && (i < 2 || !is_word_byte((unsigned char)s[i - 2]));
}

static int normalize(const char *sql, size_t n, sp_buf *out, bool *cacheable, bool *may_write);

int sp_sql_normalize(const char *sql, size_t n, sp_buf *out, bool *cacheable) {
  return normalize(sql, n, out, cacheable, NULL);
}

bool sp_sql_may_write(const char *sql, size_t n) {
  sp_buf scratch = {0};
  bool cacheable, may_write = true; /* out of memory: assume the worst */
  normalize(sql, n, &scratch, &cacheable, &may_write);
  sp_buf_free(&scratch);
  return may_write;
}

static int normalize(const char *sql, size_t n, sp_buf *out, bool *cacheable, bool *may_write) {
  norm z = {.out = out, .cacheable = true};
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)sql[i];
    size_t e;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      z.pending_space = true;
      i++;
    } else if ((e = comment_end(sql, n, i)) != 0) {
      z.pending_space = true;
      i = e;
    } else if (c == '\'' || c == '"' || (c == '$' && (e = dollar_end(sql, n, i)) != 0)) {
      if (c != '$') e = quoted_end(sql, n, i, (char)c, c == '\'' && escape_string(sql, i));
      SP_TRY(flush_space(&z, (char)c));
      SP_TRY(sp_buf_append(out, sql + i, e - i));
      z.prev_word[0] = '\0';
      i = e;
    } else if (is_word_byte(c)) {
      for (e = i + 1; e < n && is_word_byte((unsigned char)sql[e]);) e++;
      SP_TRY(emit_word(&z, sql, i, e, n));
      i = e;
    } else {
      SP_TRY(flush_space(&z, (char)c));
      SP_TRY(sp_buf_append(out, sql + i, 1));
      z.prev_word[0] = '\0';
      i++;
    }
  }
  if (!z.seen_word) z.cacheable = false;
  *cacheable = z.cacheable;
  if (may_write) *may_write = z.may_write;
  return SP_OK;
}

static int put_field(sp_buf *b, char tag, const void *p, size_t n) {
  char head[32];
  int hn = snprintf(head, sizeof head, "%c%zu:", tag, n);
  SP_TRY(sp_buf_append(b, head, (size_t)hn));
  return sp_buf_append(b, p, n);
}

int sp_cache_key(const char *sql, const sp_value *params, size_t n_params, int format, sp_buf *out, bool *cacheable) {
  SP_TRY(sp_sql_normalize(sql, strlen(sql), out, cacheable));
  char tmp[64];
  int tn = snprintf(tmp, sizeof tmp, "%c%d;%zu;", '\0', format, n_params);
  SP_TRY(sp_buf_append(out, tmp, (size_t)tn));
  for (size_t i = 0; i < n_params; i++) {
    const sp_value *v = &params[i];
    SP_TRY(put_field(out, 'n', v->name ? v->name : "", v->name ? strlen(v->name) : 0));
    switch (v->type) {
    case SP_VALUE_NULL: SP_TRY(put_field(out, 'z', "", 0)); break;
    case SP_VALUE_BOOL: SP_TRY(put_field(out, 'b', v->v.b ? "1" : "0", 1)); break;
    case SP_VALUE_INT: tn = snprintf(tmp, sizeof tmp, "%lld", (long long)v->v.i); SP_TRY(put_field(out, 'i', tmp, (size_t)tn)); break;
    case SP_VALUE_DOUBLE: tn = snprintf(tmp, sizeof tmp, "%.17g", v->v.d); SP_TRY(put_field(out, 'd', tmp, (size_t)tn)); break;
    case SP_VALUE_STRING: SP_TRY(put_field(out, 's', v->v.s ? v->v.s : "", v->v.s ? strlen(v->v.s) : 0)); break;
    default: *cacheable = false; break;
    }
  }
  return SP_OK;
}

/* ---- LRU ------------------------------------------------------------------------------------------------- */

typedef struct entry {
  struct entry *next_in_bucket;
  struct entry *newer, *older; /* recency list */
  uint64_t hash, version;
  int64_t stored_ms;
  size_t klen, blen;
  char *key, *body;
} entry;

#define ENTRY_OVERHEAD (sizeof(entry) + 32)
#define MIN_BUCKETS 1024

struct sp_rcache {
  pthread_mutex_t mu;
  uint64_t max_bytes, bytes;
  int64_t ttl_ms;
  entry **buckets;
  size_t n_buckets, count;
  entry *newest, *oldest;
  uint64_t seed;
};

static uint64_t hash_bytes(uint64_t seed, const char *p, size_t n) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
  return h ^ (h >> 29);
}

static uint64_t entry_cost(const entry *e) { return e->klen + e->blen + ENTRY_OVERHEAD; }

int sp_rcache_create(uint64_t max_bytes, int64_t ttl_ms, sp_rcache **out, sp_error *err) {
  sp_rcache *c = calloc(1, sizeof *c);
  if (c) c->buckets = calloc(MIN_BUCKETS, sizeof *c->buckets);
  if (c == NULL || c->buckets == NULL) {
    free(c);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  c->seed = (uint64_t)ts.tv_nsec * 2654435761u ^ (uint64_t)(uintptr_t)c;
  c->n_buckets = MIN_BUCKETS;
  c->max_bytes = max_bytes;
  c->ttl_ms = ttl_ms;
  pthread_mutex_init(&c->mu, NULL);
  *out = c;
  return SP_OK;
}

static void entry_free(entry *e) {
  free(e->key);
  free(e->body);
  free(e);
}

void sp_rcache_destroy(sp_rcache *c) {
  if (c == NULL) return;
  for (entry *e = c->newest, *next; e; e = next) {
    next = e->older;
    entry_free(e);
  }
  free(c->buckets);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

uint64_t sp_rcache_item_limit(const sp_rcache *c) { return c->max_bytes / 4; }

static void list_unlink(sp_rcache *c, entry *e) {
  if (e->newer) e->newer->older = e->older;
  else c->newest = e->older;
  if (e->older) e->older->newer = e->newer;
  else c->oldest = e->newer;
  e->newer = e->older = NULL;
}

static void list_push_newest(sp_rcache *c, entry *e) {
  e->older = c->newest;
  e->newer = NULL;
  if (c->newest) c->newest->newer = e;
  c->newest = e;
  if (c->oldest == NULL) c->oldest = e;
}

static entry **bucket_slot(sp_rcache *c, uint64_t h, const char *key, size_t klen) {
  entry **p = &c->buckets[h & (c->n_buckets - 1)];
  while (*p && !((*p)->hash == h && (*p)->klen == klen && memcmp((*p)->key, key, klen) == 0)) p = &(*p)->next_in_bucket;
  return p;
}

static void remove_entry(sp_rcache *c, entry *e) {
  entry **p = bucket_slot(c, e->hash, e->key, e->klen);
  if (*p == e) *p = e->next_in_bucket;
  list_unlink(c, e);
  c->bytes -= entry_cost(e);
  c->count--;
  entry_free(e);
}

/* Doubles the table when chains grow long; on allocation failure it keeps the old one (still correct). */
static void maybe_grow(sp_rcache *c) {
  if (c->count < c->n_buckets * 2) return;
  size_t nb = c->n_buckets * 2;
  entry **b = calloc(nb, sizeof *b);
  if (b == NULL) return;
  for (entry *e = c->newest; e; e = e->older) {
    e->next_in_bucket = b[e->hash & (nb - 1)];
    b[e->hash & (nb - 1)] = e;
  }
  free(c->buckets);
  c->buckets = b;
  c->n_buckets = nb;
}

bool sp_rcache_get(sp_rcache *c, const char *key, size_t klen, uint64_t version, int64_t now_ms, sp_buf *out) {
  uint64_t h = hash_bytes(c->seed, key, klen);
  bool hit = false;
  pthread_mutex_lock(&c->mu);
  entry *e = *bucket_slot(c, h, key, klen);
  if (e && (e->version != version || (c->ttl_ms > 0 && now_ms - e->stored_ms >= c->ttl_ms))) {
    remove_entry(c, e);
  } else if (e && sp_buf_append(out, e->body, e->blen) == SP_OK) {
    list_unlink(c, e);
    list_push_newest(c, e);
    hit = true;
  }
  pthread_mutex_unlock(&c->mu);
  return hit;
}

int sp_rcache_put(sp_rcache *c, const char *key, size_t klen, uint64_t version, int64_t now_ms, const char *body,
                  size_t n) {
  entry *e = calloc(1, sizeof *e);
  if (e == NULL) return SP_ENOMEM;
  e->klen = klen;
  e->blen = n;
  if (entry_cost(e) > sp_rcache_item_limit(c) || entry_cost(e) > c->max_bytes) {
    free(e);
    return SP_OK;
  }
  e->key = malloc(klen ? klen : 1);
  e->body = malloc(n ? n : 1);
  if (e->key == NULL || e->body == NULL) {
    entry_free(e);
    return SP_ENOMEM;
  }
  memcpy(e->key, key, klen);
  memcpy(e->body, body, n);
  e->hash = hash_bytes(c->seed, key, klen);
  e->version = version;
  e->stored_ms = now_ms;
  pthread_mutex_lock(&c->mu);
  entry *old = *bucket_slot(c, e->hash, key, klen);
  if (old) remove_entry(c, old);
  while (c->oldest && c->bytes + entry_cost(e) > c->max_bytes) remove_entry(c, c->oldest);
  entry **slot = &c->buckets[e->hash & (c->n_buckets - 1)];
  e->next_in_bucket = *slot;
  *slot = e;
  list_push_newest(c, e);
  c->bytes += entry_cost(e);
  c->count++;
  maybe_grow(c);
  pthread_mutex_unlock(&c->mu);
  return SP_OK;
}

void sp_rcache_stats(sp_rcache *c, uint64_t *items, uint64_t *bytes) {
  pthread_mutex_lock(&c->mu);
  *items = c->count;
  *bytes = c->bytes;
  pthread_mutex_unlock(&c->mu);
}
