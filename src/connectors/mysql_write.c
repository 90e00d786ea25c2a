/* SPDX-License-Identifier: Apache-2.0
 *
 * Arrow → MySQL INSERT statements (see mysql_write.h). The Arrow types are those the mysql connector reads
 * (integers, floats, decimal128, date32, timestamp[us] with or without a zone, time64[us], utf8, binary).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/mysql_write.h"
#include "spice/arrow.h"

#define MYW_STATEMENT_BYTES ((size_t)1 << 20)
#define BAD_VALUE (-1) /* a value MySQL cannot take */

/* ---- Literals ----------------------------------------------------------------------------------------- */

static int put_str(sp_buf *b, const char *s) { return sp_buf_append_str(b, s); }

/* Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's civil_from_days). */
static void civil(int64_t z, int *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

static int put_date(sp_buf *b, int64_t days) {
  int y, m, d;
  char tmp[32];
  civil(days, &y, &m, &d);
  snprintf(tmp, sizeof tmp, "'%04d-%02d-%02d'", y, m, d);
  return put_str(b, tmp);
}

static int put_timestamp(sp_buf *b, int64_t us) {
  int64_t days = floor_div(us, INT64_C(86400000000)), rest = us - days * INT64_C(86400000000);
  int y, m, d;
  char tmp[64];
  civil(days, &y, &m, &d);
  int64_t secs = rest / 1000000;
  snprintf(tmp, sizeof tmp, "'%04d-%02d-%02d %02d:%02d:%02d.%06d'", y, m, d, (int)(secs / 3600), (int)(secs / 60 % 60),
           (int)(secs % 60), (int)(rest % 1000000));
  return put_str(b, tmp);
}

static int put_time(sp_buf *b, int64_t us) {
  uint64_t a = us < 0 ? (uint64_t)(-(us + 1)) + 1 : (uint64_t)us, secs = a / 1000000;
  char tmp[64];
  snprintf(tmp, sizeof tmp, "'%s%" PRIu64 ":%02d:%02d.%06d'", us < 0 ? "-" : "", secs / 3600, (int)(secs / 60 % 60),
           (int)(secs % 60), (int)(a % 1000000));
  return put_str(b, tmp);
}

static int put_decimal128(sp_buf *b, const void *p, int scale) {
  __int128 v;
  memcpy(&v, p, sizeof v);
  unsigned __int128 u = v < 0 ? (unsigned __int128)(-(v + 1)) + 1 : (unsigned __int128)v;
  char digits[64], out[72];
  int n = 0, o = 0;
  do {
    digits[n++] = (char)('0' + (int)(u % 10));
    u /= 10;
  } while (u > 0 || n <= scale);
  if (v < 0) out[o++] = '-';
  for (int i = n - 1; i >= 0; i--) {
    out[o++] = digits[i];
    if (i == scale && scale > 0) out[o++] = '.';
  }
  out[o] = '\0';
  return put_str(b, out);
}

/* A string literal: escaped by the connection (its character set), or by hand. */
static int put_text(MYSQL *m, sp_buf *b, const char *s, size_t n) {
  char *dst = sp_buf_reserve(b, 2 * n + 3);
  if (dst == NULL) return SP_ENOMEM;
  size_t o = 0;
  dst[o++] = '\'';
  if (m) {
    o += mysql_real_escape_string(m, dst + o, s, (unsigned long)n);
  } else {
    for (size_t i = 0; i < n; i++) {
      if (s[i] == '\'' || s[i] == '\\' || s[i] == '\0') dst[o++] = '\\';
      dst[o++] = s[i] == '\0' ? '0' : s[i];
    }
  }
  dst[o++] = '\'';
  b->len += o;
  return SP_OK;
}

static int put_hex(sp_buf *b, const uint8_t *p, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  char *dst = sp_buf_reserve(b, 2 * n + 3);
  if (dst == NULL) return SP_ENOMEM;
  size_t o = 0;
  dst[o++] = 'X';
  dst[o++] = '\'';
  for (size_t i = 0; i < n; i++) dst[o++] = hex[p[i] >> 4], dst[o++] = hex[p[i] & 15];
  dst[o++] = '\'';
  b->len += o;
  return SP_OK;
}

/* ---- Values ------------------------------------------------------------------------------------------- */

static const void *slot(const struct ArrowArray *a, int64_t j, size_t width) {
  return (const char *)a->buffers[1] + (size_t)(a->offset + j) * width;
}

static int put_var(MYSQL *m, sp_buf *b, const struct ArrowArray *a, int64_t j, int large, int binary) {
  int64_t k = a->offset + j, s, e;
  if (large) s = ((const int64_t *)a->buffers[1])[k], e = ((const int64_t *)a->buffers[1])[k + 1];
  else s = ((const int32_t *)a->buffers[1])[k], e = ((const int32_t *)a->buffers[1])[k + 1];
  const char *p = (const char *)a->buffers[2] + s;
  return binary ? put_hex(b, (const uint8_t *)p, (size_t)(e - s)) : put_text(m, b, p, (size_t)(e - s));
}

static int put_float(sp_buf *b, double v, int digits) {
  char tmp[64];
  if (!isfinite(v)) return BAD_VALUE;
  snprintf(tmp, sizeof tmp, "%.*g", digits, v);
  return put_str(b, tmp);
}

/* Element j of column a (Arrow type t) as a literal. */
static int put_value(MYSQL *m, sp_buf *b, const sp_arrow_typeinfo *t, const struct ArrowArray *a, int64_t j) {
  char tmp[32];
  switch (t->type) {
  case SP_ARROW_BOOL: {
    int64_t bit = a->offset + j;
    return put_str(b, (((const uint8_t *)a->buffers[1])[bit >> 3] >> (bit & 7)) & 1 ? "TRUE" : "FALSE");
  }
  case SP_ARROW_INT8: snprintf(tmp, sizeof tmp, "%d", *(const int8_t *)slot(a, j, 1)); break;
  case SP_ARROW_INT16: snprintf(tmp, sizeof tmp, "%d", *(const int16_t *)slot(a, j, 2)); break;
  case SP_ARROW_INT32: snprintf(tmp, sizeof tmp, "%" PRId32, *(const int32_t *)slot(a, j, 4)); break;
  case SP_ARROW_INT64: snprintf(tmp, sizeof tmp, "%" PRId64, *(const int64_t *)slot(a, j, 8)); break;
  case SP_ARROW_UINT8: snprintf(tmp, sizeof tmp, "%u", *(const uint8_t *)slot(a, j, 1)); break;
  case SP_ARROW_UINT16: snprintf(tmp, sizeof tmp, "%u", *(const uint16_t *)slot(a, j, 2)); break;
  case SP_ARROW_UINT32: snprintf(tmp, sizeof tmp, "%" PRIu32, *(const uint32_t *)slot(a, j, 4)); break;
  case SP_ARROW_UINT64: snprintf(tmp, sizeof tmp, "%" PRIu64, *(const uint64_t *)slot(a, j, 8)); break;
  case SP_ARROW_FLOAT: return put_float(b, *(const float *)slot(a, j, 4), 9);
  case SP_ARROW_DOUBLE: return put_float(b, *(const double *)slot(a, j, 8), 17);
  case SP_ARROW_DECIMAL128: return put_decimal128(b, slot(a, j, 16), t->scale);
  case SP_ARROW_DATE32: return put_date(b, *(const int32_t *)slot(a, j, 4));
  case SP_ARROW_TIMESTAMP:
    if (t->unit != SP_UNIT_MICRO) return BAD_VALUE;
    return put_timestamp(b, *(const int64_t *)slot(a, j, 8));
  case SP_ARROW_TIME64:
    if (t->unit != SP_UNIT_MICRO) return BAD_VALUE;
    return put_time(b, *(const int64_t *)slot(a, j, 8));
  case SP_ARROW_UTF8: case SP_ARROW_LARGE_UTF8: return put_var(m, b, a, j, t->type == SP_ARROW_LARGE_UTF8, 0);
  case SP_ARROW_BINARY: case SP_ARROW_LARGE_BINARY: return put_var(m, b, a, j, t->type == SP_ARROW_LARGE_BINARY, 1);
  default: return BAD_VALUE;
  }
  return put_str(b, tmp);
}

int myw_append_row(MYSQL *m, const myw_target *t, const struct ArrowSchema *schema, const struct ArrowArray *batch,
                   int64_t row, sp_buf *out, sp_error *err) {
  if (schema->n_children != (int64_t)t->n || batch->n_children != (int64_t)t->n)
    return sp_fail(err, SP_EINVAL, "rows for dataset \"%s\" have %lld columns, mysql table \"%s\" takes %zu", t->dataset,
                   (long long)batch->n_children, t->display, t->n);
  int rc = put_str(out, "(");
  for (size_t c = 0; rc == SP_OK && c < t->n; c++) {
    const struct ArrowArray *a = batch->children[c];
    sp_arrow_typeinfo ti;
    sp_arrow_parse_format(schema->children[c]->format, &ti);
    int64_t j = batch->offset + row;
    if (c > 0) rc = put_str(out, ", ");
    if (rc == SP_OK) rc = sp_array_is_null(a, j) ? put_str(out, "NULL") : put_value(m, out, &ti, a, j);
    if (rc == BAD_VALUE)
      return sp_fail(err, SP_EINVAL, "column \"%s\" of dataset \"%s\": row %lld holds a value mysql cannot take (Arrow "
                     "type %s)", t->names[c], t->dataset, (long long)row + 1, schema->children[c]->format);
  }
  if (rc == SP_OK) rc = put_str(out, ")");
  return rc == SP_OK ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
}

/* ---- Statements --------------------------------------------------------------------------------------- */

static int statement_head(const myw_target *t, sp_buf *b) {
  b->len = 0;
  int rc = put_str(b, "INSERT INTO ");
  if (rc == SP_OK) rc = put_str(b, t->relation);
  for (size_t i = 0; rc == SP_OK && i < t->n; i++) {
    rc = put_str(b, i ? ", " : " (");
    if (rc == SP_OK) rc = put_str(b, t->quoted[i]);
  }
  if (rc == SP_OK) rc = put_str(b, ") VALUES ");
  return rc;
}

/* The server's error for a statement: the rows' fault (constraints, bad data) or the server's. */
static int server_error(MYSQL *m, const myw_target *t, sp_error *err) {
  unsigned e = mysql_errno(m);
  /* 1048 null, 1062 duplicate, 1264 out of range, 1292 bad date, 1366 bad value, 1406 too long, 1451/1452
   * foreign key, 3819 (MySQL) and 4025 (MariaDB) check constraint */
  int mine = e == 1048 || e == 1062 || e == 1264 || e == 1292 || e == 1366 || e == 1406 || e == 1451 || e == 1452 ||
             e == 3819 || e == 4025;
  return sp_fail(err, mine ? SP_EINVAL : SP_EIO, "could not write to mysql table \"%s\" for dataset \"%s\": %s",
                 t->display, t->dataset, mysql_error(m));
}

static int run(MYSQL *m, const myw_target *t, const char *sql, size_t n, sp_error *err) {
  return mysql_real_query(m, sql, (unsigned long)n) == 0 ? SP_OK : server_error(m, t, err);
}

/* Appends one batch's rows to the statement in b, sending it whenever it passes MYW_STATEMENT_BYTES. */
static int send_batch(MYSQL *m, const myw_target *t, const struct ArrowSchema *schema, const struct ArrowArray *batch,
                      sp_buf *b, size_t head, sp_error *err) {
  for (int64_t i = 0; i < batch->length; i++) {
    if (b->len > head && sp_buf_append(b, ", ", 2) != SP_OK) return sp_fail(err, SP_ENOMEM, "out of memory");
    SP_TRY(myw_append_row(m, t, schema, batch, i, b, err));
    if (b->len >= MYW_STATEMENT_BYTES) {
      SP_TRY(run(m, t, b->data, b->len, err));
      b->len = head;
    }
  }
  return SP_OK;
}

static int send_rows(MYSQL *m, const myw_target *t, struct ArrowArrayStream *rows, int64_t *n_rows, sp_error *err) {
  sp_buf b = {0};
  struct ArrowSchema schema = {0};
  int rc = statement_head(t, &b) == SP_OK ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  size_t head = b.len;
  if (rc == SP_OK && rows->get_schema(rows, &schema) != 0)
    rc = sp_fail(err, SP_EIO, "could not read the rows for dataset \"%s\"", t->dataset);
  for (;;) {
    struct ArrowArray batch = {0};
    if (rc == SP_OK && rows->get_next(rows, &batch) != 0) {
      const char *e = rows->get_last_error ? rows->get_last_error(rows) : NULL;
      rc = sp_fail(err, SP_EIO, "could not read the rows for dataset \"%s\": %s", t->dataset, e ? e : "unknown error");
    }
    if (rc != SP_OK || batch.release == NULL) break;
    rc = send_batch(m, t, &schema, &batch, &b, head, err);
    *n_rows += batch.length;
    sp_array_release(&batch);
  }
  if (rc == SP_OK && b.len > head) rc = run(m, t, b.data, b.len, err);
  sp_buf_free(&b);
  sp_schema_release(&schema);
  return rc;
}

int myw_insert(MYSQL *m, const myw_target *t, struct ArrowArrayStream *rows, int64_t *out_rows, sp_error *err) {
  int64_t n = 0;
  int rc = mysql_query(m, "START TRANSACTION") == 0 ? SP_OK : server_error(m, t, err);
  if (rc == SP_OK) rc = send_rows(m, t, rows, &n, err);
  if (rc == SP_OK && mysql_query(m, "COMMIT") != 0) rc = server_error(m, t, err);
  if (rc != SP_OK) mysql_query(m, "ROLLBACK");
  sp_stream_release(rows);
  if (rc == SP_OK && out_rows) *out_rows = n;
  return rc;
}
