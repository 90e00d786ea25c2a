/* SPDX-License-Identifier: Apache-2.0
 *
 * Arrow → PostgreSQL binary COPY (see pg_write.h). Each value is written in its type's binary send format:
 * integers and floats big-endian, dates as days and timestamps as microseconds since 2000-01-01, intervals
 * as (µs, days, months), uuids as 16 bytes, numerics as base-10000 digit groups, text as its bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/pg_write.h"
#include "spice/arrow.h"

#define BAD_VALUE (-1)             /* a value the column's type cannot take */
#define PGW_FLUSH_BYTES ((size_t)1 << 20)
#define DATE_SHIFT 10957                  /* days from 1970-01-01 to 2000-01-01 */
#define TS_SHIFT INT64_C(946684800000000) /* µs from 1970-01-01 to 2000-01-01 */

typedef __int128 i128;

/* ---- Wire helpers ------------------------------------------------------------------------------------- */

static int put_be(sp_buf *b, uint64_t v, int bytes) {
  char *p = sp_buf_reserve(b, (size_t)bytes);
  if (p == NULL) return SP_ENOMEM;
  for (int i = 0; i < bytes; i++) p[i] = (char)(v >> (8 * (bytes - 1 - i)));
  b->len += (size_t)bytes;
  return SP_OK;
}

/* A field: its length, then its bytes. */
static int put_field(sp_buf *b, const void *p, size_t n) {
  if (n > INT32_MAX) return SP_EINVAL;
  SP_TRY(put_be(b, n, 4));
  return sp_buf_append(b, p, n);
}

int pgw_header(sp_buf *out) {
  static const char sig[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\xFF', '\r', '\n', 0};
  SP_TRY(sp_buf_append(out, sig, sizeof sig));
  SP_TRY(put_be(out, 0, 4)); /* flags */
  return put_be(out, 0, 4);  /* header extension length */
}

int pgw_trailer(sp_buf *out) { return put_be(out, 0xFFFF, 2); }

/* ---- Arrow access ------------------------------------------------------------------------------------- */

/* The bytes of string/binary element j (offset applied) of a utf8/binary ("u", "z") or large ("U", "Z") array. */
static const char *var_value(const struct ArrowArray *a, int large, int64_t j, size_t *len) {
  int64_t k = a->offset + j, s, e;
  if (large) {
    const int64_t *o = a->buffers[1];
    s = o[k], e = o[k + 1];
  } else {
    const int32_t *o = a->buffers[1];
    s = o[k], e = o[k + 1];
  }
  *len = (size_t)(e - s);
  return (const char *)a->buffers[2] + s;
}

static const void *fixed_value(const struct ArrowArray *a, int64_t j, size_t width) {
  return (const char *)a->buffers[1] + (size_t)(a->offset + j) * width;
}

/* ---- Numeric ------------------------------------------------------------------------------------------ */

/* Writes a numeric from its decimal digits: `digits` (no sign, no point) of which the last `scale` are the
 * fraction. PostgreSQL groups digits by 4 around the decimal point, weight = index of the first group. */
static int put_numeric(sp_buf *b, int negative, const char *digits, size_t nd, int scale) {
  size_t int_len = nd > (size_t)scale ? nd - (size_t)scale : 0;
  size_t lead = (4 - int_len % 4) % 4, frac_len = (size_t)scale;
  size_t trail = (4 - frac_len % 4) % 4;
  size_t total = lead + int_len + frac_len + trail, n_groups = total / 4;
  char *all = malloc(total + 1);
  int16_t *g = calloc(n_groups + 1, sizeof *g);
  if (all == NULL || g == NULL) {
    free(all);
    free(g);
    return SP_ENOMEM;
  }
  memset(all, '0', total);
  /* digits right-aligned at the point: the integer part ends at lead + int_len */
  size_t point = lead + int_len;
  for (size_t i = 0; i < nd; i++) {
    int64_t pos = (int64_t)point - (int64_t)(nd - (size_t)scale) + (int64_t)i;
    if (pos >= 0 && (size_t)pos < total) all[pos] = digits[i];
  }
  for (size_t i = 0; i < n_groups; i++)
    g[i] = (int16_t)((all[4 * i] - '0') * 1000 + (all[4 * i + 1] - '0') * 100 + (all[4 * i + 2] - '0') * 10 + (all[4 * i + 3] - '0'));
  int weight = (int)((lead + int_len) / 4) - 1;
  size_t first = 0, last = n_groups;
  while (first < last && g[first] == 0) first++, weight--;
  while (last > first && g[last - 1] == 0) last--;
  size_t ng = last - first;
  if (ng == 0) weight = 0;
  int rc = put_be(b, 8 + 2 * ng, 4);
  if (rc == SP_OK) rc = put_be(b, ng, 2);
  if (rc == SP_OK) rc = put_be(b, (uint16_t)(int16_t)weight, 2);
  if (rc == SP_OK) rc = put_be(b, ng && negative ? 0x4000 : 0, 2);
  if (rc == SP_OK) rc = put_be(b, (uint16_t)scale, 2);
  for (size_t i = first; rc == SP_OK && i < last; i++) rc = put_be(b, (uint16_t)g[i], 2);
  free(all);
  free(g);
  return rc;
}

static int put_decimal128(sp_buf *b, const void *p, int scale) {
  i128 v;
  memcpy(&v, p, sizeof v);
  int neg = v < 0;
  unsigned __int128 u = neg ? (unsigned __int128)(-(v + 1)) + 1 : (unsigned __int128)v;
  char rev[48], digits[48];
  size_t n = 0;
  do {
    rev[n++] = (char)('0' + (int)(u % 10));
    u /= 10;
  } while (u > 0);
  for (size_t i = 0; i < n; i++) digits[i] = rev[n - 1 - i];
  return put_numeric(b, neg, digits, n, scale);
}

/* Numeric text ("-12.50", "NaN") → numeric; BAD_VALUE when the text is not a number. */
static int put_numeric_text(sp_buf *b, const char *s, size_t len) {
  if (len == 3 && strncmp(s, "NaN", 3) == 0) {
    SP_TRY(put_be(b, 8, 4));
    SP_TRY(put_be(b, 0, 4));
    SP_TRY(put_be(b, 0xC000, 2));
    return put_be(b, 0, 2);
  }
  char *digits = malloc(len + 1);
  if (digits == NULL) return SP_ENOMEM;
  size_t i = 0, nd = 0;
  int neg = 0, scale = 0, point = 0;
  if (i < len && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  for (; i < len; i++) {
    if (s[i] == '.' && !point) point = 1;
    else if (s[i] >= '0' && s[i] <= '9') digits[nd++] = s[i], scale += point;
    else break;
  }
  int rc = i != len || nd == 0 || scale > 16383 ? BAD_VALUE : put_numeric(b, neg, digits, nd, scale);
  free(digits);
  return rc;
}

/* ---- UUID --------------------------------------------------------------------------------------------- */

static int hexval(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Text uuid (with or without dashes and braces) → 16 bytes; BAD_VALUE when malformed. */
static int put_uuid(sp_buf *b, const char *s, size_t len) {
  unsigned char out[16];
  int n = 0, hi = -1;
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '-' || s[i] == '{' || s[i] == '}') continue;
    int v = hexval(s[i]);
    if (v < 0 || n >= 16) return BAD_VALUE;
    if (hi < 0) hi = v;
    else out[n++] = (unsigned char)(hi << 4 | v), hi = -1;
  }
  if (n != 16 || hi >= 0) return BAD_VALUE;
  return put_field(b, out, 16);
}

/* ---- Values ------------------------------------------------------------------------------------------- */

/* The Arrow type a column of kind k must have (as pg_copy.c reads it). */
static int arrow_ok(pgc_kind k, const sp_arrow_typeinfo *t) {
  switch (k) {
  case PGC_BOOL: return t->type == SP_ARROW_BOOL;
  case PGC_INT2: return t->type == SP_ARROW_INT16;
  case PGC_INT4: return t->type == SP_ARROW_INT32;
  case PGC_INT8: case PGC_OID: return t->type == SP_ARROW_INT64;
  case PGC_FLOAT4: return t->type == SP_ARROW_FLOAT;
  case PGC_FLOAT8: return t->type == SP_ARROW_DOUBLE;
  case PGC_TEXT: case PGC_BPCHAR: case PGC_JSONB: case PGC_UUID: case PGC_NUMERIC_TEXT:
    return t->type == SP_ARROW_UTF8 || t->type == SP_ARROW_LARGE_UTF8;
  case PGC_BYTEA: return t->type == SP_ARROW_BINARY || t->type == SP_ARROW_LARGE_BINARY;
  case PGC_DATE: return t->type == SP_ARROW_DATE32;
  case PGC_TIME: return t->type == SP_ARROW_TIME64 && t->unit == SP_UNIT_MICRO;
  case PGC_TIMESTAMP: case PGC_TIMESTAMPTZ: return t->type == SP_ARROW_TIMESTAMP && t->unit == SP_UNIT_MICRO;
  case PGC_INTERVAL: return t->type == SP_ARROW_INTERVAL_MONTH_DAY_NANO;
  case PGC_NUMERIC: return t->type == SP_ARROW_DECIMAL128;
  default: return 0;
  }
}

static int column_ok(const pgc_type *k, const struct ArrowSchema *f, const struct ArrowArray *a) {
  sp_arrow_typeinfo t;
  sp_arrow_parse_format(f->format, &t);
  int bufs = t.type == SP_ARROW_UTF8 || t.type == SP_ARROW_LARGE_UTF8 || t.type == SP_ARROW_BINARY ||
                     t.type == SP_ARROW_LARGE_BINARY ? 3 : 2;
  if (k->kind != PGC_LIST) return arrow_ok(k->kind, &t) && a->n_buffers >= bufs;
  if (t.type != SP_ARROW_LIST || f->n_children != 1 || a->n_children != 1 || a->n_buffers < 2) return 0;
  pgc_type e = {.kind = k->elem, .precision = k->elem_precision, .scale = k->elem_scale};
  return e.kind != PGC_LIST && column_ok(&e, f->children[0], a->children[0]);
}

/* Encodes element j of column a (kind k, Arrow type t) as a field, or says BAD_VALUE. */
static int put_value(sp_buf *b, pgc_kind k, const sp_arrow_typeinfo *t, const struct ArrowArray *a, int64_t j) {
  int large = t->type == SP_ARROW_LARGE_UTF8 || t->type == SP_ARROW_LARGE_BINARY;
  size_t len;
  const char *s;
  int64_t v64;
  switch (k) {
  case PGC_BOOL: {
    int64_t bit = a->offset + j;
    uint8_t v = (((const uint8_t *)a->buffers[1])[bit >> 3] >> (bit & 7)) & 1;
    return put_field(b, &v, 1);
  }
  case PGC_INT2: SP_TRY(put_be(b, 2, 4)); return put_be(b, (uint16_t)*(const int16_t *)fixed_value(a, j, 2), 2);
  case PGC_INT4: case PGC_FLOAT4: SP_TRY(put_be(b, 4, 4)); return put_be(b, *(const uint32_t *)fixed_value(a, j, 4), 4);
  case PGC_INT8: case PGC_FLOAT8: case PGC_TIME:
    SP_TRY(put_be(b, 8, 4));
    return put_be(b, *(const uint64_t *)fixed_value(a, j, 8), 8);
  case PGC_OID:
    v64 = *(const int64_t *)fixed_value(a, j, 8);
    if (v64 < 0 || v64 > UINT32_MAX) return BAD_VALUE;
    SP_TRY(put_be(b, 4, 4));
    return put_be(b, (uint64_t)v64, 4);
  case PGC_DATE: SP_TRY(put_be(b, 4, 4)); return put_be(b, (uint32_t)(*(const int32_t *)fixed_value(a, j, 4) - DATE_SHIFT), 4);
  case PGC_TIMESTAMP: case PGC_TIMESTAMPTZ:
    SP_TRY(put_be(b, 8, 4));
    return put_be(b, (uint64_t)(*(const int64_t *)fixed_value(a, j, 8) - TS_SHIFT), 8);
  case PGC_INTERVAL: {
    const char *p = fixed_value(a, j, 16);
    int32_t months, days;
    int64_t ns;
    memcpy(&months, p, 4), memcpy(&days, p + 4, 4), memcpy(&ns, p + 8, 8);
    SP_TRY(put_be(b, 16, 4));
    SP_TRY(put_be(b, (uint64_t)(ns / 1000), 8));
    SP_TRY(put_be(b, (uint32_t)days, 4));
    return put_be(b, (uint32_t)months, 4);
  }
  case PGC_NUMERIC: return put_decimal128(b, fixed_value(a, j, 16), t->scale);
  case PGC_TEXT: case PGC_BPCHAR: case PGC_BYTEA: s = var_value(a, large, j, &len); return put_field(b, s, len);
  case PGC_JSONB:
    s = var_value(a, large, j, &len);
    SP_TRY(put_be(b, len + 1, 4));
    SP_TRY(sp_buf_append(b, "\1", 1));
    return sp_buf_append(b, s, len);
  case PGC_UUID: s = var_value(a, large, j, &len); return put_uuid(b, s, len);
  case PGC_NUMERIC_TEXT: s = var_value(a, large, j, &len); return put_numeric_text(b, s, len);
  default: return BAD_VALUE;
  }
}

/* A one-dimensional array (lower bound 1) of the list at j: its header, then each element as a field. */
static int put_array(sp_buf *b, pgc_kind elem, uint32_t elem_oid, const struct ArrowSchema *f, const struct ArrowArray *a,
                     int64_t j) {
  const int32_t *off = a->buffers[1];
  const struct ArrowArray *items = a->children[0];
  sp_arrow_typeinfo t;
  sp_arrow_parse_format(f->children[0]->format, &t);
  int32_t start = off[a->offset + j], end = off[a->offset + j + 1];
  int has_null = 0;
  for (int32_t i = start; i < end; i++) has_null |= sp_array_is_null(items, i);
  size_t at = b->len;
  SP_TRY(put_be(b, 0, 4)); /* the field's length, known at the end */
  SP_TRY(put_be(b, end > start, 4));
  SP_TRY(put_be(b, (uint32_t)has_null, 4));
  SP_TRY(put_be(b, elem_oid, 4));
  if (end > start) {
    SP_TRY(put_be(b, (uint32_t)(end - start), 4));
    SP_TRY(put_be(b, 1, 4));
  }
  for (int32_t i = start; i < end; i++) {
    int rc = sp_array_is_null(items, i) ? put_be(b, 0xFFFFFFFFu, 4) : put_value(b, elem, &t, items, i);
    if (rc != SP_OK) return rc;
  }
  size_t n = b->len - at - 4;
  for (int k = 0; k < 4; k++) b->data[at + (size_t)k] = (char)(n >> (8 * (3 - k)));
  return n > INT32_MAX ? SP_EINVAL : SP_OK;
}

static int check_columns(const pgw_target *t, const struct ArrowSchema *schema, const struct ArrowArray *batch,
                         sp_arrow_typeinfo *types, sp_error *err) {
  if (schema->n_children != (int64_t)t->n || batch->n_children != (int64_t)t->n)
    return sp_fail(err, SP_EINVAL, "rows for dataset \"%s\" have %lld columns, postgres table \"%s\" takes %zu",
                   t->dataset, (long long)batch->n_children, t->display, t->n);
  for (size_t c = 0; c < t->n; c++) {
    sp_arrow_parse_format(schema->children[c]->format, &types[c]);
    if (t->types[c].kind == PGC_LIST && (t->elem_oids == NULL || t->elem_oids[c] == 0))
      return sp_fail(err, SP_EINTERNAL, "the element type of array column \"%s\" of postgres table \"%s\" is unknown",
                     t->names[c], t->display);
    if (!column_ok(&t->types[c], schema->children[c], batch->children[c]) ||
        batch->children[c]->length < batch->offset + batch->length)
      return sp_fail(err, SP_EINVAL, "column \"%s\" of dataset \"%s\" has Arrow type %s, which does not match its "
                     "postgres column", t->names[c], t->dataset, schema->children[c]->format);
  }
  return SP_OK;
}

int pgw_encode_batch(const pgw_target *t, const struct ArrowSchema *schema, const struct ArrowArray *batch, sp_buf *out,
                     sp_error *err) {
  sp_arrow_typeinfo *types = calloc(t->n ? t->n : 1, sizeof *types);
  if (types == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  int rc = check_columns(t, schema, batch, types, err);
  for (int64_t i = 0; rc == SP_OK && i < batch->length; i++) {
    if (put_be(out, t->n, 2) != SP_OK) rc = sp_fail(err, SP_ENOMEM, "out of memory");
    for (size_t c = 0; rc == SP_OK && c < t->n; c++) {
      const struct ArrowArray *a = batch->children[c];
      int64_t j = batch->offset + i;
      int r = sp_array_is_null(a, j)              ? put_be(out, 0xFFFFFFFFu, 4)
              : t->types[c].kind == PGC_LIST ? put_array(out, t->types[c].elem, t->elem_oids[c], schema->children[c], a, j)
                                             : put_value(out, t->types[c].kind, &types[c], a, j);
      if (r == BAD_VALUE) rc = sp_fail(err, SP_EINVAL, "column \"%s\" of dataset \"%s\": row %lld holds a value postgres "
                               "cannot take as its type", t->names[c], t->dataset, (long long)i + 1);
      else if (r != SP_OK) rc = sp_fail(err, SP_ENOMEM, "out of memory");
    }
  }
  free(types);
  return rc;
}

/* ---- COPY FROM STDIN ---------------------------------------------------------------------------------- */

static char *copy_sql(const pgw_target *t) {
  size_t n = strlen(t->relation) + 64;
  for (size_t i = 0; i < t->n; i++) n += strlen(t->quoted[i]) + 2;
  char *sql = malloc(n);
  if (sql == NULL) return NULL;
  size_t o = (size_t)snprintf(sql, n, "COPY %s (", t->relation);
  for (size_t i = 0; i < t->n; i++) o += (size_t)snprintf(sql + o, n - o, "%s%s", i ? ", " : "", t->quoted[i]);
  snprintf(sql + o, n - o, ") FROM STDIN (FORMAT binary%s)", t->freeze ? ", FREEZE" : "");
  return sql;
}

/* The server's error on one line: the message, its detail and where (COPY line, column). */
static void server_error(const PGresult *r, PGconn *pq, char *buf, size_t n) {
  const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  const char *d = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
  const char *c = r ? PQresultErrorField(r, PG_DIAG_CONTEXT) : NULL;
  if (m == NULL) m = PQerrorMessage(pq);
  snprintf(buf, n, "%s%s%s%s%s", m, d ? " (" : "", d ? d : "", d ? ")" : "", "");
  if (c && strncmp(c, "COPY ", 5) == 0) {
    size_t o = strlen(buf);
    snprintf(buf + o, n - o, " [%s]", c);
  }
  for (char *p = buf; *p; p++)
    if (*p == '\n' || *p == '\t') *p = ' ';
}

/* Sends the rows; the COPY is in progress. On failure the COPY is ended with an error (nothing written). */
static int send_rows(PGconn *pq, const pgw_target *t, struct ArrowArrayStream *rows, int64_t *n_rows, sp_error *err) {
  sp_buf b = {0};
  struct ArrowSchema schema = {0};
  int rc = pgw_header(&b) == SP_OK ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK && rows->get_schema(rows, &schema) != 0)
    rc = sp_fail(err, SP_EIO, "could not read the rows for dataset \"%s\"", t->dataset);
  for (;;) {
    struct ArrowArray batch = {0};
    if (rc == SP_OK && rows->get_next(rows, &batch) != 0) {
      const char *m = rows->get_last_error ? rows->get_last_error(rows) : NULL;
      rc = sp_fail(err, SP_EIO, "could not read the rows for dataset \"%s\": %s", t->dataset, m ? m : "unknown error");
    }
    if (rc != SP_OK || batch.release == NULL) break;
    rc = pgw_encode_batch(t, &schema, &batch, &b, err);
    *n_rows += batch.length;
    sp_array_release(&batch);
    if (rc == SP_OK && b.len >= PGW_FLUSH_BYTES) {
      if (PQputCopyData(pq, b.data, (int)b.len) != 1) rc = sp_fail(err, SP_EIO, "%s", PQerrorMessage(pq));
      b.len = 0;
    }
  }
  if (rc == SP_OK && pgw_trailer(&b) != SP_OK) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK && PQputCopyData(pq, b.data, (int)b.len) != 1) rc = sp_fail(err, SP_EIO, "%s", PQerrorMessage(pq));
  PQputCopyEnd(pq, rc == SP_OK ? NULL : "spicec: the rows could not be encoded");
  sp_buf_free(&b);
  sp_schema_release(&schema);
  return rc;
}

/* Reads the results of the COPY until the connection is idle; SP_OK when it succeeded. */
static int copy_result(PGconn *pq, const pgw_target *t, sp_error *err) {
  int rc = SP_OK;
  PGresult *r;
  while ((r = PQgetResult(pq)) != NULL) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == SP_OK) {
      char msg[700];
      server_error(r, pq, msg, sizeof msg);
      const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      /* class 23: integrity constraint violation; 22: data exception — the rows' fault, not the server's */
      int mine = state && (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0);
      rc = sp_fail(err, mine ? SP_EINVAL : SP_EIO, "could not write to postgres table \"%s\" for dataset \"%s\": %s",
                   t->display, t->dataset, msg);
    }
    PQclear(r);
  }
  return rc;
}

/* The element type of each array column (domains resolved to their base array type), from the catalog. */
static int element_oids(PGconn *pq, const pgw_target *t, uint32_t *oids, sp_error *err) {
  const char *args[1] = {t->relation};
  PGresult *r = PQexecParams(pq, "SELECT a.attname, b.typelem FROM pg_catalog.pg_attribute a "
                                 "JOIN pg_catalog.pg_type d ON d.oid = a.atttypid "
                                 "JOIN pg_catalog.pg_type b ON b.oid = CASE WHEN d.typbasetype <> 0 THEN d.typbasetype ELSE d.oid END "
                                 "WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped",
                             1, NULL, args, NULL, NULL, 0);
  int rc = SP_OK;
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    char msg[700];
    server_error(r, pq, msg, sizeof msg);
    rc = sp_fail(err, SP_EIO, "could not read the array types of postgres table \"%s\" for dataset \"%s\": %s",
                 t->display, t->dataset, msg);
  }
  for (int i = 0; rc == SP_OK && i < PQntuples(r); i++)
    for (size_t c = 0; c < t->n; c++)
      if (t->types[c].kind == PGC_LIST && strcmp(t->names[c], PQgetvalue(r, i, 0)) == 0)
        oids[c] = (uint32_t)strtoul(PQgetvalue(r, i, 1), NULL, 10);
  PQclear(r);
  return rc;
}

int pgw_copy_in(PGconn *pq, const pgw_target *target, struct ArrowArrayStream *rows, int64_t *out_rows, sp_error *err) {
  pgw_target with_oids = *target, *t = &with_oids;
  uint32_t *oids = calloc(t->n + 1, sizeof *oids);
  char *sql = copy_sql(t);
  int rc = SP_OK, lists = 0;
  int64_t n = 0;
  for (size_t c = 0; c < t->n; c++) lists |= t->types[c].kind == PGC_LIST;
  if (sql == NULL || oids == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK && lists && t->elem_oids == NULL) {
    rc = element_oids(pq, t, oids, err);
    t->elem_oids = oids;
  }
  if (rc != SP_OK) {
    free(sql);
    sql = NULL;
  }
  PGresult *r = sql ? PQexec(pq, sql) : NULL;
  free(sql);
  if (rc == SP_OK && PQresultStatus(r) != PGRES_COPY_IN) {
    char msg[700];
    server_error(r, pq, msg, sizeof msg);
    rc = sp_fail(err, SP_EIO, "could not write to postgres table \"%s\" for dataset \"%s\": %s", t->display, t->dataset, msg);
  }
  PQclear(r);
  if (rc == SP_OK) {
    sp_error enc = {0};
    int sent = send_rows(pq, t, rows, &n, &enc);
    rc = copy_result(pq, t, err);
    if (sent != SP_OK) rc = sp_fail(err, (sp_status)sent, "%s", enc.msg); /* ours explains better than the abort */
  }
  sp_stream_release(rows);
  free(oids);
  if (rc == SP_OK && out_rows) *out_rows = n;
  return rc;
}
