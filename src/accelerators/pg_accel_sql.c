/* SPDX-License-Identifier: Apache-2.0
 *
 * Arrow → PostgreSQL column mapping and the SQL text of the postgres accelerator (see pg_accel.h). Types the
 * binary COPY encoder takes as they are map directly; the others (unsigned and 8-bit integers, decimal32/64,
 * timestamps in other units, views) are cast by DuckDB on the way in to the nearest type that holds every value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "accelerators/pg_accel.h"
#include "accelerators/sqlite_arrow.h"
#include "spice/arrow.h"
#include "spice/buf.h"

typedef struct simple_map {
  sp_arrow_type arrow;
  pgc_kind kind;
  const char *pg_type;
  const char *cast; /* NULL: taken as is */
} simple_map;

static const simple_map simple[] = {
    {SP_ARROW_BOOL, PGC_BOOL, "boolean", NULL},
    {SP_ARROW_INT8, PGC_INT2, "smallint", "SMALLINT"},
    {SP_ARROW_UINT8, PGC_INT2, "smallint", "SMALLINT"},
    {SP_ARROW_INT16, PGC_INT2, "smallint", NULL},
    {SP_ARROW_UINT16, PGC_INT4, "integer", "INTEGER"},
    {SP_ARROW_INT32, PGC_INT4, "integer", NULL},
    {SP_ARROW_UINT32, PGC_INT8, "bigint", "BIGINT"},
    {SP_ARROW_INT64, PGC_INT8, "bigint", NULL},
    {SP_ARROW_HALF, PGC_FLOAT4, "real", "FLOAT"},
    {SP_ARROW_FLOAT, PGC_FLOAT4, "real", NULL},
    {SP_ARROW_DOUBLE, PGC_FLOAT8, "double precision", NULL},
    {SP_ARROW_UTF8, PGC_TEXT, "text", NULL},
    {SP_ARROW_LARGE_UTF8, PGC_TEXT, "text", NULL},
    {SP_ARROW_UTF8_VIEW, PGC_TEXT, "text", "VARCHAR"},
    {SP_ARROW_BINARY, PGC_BYTEA, "bytea", NULL},
    {SP_ARROW_LARGE_BINARY, PGC_BYTEA, "bytea", NULL},
    {SP_ARROW_BINARY_VIEW, PGC_BYTEA, "bytea", "BLOB"},
    {SP_ARROW_FIXED_BINARY, PGC_BYTEA, "bytea", "BLOB"},
    {SP_ARROW_DATE32, PGC_DATE, "date", NULL},
    {SP_ARROW_DATE64, PGC_DATE, "date", "DATE"},
    {SP_ARROW_TIME32, PGC_TIME, "time", "TIME"},
    {SP_ARROW_INTERVAL_MONTH_DAY_NANO, PGC_INTERVAL, "interval", NULL},
    {SP_ARROW_INTERVAL_MONTHS, PGC_INTERVAL, "interval", "INTERVAL"},
    {SP_ARROW_INTERVAL_DAY_TIME, PGC_INTERVAL, "interval", "INTERVAL"},
    {SP_ARROW_DURATION, PGC_INTERVAL, "interval", "INTERVAL"},
};

static int unsupported(const struct ArrowSchema *f, const char *dataset, sp_error *err) {
  return sp_fail(err, SP_ENOTSUP, "the postgres accelerator cannot store column \"%s\" of dataset \"%s\": Arrow type "
                 "\"%s\" has no postgres mapping", f->name ? f->name : "", dataset, f->format ? f->format : "?");
}

/* Everything but lists: fills kind, pg_type and cast. Returns 0 when there is no mapping. */
static int map_scalar(const sp_arrow_typeinfo *t, pgc_type *k, char *pg_type, size_t pn, char *cast, size_t cn) {
  memset(k, 0, sizeof *k);
  cast[0] = '\0';
  for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
    if (simple[i].arrow == t->type) {
      k->kind = simple[i].kind;
      snprintf(pg_type, pn, "%s", simple[i].pg_type);
      if (simple[i].cast) snprintf(cast, cn, "%s", simple[i].cast);
      return 1;
    }
  switch (t->type) {
  case SP_ARROW_UINT64: /* past bigint: exact as numeric */
    *k = (pgc_type){.kind = PGC_NUMERIC, .precision = 20, .scale = 0};
    snprintf(pg_type, pn, "numeric(20,0)");
    snprintf(cast, cn, "DECIMAL(20,0)");
    return 1;
  case SP_ARROW_DECIMAL32: case SP_ARROW_DECIMAL64: case SP_ARROW_DECIMAL128:
    if (t->precision < 1 || t->precision > 38 || t->scale < 0 || t->scale > t->precision) return 0;
    *k = (pgc_type){.kind = PGC_NUMERIC, .precision = t->precision, .scale = t->scale};
    snprintf(pg_type, pn, "numeric(%d,%d)", t->precision, t->scale);
    if (t->type != SP_ARROW_DECIMAL128) snprintf(cast, cn, "DECIMAL(%d,%d)", t->precision, t->scale);
    return 1;
  case SP_ARROW_TIME64:
    k->kind = PGC_TIME;
    snprintf(pg_type, pn, "time");
    if (t->unit != SP_UNIT_MICRO) snprintf(cast, cn, "TIME");
    return 1;
  case SP_ARROW_TIMESTAMP:
    k->kind = t->tz[0] ? PGC_TIMESTAMPTZ : PGC_TIMESTAMP;
    snprintf(pg_type, pn, "%s", t->tz[0] ? "timestamptz" : "timestamp");
    if (t->unit != SP_UNIT_MICRO) snprintf(cast, cn, "%s", t->tz[0] ? "TIMESTAMPTZ" : "TIMESTAMP");
    return 1;
  default: return 0;
  }
}

int pga_map_field(const struct ArrowSchema *f, const char *dataset, pga_column *out, sp_error *err) {
  sp_arrow_typeinfo t;
  memset(out, 0, sizeof *out);
  sp_arrow_parse_format(f->format ? f->format : "", &t);
  if (t.type == SP_ARROW_LIST) {
    /* One-dimensional arrays of a type the encoder takes as is. */
    sp_arrow_typeinfo e;
    pgc_type ek;
    char et[40], ec[40];
    if (f->n_children != 1) return unsupported(f, dataset, err);
    sp_arrow_parse_format(f->children[0]->format ? f->children[0]->format : "", &e);
    if (!map_scalar(&e, &ek, et, sizeof et, ec, sizeof ec) || ec[0]) return unsupported(f, dataset, err);
    out->type = (pgc_type){.kind = PGC_LIST, .elem = ek.kind, .elem_precision = ek.precision, .elem_scale = ek.scale};
    snprintf(out->pg_type, sizeof out->pg_type, "%s[]", et);
  } else if (!map_scalar(&t, &out->type, out->pg_type, sizeof out->pg_type, out->cast, sizeof out->cast)) {
    return unsupported(f, dataset, err);
  }
  out->name = strdup(f->name ? f->name : "");
  out->quoted = out->name ? sqa_ident(out->name) : NULL;
  if (out->name == NULL || out->quoted == NULL) {
    free(out->name);
    free(out->quoted);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  return SP_OK;
}

int pga_columns_of(const struct ArrowSchema *schema, const char *dataset, pga_column **out, size_t *n, sp_error *err) {
  size_t k = schema->n_children > 0 ? (size_t)schema->n_children : 0;
  if (k == 0) return sp_fail(err, SP_EINVAL, "the data for dataset \"%s\" has no columns", dataset);
  pga_column *cols = calloc(k, sizeof *cols);
  if (cols == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0; i < k; i++) {
    int rc = pga_map_field(schema->children[i], dataset, &cols[i], err);
    if (rc != SP_OK) {
      pga_columns_free(cols, i);
      return rc;
    }
  }
  *out = cols;
  *n = k;
  return SP_OK;
}

void pga_columns_free(pga_column *cols, size_t n) {
  for (size_t i = 0; cols && i < n; i++) {
    free(cols[i].name);
    free(cols[i].quoted);
  }
  free(cols);
}

int pga_needs_cast(const pga_column *cols, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (cols[i].cast[0]) return 1;
  return 0;
}

/* ", " between items of a list being built. */
static void sep(sp_buf *b, size_t i) {
  if (i) sp_buf_append_str(b, ", ");
}

/* The buffer as a malloc'd string (taken from b), or NULL when an append failed. */
static char *finish(sp_buf *b) {
  const char *s = sp_buf_cstr(b);
  char *out = s ? strdup(s) : NULL;
  sp_buf_free(b);
  return out;
}

char *pga_cast_sql(const pga_column *cols, size_t n, unsigned long long token) {
  sp_buf b = {0};
  char tail[64];
  sp_buf_append_str(&b, "SELECT ");
  for (size_t i = 0; i < n; i++) {
    sep(&b, i);
    if (cols[i].cast[0]) {
      sp_buf_append_str(&b, "CAST(");
      sp_buf_append_str(&b, cols[i].quoted);
      sp_buf_append_str(&b, " AS ");
      sp_buf_append_str(&b, cols[i].cast);
      sp_buf_append_str(&b, ") AS ");
    }
    sp_buf_append_str(&b, cols[i].quoted);
  }
  snprintf(tail, sizeof tail, " FROM sp_stream('%llu')", token);
  sp_buf_append_str(&b, tail);
  return finish(&b);
}

char *pga_dedup_sql(const char *inner, const char *target, int keep_last) {
  size_t n = strlen(inner) + strlen(target) + 256;
  char *sql = malloc(n);
  if (sql)
    snprintf(sql, n, "SELECT * EXCLUDE (spice_rn) FROM (SELECT *, row_number() OVER () AS spice_rn FROM (%s)) "
             "QUALIFY row_number() OVER (PARTITION BY %s ORDER BY spice_rn %s) = 1", inner, target, keep_last ? "DESC" : "ASC");
  return sql;
}

char *pga_create_sql(const char *relation, const pga_column *cols, size_t n, const char *const *keys, size_t n_keys, int temp) {
  sp_buf b = {0};
  sp_buf_append_str(&b, temp ? "CREATE TEMP TABLE " : "CREATE TABLE ");
  sp_buf_append_str(&b, relation);
  sp_buf_append_str(&b, " (");
  for (size_t i = 0; i < n; i++) {
    sep(&b, i);
    sp_buf_append_str(&b, cols[i].quoted);
    sp_buf_append_str(&b, " ");
    sp_buf_append_str(&b, cols[i].pg_type);
  }
  for (size_t i = 0; i < n_keys; i++) {
    if (keys[i] == NULL) continue;
    sp_buf_append_str(&b, i == 0 ? ", PRIMARY KEY (" : ", UNIQUE (");
    sp_buf_append_str(&b, keys[i]);
    sp_buf_append_str(&b, ")");
  }
  sp_buf_append_str(&b, temp ? ") ON COMMIT DROP" : ")");
  return finish(&b);
}

static int has_column(const pga_column *cols, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(cols[i].name, name) == 0) return 1;
  return 0;
}

int pga_colref(const char *ref, const pga_column *cols, size_t n, const char *dataset, const char *what, char **out,
               sp_error *err) {
  char **names;
  size_t k;
  SP_TRY(sqa_colref_parse(ref, &names, &k, err));
  sp_buf b = {0};
  int rc = SP_OK;
  for (size_t i = 0; rc == SP_OK && i < k; i++) {
    char *q = sqa_ident(names[i]);
    if (!has_column(cols, n, names[i]))
      rc = sp_fail(err, SP_EINVAL, "dataset \"%s\": %s names column \"%s\", which the data does not have", dataset, what, names[i]);
    else if (q == NULL)
      rc = sp_fail(err, SP_ENOMEM, "out of memory");
    else
      sep(&b, i), sp_buf_append_str(&b, q);
    free(q);
  }
  sqa_names_free(names, k);
  if (rc != SP_OK) {
    sp_buf_free(&b);
    return rc;
  }
  return (*out = finish(&b)) ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
}

/* Whether quoted column q is one of the target's `"a", "b"`. */
static int in_target(const char *target, const char *q) {
  size_t n = strlen(q);
  for (const char *p = strstr(target, q); p; p = strstr(p + 1, q))
    if ((p == target || p[-1] == ' ') && (p[n] == '\0' || p[n] == ',')) return 1;
  return 0;
}

/* ON CONFLICT (target) DO UPDATE SET c = EXCLUDED.c, … (DO NOTHING when every column is the key). */
static void conflict_clause(sp_buf *b, const pga_column *cols, size_t n, const char *target, int upsert) {
  sp_buf_append_str(b, " ON CONFLICT (");
  sp_buf_append_str(b, target);
  sp_buf_append_str(b, ")");
  size_t set = 0;
  for (size_t i = 0; upsert && i < n; i++) {
    if (in_target(target, cols[i].quoted)) continue;
    sp_buf_append_str(b, set++ ? ", " : " DO UPDATE SET ");
    sp_buf_append_str(b, cols[i].quoted);
    sp_buf_append_str(b, " = EXCLUDED.");
    sp_buf_append_str(b, cols[i].quoted);
  }
  if (set == 0) sp_buf_append_str(b, " DO NOTHING");
}

char *pga_insert_sql(const char *relation, const char *from, const pga_column *cols, size_t n, const char *target,
                     const char *action) {
  sp_buf b = {0}, list = {0};
  int upsert = action && target && *target && strcasecmp(action, "upsert") == 0;
  for (size_t i = 0; i < n; i++) sep(&list, i), sp_buf_append_str(&list, cols[i].quoted);
  const char *l = sp_buf_cstr(&list);
  sp_buf_append_str(&b, "INSERT INTO ");
  sp_buf_append_str(&b, relation);
  sp_buf_append_str(&b, " (");
  sp_buf_append_str(&b, l ? l : "");
  /* Two rows of one key in a batch: the last one wins (ctid is the order the COPY wrote them in). */
  sp_buf_append_str(&b, upsert ? ") SELECT DISTINCT ON (" : ") SELECT ");
  if (upsert) sp_buf_append_str(&b, target), sp_buf_append_str(&b, ") ");
  sp_buf_append_str(&b, l ? l : "");
  sp_buf_append_str(&b, " FROM ");
  sp_buf_append_str(&b, from);
  if (upsert) sp_buf_append_str(&b, " ORDER BY "), sp_buf_append_str(&b, target), sp_buf_append_str(&b, ", ctid DESC");
  if (action && target && *target) conflict_clause(&b, cols, n, target, upsert);
  else if (action) sp_buf_append_str(&b, " ON CONFLICT DO NOTHING"); /* every unique constraint */
  sp_buf_free(&list);
  return l ? finish(&b) : (sp_buf_free(&b), NULL);
}
