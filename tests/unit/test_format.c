/* SPDX-License-Identifier: Apache-2.0
 *
 * Result writers over real DuckDB Arrow output: every query runs in an in-memory DuckDB, its chunks are
 * exported with duckdb_data_chunk_to_arrow (as the engine does), and the exact JSON / CSV / table /
 * sql.v1+json text is asserted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spice/arrow_abi.h"
#include <duckdb.h>

#include "server/format.h"

static duckdb_database g_db;
static duckdb_connection g_conn;

/* Runs SQL (after optional settings) and renders the whole result with `kind`; piece > 0 formats it through
 * sp_format_rows with that soft limit, to exercise the streaming path. Returns a malloc'd string. */
static char *render_with(sp_format_kind kind, const char *settings, const char *sql, size_t piece) {
  if (settings) assert_int_equal(duckdb_query(g_conn, settings, NULL), DuckDBSuccess);
  duckdb_result r;
  if (duckdb_query(g_conn, sql, &r) == DuckDBError) fail_msg("query failed: %s", duckdb_result_error(&r));
  idx_t n = duckdb_column_count(&r);
  duckdb_logical_type types[64];
  const char *names[64];
  assert_true(n < 64);
  for (idx_t i = 0; i < n; i++) {
    types[i] = duckdb_column_logical_type(&r, i);
    names[i] = duckdb_column_name(&r, i);
  }
  duckdb_arrow_options opts = duckdb_result_get_arrow_options(&r);
  struct ArrowSchema schema = {0};
  duckdb_error_data ed = duckdb_to_arrow_schema(opts, types, names, n, &schema);
  assert_false(duckdb_error_data_has_error(ed));
  duckdb_destroy_error_data(&ed);
  for (idx_t i = 0; i < n; i++) duckdb_destroy_logical_type(&types[i]);

  sp_formatter *f = NULL;
  sp_error err = {0};
  sp_buf out = {0};
  if (sp_formatter_create(kind, &schema, &f, &err) != SP_OK) fail_msg("formatter: %s", err.msg);
  schema.release(&schema);
  assert_int_equal(sp_format_begin(f, &out, &err), SP_OK);
  duckdb_data_chunk chunk;
  while ((chunk = duckdb_fetch_chunk(r)) != NULL) {
    struct ArrowArray a = {0};
    ed = duckdb_data_chunk_to_arrow(opts, chunk, &a);
    assert_false(duckdb_error_data_has_error(ed));
    duckdb_destroy_error_data(&ed);
    if (piece == 0) {
      assert_int_equal(sp_format_batch(f, &a, &out, &err), SP_OK);
    } else {
      int64_t row = 0;
      while (row < a.length) {
        size_t before = out.len;
        assert_int_equal(sp_format_rows(f, &a, &row, out.len + piece, &out, &err), SP_OK);
        assert_true(out.len > before || kind == SP_FORMAT_TABLE);
      }
    }
    a.release(&a);
    duckdb_destroy_data_chunk(&chunk);
  }
  assert_int_equal(sp_format_end(f, &out, &err), SP_OK);
  sp_formatter_destroy(f);
  duckdb_destroy_arrow_options(&opts);
  duckdb_destroy_result(&r);
  char *s = strndup(out.data, out.len);
  sp_buf_free(&out);
  return s;
}

static char *render(sp_format_kind kind, const char *sql) { return render_with(kind, NULL, sql, 0); }

static void check(sp_format_kind kind, const char *sql, const char *want) {
  char *got = render(kind, sql);
  if (strcmp(got, want) != 0) fail_msg("%s\n  want: %s\n  got:  %s", sql, want, got);
  free(got);
}

static void check_json(const char *sql, const char *want) { check(SP_FORMAT_JSON, sql, want); }

static int setup(void **state) {
  (void)state;
  if (duckdb_open(NULL, &g_db) == DuckDBError || duckdb_connect(g_db, &g_conn) == DuckDBError) return -1;
  return duckdb_query(g_conn, "SET TimeZone = 'UTC'", NULL) == DuckDBSuccess ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  duckdb_disconnect(&g_conn);
  duckdb_close(&g_db);
  return 0;
}

/* ---- JSON ----------------------------------------------------------------------------------------------- */

static void test_json_basic(void **state) {
  (void)state;
  check_json("SELECT 1::BIGINT a, NULL::INT b, 'x\"y'::VARCHAR c, 1.25::DECIMAL(38,2) d, true e, false f",
             "[{\"a\":1,\"b\":null,\"c\":\"x\\\"y\",\"d\":1.25,\"e\":true,\"f\":false}]");
  check_json("SELECT 1 AS a WHERE false", "[]");
  check_json("SELECT i FROM range(3) t(i)", "[{\"i\":0},{\"i\":1},{\"i\":2}]");
  check_json("SELECT 1 AS \"we\"\"ird\\key\"", "[{\"we\\\"ird\\\\key\":1}]");
  check_json("SELECT NULL AS n", "[{\"n\":null}]");
}

static void test_json_integers(void **state) {
  (void)state;
  check_json("SELECT (-128)::TINYINT a, (-32768)::SMALLINT b, (-2147483648)::INTEGER c, (-9223372036854775808)::BIGINT d",
             "[{\"a\":-128,\"b\":-32768,\"c\":-2147483648,\"d\":-9223372036854775808}]");
  check_json("SELECT 255::UTINYINT a, 65535::USMALLINT b, 4294967295::UINTEGER c, 18446744073709551615::UBIGINT d",
             "[{\"a\":255,\"b\":65535,\"c\":4294967295,\"d\":18446744073709551615}]");
  check_json("SELECT 9223372036854775807::BIGINT a, 0::BIGINT b, 1234567890123::BIGINT c",
             "[{\"a\":9223372036854775807,\"b\":0,\"c\":1234567890123}]");
  check_json("SELECT 170141183460469231731687303715884105727::HUGEINT a, -12345678901234567890123::HUGEINT b",
             "[{\"a\":170141183460469231731687303715884105727,\"b\":-12345678901234567890123}]");
  check_json("SELECT 340282366920938463463374607431768211455::UHUGEINT a, 7::UHUGEINT b",
             "[{\"a\":340282366920938463463374607431768211455,\"b\":7}]");
}

static void test_json_floats(void **state) {
  (void)state;
  check_json("SELECT 0.1::DOUBLE a, 1.0::DOUBLE b, 1/3 c, 1e300::DOUBLE d, 5e-324::DOUBLE e, -0.0::DOUBLE f",
             "[{\"a\":0.1,\"b\":1.0,\"c\":0.3333333333333333,\"d\":1e300,\"e\":5e-324,\"f\":-0.0}]");
  check_json("SELECT 123456.789::DOUBLE a, -2.5::DOUBLE b, 1e-7::DOUBLE c, 9007199254740992::DOUBLE d, "
             "0.30000000000000004::DOUBLE e, 1e21::DOUBLE f",
             "[{\"a\":123456.789,\"b\":-2.5,\"c\":1e-7,\"d\":9007199254740992.0,\"e\":0.30000000000000004,"
             "\"f\":1e21}]");
  check_json("SELECT 'nan'::DOUBLE a, 'inf'::DOUBLE b, '-inf'::DOUBLE c, 'nan'::FLOAT d",
             "[{\"a\":\"NaN\",\"b\":\"Infinity\",\"c\":\"-Infinity\",\"d\":\"NaN\"}]");
  check_json("SELECT 1.5::FLOAT a, 0.1::FLOAT b, 3.4028235e38::FLOAT c, 16777216::FLOAT d",
             "[{\"a\":1.5,\"b\":0.1,\"c\":3.4028235e38,\"d\":16777216.0}]");
}

static void test_json_decimals(void **state) {
  (void)state;
  check_json("SELECT 12345678901234567890.12::DECIMAL(38,2) a, -0.05::DECIMAL(10,2) b, 0::DECIMAL(5,3) c, "
             "123.4::DECIMAL(4,1) d, -1.5::DECIMAL(18,6) e",
             "[{\"a\":12345678901234567890.12,\"b\":-0.05,\"c\":0.000,\"d\":123.4,\"e\":-1.500000}]");
  check_json("SELECT 99999999999999999999999999999999999999::DECIMAL(38,0) a, "
             "-0.00000000000000000000000000000000000001::DECIMAL(38,38) b",
             "[{\"a\":99999999999999999999999999999999999999,\"b\":-0.00000000000000000000000000000000000001}]");
}

static void test_json_strings(void **state) {
  (void)state;
  check_json("SELECT chr(1) || 'a' || chr(10) || chr(9) || chr(13) || chr(8) || chr(12) || '\\' AS s",
             "[{\"s\":\"\\u0001a\\n\\t\\r\\b\\f\\\\\"}]");
  check_json("SELECT 'é日本😀' AS s, '' AS e", "[{\"s\":\"é日本😀\",\"e\":\"\"}]");
  check_json("SELECT '\\xAA\\xBB\\x00'::BLOB b, ''::BLOB e", "[{\"b\":\"qrsA\",\"e\":\"\"}]");
  check_json("SELECT 'abcd'::BLOB b", "[{\"b\":\"YWJjZA==\"}]");
  check_json("SELECT 'b'::ENUM('a', 'b') e, NULL::ENUM('a', 'b') n", "[{\"e\":\"b\",\"n\":null}]");
  check_json("SELECT '5d0b8e8a-1c1d-4c52-9c1e-0123456789ab'::UUID u",
             "[{\"u\":\"5d0b8e8a-1c1d-4c52-9c1e-0123456789ab\"}]");
}

static void test_json_string_views(void **state) {
  (void)state;
  char *got = render_with(SP_FORMAT_JSON, "SET arrow_output_version = '1.4'; SET produce_arrow_string_view = true",
                          "SELECT 'short' s, 'a string longer than twelve bytes' l, NULL::VARCHAR n, 'xy'::BLOB b", 0);
  assert_string_equal(got, "[{\"s\":\"short\",\"l\":\"a string longer than twelve bytes\",\"n\":null,\"b\":\"eHk=\"}]");
  free(got);
  got = render_with(SP_FORMAT_JSON, "SET arrow_output_list_view = true", "SELECT [1, 2] a, []::INT[] b, [[3], NULL] c", 0);
  assert_string_equal(got, "[{\"a\":[1,2],\"b\":[],\"c\":[[3],null]}]");
  free(got);
  assert_int_equal(duckdb_query(g_conn,
                                "RESET produce_arrow_string_view; RESET arrow_output_list_view; RESET arrow_output_version",
                                NULL),
                   DuckDBSuccess);
}

static void test_json_lossless(void **state) {
  (void)state;
  char *got = render_with(SP_FORMAT_JSON, "SET arrow_lossless_conversion = true",
                          "SELECT '5d0b8e8a-1c1d-4c52-9c1e-0123456789ab'::UUID u, 18446744073709551616::UHUGEINT h", 0);
  assert_string_equal(got, "[{\"u\":\"5d0b8e8a-1c1d-4c52-9c1e-0123456789ab\",\"h\":18446744073709551616}]");
  free(got);
  assert_int_equal(duckdb_query(g_conn, "RESET arrow_lossless_conversion", NULL), DuckDBSuccess);
}

static void test_json_dates_times(void **state) {
  (void)state;
  check_json("SELECT DATE '2024-01-31' a, DATE '1969-12-31' b, DATE '0001-01-01' c, DATE '12345-06-07' d, "
             "DATE '0044-03-15 (BC)' e",
             "[{\"a\":\"2024-01-31\",\"b\":\"1969-12-31\",\"c\":\"0001-01-01\",\"d\":\"+12345-06-07\","
             "\"e\":\"-0043-03-15\"}]");
  check_json("SELECT TIME '12:34:56.789' a, TIME '00:00:00' b, TIME '23:59:59.123456' c, TIME '01:02:03.5' d",
             "[{\"a\":\"12:34:56.789\",\"b\":\"00:00:00\",\"c\":\"23:59:59.123456\",\"d\":\"01:02:03.500\"}]");
  check_json("SELECT TIMESTAMP '2024-01-31 12:34:56.789' a, TIMESTAMPTZ '2024-01-31 12:34:56.789+00' b, "
             "TIMESTAMP '1969-12-31 23:59:59.5' c, TIMESTAMP '2000-02-29 00:00:00' d",
             "[{\"a\":\"2024-01-31T12:34:56.789\",\"b\":\"2024-01-31T12:34:56.789Z\","
             "\"c\":\"1969-12-31T23:59:59.500\",\"d\":\"2000-02-29T00:00:00\"}]");
  check_json("SELECT TIMESTAMP_S '2024-01-31 12:34:56' s, TIMESTAMP_MS '2024-01-31 12:34:56.123' ms, "
             "TIMESTAMP_NS '2024-01-31 12:34:56.123456789' ns",
             "[{\"s\":\"2024-01-31T12:34:56\",\"ms\":\"2024-01-31T12:34:56.123\","
             "\"ns\":\"2024-01-31T12:34:56.123456789\"}]");
}

static void test_json_intervals(void **state) {
  (void)state;
  check_json("SELECT INTERVAL '1 year 2 months 3 days 04:05:06.789' a, INTERVAL 1 DAY b, INTERVAL 0 SECOND c, "
             "INTERVAL '-1 day' d, INTERVAL '-90 seconds' e, INTERVAL 14 MONTH f, INTERVAL '36 hours' g",
             "[{\"a\":\"1 year 2 months 3 days 04:05:06.789\",\"b\":\"1 day\",\"c\":\"00:00:00\",\"d\":\"-1 day\","
             "\"e\":\"-00:01:30\",\"f\":\"1 year 2 months\",\"g\":\"36:00:00\"}]");
}

static void test_json_nested(void **state) {
  (void)state;
  check_json("SELECT [1, 2, NULL] a, []::INT[] b, NULL::INT[] c, [[1], [2, 3]] d, ['x', NULL] e",
             "[{\"a\":[1,2,null],\"b\":[],\"c\":null,\"d\":[[1],[2,3]],\"e\":[\"x\",null]}]");
  check_json("SELECT {'a': 1, 'b': 'x'} s, NULL::STRUCT(a INT) n, {'k': [1, 2], 'z': {'y': NULL}} d",
             "[{\"s\":{\"a\":1,\"b\":\"x\"},\"n\":null,\"d\":{\"k\":[1,2],\"z\":{\"y\":null}}}]");
  check_json("SELECT MAP {'k': 1, 'j': 2} m, MAP {1: 'a', 2: NULL} n, MAP {'q\"': 1} q",
             "[{\"m\":{\"k\":1,\"j\":2},\"n\":{\"1\":\"a\",\"2\":null},\"q\":{\"q\\\"\":1}}]");
  check_json("SELECT [1, 2]::INT[2] a, [{'x': 1}, {'x': 2}] b", "[{\"a\":[1,2],\"b\":[{\"x\":1},{\"x\":2}]}]");
  check_json("SELECT union_value(k := 7)::UNION(k INT, s VARCHAR) u, union_value(s := 'z')::UNION(k INT, s VARCHAR) v",
             "[{\"u\":7,\"v\":\"z\"}]");
  check_json("SELECT [DATE '2024-01-02'] a, [1.5::DECIMAL(4,2)] b", "[{\"a\":[\"2024-01-02\"],\"b\":[1.50]}]");
  /* Slices of lists: rows after the first read offsets that do not start at zero. */
  check_json("SELECT [i, i + 1] l FROM range(3) t(i)", "[{\"l\":[0,1]},{\"l\":[1,2]},{\"l\":[2,3]}]");
}

/* ---- CSV ------------------------------------------------------------------------------------------------ */

static void test_csv(void **state) {
  (void)state;
  check(SP_FORMAT_CSV, "SELECT 1 a, 'x' b UNION ALL SELECT 2, NULL ORDER BY a", "a,b\n1,x\n2,\n");
  check(SP_FORMAT_CSV, "SELECT 'a,b' s, 'say \"hi\"' q, '' e, 'l1' || chr(10) || 'l2' n, 'plain' p",
        "s,q,e,n,p\n\"a,b\",\"say \"\"hi\"\"\",\"\",\"l1\nl2\",plain\n");
  check(SP_FORMAT_CSV, "SELECT 1 AS \"a,b\", 2 AS \"q\"\"\"", "\"a,b\",\"q\"\"\"\n1,2\n");
  check(SP_FORMAT_CSV, "SELECT 'ab'::BLOB b, [1, 2] l, {'x': 'y'} s, 1.5::DOUBLE d, 'nan'::DOUBLE n",
        "b,l,s,d,n\n6162,\"[1,2]\",\"{\"\"x\"\":\"\"y\"\"}\",1.5,NaN\n");
  check(SP_FORMAT_CSV, "SELECT DATE '2024-01-31' d, TIMESTAMPTZ '2024-01-31 01:02:03+00' t, true b",
        "d,t,b\n2024-01-31,2024-01-31T01:02:03Z,true\n");
  check(SP_FORMAT_CSV, "SELECT 1 a WHERE false", "a\n");
}

/* ---- Table ---------------------------------------------------------------------------------------------- */

static void test_table(void **state) {
  (void)state;
  check(SP_FORMAT_TABLE, "SELECT * FROM (VALUES (1, 'apple', 1.5::DOUBLE), (22, NULL, 0.25)) t(id, name, price) ORDER BY id",
        "+----+-------+-------+\n"
        "| id | name  | price |\n"
        "+----+-------+-------+\n"
        "| 1  | apple | 1.5   |\n"
        "| 22 |       | 0.25  |\n"
        "+----+-------+-------+\n");
  check(SP_FORMAT_TABLE, "SELECT '日本' j, 'a' || chr(10) || 'b' n, 'é' e",
        "+------+------+---+\n"
        "| j    | n    | e |\n"
        "+------+------+---+\n"
        "| 日本 | a\\nb | é |\n"
        "+------+------+---+\n");
  check(SP_FORMAT_TABLE, "SELECT 1 AS a WHERE false",
        "+---+\n"
        "| a |\n"
        "+---+\n"
        "+---+\n");
  check(SP_FORMAT_TABLE, "SELECT [1, 2] l, 'ab'::BLOB b", "+-------+------+\n| l     | b    |\n+-------+------+\n"
                                                         "| [1,2] | 6162 |\n+-------+------+\n");
}

/* A result longer than one held-back block: the second block widens the column and gets its own border. */
static void test_table_blocks(void **state) {
  (void)state;
  char sql[200];
  snprintf(sql, sizeof sql, "SELECT CASE WHEN i < %d THEN 'a' ELSE 'bbb' END c FROM range(%d) t(i) ORDER BY i",
           SP_TABLE_BLOCK_ROWS, SP_TABLE_BLOCK_ROWS + 1);
  char *got = render(SP_FORMAT_TABLE, sql);
  size_t n = strlen(got);
  const char *head = "+---+\n| c |\n+---+\n| a |\n";
  assert_memory_equal(got, head, strlen(head));
  const char *tail = "| a |\n+-----+\n| bbb |\n+-----+\n";
  assert_true(n > strlen(tail));
  assert_string_equal(got + n - strlen(tail), tail);
  assert_int_equal(n, strlen("+---+\n| c |\n+---+\n") + (size_t)SP_TABLE_BLOCK_ROWS * 6 + strlen("+-----+\n| bbb |\n+-----+\n"));
  free(got);
}

/* ---- sql.v1+json ---------------------------------------------------------------------------------------- */

static void test_sql_v1(void **state) {
  (void)state;
  check(SP_FORMAT_SQL_V1, "SELECT 1::BIGINT a, 'x' b",
        "{\"schema\":{\"fields\":["
        "{\"name\":\"a\",\"data_type\":\"Int64\",\"nullable\":true,\"dict_id\":0,\"dict_is_ordered\":false,\"metadata\":{}},"
        "{\"name\":\"b\",\"data_type\":\"Utf8\",\"nullable\":true,\"dict_id\":0,\"dict_is_ordered\":false,\"metadata\":{}}"
        "],\"metadata\":{}},\"data\":[{\"a\":1,\"b\":\"x\"}],\"row_count\":1}");
  char *got = render(SP_FORMAT_SQL_V1,
                     "SELECT 1.5::DOUBLE f, true b, DATE '2024-01-01' d, TIMESTAMP '2024-01-01' t, "
                     "TIMESTAMPTZ '2024-01-01 00:00:00+00' tz, 1.5::DECIMAL(38,2) dc, [1] l, {'x': 1} s, "
                     "'a'::ENUM('a') e, TIME '01:00:00' tm, INTERVAL 1 DAY i, 'x'::BLOB z, 1::TINYINT i8, "
                     "1::UBIGINT u64, 1::FLOAT f32, MAP {'k': 1} m FROM range(2)");
  const char *want_types[] = {
      "\"data_type\":\"Float64\"", "\"data_type\":\"Boolean\"", "\"data_type\":\"Date32\"",
      "\"data_type\":{\"Timestamp\":[\"Microsecond\",null]}", "\"data_type\":{\"Timestamp\":[\"Microsecond\",\"UTC\"]}",
      "\"data_type\":{\"Decimal128\":[38,2]}",
      "\"data_type\":{\"List\":{\"name\":\"l\",\"data_type\":\"Int32\",\"nullable\":true,\"dict_id\":0,"
      "\"dict_is_ordered\":false,\"metadata\":{}}}",
      "\"data_type\":{\"Struct\":[{\"name\":\"x\",\"data_type\":\"Int32\"",
      "\"data_type\":{\"Dictionary\":[\"UInt8\",\"Utf8\"]}", "\"data_type\":{\"Time64\":\"Microsecond\"}",
      "\"data_type\":{\"Interval\":\"MonthDayNano\"}", "\"data_type\":\"Binary\"", "\"data_type\":\"Int8\"",
      "\"data_type\":\"UInt64\"", "\"data_type\":\"Float32\"", "\"data_type\":{\"Map\":[{\"name\":\"entries\"",
      "\"row_count\":2}",
  };
  for (size_t i = 0; i < sizeof want_types / sizeof want_types[0]; i++)
    if (strstr(got, want_types[i]) == NULL) fail_msg("missing %s in %s", want_types[i], got);
  free(got);
  check(SP_FORMAT_SQL_V1, "SELECT 1 a WHERE false",
        "{\"schema\":{\"fields\":[{\"name\":\"a\",\"data_type\":\"Int32\",\"nullable\":true,\"dict_id\":0,"
        "\"dict_is_ordered\":false,\"metadata\":{}}],\"metadata\":{}},\"data\":[],\"row_count\":0}");
}

/* ---- Streaming and errors ------------------------------------------------------------------------------- */

/* Formatting piece by piece (many DuckDB chunks, small soft limits) gives the same bytes as whole batches. */
static void test_pieces_match_whole(void **state) {
  (void)state;
  const char *sql = "SELECT i, 'row ' || i AS s, i * 0.5 AS d, [i] AS l FROM range(5000) t(i) ORDER BY i";
  sp_format_kind kinds[] = {SP_FORMAT_JSON, SP_FORMAT_CSV, SP_FORMAT_TABLE, SP_FORMAT_SQL_V1};
  for (size_t k = 0; k < 4; k++) {
    char *whole = render_with(kinds[k], NULL, sql, 0);
    char *pieces = render_with(kinds[k], NULL, sql, 100);
    assert_string_equal(whole, pieces);
    free(pieces);
    free(whole);
  }
  char *csv = render(SP_FORMAT_CSV, sql);
  size_t lines = 0;
  for (char *p = csv; *p; p++) lines += *p == '\n';
  assert_int_equal(lines, 5001);
  assert_non_null(strstr(csv, "\n4999,row 4999,2499.5,[4999]\n"));
  free(csv);
}

static void release_schema(struct ArrowSchema *s) { s->release = NULL; }

static void test_unsupported_and_mismatch(void **state) {
  (void)state;
  struct ArrowSchema col = {.format = "+r", .name = "runs", .release = release_schema};
  struct ArrowSchema *kids[] = {&col};
  struct ArrowSchema root = {.format = "+s", .name = "", .n_children = 1, .children = kids, .release = release_schema};
  sp_formatter *f = NULL;
  sp_error err = {0};
  assert_int_equal(sp_formatter_create(SP_FORMAT_JSON, &root, &f, &err), SP_ENOTSUP);
  assert_non_null(strstr(err.msg, "\"runs\""));
  assert_null(f);

  struct ArrowSchema icol = {.format = "l", .name = "a", .release = release_schema};
  kids[0] = &icol;
  assert_int_equal(sp_formatter_create(SP_FORMAT_JSON, &root, &f, &err), SP_OK);
  sp_buf out = {0};
  struct ArrowArray empty = {.length = 1, .n_children = 0};
  int64_t row = 0;
  assert_int_equal(sp_format_rows(f, &empty, &row, 1024, &out, &err), SP_EINVAL);
  int64_t vals[1] = {5};
  const void *bufs[2] = {NULL, vals};
  struct ArrowArray child = {.length = 1, .n_buffers = 1, .buffers = bufs};
  struct ArrowArray *ch[] = {&child};
  struct ArrowArray batch = {.length = 1, .n_children = 1, .children = ch};
  assert_int_equal(sp_format_rows(f, &batch, &row, 1024, &out, &err), SP_EINVAL); /* one buffer short */
  child.n_buffers = 2;
  assert_int_equal(sp_format_rows(f, &batch, &row, 1024, &out, &err), SP_OK);
  assert_int_equal(sp_format_end(f, &out, &err), SP_OK);
  assert_int_equal(out.len, strlen("{\"a\":5}]"));
  assert_memory_equal(out.data, "{\"a\":5}]", out.len);
  sp_formatter_destroy(f);
  sp_buf_free(&out);

  struct ArrowSchema notstruct = {.format = "l", .name = "", .release = release_schema};
  assert_int_equal(sp_formatter_create(SP_FORMAT_JSON, &notstruct, &f, &err), SP_EINVAL);
}

/* Invalid UTF-8 in a string column is repaired, never passed through into JSON. */
static void test_invalid_utf8_repaired(void **state) {
  (void)state;
  const char data[] = "a\xff" "b\xc3";
  int32_t offs[2] = {0, 4};
  const void *bufs[3] = {NULL, offs, data};
  struct ArrowArray child = {.length = 1, .n_buffers = 3, .buffers = bufs};
  struct ArrowArray *ch[] = {&child};
  struct ArrowArray batch = {.length = 1, .n_children = 1, .children = ch};
  struct ArrowSchema col = {.format = "u", .name = "s", .release = release_schema};
  struct ArrowSchema *kids[] = {&col};
  struct ArrowSchema root = {.format = "+s", .name = "", .n_children = 1, .children = kids, .release = release_schema};
  sp_formatter *f = NULL;
  sp_error err = {0};
  sp_buf out = {0};
  assert_int_equal(sp_formatter_create(SP_FORMAT_JSON, &root, &f, &err), SP_OK);
  assert_int_equal(sp_format_batch(f, &batch, &out, &err), SP_OK);
  assert_int_equal(sp_format_end(f, &out, &err), SP_OK);
  const char *want = "{\"s\":\"a\xef\xbf\xbd" "b\xef\xbf\xbd\"}]";
  assert_int_equal(out.len, strlen(want));
  assert_memory_equal(out.data, want, out.len);
  sp_formatter_destroy(f);
  sp_buf_free(&out);
}

/* ---- Types DuckDB does not produce (Arrow from connectors and snapshots) ------------------------------ */

/* Renders one hand-built column of `rows` rows as JSON. */
static char *render_column(const char *format, const void **buffers, int64_t n_buffers, int64_t rows,
                           sp_format_kind kind) {
  struct ArrowSchema col = {.format = format, .name = "v", .release = release_schema};
  struct ArrowSchema *kids[] = {&col};
  struct ArrowSchema root = {.format = "+s", .name = "", .n_children = 1, .children = kids, .release = release_schema};
  struct ArrowArray child = {.length = rows, .null_count = -1, .n_buffers = n_buffers, .buffers = buffers};
  struct ArrowArray *ch[] = {&child};
  struct ArrowArray batch = {.length = rows, .n_children = 1, .children = ch};
  sp_formatter *f = NULL;
  sp_error err = {0};
  sp_buf out = {0};
  if (sp_formatter_create(kind, &root, &f, &err) != SP_OK) fail_msg("%s: %s", format, err.msg);
  assert_int_equal(sp_format_begin(f, &out, &err), SP_OK);
  if (sp_format_batch(f, &batch, &out, &err) != SP_OK) fail_msg("%s: %s", format, err.msg);
  assert_int_equal(sp_format_end(f, &out, &err), SP_OK);
  sp_formatter_destroy(f);
  char *s = strndup(out.data, out.len);
  sp_buf_free(&out);
  return s;
}

static void check_column(const char *format, const void **buffers, int64_t n_buffers, int64_t rows, const char *want) {
  char *got = render_column(format, buffers, n_buffers, rows, SP_FORMAT_JSON);
  if (strcmp(got, want) != 0) fail_msg("%s\n  want: %s\n  got:  %s", format, want, got);
  free(got);
}

static void test_other_arrow_types(void **state) {
  (void)state;
  int64_t dur[] = {-1500, 90061001, 0};
  const void *b_dur[] = {NULL, dur};
  check_column("tDm", b_dur, 2, 3, "[{\"v\":\"-00:00:01.5\"},{\"v\":\"25:01:01.001\"},{\"v\":\"00:00:00\"}]");
  int64_t dur_s[] = {3600};
  const void *b_dur_s[] = {NULL, dur_s};
  check_column("tDs", b_dur_s, 2, 1, "[{\"v\":\"01:00:00\"}]");

  int64_t d64[] = {1706659200000LL, -1};
  const void *b_d64[] = {NULL, d64};
  check_column("tdm", b_d64, 2, 2, "[{\"v\":\"2024-01-31\"},{\"v\":\"1969-12-31\"}]");
  int32_t t32[] = {45296, 86399};
  const void *b_t32[] = {NULL, t32};
  check_column("tts", b_t32, 2, 2, "[{\"v\":\"12:34:56\"},{\"v\":\"23:59:59\"}]");
  int32_t t32ms[] = {45296789};
  const void *b_t32ms[] = {NULL, t32ms};
  check_column("ttm", b_t32ms, 2, 1, "[{\"v\":\"12:34:56.789\"}]");

  int32_t months[] = {14, -1};
  const void *b_months[] = {NULL, months};
  check_column("tiM", b_months, 2, 2, "[{\"v\":\"1 year 2 months\"},{\"v\":\"-1 month\"}]");
  int32_t daytime[] = {2, 3723004};
  const void *b_daytime[] = {NULL, daytime};
  check_column("tiD", b_daytime, 2, 1, "[{\"v\":\"2 days 01:02:03.004\"}]");

  uint16_t half[] = {0x3C00, 0xC100, 0x7C00, 0x3555, 0x7BFF, 0x0001};
  const void *b_half[] = {NULL, half};
  check_column("e", b_half, 2, 6,
               "[{\"v\":1.0},{\"v\":-2.5},{\"v\":\"Infinity\"},{\"v\":0.3333},{\"v\":65500.0},{\"v\":6e-8}]");

  /* decimal256: -1.23 and 2^200 (two's complement little-endian, 4 x 64-bit words per value) */
  uint64_t d256[8] = {(uint64_t)-123, UINT64_MAX, UINT64_MAX, UINT64_MAX, 0, 0, 0, 1u << 8};
  const void *b_d256[] = {NULL, d256};
  check_column("d:76,2,256", b_d256, 2, 2,
               "[{\"v\":-1.23},{\"v\":16069380442589902755419620923411626025222029937827928353013.76}]");
  int32_t d32[] = {-5};
  const void *b_d32[] = {NULL, d32};
  check_column("d:9,3,32", b_d32, 2, 1, "[{\"v\":-0.005}]");
  int64_t dneg[] = {12};
  const void *b_dneg[] = {NULL, dneg};
  check_column("d:10,-2,64", b_dneg, 2, 1, "[{\"v\":1200}]");

  int64_t ts[] = {1706704496789000LL};
  const void *b_ts[] = {NULL, ts};
  check_column("tsu:+05:30", b_ts, 2, 1, "[{\"v\":\"2024-01-31T18:04:56.789+05:30\"}]");
  check_column("tsu:America/New_York", b_ts, 2, 1, "[{\"v\":\"2024-01-31T12:34:56.789Z\"}]");
  check_column("tsu:UTC", b_ts, 2, 1, "[{\"v\":\"2024-01-31T12:34:56.789Z\"}]");

  const char fixed[] = "abcxyz";
  const void *b_fixed[] = {NULL, fixed};
  check_column("w:3", b_fixed, 2, 2, "[{\"v\":\"YWJj\"},{\"v\":\"eHl6\"}]");

  int64_t loffs[] = {0, 2, 2};
  const char ldata[] = "hi";
  uint8_t valid = 0x1; /* row 1 is NULL */
  const void *b_large[] = {&valid, loffs, ldata};
  check_column("U", b_large, 3, 2, "[{\"v\":\"hi\"},{\"v\":null}]");
  check_column("Z", b_large, 3, 2, "[{\"v\":\"aGk=\"},{\"v\":null}]");
  const void *b_null[] = {NULL};
  check_column("n", b_null, 0, 2, "[{\"v\":null},{\"v\":null}]");
  char *csv = render_column("tDm", b_dur, 2, 3, SP_FORMAT_CSV);
  assert_string_equal(csv, "v\n-00:00:01.5\n25:01:01.001\n00:00:00\n");
  free(csv);
}

/* A dense union and a dictionary over large strings, built by hand. */
static void test_dense_union_and_dictionary(void **state) {
  (void)state;
  int32_t ivals[] = {10, 20};
  const void *ib[] = {NULL, ivals};
  struct ArrowArray ia = {.length = 2, .n_buffers = 2, .buffers = ib};
  int32_t soffs[] = {0, 1};
  const void *sb[] = {NULL, soffs, "z"};
  struct ArrowArray sa = {.length = 1, .n_buffers = 3, .buffers = sb};
  struct ArrowArray *ukids[] = {&ia, &sa};
  int8_t ids[] = {5, 9, 5};
  int32_t uoffs[] = {0, 0, 1};
  const void *ub[] = {ids, uoffs};
  struct ArrowArray ua = {.length = 3, .n_buffers = 2, .buffers = ub, .n_children = 2, .children = ukids};
  struct ArrowSchema is = {.format = "i", .name = "i", .release = release_schema};
  struct ArrowSchema ss = {.format = "u", .name = "s", .release = release_schema};
  struct ArrowSchema *uskids[] = {&is, &ss};
  struct ArrowSchema us = {.format = "+ud:5,9", .name = "u", .n_children = 2, .children = uskids, .release = release_schema};

  int64_t doffs[] = {0, 3, 6};
  const void *db[] = {NULL, doffs, "redblu"};
  struct ArrowArray dict = {.length = 2, .n_buffers = 3, .buffers = db};
  int8_t idx[] = {1, 0, 1};
  const void *xb[] = {NULL, idx};
  struct ArrowArray xa = {.length = 3, .n_buffers = 2, .buffers = xb, .dictionary = &dict};
  struct ArrowSchema dvals = {.format = "U", .name = "", .release = release_schema};
  struct ArrowSchema xs = {.format = "c", .name = "d", .dictionary = &dvals, .release = release_schema};

  struct ArrowSchema *rkids[] = {&us, &xs};
  struct ArrowSchema root = {.format = "+s", .name = "", .n_children = 2, .children = rkids, .release = release_schema};
  struct ArrowArray *bkids[] = {&ua, &xa};
  struct ArrowArray batch = {.length = 3, .n_children = 2, .children = bkids};
  sp_formatter *f = NULL;
  sp_error err = {0};
  sp_buf out = {0};
  assert_int_equal(sp_formatter_create(SP_FORMAT_SQL_V1, &root, &f, &err), SP_OK);
  assert_int_equal(sp_format_begin(f, &out, &err), SP_OK);
  assert_int_equal(sp_format_batch(f, &batch, &out, &err), SP_OK);
  assert_int_equal(sp_format_end(f, &out, &err), SP_OK);
  assert_non_null(sp_buf_cstr(&out));
  assert_non_null(strstr(out.data, "\"data\":[{\"u\":10,\"d\":\"blu\"},{\"u\":\"z\",\"d\":\"red\"},{\"u\":20,\"d\":\"blu\"}]"));
  assert_non_null(strstr(out.data, "\"data_type\":{\"Union\":[[[5,{\"name\":\"i\""));
  assert_non_null(strstr(out.data, "\"Dense\"]}"));
  assert_non_null(strstr(out.data, "\"data_type\":{\"Dictionary\":[\"Int8\",\"LargeUtf8\"]}"));
  sp_formatter_destroy(f);
  sp_buf_free(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_basic),
      cmocka_unit_test(test_json_integers),
      cmocka_unit_test(test_json_floats),
      cmocka_unit_test(test_json_decimals),
      cmocka_unit_test(test_json_strings),
      cmocka_unit_test(test_json_string_views),
      cmocka_unit_test(test_json_lossless),
      cmocka_unit_test(test_json_dates_times),
      cmocka_unit_test(test_json_intervals),
      cmocka_unit_test(test_json_nested),
      cmocka_unit_test(test_csv),
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_table_blocks),
      cmocka_unit_test(test_sql_v1),
      cmocka_unit_test(test_pieces_match_whole),
      cmocka_unit_test(test_unsupported_and_mismatch),
      cmocka_unit_test(test_invalid_utf8_repaired),
      cmocka_unit_test(test_other_arrow_types),
      cmocka_unit_test(test_dense_union_and_dictionary),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
