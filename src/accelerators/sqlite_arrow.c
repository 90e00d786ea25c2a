/* SPDX-License-Identifier: Apache-2.0
 *
 * SQLite ⇄ Arrow: declared types, the batch reader, the writer and filter translation (see sqlite_arrow.h).
 */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "accelerators/sqlite_arrow.h"
#include "connectors/mysql_text.h"
#include "connectors/pg_filter.h"
#include "spice/arrow.h"
#include "spice/duckdb_util.h"
#include "spice/log.h"

/* ---- Columns ------------------------------------------------------------------------------------------------ */

void sqa_columns_free(sqa_column *cols, size_t n) {
  for (size_t i = 0; cols && i < n; i++) {
    free(cols[i].name);
    free(cols[i].decl);
  }
  free(cols);
}

sqa_column *sqa_columns_copy(const sqa_column *cols, size_t n) {
  sqa_column *c = calloc(n ? n : 1, sizeof *c);
  int bad = c == NULL;
  for (size_t i = 0; !bad && i < n; i++) {
    c[i] = cols[i];
    c[i].name = strdup(cols[i].name ? cols[i].name : "");
    c[i].decl = strdup(cols[i].decl ? cols[i].decl : "");
    bad = c[i].name == NULL || c[i].decl == NULL;
  }
  if (bad && c) {
    sqa_columns_free(c, n);
    return NULL;
  }
  return c;
}

static void set_kind(sqa_column *col, sqa_kind kind, const char *format, int width, bool pushable) {
  col->kind = kind;
  snprintf(col->format, sizeof col->format, "%s", format);
  col->width = width;
  col->pushable = pushable;
}

/* DECIMAL(p[,s]) → precision and scale; a bare DECIMAL / NUMERIC is (38,10). */
static void decimal_args(const char *args, sqa_column *col) {
  int p = 38, s = 10;
  if (args) {
    int n = sscanf(args, "(%d , %d", &p, &s);
    if (n == 1) s = 0;
    if (n < 1 || p < 1 || p > 38 || s < 0 || s > p) p = 38, s = 10;
  }
  col->precision = p;
  col->scale = s;
  snprintf(col->format, sizeof col->format, "d:%d,%d", p, s);
}

void sqa_map_decltype(const char *decl, sqa_column *col) {
  char up[128], base[128];
  size_t n = 0;
  for (const char *p = decl ? decl : ""; *p && n + 1 < sizeof up; p++) up[n++] = (char)toupper((unsigned char)*p);
  up[n] = '\0';
  const char *args = strchr(up, '(');
  size_t bn = args ? (size_t)(args - up) : n;
  while (bn > 0 && isspace((unsigned char)up[bn - 1])) bn--;
  size_t start = 0;
  while (start < bn && isspace((unsigned char)up[start])) start++;
  snprintf(base, sizeof base, "%.*s", (int)(bn - start), up + start);
  col->precision = col->scale = 0;
  if (strcmp(base, "BOOLEAN") == 0 || strcmp(base, "BOOL") == 0) return set_kind(col, SQA_BOOL, "b", 0, false);
  if (strcmp(base, "DATE") == 0) return set_kind(col, SQA_DATE_TEXT, "tdD", 4, false);
  if (strcmp(base, "DATETIME") == 0 || strcmp(base, "TIMESTAMP") == 0) return set_kind(col, SQA_TS_TEXT, "tsu:", 8, false);
  if (strcmp(base, "DECIMAL") == 0 || strcmp(base, "NUMERIC") == 0) {
    set_kind(col, SQA_DECIMAL, "", 16, false);
    return decimal_args(args, col);
  }
  /* SQLite's affinity rules (https://sqlite.org/datatype3.html §3.1), in their order. */
  if (strstr(up, "INT")) return set_kind(col, SQA_INT, "l", 8, true);
  if (strstr(up, "CHAR") || strstr(up, "CLOB") || strstr(up, "TEXT")) return set_kind(col, SQA_TEXT, "u", 0, true);
  if (strstr(up, "BLOB")) return set_kind(col, SQA_BLOB, "z", 0, false);
  if (strstr(up, "REAL") || strstr(up, "FLOA") || strstr(up, "DOUB")) return set_kind(col, SQA_FLOAT, "g", 8, true);
  /* No type (any value) or NUMERIC affinity without a known name: every value reads as its text. */
  set_kind(col, SQA_TEXT, "u", 0, false);
}

int sqa_map_arrow(const char *format, sqa_column *col, char *decl, size_t n, sp_error *err) {
  sp_arrow_typeinfo t;
  sp_arrow_parse_format(format, &t);
  static const int int_width[] = {[SP_ARROW_INT8] = 1, [SP_ARROW_INT16] = 2, [SP_ARROW_INT32] = 4, [SP_ARROW_INT64] = 8,
                                  [SP_ARROW_UINT8] = 1, [SP_ARROW_UINT16] = 2, [SP_ARROW_UINT32] = 4, [SP_ARROW_UINT64] = 8};
  const char *d = "BIGINT";
  col->precision = col->scale = 0;
  switch (t.type) {
  case SP_ARROW_BOOL: set_kind(col, SQA_BOOL, "b", 0, true); d = "BOOLEAN"; break;
  case SP_ARROW_INT8: case SP_ARROW_INT16: case SP_ARROW_INT32: case SP_ARROW_INT64:
    set_kind(col, SQA_INT, format, int_width[t.type], true); break;
  case SP_ARROW_UINT8: case SP_ARROW_UINT16: case SP_ARROW_UINT32: case SP_ARROW_UINT64:
    set_kind(col, SQA_UINT, format, int_width[t.type], true); break;
  /* float32 is compared by the engine at single precision: not pushed. */
  case SP_ARROW_FLOAT: set_kind(col, SQA_FLOAT, "f", 4, false); d = "DOUBLE"; break;
  case SP_ARROW_DOUBLE: set_kind(col, SQA_FLOAT, "g", 8, true); d = "DOUBLE"; break;
  case SP_ARROW_UTF8: case SP_ARROW_LARGE_UTF8: case SP_ARROW_UTF8_VIEW: set_kind(col, SQA_TEXT, "u", 0, true); d = "TEXT"; break;
  case SP_ARROW_BINARY: case SP_ARROW_LARGE_BINARY: case SP_ARROW_BINARY_VIEW: set_kind(col, SQA_BLOB, "z", 0, false); d = "BLOB"; break;
  case SP_ARROW_FIXED_BINARY: set_kind(col, SQA_FIXED, format, t.byte_width, false); d = "BLOB"; break;
  case SP_ARROW_DECIMAL32: case SP_ARROW_DECIMAL64: /* Arrow 1.5 readers send DECIMAL(p<=18) narrower */
  case SP_ARROW_DECIMAL128:
    /* Up to 15 digits a double holds every value exactly (and compares like the decimal); beyond, the digits
     * are kept as text, which SQLite cannot compare as numbers. */
    set_kind(col, SQA_DECIMAL, "", 16, t.precision <= 15);
    col->precision = t.precision;
    col->scale = t.scale;
    snprintf(col->format, sizeof col->format, "d:%d,%d", t.precision, t.scale);
    d = t.precision <= 15 ? "DOUBLE" : "TEXT";
    break;
  case SP_ARROW_DATE32: case SP_ARROW_TIME32: set_kind(col, SQA_INT, format, 4, false); break;
  case SP_ARROW_DATE64: case SP_ARROW_TIME64: case SP_ARROW_TIMESTAMP: case SP_ARROW_DURATION:
    set_kind(col, SQA_INT, format, 8, false); break;
  default:
    return sp_fail(err, SP_ENOTSUP, "Arrow type \"%s\"", format);
  }
  snprintf(decl, n, "%s", d);
  return SP_OK;
}

int sqa_schema(const sqa_column *cols, size_t n, struct ArrowSchema *out, sp_error *err) {
  struct ArrowSchema s;
  int bad = sp_schema_node_init(&s, "+s", NULL, 0);
  s.children = bad ? NULL : calloc(n ? n : 1, sizeof *s.children);
  bad = bad || s.children == NULL;
  for (size_t i = 0; !bad && i < n; i++) {
    s.children[i] = malloc(sizeof(struct ArrowSchema));
    s.n_children++;
    bad = s.children[i] == NULL || sp_schema_node_init(s.children[i], cols[i].format, cols[i].name, strlen(cols[i].name)) != 0;
    if (!bad) s.children[i]->flags = ARROW_FLAG_NULLABLE;
  }
  if (bad) {
    sp_schema_release(&s);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  *out = s;
  return SP_OK;
}

char *sqa_ident(const char *s) {
  size_t n = strlen(s), o = 0;
  char *q = malloc(2 * n + 3);
  if (q == NULL) return NULL;
  q[o++] = '"';
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '"') q[o++] = '"';
    q[o++] = s[i];
  }
  q[o++] = '"';
  q[o] = '\0';
  return q;
}

/* ---- Buffer pool: the memory of released batches, reused by the next ones ----------------------------------- */

#define POOL_MAX 48

typedef struct pool {
  pthread_mutex_t lock;
  int refs; /* the stream and each live child array */
  void *bufs[POOL_MAX];
  size_t caps[POOL_MAX];
  int n;
} pool;

static void pool_unref(pool *p) {
  pthread_mutex_lock(&p->lock);
  int left = --p->refs;
  pthread_mutex_unlock(&p->lock);
  if (left > 0) return;
  for (int i = 0; i < p->n; i++) free(p->bufs[i]);
  pthread_mutex_destroy(&p->lock);
  free(p);
}

/* A buffer of at least `need` bytes (its capacity in *cap): a pooled one when one is big enough. */
static void *pool_get(pool *p, size_t need, size_t *cap) {
  void *b = NULL;
  pthread_mutex_lock(&p->lock);
  for (int i = 0; i < p->n && b == NULL; i++)
    if (p->caps[i] >= need) {
      b = p->bufs[i];
      *cap = p->caps[i];
      p->bufs[i] = p->bufs[--p->n];
      p->caps[i] = p->caps[p->n];
    }
  pthread_mutex_unlock(&p->lock);
  if (b == NULL && (b = malloc(need ? need : 1)) != NULL) *cap = need;
  return b;
}

static void pool_put(pool *p, void *b, size_t cap) {
  if (b == NULL) return;
  pthread_mutex_lock(&p->lock);
  if (p->n < POOL_MAX) {
    p->bufs[p->n] = b;
    p->caps[p->n++] = cap;
    b = NULL;
  }
  pthread_mutex_unlock(&p->lock);
  free(b);
}

/* ---- Builders ----------------------------------------------------------------------------------------------- */

typedef struct builder {
  uint8_t *valid, *data;
  int32_t *offs;
  size_t valid_cap, data_cap, offs_cap, data_len;
  int64_t nulls;
} builder;

/* Makes room for row `row` (and its bytes for var-width columns are appended separately). */
static int builder_room(pool *p, builder *b, const sqa_column *col, int64_t row) {
  size_t rows = (size_t)row + 1;
  size_t need_valid = (rows + 7) / 8, need_data = col->kind == SQA_BOOL ? (rows + 7) / 8 : (size_t)col->width * rows;
  int var = col->kind == SQA_TEXT || col->kind == SQA_BLOB;
  if (need_valid > b->valid_cap) {
    size_t cap = b->valid_cap ? b->valid_cap * 2 : 256, got;
    while (cap < need_valid) cap *= 2;
    uint8_t *v = pool_get(p, cap, &got);
    if (v == NULL) return -1;
    if (b->valid) memcpy(v, b->valid, b->valid_cap);
    memset(v + b->valid_cap, 0, got - b->valid_cap);
    pool_put(p, b->valid, b->valid_cap);
    b->valid = v;
    b->valid_cap = got;
  }
  if (var && (rows + 1) * sizeof(int32_t) > b->offs_cap) {
    size_t cap = b->offs_cap ? b->offs_cap * 2 : 2048 * sizeof(int32_t), got;
    while (cap < (rows + 1) * sizeof(int32_t)) cap *= 2;
    int32_t *o = pool_get(p, cap, &got);
    if (o == NULL) return -1;
    if (b->offs) memcpy(o, b->offs, b->offs_cap);
    else o[0] = 0;
    pool_put(p, b->offs, b->offs_cap);
    b->offs = o;
    b->offs_cap = got;
  }
  if (!var && need_data > b->data_cap) {
    size_t cap = b->data_cap ? b->data_cap * 2 : 2048, got;
    while (cap < need_data) cap *= 2;
    uint8_t *d = pool_get(p, cap, &got);
    if (d == NULL) return -1;
    if (b->data) memcpy(d, b->data, b->data_cap);
    memset(d + b->data_cap, 0, got - b->data_cap);
    pool_put(p, b->data, b->data_cap);
    b->data = d;
    b->data_cap = got;
  }
  return 0;
}

static int builder_bytes(pool *p, builder *b, int64_t row, const void *src, size_t n) {
  if (b->data_len + n > INT32_MAX) return -1;
  if (b->data_len + n > b->data_cap || b->data == NULL) {
    size_t cap = b->data_cap ? b->data_cap * 2 : 4096, got;
    while (cap < b->data_len + n) cap *= 2;
    uint8_t *d = pool_get(p, cap, &got);
    if (d == NULL) return -1;
    if (b->data_len) memcpy(d, b->data, b->data_len);
    pool_put(p, b->data, b->data_cap);
    b->data = d;
    b->data_cap = got;
  }
  if (n) memcpy(b->data + b->data_len, src, n);
  b->data_len += n;
  b->offs[row + 1] = (int32_t)b->data_len;
  return 0;
}

/* A finished child array: owns its buffers, which go back to the pool when it is released. */
typedef struct child_priv {
  pool *p;
  void *bufs[3];
  size_t caps[3];
  const void *ptrs[3];
} child_priv;

static void child_release(struct ArrowArray *a) {
  if (a->release == NULL) return;
  child_priv *c = a->private_data;
  for (int i = 0; i < 3; i++) pool_put(c->p, c->bufs[i], c->caps[i]);
  pool_unref(c->p);
  free(c);
  a->release = NULL;
}

static int builder_finish(pool *p, builder *b, const sqa_column *col, int64_t rows, struct ArrowArray *a) {
  child_priv *c = calloc(1, sizeof *c);
  if (c == NULL) return -1;
  int var = col->kind == SQA_TEXT || col->kind == SQA_BLOB;
  if (var && b->offs == NULL) return free(c), -1;
  c->p = p;
  c->bufs[0] = b->valid, c->caps[0] = b->valid_cap;
  c->bufs[1] = var ? (void *)b->offs : b->data, c->caps[1] = var ? b->offs_cap : b->data_cap;
  c->bufs[2] = var ? b->data : NULL, c->caps[2] = var ? b->data_cap : 0;
  for (int i = 0; i < 3; i++) c->ptrs[i] = c->bufs[i];
  if (var && c->ptrs[2] == NULL) c->ptrs[2] = c->ptrs[1]; /* no bytes at all: any valid pointer */
  pthread_mutex_lock(&p->lock);
  p->refs++;
  pthread_mutex_unlock(&p->lock);
  memset(a, 0, sizeof *a);
  a->length = rows;
  a->null_count = b->nulls;
  a->n_buffers = var ? 3 : 2;
  a->buffers = c->ptrs;
  a->private_data = c;
  a->release = child_release;
  memset(b, 0, sizeof *b);
  return 0;
}

static void builder_drop(pool *p, builder *b) {
  pool_put(p, b->valid, b->valid_cap);
  pool_put(p, b->data, b->data_cap);
  pool_put(p, b->offs, b->offs_cap);
  memset(b, 0, sizeof *b);
}

/* ---- Values ------------------------------------------------------------------------------------------------- */

static __int128 pow10_128(int e) {
  __int128 v = 1;
  while (e-- > 0) v *= 10;
  return v;
}

static int fits_precision(__int128 v, int precision) {
  __int128 lim = pow10_128(precision);
  return v < lim && v > -lim;
}

/* A decimal column's value as its unscaled 128-bit integer; -1 when it is not a number that fits. */
static int decimal_value(sqlite3_stmt *st, int i, const sqa_column *col, __int128 *out) {
  int t = sqlite3_column_type(st, i);
  if (t == SQLITE_INTEGER) {
    __int128 v = (__int128)sqlite3_column_int64(st, i);
    if (col->scale > 0 && !fits_precision(v, 38 - col->scale)) return -1;
    *out = v * pow10_128(col->scale);
  } else if (t == SQLITE_FLOAT) {
    double d = sqlite3_column_double(st, i);
    if (!isfinite(d)) return -1;
    long double scaled = (long double)d * powl(10.0L, col->scale);
    if (fabsl(scaled) >= 9e18L) {
      char text[128];
      uint64_t lo;
      int64_t hi;
      snprintf(text, sizeof text, "%.*f", col->scale, d);
      if (myt_parse_decimal(text, strlen(text), col->precision, col->scale, &lo, &hi) != 0) return -1;
      *out = (__int128)(((unsigned __int128)(uint64_t)hi << 64) | lo);
      return 0;
    }
    *out = (__int128)llroundl(scaled);
  } else if (t == SQLITE_TEXT) {
    uint64_t lo;
    int64_t hi;
    const char *s = (const char *)sqlite3_column_text(st, i);
    if (s == NULL || myt_parse_decimal(s, (size_t)sqlite3_column_bytes(st, i), col->precision, col->scale, &lo, &hi) != 0)
      return -1;
    *out = (__int128)(((unsigned __int128)(uint64_t)hi << 64) | lo);
    return 0;
  } else {
    return -1;
  }
  return fits_precision(*out, col->precision) ? 0 : -1;
}

/* 'YYYY-MM-DD[ T]HH:MM[:SS[.f…]][Z|±HH[:MM]]' → UTC microseconds. */
static int parse_ts_text(const char *s, size_t n, int64_t *us) {
  char buf[64];
  if (n < 10 || n >= sizeof buf) return -1;
  memcpy(buf, s, n);
  buf[n] = '\0';
  if (n > 10 && (buf[10] == 'T' || buf[10] == 't')) buf[10] = ' ';
  int64_t offset_s = 0;
  size_t len = n;
  if (len > 10 && (buf[len - 1] == 'Z' || buf[len - 1] == 'z')) {
    buf[--len] = '\0';
  } else if (len > 16) {
    char *sign = NULL;
    for (size_t k = 11; k < len; k++)
      if (buf[k] == '+' || buf[k] == '-') sign = &buf[k];
    if (sign) {
      int hh = 0, mm = 0;
      if (sscanf(sign + 1, "%2d:%2d", &hh, &mm) < 1 && sscanf(sign + 1, "%2d%2d", &hh, &mm) < 1) return -1;
      offset_s = (int64_t)(hh * 3600 + mm * 60) * (*sign == '-' ? -1 : 1);
      *sign = '\0';
      len = (size_t)(sign - buf);
    }
  }
  /* myt_parse_datetime wants seconds: "HH:MM" gets ":00". */
  if (len == 16 && buf[13] == ':') {
    memcpy(buf + 16, ":00", 4);
    len = 19;
  }
  int r = myt_parse_datetime(buf, len, us);
  if (r != 0) return r;
  *us -= offset_s * 1000000;
  return 0;
}

/* Why a stored value does not fit its column, for the error message. */
static const char *expected(const sqa_column *col) {
  switch (col->kind) {
  case SQA_BOOL: return "a boolean (0, 1, true, false)";
  case SQA_INT: case SQA_UINT: return "an integer in range";
  case SQA_FLOAT: return "a number";
  case SQA_TEXT: return "text";
  case SQA_FIXED: return "a blob of the column's size";
  case SQA_DECIMAL: return "a number within the column's precision";
  case SQA_DATE_TEXT: return "a date (YYYY-MM-DD)";
  case SQA_TS_TEXT: return "a timestamp (YYYY-MM-DD HH:MM:SS) or unix seconds";
  default: return "readable";
  }
}

static int put_int(builder *b, int64_t row, const sqa_column *col, sqlite3_int64 v) {
  int w = col->width;
  if (col->kind == SQA_UINT ? (v < 0 || (w < 8 && (uint64_t)v >> (8 * w)) != 0)
                            : (w < 8 && (v < -(INT64_C(1) << (8 * w - 1)) || v >= (INT64_C(1) << (8 * w - 1)))))
    return -1;
  uint8_t *dst = b->data + (size_t)row * (size_t)w;
  switch (w) {
  case 1: { int8_t x = (int8_t)v; memcpy(dst, &x, 1); break; }
  case 2: { int16_t x = (int16_t)v; memcpy(dst, &x, 2); break; }
  case 4: { int32_t x = (int32_t)v; memcpy(dst, &x, 4); break; }
  default: memcpy(dst, &v, 8);
  }
  return 0;
}

static int put_bool(builder *b, int64_t row, sqlite3_stmt *st, int i) {
  int v = -1, t = sqlite3_column_type(st, i);
  if (t == SQLITE_INTEGER) {
    sqlite3_int64 x = sqlite3_column_int64(st, i);
    v = x == 0 ? 0 : x == 1 ? 1 : -1;
  } else if (t == SQLITE_TEXT) {
    const char *s = (const char *)sqlite3_column_text(st, i);
    if (s && (strcasecmp(s, "true") == 0 || strcasecmp(s, "t") == 0 || strcmp(s, "1") == 0)) v = 1;
    if (s && (strcasecmp(s, "false") == 0 || strcasecmp(s, "f") == 0 || strcmp(s, "0") == 0)) v = 0;
  }
  if (v < 0) return -1;
  if (v) b->data[row >> 3] |= (uint8_t)(1u << (row & 7));
  return 0;
}

/* One non-NULL value; 0 stored, 1 read as NULL, -1 does not fit the column, -2 out of memory. */
static int put_value(pool *p, builder *b, int64_t row, const sqa_column *col, sqlite3_stmt *st, int i) {
  int t = sqlite3_column_type(st, i);
  switch (col->kind) {
  case SQA_BOOL: return put_bool(b, row, st, i);
  case SQA_INT: case SQA_UINT: return t == SQLITE_INTEGER ? put_int(b, row, col, sqlite3_column_int64(st, i)) : -1;
  case SQA_FLOAT: {
    if (t != SQLITE_INTEGER && t != SQLITE_FLOAT) return -1;
    double d = sqlite3_column_double(st, i);
    float f = (float)d;
    memcpy(b->data + (size_t)row * (size_t)col->width, col->width == 4 ? (void *)&f : (void *)&d, (size_t)col->width);
    return 0;
  }
  case SQA_TEXT: case SQA_BLOB: {
    if (col->kind == SQA_TEXT && t == SQLITE_BLOB) return -1;
    const void *v = col->kind == SQA_TEXT ? (const void *)sqlite3_column_text(st, i) : sqlite3_column_blob(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    return builder_bytes(p, b, row, v ? v : "", v ? n : 0) == 0 ? 0 : -2;
  }
  case SQA_FIXED: {
    if (t != SQLITE_BLOB || sqlite3_column_bytes(st, i) != col->width) return -1;
    memcpy(b->data + (size_t)row * (size_t)col->width, sqlite3_column_blob(st, i), (size_t)col->width);
    return 0;
  }
  case SQA_DECIMAL: {
    __int128 v;
    if (decimal_value(st, i, col, &v) != 0) return -1;
    memcpy(b->data + (size_t)row * 16, &v, 16); /* little-endian two's complement */
    return 0;
  }
  case SQA_DATE_TEXT: {
    int32_t days;
    if (t != SQLITE_TEXT) return -1;
    int r = myt_parse_date((const char *)sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i), &days);
    if (r == 0) memcpy(b->data + (size_t)row * 4, &days, 4);
    return r;
  }
  case SQA_TS_TEXT: {
    int64_t us;
    int r = -1;
    if (t == SQLITE_INTEGER) {
      sqlite3_int64 s = sqlite3_column_int64(st, i);
      r = s > INT64_MAX / 1000000 || s < INT64_MIN / 1000000 ? -1 : 0;
      us = r == 0 ? (int64_t)s * 1000000 : 0;
    } else if (t == SQLITE_TEXT) {
      r = parse_ts_text((const char *)sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i), &us);
    }
    if (r == 0) memcpy(b->data + (size_t)row * 8, &us, 8);
    return r;
  }
  }
  return -1;
}

/* ---- The reader stream -------------------------------------------------------------------------------------- */

typedef struct reader {
  sqlite3 *db;
  sqlite3_stmt *st;
  sqa_column *cols;
  size_t n;
  sqa_read_opts opts;
  char *dataset, *table;
  pool *p;
  builder *b;
  bool *warned;
  int64_t rows; /* produced so far, for messages */
  int done;
  char error[1024];
} reader;

static void reader_free(reader *r) {
  if (r->st) sp_log_debug("dataset \"%s\": %lld rows read from sqlite table \"%s\"", r->dataset, (long long)r->rows, r->table);
  if (r->st) sqlite3_finalize(r->st);
  if (r->opts.done) r->opts.done(r->opts.ctx, r->db);
  for (size_t i = 0; r->b && i < r->n; i++) builder_drop(r->p, &r->b[i]);
  free(r->b);
  free(r->warned);
  if (r->p) pool_unref(r->p);
  sqa_columns_free(r->cols, r->n);
  free(r->dataset);
  free(r->table);
  free(r);
}

static int reader_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  reader *r = s->private_data;
  return sqa_schema(r->cols, r->n, out, NULL) == SP_OK ? 0 : 12;
}

static const char *reader_error(struct ArrowArrayStream *s) {
  reader *r = s->private_data;
  return r->error[0] ? r->error : NULL;
}

static void reader_release(struct ArrowArrayStream *s) {
  if (s->release == NULL) return;
  reader_free(s->private_data);
  s->release = NULL;
}

/* A value that does not fit: the error, or a NULL with a warning (once per column) under warn/ignore. */
static int misfit(reader *r, size_t i, int64_t row) {
  const sqa_column *col = &r->cols[i];
  char preview[48] = "(bytes)";
  if (sqlite3_column_type(r->st, (int)i) != SQLITE_BLOB)
    snprintf(preview, sizeof preview, "%.40s", (const char *)sqlite3_column_text(r->st, (int)i));
  char msg[900];
  snprintf(msg, sizeof msg, "could not read sqlite table \"%s\" for dataset \"%s\": column \"%s\" (%s) row %lld holds %s, "
           "which is not %s", r->table, r->dataset, col->name, col->decl[0] ? col->decl : "no type",
           (long long)(r->rows + row + 1), preview, expected(col));
  if (r->opts.action == SQA_ACTION_ERROR) {
    snprintf(r->error, sizeof r->error, "%s (set unsupported_type_action: warn or ignore to read it as NULL)", msg);
    return -1;
  }
  if (r->opts.action == SQA_ACTION_WARN && !r->warned[i]) {
    r->warned[i] = true;
    sp_log_warn("%s; read as NULL (further values of this column are not reported)", msg);
  }
  return 0;
}

static int add_row(reader *r, int64_t row) {
  for (size_t i = 0; i < r->n; i++) {
    builder *b = &r->b[i];
    if (builder_room(r->p, b, &r->cols[i], row) != 0) return 12;
    int v = sqlite3_column_type(r->st, (int)i) == SQLITE_NULL ? 1 : put_value(r->p, b, row, &r->cols[i], r->st, (int)i);
    if (v == -2) return 12;
    if (v == -1 && misfit(r, i, row) != 0) return 5;
    if (v == 0) {
      b->valid[row >> 3] |= (uint8_t)(1u << (row & 7));
    } else {
      b->nulls++;
      if (b->offs) b->offs[row + 1] = (int32_t)b->data_len;
    }
  }
  return 0;
}

/* Steps up to SQA_BATCH_ROWS rows into the builders. */
static int fill(reader *r, int64_t *rows) {
  int64_t row = 0;
  while (!r->done && row < SQA_BATCH_ROWS) {
    int rc = sqlite3_step(r->st);
    if (rc == SQLITE_DONE) {
      r->done = 1;
      break;
    }
    if (rc != SQLITE_ROW) {
      snprintf(r->error, sizeof r->error, "could not read sqlite table \"%s\" for dataset \"%s\": %s", r->table, r->dataset,
               sqlite3_errmsg(r->db));
      return 5;
    }
    int e = add_row(r, row);
    if (e != 0) return e;
    row++;
  }
  *rows = row;
  return 0;
}

typedef struct batch_priv {
  struct ArrowArray **kids;
  const void *bufs[1];
} batch_priv;

static void batch_release(struct ArrowArray *a) {
  if (a->release == NULL) return;
  batch_priv *bp = a->private_data;
  for (int64_t i = 0; i < a->n_children; i++) {
    if (bp->kids[i]->release) bp->kids[i]->release(bp->kids[i]);
    free(bp->kids[i]);
  }
  free(bp->kids);
  free(bp);
  a->release = NULL;
}

static int make_batch(reader *r, int64_t rows, struct ArrowArray *out) {
  batch_priv *bp = calloc(1, sizeof *bp);
  struct ArrowArray **kids = calloc(r->n ? r->n : 1, sizeof *kids);
  memset(out, 0, sizeof *out);
  if (bp == NULL || kids == NULL) {
    free(bp);
    free(kids);
    return 12;
  }
  bp->kids = kids;
  out->length = rows;
  out->n_buffers = 1;
  out->buffers = bp->bufs;
  out->children = kids;
  out->private_data = bp;
  out->release = batch_release;
  for (size_t i = 0; i < r->n; i++) {
    if ((kids[i] = malloc(sizeof **kids)) == NULL || builder_finish(r->p, &r->b[i], &r->cols[i], rows, kids[i]) != 0) {
      free(kids[i]);
      batch_release(out);
      return 12;
    }
    out->n_children++;
  }
  return 0;
}

static int reader_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  reader *r = s->private_data;
  int64_t rows = 0;
  if (r->error[0]) return 5;
  int rc = fill(r, &rows);
  if (rc == 0 && rows > 0) rc = make_batch(r, rows, out);
  if (rc == 12 && !r->error[0]) snprintf(r->error, sizeof r->error, "out of memory");
  if (rc != 0) return rc;
  if (rows == 0) {
    memset(out, 0, sizeof *out); /* the end */
    return 0;
  }
  r->rows += rows;
  if (r->opts.rows_read) __atomic_add_fetch(r->opts.rows_read, rows, __ATOMIC_RELAXED);
  return 0;
}

int sqa_read(sqlite3 *db, const char *sql, const sqa_column *cols, size_t n, const sqa_read_opts *opts,
             struct ArrowArrayStream *out, sp_error *err) {
  reader *r = calloc(1, sizeof *r);
  if (r == NULL) {
    if (opts->done) opts->done(opts->ctx, db);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  r->db = db;
  r->opts = *opts;
  r->n = n;
  r->cols = sqa_columns_copy(cols, n);
  r->dataset = strdup(opts->dataset ? opts->dataset : "");
  r->table = strdup(opts->table ? opts->table : "");
  r->b = calloc(n ? n : 1, sizeof *r->b);
  r->warned = calloc(n ? n : 1, sizeof *r->warned);
  r->p = calloc(1, sizeof *r->p);
  if (r->p) {
    pthread_mutex_init(&r->p->lock, NULL);
    r->p->refs = 1;
  }
  if (!r->cols || !r->dataset || !r->table || !r->b || !r->warned || !r->p) {
    reader_free(r);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  if (sqlite3_prepare_v2(db, sql, -1, &r->st, NULL) != SQLITE_OK) {
    int code = sqlite3_errcode(db) == SQLITE_BUSY ? SP_EBUSY : SP_EIO;
    sp_fail(err, code, "could not read sqlite table \"%s\" for dataset \"%s\": %s", r->table, r->dataset, sqlite3_errmsg(db));
    reader_free(r);
    return code;
  }
  memset(out, 0, sizeof *out);
  out->get_schema = reader_schema;
  out->get_next = reader_next;
  out->get_last_error = reader_error;
  out->release = reader_release;
  out->private_data = r;
  return SP_OK;
}

/* ---- Filters -------------------------------------------------------------------------------------------------- */

typedef struct where_ctx {
  const sqa_column *cols;
  size_t n;
} where_ctx;

/* Only pushable columns, never one whose name holds ':' (the "::float8" suffix is taken out below). */
static char *where_column(void *ctx, const char *name) {
  where_ctx *w = ctx;
  const sqa_column *hit = NULL;
  for (size_t i = 0; i < w->n && hit == NULL; i++)
    if (strcmp(w->cols[i].name, name) == 0) hit = &w->cols[i];
  for (size_t i = 0; i < w->n && hit == NULL; i++)
    if (strcasecmp(w->cols[i].name, name) == 0) hit = &w->cols[i];
  if (hit == NULL || !hit->pushable || strchr(hit->name, ':') != NULL) return NULL;
  return sqa_ident(hit->name);
}

/* Text as CAST(X'…' AS TEXT): no quoting rules, and no text of the value in the statement. */
static char *where_literal(void *ctx, const char *s) {
  (void)ctx;
  size_t n = strlen(s);
  char *q = malloc(2 * n + 24);
  if (q == NULL) return NULL;
  size_t o = (size_t)sprintf(q, "CAST(X'");
  for (size_t i = 0; i < n; i++) o += (size_t)sprintf(q + o, "%02X", (unsigned char)s[i]);
  sprintf(q + o, "' AS TEXT)");
  return q;
}

int sqa_where(const char *dataset, const sqa_column *cols, size_t n, const char *filter_query, char **out, sp_error *err) {
  char what[400], *json = NULL, *where = NULL;
  snprintf(what, sizeof what, "the filter of dataset \"%s\"", dataset);
  SP_TRY(sp_duckdb_serialize_sql(filter_query, what, &json, err));
  where_ctx w = {.cols = cols, .n = n};
  pgf_ctx cx = {.dataset = dataset, .column = where_column, .literal = where_literal, .ctx = &w};
  int rc = pgf_where(json, &cx, &where, err);
  free(json);
  char *pg = err && rc != SP_OK ? strstr(err->msg, "pushed to postgres") : NULL;
  if (pg) memcpy(pg + 10, "sqlite  ", 8), memmove(pg + 16, pg + 18, strlen(pg + 18) + 1); /* the translator's own name */
  if (rc != SP_OK) return rc;
  /* pg_filter writes double constants as 1.5::float8; SQLite reads 1.5 as a double already. */
  char *p;
  while ((p = strstr(where, "::float8")) != NULL) memmove(p, p + 8, strlen(p + 8) + 1);
  if (strstr(where, "::") != NULL) {
    free(where);
    return sp_fail(err, SP_ENOTSUP, "the filter of dataset \"%s\" has a cast sqlite cannot read", dataset);
  }
  *out = where;
  return SP_OK;
}

/* ---- The writer ----------------------------------------------------------------------------------------------- */

/* Days since 1970-01-01 → year, month, day (Howard Hinnant's civil_from_days). */
static void civil(int64_t z, int *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097, doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* A date or timestamp value written as SQLite's date functions read it: 'YYYY-MM-DD[ HH:MM:SS.ffffff]'. */
static int bind_time_text(sqlite3_stmt *st, int k, const sqa_column *col, const char *format, int64_t v) {
  int64_t us;
  if (format[1] == 'd') us = format[2] == 'D' ? v * INT64_C(86400000000) : v * 1000; /* date32 days, date64 ms */
  else us = format[2] == 's' ? v * 1000000 : format[2] == 'm' ? v * 1000 : format[2] == 'n' ? v / 1000 : v;
  int64_t days = us >= 0 ? us / INT64_C(86400000000) : -((-us + INT64_C(86399999999)) / INT64_C(86400000000));
  int64_t rest = us - days * INT64_C(86400000000);
  int y, m, d;
  char buf[64];
  civil(days, &y, &m, &d);
  if (col->kind == SQA_DATE_TEXT) snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
  else snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%06d", y, m, d, (int)(rest / 3600000000), (int)(rest / 60000000 % 60),
                (int)(rest / 1000000 % 60), (int)(rest % 1000000));
  return sqlite3_bind_text(st, k, buf, -1, SQLITE_TRANSIENT);
}

/* Element x of a decimal32/64/128 array (width from its format "d:p,s[,bits]") as its exact text: a DOUBLE
 * column (precision <= 15) converts it as SQLite converts the same constant in a query, so pushed comparisons
 * match; a TEXT column keeps every digit. */
static int bind_decimal(sqlite3_stmt *st, int k, const uint8_t *d, const char *format, int64_t x, int scale) {
  sp_arrow_typeinfo t;
  sp_arrow_parse_format(format, &t);
  __int128 v;
  if (t.type == SP_ARROW_DECIMAL32) {
    int32_t v32;
    memcpy(&v32, d + x * 4, 4);
    v = v32;
  } else if (t.type == SP_ARROW_DECIMAL64) {
    int64_t v64;
    memcpy(&v64, d + x * 8, 8);
    v = v64;
  } else {
    memcpy(&v, d + x * 16, 16);
  }
  char buf[64], digits[48];
  unsigned __int128 u = v < 0 ? -(unsigned __int128)v : (unsigned __int128)v;
  int m = 0, o = 0;
  do digits[m++] = (char)('0' + (int)(u % 10)), u /= 10; while (u || m <= scale);
  if (v < 0) buf[o++] = '-';
  for (int q = m - 1; q >= 0; q--) {
    buf[o++] = digits[q];
    if (q == scale && q > 0) buf[o++] = '.';
  }
  return sqlite3_bind_text(st, k, buf, o, SQLITE_TRANSIENT);
}

/* Element x of a string or binary array: plain (32-bit offsets), large (64-bit) or view. */
static int bind_bytes(sqlite3_stmt *st, int k, const struct ArrowArray *a, const char *format, int64_t x, int text) {
  const uint8_t *d = a->buffers[1], *p;
  int64_t len;
  if (format[0] == 'v') { /* 16-byte views: the bytes inline up to 12, else (buffer, offset) */
    const uint8_t *view = d + x * 16;
    int32_t n32, buf_i, off;
    memcpy(&n32, view, 4);
    memcpy(&buf_i, view + 8, 4);
    memcpy(&off, view + 12, 4);
    p = n32 <= 12 ? view + 4 : (const uint8_t *)a->buffers[2 + buf_i] + off;
    len = n32;
  } else if (format[0] == 'U' || format[0] == 'Z') {
    const int64_t *o = (const int64_t *)d;
    p = (const uint8_t *)a->buffers[2] + o[x], len = o[x + 1] - o[x];
  } else {
    const int32_t *o = (const int32_t *)d;
    p = (const uint8_t *)a->buffers[2] + o[x], len = o[x + 1] - o[x];
  }
  return text ? sqlite3_bind_text64(st, k, (const char *)p, (sqlite3_uint64)len, SQLITE_STATIC, SQLITE_UTF8)
              : sqlite3_bind_blob64(st, k, len ? (const void *)p : "", (sqlite3_uint64)len, SQLITE_STATIC);
}

/* Signed or unsigned integer x of `width` bytes; SQLITE_RANGE for unsigned values over INT64_MAX. */
static int bind_int(sqlite3_stmt *st, int k, const uint8_t *d, int64_t x, int width, int is_unsigned) {
  int64_t v;
  uint64_t u;
  switch (width) {
  case 1: v = ((const int8_t *)d)[x], u = d[x]; break;
  case 2: v = ((const int16_t *)d)[x], u = ((const uint16_t *)d)[x]; break;
  case 4: v = ((const int32_t *)d)[x], u = ((const uint32_t *)d)[x]; break;
  default: v = ((const int64_t *)d)[x], u = ((const uint64_t *)d)[x];
  }
  if (is_unsigned && u > INT64_MAX) return SQLITE_RANGE;
  return sqlite3_bind_int64(st, k, is_unsigned ? (sqlite3_int64)u : v);
}

int sqa_bind(sqlite3_stmt *st, int k, const struct ArrowArray *a, const sqa_column *col, const char *format,
                      int64_t j) {
  if (sp_array_is_null(a, j)) return sqlite3_bind_null(st, k);
  int64_t x = j + a->offset;
  const uint8_t *d = a->n_buffers > 1 ? a->buffers[1] : NULL;
  switch (col->kind) {
  case SQA_BOOL: return sqlite3_bind_int(st, k, (d[x >> 3] >> (x & 7)) & 1);
  case SQA_INT: case SQA_UINT: return bind_int(st, k, d, x, col->width, col->kind == SQA_UINT);
  case SQA_DATE_TEXT: case SQA_TS_TEXT:
    return bind_time_text(st, k, col, format, col->width == 4 ? ((const int32_t *)d)[x] : ((const int64_t *)d)[x]);
  case SQA_FLOAT: return sqlite3_bind_double(st, k, col->width == 4 ? ((const float *)d)[x] : ((const double *)d)[x]);
  case SQA_FIXED: return sqlite3_bind_blob(st, k, d + x * col->width, col->width, SQLITE_STATIC);
  case SQA_DECIMAL: return bind_decimal(st, k, d, format, x, col->scale);
  case SQA_TEXT: case SQA_BLOB: return bind_bytes(st, k, a, format, x, col->kind == SQA_TEXT);
  default: return SQLITE_MISUSE;
  }
}

static int write_batch(sqlite3 *db, sqlite3_stmt *st, const sqa_column *cols, size_t n, const struct ArrowSchema *schema,
                       const struct ArrowArray *batch, sp_error *err) {
  for (int64_t j = 0; j < batch->length; j++) {
    for (size_t i = 0; i < n; i++) {
      const struct ArrowArray *a = batch->children[i];
      int rc = sqa_bind(st, (int)i + 1, a, &cols[i], schema->children[i]->format, j + batch->offset);
      if (rc == SQLITE_RANGE)
        return sp_fail(err, SP_EINVAL, "column \"%s\" holds an unsigned value over 2^63-1, which sqlite cannot store", cols[i].name);
      if (rc != SQLITE_OK) return sp_fail(err, SP_EIO, "%s", sqlite3_errmsg(db));
    }
    if (sqlite3_step(st) != SQLITE_DONE) {
      int e = sqlite3_errcode(db), code = e == SQLITE_BUSY ? SP_EBUSY : e == SQLITE_READONLY ? SP_EDENIED : SP_EIO;
      sp_fail(err, code, "%s", sqlite3_errmsg(db));
      sqlite3_reset(st);
      return code;
    }
    sqlite3_reset(st);
  }
  return SP_OK;
}

int sqa_write(sqlite3 *db, sqlite3_stmt *stmt, const sqa_column *cols, size_t n, struct ArrowArrayStream *stream,
              int64_t *out_rows, sp_error *err) {
  struct ArrowSchema schema = {0};
  int64_t rows = 0;
  int rc = SP_OK;
  if (stream->get_schema(stream, &schema) != 0 || (size_t)schema.n_children != n) {
    const char *m = stream->get_last_error(stream);
    rc = sp_fail(err, SP_EIO, "%s", m ? m : "the data has other columns than the table");
  }
  while (rc == SP_OK) {
    struct ArrowArray batch = {0};
    if (stream->get_next(stream, &batch) != 0) {
      const char *m = stream->get_last_error(stream);
      rc = sp_fail(err, SP_EIO, "%s", m ? m : "could not read the data");
      break;
    }
    if (batch.release == NULL) break;
    rc = (size_t)batch.n_children == n ? write_batch(db, stmt, cols, n, &schema, &batch, err)
                                       : sp_fail(err, SP_EIO, "a batch has other columns than the table");
    rows += batch.length;
    sp_array_release(&batch);
  }
  sp_schema_release(&schema);
  sp_stream_release(stream);
  if (rc == SP_OK && out_rows) *out_rows = rows;
  return rc;
}

/* ---- Column references ------------------------------------------------------------------------------------- */

void sqa_names_free(char **names, size_t n) {
  for (size_t i = 0; names && i < n; i++) free(names[i]);
  free(names);
}

/* One name at *p (bare up to ',' or ')', or "quoted" with "" for a quote), advancing *p. */
static char *colref_name(const char **p) {
  const char *s = *p;
  size_t cap = strlen(s) + 1, o = 0;
  char *name = malloc(cap);
  if (name == NULL) return NULL;
  while (isspace((unsigned char)*s)) s++;
  if (*s == '"') {
    for (s++; *s && !(s[0] == '"' && s[1] != '"'); s++) {
      if (s[0] == '"') s++;
      name[o++] = *s;
    }
    if (*s != '"') return free(name), NULL;
    s++;
  } else {
    while (*s && *s != ',' && *s != ')') name[o++] = *s++;
    while (o > 0 && isspace((unsigned char)name[o - 1])) o--;
  }
  while (isspace((unsigned char)*s)) s++;
  name[o] = '\0';
  *p = s;
  if (o == 0) return free(name), NULL;
  return name;
}

int sqa_colref_parse(const char *ref, char ***names, size_t *n, sp_error *err) {
  const char *p = ref;
  char **out = NULL;
  size_t k = 0;
  while (isspace((unsigned char)*p)) p++;
  int paren = *p == '(';
  if (paren) p++;
  for (;;) {
    char *name = colref_name(&p), **grown = name ? realloc(out, (k + 1) * sizeof *out) : NULL;
    if (grown == NULL) {
      free(name);
      break;
    }
    out = grown;
    out[k++] = name;
    if (paren && *p == ',') {
      p++;
      continue;
    }
    if (paren && *p == ')') {
      for (p++; isspace((unsigned char)*p); p++) {}
      if (*p == '\0') {
        *names = out;
        *n = k;
        return SP_OK;
      }
    }
    if (!paren && *p == '\0') {
      *names = out;
      *n = k;
      return SP_OK;
    }
    break;
  }
  sqa_names_free(out, k);
  return sp_fail(err, SP_EINVAL, "\"%s\" is not a column reference (write col or (col1, col2))", ref);
}
