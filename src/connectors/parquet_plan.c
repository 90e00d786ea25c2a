/* SPDX-License-Identifier: Apache-2.0
 *
 * Planning a ranged read of a Parquet file (see parquet_plan.h): which row groups, which byte ranges.
 *
 * Row groups are judged on DuckDB's parse tree of the pushed conditions. A condition rules a row group out
 * only when its statistics prove that no row satisfies it, with the comparison DuckDB itself would make: the
 * constant converted the way DuckDB's binder converts it (an integer or decimal constant against a DOUBLE
 * column becomes a double; a string against a DATE column becomes a date), and DuckDB's ordering (NaN above
 * everything, so `x > c` may match NaNs that statistics leave out). Anything else may match.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "connectors/parquet_plan.h"

enum { MAX_DEPTH = 64 };

static const char *str_of(const json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : "";
}

/* ---- Columns -------------------------------------------------------------------------------------------------- */

/* Marks the top-level columns `name` denotes: the one spelled exactly so, else every one equal ignoring case
 * (DuckDB binds names without regard to case). False when none does. */
static bool mark_column(const sp_pq_meta *m, const char *name, bool *tops) {
  for (size_t t = 0; t < m->n_top; t++)
    if (strcmp(m->top[t], name) == 0) return tops[t] = true;
  bool any = false;
  for (size_t t = 0; t < m->n_top; t++)
    if (strcasecmp(m->top[t], name) == 0) any = tops[t] = true;
  return any;
}

/* The one flat leaf a column reference in a condition compares, or -1 (unknown, ambiguous, nested). */
static int leaf_of_ref(const sp_pq_meta *m, const json_t *ref) {
  const json_t *names = json_object_get(ref, "column_names");
  if (json_array_size(names) != 1) return -1;
  const char *name = json_string_value(json_array_get(names, 0));
  if (name == NULL) return -1;
  int top = -1;
  for (size_t t = 0; t < m->n_top && top < 0; t++)
    if (strcmp(m->top[t], name) == 0) top = (int)t;
  for (size_t t = 0; t < m->n_top && top < 0; t++)
    if (strcasecmp(m->top[t], name) == 0) {
      for (size_t u = t + 1; u < m->n_top; u++)
        if (strcasecmp(m->top[u], name) == 0) return -1;
      top = (int)t;
    }
  for (size_t i = 0; top >= 0 && i < m->n_leaves; i++)
    if (m->leaves[i].top == top) return m->leaves[i].flat ? (int)i : -1;
  return -1;
}

/* Marks every column a condition reads; false when one of them is unknown here (or `*`). */
static bool mark_condition_columns(const sp_pq_meta *m, const json_t *e, bool *tops, int depth) {
  if (depth > MAX_DEPTH) return false;
  if (json_is_array(e)) {
    for (size_t i = 0; i < json_array_size(e); i++)
      if (!mark_condition_columns(m, json_array_get(e, i), tops, depth + 1)) return false;
    return true;
  }
  if (!json_is_object(e)) return true;
  const char *cls = str_of(e, "class");
  if (strcmp(cls, "STAR") == 0) return false;
  if (strcmp(cls, "COLUMN_REF") == 0) {
    const json_t *names = json_object_get(e, "column_names");
    const char *name = json_string_value(json_array_get(names, json_array_size(names) - 1));
    return name && mark_column(m, name, tops);
  }
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)e, key, v) if (!mark_condition_columns(m, v, tops, depth + 1)) return false;
  return true;
}

/* ---- Constants ----------------------------------------------------------------------------------------------- */

typedef enum vkind { V_NONE = 0, V_INT, V_DEC, V_DOUBLE, V_STR, V_DATE } vkind;

typedef struct value {
  vkind kind;
  int64_t i;     /* V_INT, V_DATE (days), V_DEC (unscaled) */
  int scale;     /* V_DEC */
  double d;      /* V_DOUBLE */
  const char *s; /* V_STR */
  size_t len;
} value;

static bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* Days since 1970-01-01 of a date written exactly YYYY-MM-DD (the only form trusted here). */
static bool parse_date(const char *s, int64_t *days) {
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (strlen(s) != 10 || s[4] != '-' || s[7] != '-') return false;
  for (int i = 0; i < 10; i++)
    if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) return false;
  int64_t y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
  int mo = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && is_leap(y))) return false;
  /* days_from_civil (Howard Hinnant's algorithm) */
  y -= mo <= 2;
  int64_t era = y / 400, yoe = y - era * 400;
  int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  *days = era * 146097 + doe - 719468;
  return true;
}

static value constant_of(const json_t *e) {
  value v = {0};
  const char *cls = str_of(e, "class");
  if (strcmp(cls, "CAST") == 0) { /* DATE '…' */
    const json_t *child = json_object_get(e, "child"), *cv = json_object_get(child, "value");
    const char *s = json_string_value(json_object_get(cv, "value"));
    if (json_is_true(json_object_get(e, "try_cast")) || strcmp(str_of(json_object_get(e, "cast_type"), "id"), "DATE") != 0 ||
        strcmp(str_of(child, "class"), "CONSTANT") != 0 || strcmp(str_of(json_object_get(cv, "type"), "id"), "VARCHAR") != 0 ||
        json_is_true(json_object_get(cv, "is_null")) || s == NULL || !parse_date(s, &v.i))
      return (value){0};
    v.kind = V_DATE;
    return v;
  }
  if (strcmp(cls, "CONSTANT") != 0) return v;
  const json_t *cv = json_object_get(e, "value"), *t = json_object_get(cv, "type"), *val = json_object_get(cv, "value");
  const char *id = str_of(t, "id");
  if (json_is_true(json_object_get(cv, "is_null")) || val == NULL) return v;
  static const char *const ints[] = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", NULL};
  for (size_t i = 0; ints[i]; i++)
    if (strcmp(id, ints[i]) == 0 && json_is_integer(val)) return (value){.kind = V_INT, .i = json_integer_value(val)};
  if (strcmp(id, "DECIMAL") == 0 && json_is_integer(val)) {
    json_int_t scale = json_integer_value(json_object_get(json_object_get(t, "type_info"), "scale"));
    if (scale >= 0 && scale <= 18) return (value){.kind = V_DEC, .i = json_integer_value(val), .scale = (int)scale};
  }
  if ((strcmp(id, "DOUBLE") == 0 || strcmp(id, "FLOAT") == 0) && json_is_number(val) && isfinite(json_number_value(val)))
    return (value){.kind = V_DOUBLE, .d = json_number_value(val)};
  if (strcmp(id, "VARCHAR") == 0 && json_is_string(val))
    return (value){.kind = V_STR, .s = json_string_value(val), .len = json_string_length(val)};
  return v;
}

/* ---- Statistics ---------------------------------------------------------------------------------------------- */

/* A statistic bound of a chunk, decoded for its leaf's kind. */
typedef struct bound {
  int64_t i;
  double d;
  const uint8_t *s;
  size_t len;
} bound;

static int64_t le_int(const uint8_t *p, uint32_t n) {
  uint64_t u = 0;
  for (uint32_t k = 0; k < n; k++) u |= (uint64_t)p[k] << (8 * k);
  return n == 4 ? (int64_t)(int32_t)(uint32_t)u : (int64_t)u;
}

static bool decode(const sp_pq_leaf *leaf, const uint8_t *p, uint32_t n, bound *b) {
  if (p == NULL) return false;
  switch (leaf->kind) {
  case SP_PQ_KIND_INT:
  case SP_PQ_KIND_DATE:
    if (n != (leaf->type == SP_PQ_INT64 ? 8u : 4u)) return false;
    b->i = le_int(p, n);
    return true;
  case SP_PQ_KIND_DOUBLE:
    if (n != 8) return false;
    uint64_t u = (uint64_t)le_int(p, 8);
    memcpy(&b->d, &u, sizeof b->d);
    return !isnan(b->d);
  case SP_PQ_KIND_STRING:
    b->s = p;
    b->len = n;
    return true;
  default:
    return false;
  }
}

/* A double's place in IEEE 754 total order (-0 below +0), as an integer. */
static int64_t total_order(double d) {
  int64_t i;
  memcpy(&i, &d, sizeof i);
  return i < 0 ? i ^ INT64_MAX : i;
}

enum { UNKNOWN = 2 };

static int sign64(int64_t a, int64_t b) { return (a > b) - (a < b); }

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,
                               1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18};

/* The constant as DuckDB compares it with a DOUBLE column; false when it is no number. */
static bool as_double(const value *v, double *out) {
  if (v->kind == V_DOUBLE) *out = v->d;
  else if (v->kind == V_INT) *out = (double)v->i;
  else if (v->kind == V_DEC) *out = (double)v->i / POW10[v->scale];
  else return false;
  return true;
}

/* Compares bound b of a leaf with the constant: -1, 0, 1, or UNKNOWN when they do not compare here. */
static int compare(const sp_pq_leaf *leaf, const bound *b, const value *v) {
  double d;
  switch (leaf->kind) {
  case SP_PQ_KIND_INT:
    if (v->kind == V_INT) return sign64(b->i, v->i);
    if (v->kind == V_DEC) { /* exact: DuckDB compares an integer column with a decimal as decimals */
      __int128 lhs = (__int128)b->i * (__int128)(int64_t)POW10[v->scale], rhs = v->i;
      return (lhs > rhs) - (lhs < rhs);
    }
    if (v->kind == V_DOUBLE) return ((double)b->i > v->d) - ((double)b->i < v->d);
    return UNKNOWN;
  case SP_PQ_KIND_DOUBLE:
    return as_double(v, &d) ? sign64(total_order(b->d), total_order(d)) : UNKNOWN;
  case SP_PQ_KIND_DATE:
    if (v->kind == V_STR) {
      int64_t days;
      char text[16];
      if (v->len >= sizeof text) return UNKNOWN;
      memcpy(text, v->s, v->len);
      text[v->len] = '\0';
      return parse_date(text, &days) ? sign64(b->i, days) : UNKNOWN;
    }
    return v->kind == V_DATE ? sign64(b->i, v->i) : UNKNOWN;
  case SP_PQ_KIND_STRING: {
    if (v->kind != V_STR) return UNKNOWN;
    size_t n = b->len < v->len ? b->len : v->len;
    int c = n ? memcmp(b->s, v->s, n) : 0;
    return c ? (c > 0) - (c < 0) : (b->len > v->len) - (b->len < v->len);
  }
  default:
    return UNKNOWN;
  }
}

typedef enum op { OP_NONE = 0, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE } op;

static op op_of(const char *type) {
  static const struct { const char *name; op o; } map[] = {
      {"COMPARE_EQUAL", OP_EQ}, {"COMPARE_NOTEQUAL", OP_NE}, {"COMPARE_LESSTHAN", OP_LT},
      {"COMPARE_LESSTHANOREQUALTO", OP_LE}, {"COMPARE_GREATERTHAN", OP_GT}, {"COMPARE_GREATERTHANOREQUALTO", OP_GE}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcmp(type, map[i].name) == 0) return map[i].o;
  return OP_NONE;
}

static op flipped(op o) {
  return o == OP_LT ? OP_GT : o == OP_GT ? OP_LT : o == OP_LE ? OP_GE : o == OP_GE ? OP_LE : o;
}

/* True when no value of chunk c (leaf `leaf`) can satisfy `x o v`. */
static bool rules_out(const sp_pq_leaf *leaf, const sp_pq_chunk *c, op o, const value *v) {
  bound lo, hi;
  if (!leaf->ordered || !decode(leaf, c->min, c->min_len, &lo) || !decode(leaf, c->max, c->max_len, &hi)) return false;
  if (leaf->kind == SP_PQ_KIND_DOUBLE) {
    /* +0 as a minimum may stand for -0 and -0 as a maximum for +0; NaN (not in the statistics unless
     * nan_count says there is none) is above every number in DuckDB. */
    if (lo.d == 0) lo.d = -0.0;
    if (hi.d == 0) hi.d = 0.0;
    if (c->nan_count != 0 && (o == OP_GT || o == OP_GE || o == OP_NE)) return false;
  }
  int cl = compare(leaf, &lo, v), ch = compare(leaf, &hi, v);
  if (cl == UNKNOWN || ch == UNKNOWN) return false;
  switch (o) {
  case OP_EQ: return cl > 0 || ch < 0;
  case OP_NE: return cl == 0 && ch == 0;
  case OP_LT: return cl >= 0;
  case OP_LE: return cl > 0;
  case OP_GT: return ch <= 0;
  case OP_GE: return ch < 0;
  default: return false;
  }
}

/* ---- Conditions ---------------------------------------------------------------------------------------------- */

typedef struct judge {
  const sp_pq_meta *m;
  const sp_pq_row_group *g;
} judge;

static bool cannot_match(const judge *j, const json_t *e, int depth);

static bool comparison_rules_out(const judge *j, const json_t *col, op o, const json_t *constant) {
  int leaf = strcmp(str_of(col, "class"), "COLUMN_REF") == 0 ? leaf_of_ref(j->m, col) : -1;
  value v = constant_of(constant);
  return leaf >= 0 && v.kind != V_NONE && rules_out(&j->m->leaves[leaf], &j->g->chunks[leaf], o, &v);
}

static bool comparison_cannot_match(const judge *j, const json_t *e) {
  op o = op_of(str_of(e, "type"));
  const json_t *l = json_object_get(e, "left"), *r = json_object_get(e, "right");
  if (o == OP_NONE) return false;
  if (strcmp(str_of(l, "class"), "COLUMN_REF") == 0) return comparison_rules_out(j, l, o, r);
  return comparison_rules_out(j, r, flipped(o), l);
}

/* x IN (c1, c2, …): no row matches when no ci can be equal to a value of the chunk. */
static bool in_cannot_match(const judge *j, const json_t *kids) {
  size_t n = json_array_size(kids);
  if (n < 2) return false;
  for (size_t i = 1; i < n; i++)
    if (!comparison_rules_out(j, json_array_get(kids, 0), OP_EQ, json_array_get(kids, i))) return false;
  return true;
}

/* x IS NULL / IS NOT NULL, from the null count of a flat column. */
static bool null_test_cannot_match(const judge *j, const json_t *kids, bool is_null) {
  int leaf = json_array_size(kids) == 1 && strcmp(str_of(json_array_get(kids, 0), "class"), "COLUMN_REF") == 0
                 ? leaf_of_ref(j->m, json_array_get(kids, 0))
                 : -1;
  if (leaf < 0) return false;
  const sp_pq_chunk *c = &j->g->chunks[leaf];
  if (c->null_count < 0) return false;
  return is_null ? c->null_count == 0 : c->null_count == c->num_values && c->num_values == j->g->num_rows;
}

static bool conjunction_cannot_match(const judge *j, const json_t *e, int depth) {
  const json_t *kids = json_object_get(e, "children");
  bool is_and = strcmp(str_of(e, "type"), "CONJUNCTION_AND") == 0;
  if (!is_and && strcmp(str_of(e, "type"), "CONJUNCTION_OR") != 0) return false;
  size_t n = json_array_size(kids);
  for (size_t i = 0; i < n; i++) {
    bool out = cannot_match(j, json_array_get(kids, i), depth + 1);
    if (is_and && out) return true;
    if (!is_and && !out) return false;
  }
  return !is_and && n > 0;
}

/* True when the statistics of row group j->g prove that no row satisfies condition e. */
static bool cannot_match(const judge *j, const json_t *e, int depth) {
  const char *cls = str_of(e, "class"), *type = str_of(e, "type");
  if (depth > MAX_DEPTH) return false;
  if (strcmp(cls, "CONJUNCTION") == 0) return conjunction_cannot_match(j, e, depth);
  if (strcmp(cls, "COMPARISON") == 0) return comparison_cannot_match(j, e);
  if (strcmp(cls, "BETWEEN") == 0 && strcmp(type, "COMPARE_BETWEEN") == 0) {
    const json_t *x = json_object_get(e, "input");
    return comparison_rules_out(j, x, OP_GE, json_object_get(e, "lower")) ||
           comparison_rules_out(j, x, OP_LE, json_object_get(e, "upper"));
  }
  if (strcmp(cls, "OPERATOR") == 0) {
    const json_t *kids = json_object_get(e, "children");
    if (strcmp(type, "COMPARE_IN") == 0) return in_cannot_match(j, kids);
    if (strcmp(type, "OPERATOR_IS_NULL") == 0) return null_test_cannot_match(j, kids, true);
    if (strcmp(type, "OPERATOR_IS_NOT_NULL") == 0) return null_test_cannot_match(j, kids, false);
  }
  return false;
}

/* ---- The plan ------------------------------------------------------------------------------------------------ */

static int cmp_range(const void *a, const void *b) {
  const sp_byte_range *x = a, *y = b;
  return x->start != y->start ? (x->start > y->start) - (x->start < y->start) : (x->end > y->end) - (x->end < y->end);
}

size_t sp__byte_ranges_normalize(sp_byte_range *r, size_t n) {
  /* An empty range (a zero-length chunk or bloom filter) asks for nothing, and a Range header cannot say it. */
  size_t kept = 0;
  for (size_t i = 0; i < n; i++)
    if (r[i].end > r[i].start) r[kept++] = r[i];
  n = kept;
  if (n == 0) return 0;
  qsort(r, n, sizeof *r, cmp_range);
  size_t o = 0;
  for (size_t i = 1; i < n; i++) {
    if (r[i].start <= r[o].end) {
      if (r[i].end > r[o].end) r[o].end = r[i].end;
    } else {
      r[++o] = r[i];
    }
  }
  return o + 1;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Where something known starts after `off` (or the footer): the end of a bloom filter of unknown length. */
static int64_t next_start(const int64_t *starts, size_t n, int64_t off, int64_t data_end) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (starts[mid] <= off) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && starts[lo] < data_end ? starts[lo] : data_end;
}

/* Every chunk and bloom filter start, sorted: only needed when a bloom filter's length is unknown. */
static int64_t *all_starts(const sp_pq_meta *m, size_t *n) {
  size_t cap = m->n_rgs * m->n_leaves * 2, k = 0;
  int64_t *s = malloc((cap ? cap : 1) * sizeof *s);
  for (size_t g = 0; s && g < m->n_rgs; g++)
    for (size_t i = 0; i < m->n_leaves; i++) {
      s[k++] = m->rgs[g].chunks[i].start;
      if (m->rgs[g].chunks[i].bloom_start >= 0) s[k++] = m->rgs[g].chunks[i].bloom_start;
    }
  if (s) qsort(s, k, sizeof *s, cmp_i64);
  *n = k;
  return s;
}

/* The byte ranges of the kept row groups: the chunks of the leaves of `read` columns, and the bloom filters
 * of the leaves of `filtered` ones (DuckDB reads them for equality conditions). */
static int collect_ranges(const sp_pq_meta *m, const bool *read, const bool *filtered, sp_pq_plan *p, sp_error *err) {
  size_t cap = 2 * p->n_kept * m->n_leaves, n = 0, n_starts = 0;
  int64_t *starts = NULL;
  p->ranges = malloc((cap ? cap : 1) * sizeof *p->ranges);
  if (p->ranges == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t g = 0; g < m->n_rgs; g++) {
    for (size_t i = 0; p->keep[g] && i < m->n_leaves; i++) {
      const sp_pq_chunk *c = &m->rgs[g].chunks[i];
      int top = m->leaves[i].top;
      if (read[top] || filtered[top]) p->ranges[n++] = (sp_byte_range){c->start, c->start + c->len};
      if (!filtered[top] || c->bloom_start < 0) continue;
      int64_t end = c->bloom_start + c->bloom_len;
      if (c->bloom_len < 0) {
        if (starts == NULL && (starts = all_starts(m, &n_starts)) == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
        end = next_start(starts, n_starts, c->bloom_start, m->data_end);
      }
      p->ranges[n++] = (sp_byte_range){c->bloom_start, end};
    }
  }
  free(starts);
  p->n_ranges = sp__byte_ranges_normalize(p->ranges, n);
  for (size_t i = 0; i < p->n_ranges; i++) p->bytes += p->ranges[i].end - p->ranges[i].start;
  return SP_OK;
}

/* The WHERE clause of json_serialize_sql's output, or NULL. */
static const json_t *where_of(const json_t *doc) {
  if (json_is_true(json_object_get(doc, "error"))) return NULL;
  const json_t *node = json_object_get(json_array_get(json_object_get(doc, "statements"), 0), "node");
  return json_object_get(node, "where_clause");
}

/* Which row groups to keep: those the conditions cannot rule out, or (no conditions) the first ones that hold
 * `limit` rows. */
static void choose_row_groups(const sp_pq_meta *m, const json_t *where, bool filtered, int64_t limit, sp_pq_plan *p) {
  int64_t rows = 0;
  for (size_t g = 0; g < m->n_rgs; g++) {
    judge j = {m, &m->rgs[g]};
    bool keep = where ? !cannot_match(&j, where, 0) : filtered || limit < 0 || rows < limit;
    if (keep) rows += m->rgs[g].num_rows;
    p->keep[g] = keep;
    p->n_kept += keep;
  }
}

int sp__pq_plan(const sp_pq_meta *m, const char *const *columns, size_t n_columns, const char *filter_json,
                int64_t limit, sp_pq_plan *out, sp_error *err) {
  sp_pq_plan p = {0};
  bool *read = calloc(m->n_top ? m->n_top : 1, sizeof *read), *filtered = calloc(m->n_top ? m->n_top : 1, sizeof *filtered);
  p.keep = calloc(m->n_rgs ? m->n_rgs : 1, sizeof *p.keep);
  json_t *doc = filter_json ? json_loads(filter_json, JSON_DECODE_ANY, NULL) : NULL;
  const json_t *where = where_of(doc);
  int rc = read && filtered && p.keep ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  bool all = columns == NULL || n_columns == 0;
  for (size_t i = 0; rc == SP_OK && !all && i < n_columns; i++) all = !mark_column(m, columns[i], read);
  /* Conditions that cannot be read, or on columns unknown here: read everything, drop nothing. */
  if (filter_json && (where == NULL || !mark_condition_columns(m, where, filtered, 0))) {
    all = true;
    where = NULL;
    memset(filtered, 1, m->n_top);
  }
  if (all) memset(read, 1, m->n_top);
  if (rc == SP_OK) choose_row_groups(m, where, filter_json != NULL, limit, &p);
  if (rc == SP_OK) rc = collect_ranges(m, read, filtered, &p, err);
  json_decref(doc);
  free(read);
  free(filtered);
  if (rc != SP_OK) {
    sp__pq_plan_free(&p);
    return rc;
  }
  *out = p;
  return SP_OK;
}

void sp__pq_plan_free(sp_pq_plan *p) {
  if (p == NULL) return;
  free(p->keep);
  free(p->ranges);
  memset(p, 0, sizeof *p);
}
