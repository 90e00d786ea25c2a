/* SPDX-License-Identifier: Apache-2.0
 *
 * The literals of MySQL write-back (src/connectors/mysql_write.c), without a server: rows made by DuckDB in
 * the Arrow types the mysql connector reads become `(…)` tuples whose text is exactly what MySQL parses back
 * to the same values (integers, unsigned, decimals with every digit, floats, dates, timestamps in UTC,
 * times, text with quotes, backslashes, NUL and unicode escaped, binary as hex, NULL); NaN is refused naming
 * the column. The server round trip is tests/e2e/write.test.mjs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/mysql_write.h"
#include "spice/arrow.h"
#include "spice/duckdb_util.h"

typedef struct rows {
  struct ArrowSchema schema;
  struct ArrowArray batch;
} rows;

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

/* Row `row` of `sql` as the tuple mysql_write.c writes, or the error message. */
static int tuple(const char *sql, int64_t row, char *out, size_t n) {
  static const char *const names[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m"};
  rows r;
  query(sql, &r);
  myw_target t = {.relation = "`t`", .display = "db.t", .dataset = "ds", .names = names, .quoted = names,
                  .n = (size_t)r.schema.n_children};
  sp_buf b = {0};
  sp_error err = {0};
  int rc = myw_append_row(NULL, &t, &r.schema, &r.batch, row, &b, &err);
  snprintf(out, n, "%.*s", rc == SP_OK ? (int)b.len : (int)strlen(err.msg), rc == SP_OK ? b.data : err.msg);
  sp_buf_free(&b);
  rows_free(&r);
  return rc;
}

static void numbers(void **state) {
  (void)state;
  char s[512];
  assert_int_equal(tuple("SELECT (-128)::TINYINT, 65535::USMALLINT, (-2147483648)::INTEGER, 9223372036854775807::BIGINT, "
                         "18446744073709551615::UBIGINT, -12345678901234567890.12::DECIMAL(38,2), 0.05::DECIMAL(5,2), "
                         "-0.5::DECIMAL(3,1), 7::DECIMAL(4,0), 0.1::DOUBLE, 1.5::FLOAT, true",
                         0, s, sizeof s),
                   SP_OK);
  assert_string_equal(s, "(-128, 65535, -2147483648, 9223372036854775807, 18446744073709551615, "
                         "-12345678901234567890.12, 0.05, -0.5, 7, 0.10000000000000001, 1.5, TRUE)");
}

static void dates_and_times(void **state) {
  (void)state;
  char s[512];
  assert_int_equal(tuple("SELECT DATE '1999-12-31', DATE '1000-01-01', TIMESTAMP '2024-02-29 13:45:01.123456', "
                         "TIMESTAMP '1969-12-31 23:59:59.5', TIMESTAMPTZ '2024-03-01 10:00:00+02', TIME '23:59:59.000001'",
                         0, s, sizeof s),
                   SP_OK);
  assert_string_equal(s, "('1999-12-31', '1000-01-01', '2024-02-29 13:45:01.123456', '1969-12-31 23:59:59.500000', "
                         "'2024-03-01 08:00:00.000000', '23:59:59.000001')");
}

static void text_binary_and_nulls(void **state) {
  (void)state;
  char s[512];
  assert_int_equal(tuple("SELECT 'it''s \\ \"q\" ü 🚀' || chr(0) || 'z', '\\x00\\xFFab'::BLOB, ''::BLOB, '', "
                         "NULL::VARCHAR, NULL::INTEGER",
                         0, s, sizeof s),
                   SP_OK);
  assert_string_equal(s, "('it\\'s \\\\ \"q\" ü 🚀\\0z', X'00FF6162', X'', '', NULL, NULL)");
}

static void nan_is_refused(void **state) {
  (void)state;
  char s[512];
  assert_int_equal(tuple("SELECT 1 AS a, 'nan'::DOUBLE AS b", 0, s, sizeof s), SP_EINVAL);
  assert_non_null(strstr(s, "column \"b\" of dataset \"ds\": row 1 holds a value mysql cannot take"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(numbers),
      cmocka_unit_test(dates_and_times),
      cmocka_unit_test(text_binary_and_nulls),
      cmocka_unit_test(nan_is_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
