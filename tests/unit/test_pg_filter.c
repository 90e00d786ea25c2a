/* SPDX-License-Identifier: Apache-2.0
 *
 * refresh_sql → PostgreSQL WHERE (src/connectors/pg_filter.c) on DuckDB's real parse trees: the accepted shape
 * is rebuilt exactly (quoting through the callbacks), every other shape is refused with SP_ENOTSUP.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "connectors/pg_filter.h"
#include "duckdb.h"
#include "spice/duckdb_util.h"

static duckdb_database db;
static duckdb_connection conn;

static int setup(void **state) {
  if (duckdb_open(NULL, &db) == DuckDBError || duckdb_connect(db, &conn) == DuckDBError) return -1;
  return 0;
}

static int teardown(void **state) {
  duckdb_disconnect(&conn);
  duckdb_close(&db);
  return 0;
}

static char *serialize(const char *sql) {
  duckdb_prepared_statement ps;
  duckdb_result res;
  assert_int_equal(duckdb_prepare(conn, "SELECT json_serialize_sql($1::VARCHAR, skip_null := true, skip_empty := true)", &ps), DuckDBSuccess);
  assert_int_equal(duckdb_bind_varchar(ps, 1, sql), DuckDBSuccess);
  assert_int_equal(duckdb_execute_prepared(ps, &res), DuckDBSuccess);
  char *v = duckdb_value_varchar(&res, 0, 0);
  char *copy = strdup(v);
  sp_duckdb_json_zero_unknown_locations(copy); /* as sp_duckdb_serialize_sql does */
  duckdb_free(v);
  duckdb_destroy_result(&res);
  duckdb_destroy_prepare(&ps);
  return copy;
}

/* Known columns: id, b, c, d, e; "t" stands for a column read as text (not comparable at the server). */
static char *column(void *ctx, const char *name) {
  static const char *const known[] = {"id", "b", "c", "d", "e", NULL};
  for (size_t i = 0; known[i]; i++)
    if (strcasecmp(known[i], name) == 0) {
      char *q = malloc(strlen(name) + 3);
      sprintf(q, "\"%s\"", known[i]);
      return q;
    }
  return NULL;
}

static char *literal(void *ctx, const char *s) {
  char *q = malloc(2 * strlen(s) + 3), *o = q;
  *o++ = '\'';
  for (; *s; s++) {
    if (*s == '\'') *o++ = '\'';
    *o++ = *s;
  }
  *o++ = '\'';
  *o = '\0';
  return q;
}

static char *typed_literal(void *ctx, const char *type, const char *s) {
  char *lit = literal(ctx, s), *out = malloc(strlen(lit) + 16);
  sprintf(out, "%s::%s", lit, strcmp(type, "DATE") == 0 ? "date" : "timestamp");
  free(lit);
  return out;
}

static char *ordered_column(void *ctx, const char *name) {
  char *q = column(ctx, name), *out = q ? malloc(strlen(q) + 16) : NULL;
  if (out) sprintf(out, "(%s COLLATE C)", q);
  free(q);
  return out;
}

static int translate(const char *sql, char **out, sp_error *err) {
  char *json = serialize(sql);
  pgf_ctx cx = {.dataset = "ds", .column = column, .literal = literal, .typed_literal = typed_literal};
  int rc = pgf_where(json, &cx, out, err);
  free(json);
  return rc;
}

static void accepted(void **state) {
  static const char *const cases[][2] = {
      {"SELECT * FROM ds WHERE id < 10 AND (b = 'x''y' OR c IS NULL) AND d >= -1.5 AND NOT e",
       "((\"id\" < 10) AND ((\"b\" = 'x''y') OR (\"c\" IS NULL)) AND (\"d\" >= -1.5) AND (NOT \"e\"))"},
      {"SELECT * FROM ds", ""},
      {"select * from DS where ds.ID <> 0.05 or c is not null", "((\"id\" <> 0.05) OR (\"c\" IS NOT NULL))"},
      {"SELECT * FROM ds WHERE 3 <= id AND d > 1e3", "((3 <= \"id\") AND (\"d\" > 1000::float8))"},
      {"SELECT * FROM ds WHERE id IN (1, 2) AND b NOT IN ('x', 'y''z')",
       "((\"id\" IN (1, 2)) AND (\"b\" NOT IN ('x', 'y''z')))"},
      {"SELECT * FROM ds WHERE id BETWEEN 1 AND 2 OR d BETWEEN 0.05 AND 0.07", "((\"id\" BETWEEN 1 AND 2) OR (\"d\" BETWEEN 0.05 AND 0.07))"},
      {"SELECT * FROM ds WHERE c >= DATE '1994-01-01' AND c < TIMESTAMP '1995-01-01 00:00:00'",
       "((\"c\" >= '1994-01-01'::date) AND (\"c\" < '1995-01-01 00:00:00'::timestamp))"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *out = NULL;
    sp_error err = {0};
    int rc = translate(cases[i][0], &out, &err);
    if (rc != SP_OK) fail_msg("%s: %s", cases[i][0], err.msg);
    if (strcmp(out, cases[i][1]) != 0) fail_msg("%s: got %s", cases[i][0], out);
    free(out);
  }
}

static void refused(void **state) {
  static const char *const cases[] = {
      "SELECT * FROM ds WHERE id < 10 ORDER BY id",
      "SELECT * FROM ds LIMIT 3",
      "SELECT * FROM ds WHERE id + 1 < 10",
      "SELECT * FROM ds WHERE id::int = 1",
      "SELECT * FROM ds WHERE id IN (SELECT 1)",
      "SELECT * FROM ds WHERE id IN (1, id)",
      "SELECT * FROM ds WHERE c = TRY_CAST('1994-01-01' AS DATE)",
      "SELECT * FROM ds WHERE c = CAST('1' AS INTEGER)",
      "SELECT * FROM ds WHERE lower(b) = 'x'",
      "SELECT * FROM other WHERE id = 1",
      "SELECT * FROM ds, other",
      "SELECT * FROM ds WHERE other.id = 1",
      "SELECT * FROM ds WHERE nope = 1",
      "SELECT id FROM ds",
      "SELECT * EXCLUDE (b) FROM ds",
      "SELECT * FROM ds AS x WHERE x.id = 1",
      "SELECT * FROM main.ds",
      "SELECT * FROM ds UNION ALL SELECT * FROM ds",
      "WITH t AS (SELECT 1) SELECT * FROM ds",
      "SELECT count(*) FROM ds",
      "SELECT * FROM ds WHERE b LIKE 'x%'",
      "SELECT * FROM ds WHERE id = 99999999999999999999999",
      "SELECT * FROM ds WHERE d = 'nan'::double",
      "SELECT * FROM ds WHERE id BETWEEN 1 AND id + 1",
      "SELECT DISTINCT * FROM ds",
      "SELECT * FROM ds WHERE e = true",
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *out = NULL;
    sp_error err = {0};
    int rc = translate(cases[i], &out, &err);
    if (rc != SP_ENOTSUP) fail_msg("%s: expected ENOTSUP, got %d (%s) %s", cases[i], rc, err.msg, out ? out : "");
    assert_non_null(strstr(err.msg, "refresh_sql of dataset \"ds\" cannot be pushed to postgres"));
  }
}

/* Ordering comparisons take the ordered form of a column (a byte-order collation); equality keeps the plain one. */
static void ordered_columns(void **state) {
  char *json = serialize("SELECT * FROM ds WHERE b < 'x' AND b = 'y' AND 'z' >= b AND b BETWEEN 'a' AND 'c' AND b IN ('q')"), *out = NULL;
  sp_error err = {0};
  pgf_ctx cx = {.dataset = "ds", .column = column, .literal = literal, .ordered_column = ordered_column};
  assert_int_equal(pgf_where(json, &cx, &out, &err), SP_OK);
  assert_string_equal(out, "(((\"b\" COLLATE C) < 'x') AND (\"b\" = 'y') AND ('z' >= (\"b\" COLLATE C)) AND "
                           "((\"b\" COLLATE C) BETWEEN 'a' AND 'c') AND (\"b\" IN ('q')))");
  free(out);
  free(json);
}

/* Federated filters keep the conjuncts that translate and leave the rest to the engine. */
static void some_conjuncts(void **state) {
  static const char *const cases[][2] = {
      {"SELECT * FROM ds WHERE id < 10 AND lower(b) = 'x' AND d BETWEEN 1 AND 2", "(\"id\" < 10) AND (\"d\" BETWEEN 1 AND 2)"},
      {"SELECT * FROM ds WHERE lower(b) = 'x'", ""},
      {"SELECT * FROM ds WHERE id < 10 OR lower(b) = 'x'", ""},
      {"SELECT * FROM ds WHERE nope = 1 AND (id = 1 OR id = 2)", "((\"id\" = 1) OR (\"id\" = 2))"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *json = serialize(cases[i][0]), *out = NULL;
    sp_error err = {0};
    pgf_ctx cx = {.dataset = "ds", .column = column, .literal = literal, .typed_literal = typed_literal};
    if (pgf_where_some(json, &cx, &out, &err) != SP_OK) fail_msg("%s: %s", cases[i][0], err.msg);
    if (strcmp(out, cases[i][1]) != 0) fail_msg("%s: got %s", cases[i][0], out);
    free(out);
    free(json);
  }
}

static void parse_errors(void **state) {
  char *out = NULL;
  sp_error err = {0};
  assert_int_equal(translate("SELEC * FROM ds", &out, &err), SP_EINVAL);
  pgf_ctx cx = {.dataset = "ds", .column = column, .literal = literal};
  assert_int_equal(pgf_where("not json", &cx, &out, &err), SP_ENOTSUP);
  assert_int_equal(pgf_where("{\"statements\": [{\"node\": 7}]}", &cx, &out, &err), SP_ENOTSUP);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(accepted), cmocka_unit_test(refused), cmocka_unit_test(some_conjuncts), cmocka_unit_test(ordered_columns),
      cmocka_unit_test(parse_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
