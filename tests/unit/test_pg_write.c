/* SPDX-License-Identifier: Apache-2.0
 *
 * The binary COPY encoder of PostgreSQL write-back (src/connectors/pg_write.c) against the connector's own
 * decoder (pg_copy.c): rows made by DuckDB (every kind the connector maps, NULLs, arrays with null elements)
 * are encoded, decoded again, and must come back identical; numerics take PostgreSQL's base-10000 form
 * (checked byte by byte); malformed uuids and numeric text, and columns of the wrong Arrow type, are refused
 * with messages naming the column. The real-server round trip is tests/e2e/write.test.mjs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/pg_copy.h"
#include "connectors/pg_write.h"
#include "spice/arrow.h"
#include "spice/duckdb_util.h"

/* ---- Helpers ---------------------------------------------------------------------------------------------- */

typedef struct rows {
  struct ArrowSchema schema;
  struct ArrowArray batch;
} rows;

/* The first batch of `sql` run by DuckDB. */
static void query(const char *sql, rows *out) {
  duckdb_database db;
  assert_int_equal(duckdb_open(NULL, &db), DuckDBSuccess);
  struct ArrowArrayStream st;
  sp_error err = {0};
  assert_int_equal(sp_duckdb_stream(db, sql, &st, &err), SP_OK);
  assert_int_equal(st.get_schema(&st, &out->schema), 0);
  assert_int_equal(st.get_next(&st, &out->batch), 0);
  assert_non_null(out->batch.release);
  st.release(&st);
  duckdb_close(&db);
}

static void rows_free(rows *r) {
  sp_array_release(&r->batch);
  sp_schema_release(&r->schema);
}

/* Encodes r with types, decodes it back into *out. */
static int round_trip(const rows *r, const pgc_type *types, const char *const *names, size_t n, struct ArrowArray *out,
                      sp_error *err) {
  pgw_target t = {.relation = "\"t\"", .display = "public.t", .dataset = "ds", .names = names, .quoted = names,
                  .types = types, .n = n};
  uint32_t oids[32] = {0};
  for (size_t i = 0; i < n; i++) oids[i] = types[i].kind == PGC_LIST ? 23 : 0;
  t.elem_oids = oids;
  sp_buf b = {0};
  assert_int_equal(pgw_header(&b), SP_OK);
  int rc = pgw_encode_batch(&t, &r->schema, &r->batch, &b, err);
  if (rc == SP_OK) {
    assert_int_equal(pgw_trailer(&b), SP_OK);
    pgc_decoder *d;
    assert_int_equal(pgc_decoder_new(types, n, &d, err), SP_OK);
    assert_int_equal(pgc_feed(d, (const uint8_t *)b.data, b.len, err), SP_OK);
    assert_int_equal(pgc_end(d, err), SP_OK);
    assert_int_equal(pgc_finish_batch(d, out, err), SP_OK);
    pgc_decoder_free(d);
  }
  sp_buf_free(&b);
  return rc;
}

static int64_t width_of(const sp_arrow_typeinfo *t) {
  switch (t->type) {
  case SP_ARROW_INT16: return 2;
  case SP_ARROW_INT32: case SP_ARROW_FLOAT: case SP_ARROW_DATE32: return 4;
  case SP_ARROW_DECIMAL128: case SP_ARROW_INTERVAL_MONTH_DAY_NANO: return 16;
  default: return 8;
  }
}

/* Element i of a and element j of b (same Arrow type) are equal, nulls included. */
static void assert_same(const struct ArrowSchema *s, const struct ArrowArray *a, int64_t i, const struct ArrowArray *b,
                        int64_t j) {
  assert_int_equal(sp_array_is_null(a, i), sp_array_is_null(b, j));
  if (sp_array_is_null(a, i)) return;
  sp_arrow_typeinfo t;
  sp_arrow_parse_format(s->format, &t);
  int64_t x = a->offset + i, y = b->offset + j;
  if (t.type == SP_ARROW_BOOL) {
    const uint8_t *p = a->buffers[1], *q = b->buffers[1];
    assert_int_equal((p[x >> 3] >> (x & 7)) & 1, (q[y >> 3] >> (y & 7)) & 1);
  } else if (t.type == SP_ARROW_UTF8 || t.type == SP_ARROW_BINARY) {
    const int32_t *oa = a->buffers[1], *ob = b->buffers[1];
    assert_int_equal(oa[x + 1] - oa[x], ob[y + 1] - ob[y]);
    assert_memory_equal((const char *)a->buffers[2] + oa[x], (const char *)b->buffers[2] + ob[y], (size_t)(oa[x + 1] - oa[x]));
  } else if (t.type == SP_ARROW_LIST) {
    const int32_t *oa = a->buffers[1], *ob = b->buffers[1];
    assert_int_equal(oa[x + 1] - oa[x], ob[y + 1] - ob[y]);
    for (int32_t k = 0; k < oa[x + 1] - oa[x]; k++) assert_same(s->children[0], a->children[0], oa[x] + k, b->children[0], ob[y] + k);
  } else {
    int64_t w = width_of(&t);
    assert_memory_equal((const char *)a->buffers[1] + x * w, (const char *)b->buffers[1] + y * w, (size_t)w);
  }
}

/* ---- Tests ------------------------------------------------------------------------------------------------ */

static const char *const NAMES[] = {"b", "i2", "i4", "i8", "f4", "f8", "txt", "js", "bin", "d", "tm", "ts", "tstz",
                                    "iv", "uid", "num", "numtxt", "arr"};

static void every_kind_round_trips(void **state) {
  (void)state;
  rows r;
  query("SELECT * FROM (VALUES "
        "(true, -2::SMALLINT, 2147483647::INTEGER, -9007199254740993::BIGINT, 1.5::FLOAT, -0.1::DOUBLE, "
        " 'it''s — ünï 🚀', '{\"k\": [1]}', '\\x00\\xFF'::BLOB, DATE '1999-12-31', TIME '13:45:01.5', "
        " TIMESTAMP '1969-07-20 20:17:40.000001', TIMESTAMPTZ '2024-03-01 10:00:00+00', "
        " INTERVAL '1 month 2 days 3.000004 seconds', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', "
        " -12345678901234567890.12::DECIMAL(38,2), '123456789012345678901234567890123456789012.000100', [1, NULL, -3]), "
        "(false, NULL, NULL, 0, NULL, NULL, '', NULL, ''::BLOB, DATE '2000-01-01', NULL, NULL, NULL, NULL, NULL, "
        " 0.05::DECIMAL(38,2), 'NaN', []::INTEGER[]), "
        "(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL))",
        &r);
  pgc_type types[18] = {{.kind = PGC_BOOL}, {.kind = PGC_INT2}, {.kind = PGC_INT4}, {.kind = PGC_INT8},
                        {.kind = PGC_FLOAT4}, {.kind = PGC_FLOAT8}, {.kind = PGC_TEXT}, {.kind = PGC_JSONB},
                        {.kind = PGC_BYTEA}, {.kind = PGC_DATE}, {.kind = PGC_TIME}, {.kind = PGC_TIMESTAMP},
                        {.kind = PGC_TIMESTAMPTZ}, {.kind = PGC_INTERVAL}, {.kind = PGC_UUID},
                        {.kind = PGC_NUMERIC, .precision = 38, .scale = 2}, {.kind = PGC_NUMERIC_TEXT},
                        {.kind = PGC_LIST, .elem = PGC_INT4}};
  struct ArrowArray back;
  sp_error err = {0};
  assert_int_equal(round_trip(&r, types, NAMES, 18, &back, &err), SP_OK);
  assert_int_equal(back.length, 3);
  for (int c = 0; c < 18; c++)
    for (int64_t i = 0; i < 3; i++) assert_same(r.schema.children[c], r.batch.children[c], i, back.children[c], i);
  sp_array_release(&back);
  rows_free(&r);
}

/* One numeric value's wire bytes after the field length. */
static void numeric_wire(const char *sql_value, pgc_kind kind, const uint8_t *want, size_t n) {
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT %s AS v", sql_value);
  rows r;
  query(sql, &r);
  sp_arrow_typeinfo t;
  sp_arrow_parse_format(r.schema.children[0]->format, &t);
  pgc_type type = {.kind = kind, .precision = t.precision, .scale = t.scale};
  const char *names[] = {"v"};
  pgw_target tg = {.relation = "t", .display = "t", .dataset = "ds", .names = names, .quoted = names, .types = &type, .n = 1};
  sp_buf b = {0};
  sp_error err = {0};
  assert_int_equal(pgw_encode_batch(&tg, &r.schema, &r.batch, &b, &err), SP_OK);
  assert_int_equal(b.len, 2 + 4 + n); /* field count, length, value */
  assert_memory_equal(b.data + 6, want, n);
  sp_buf_free(&b);
  rows_free(&r);
}

static void numerics_take_postgres_form(void **state) {
  (void)state;
  /* 12345.67 = 1|2345|6700 weight 1, dscale 2 */
  static const uint8_t a[] = {0, 3, 0, 1, 0, 0, 0, 2, 0, 1, 0x09, 0x29, 0x1A, 0x2C};
  numeric_wire("12345.67::DECIMAL(12,2)", PGC_NUMERIC, a, sizeof a);
  /* -0.05 = 500 at weight -1, negative, dscale 2 */
  static const uint8_t b[] = {0, 1, 0xFF, 0xFF, 0x40, 0, 0, 2, 0x01, 0xF4};
  numeric_wire("-0.05::DECIMAL(5,2)", PGC_NUMERIC, b, sizeof b);
  /* zero: no digits */
  static const uint8_t c[] = {0, 0, 0, 0, 0, 0, 0, 3};
  numeric_wire("0::DECIMAL(9,3)", PGC_NUMERIC, c, sizeof c);
  /* 10000 = 1 at weight 1 (trailing zero groups dropped), dscale 0 */
  static const uint8_t d[] = {0, 1, 0, 1, 0, 0, 0, 0, 0, 1};
  numeric_wire("'10000'", PGC_NUMERIC_TEXT, d, sizeof d);
  static const uint8_t nan[] = {0, 0, 0, 0, 0xC0, 0, 0, 0};
  numeric_wire("'NaN'", PGC_NUMERIC_TEXT, nan, sizeof nan);
}

static void bad_values_name_their_column(void **state) {
  (void)state;
  static const struct { const char *sql; pgc_kind kind; const char *msg; } cases[] = {
      {"SELECT 'not-a-uuid' AS v", PGC_UUID, "column \"v\" of dataset \"ds\": row 1 holds a value postgres cannot take"},
      {"SELECT '1.2.3' AS v", PGC_NUMERIC_TEXT, "column \"v\" of dataset \"ds\": row 1"},
      {"SELECT 'Infinity' AS v", PGC_NUMERIC_TEXT, "column \"v\" of dataset \"ds\": row 1"},
      {"SELECT 42 AS v", PGC_TEXT, "column \"v\" of dataset \"ds\" has Arrow type i, which does not match"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    rows r;
    query(cases[i].sql, &r);
    pgc_type type = {.kind = cases[i].kind};
    const char *names[] = {"v"};
    pgw_target tg = {.relation = "t", .display = "t", .dataset = "ds", .names = names, .quoted = names, .types = &type, .n = 1};
    sp_buf b = {0};
    sp_error err = {0};
    assert_int_equal(pgw_encode_batch(&tg, &r.schema, &r.batch, &b, &err), SP_EINVAL);
    assert_non_null(strstr(err.msg, cases[i].msg));
    sp_buf_free(&b);
    rows_free(&r);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_kind_round_trips),
      cmocka_unit_test(numerics_take_postgres_form),
      cmocka_unit_test(bad_values_name_their_column),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
