/* SPDX-License-Identifier: Apache-2.0
 *
 * Whole-query pushdown's printer (src/engine/unparse.c) on DuckDB's real parse trees: what each dialect gets,
 * and what it refuses (the query then runs locally).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/unparse.h"
#include "spice/duckdb_util.h"

/* Two tables: t(id int, name text, d date) and u(id int, v double). */
static struct ArrowSchema col_id = {.format = "i", .name = "id"}, col_name = {.format = "u", .name = "name"},
                          col_d = {.format = "tdD", .name = "d"}, col_v = {.format = "g", .name = "v"};
static struct ArrowSchema *t_cols[] = {&col_id, &col_name, &col_d}, *u_cols[] = {&col_id, &col_v};
static struct ArrowSchema t_schema = {.format = "+s", .n_children = 3, .children = t_cols},
                          u_schema = {.format = "+s", .n_children = 2, .children = u_cols},
                          t_computable = {.format = "+s", .n_children = 2, .children = t_cols};

static int print(sp_sql_dialect d, const char *sql, char **out, sp_error *err) {
  static const sp_unparse_table tables[] = {{"t", "\"s\".\"t\"", &t_schema, NULL}, {"u", "\"s\".\"u\"", &u_schema, NULL}};
  static const sp_unparse_table tables_mysql[] = {{"t", "`s`.`t`", &t_schema, NULL}, {"u", "`s`.`u`", &u_schema, NULL}};
  /* SQLite: t's date column is stored as an integer there, so it is not computable. */
  static const sp_unparse_table tables_sqlite[] = {{"t", "\"t\"", &t_computable, &t_schema}, {"u", "\"u\"", &u_schema, &u_schema}};
  sp_unparse_env env = {.dialect = d, .text_collation = "utf8mb4_nopad_bin", .tables = d == SP_DIALECT_MYSQL ? tables_mysql : tables,
                        .n_tables = 2, .strict = d == SP_DIALECT_SQLITE};
  if (d == SP_DIALECT_SQLITE) env.tables = tables_sqlite;
  char *json = NULL;
  assert_int_equal(sp_duckdb_serialize_sql_full(sql, "test", &json, NULL), SP_OK);
  json_t *ast = json_loads(json, 0, NULL);
  free(json);
  assert_non_null(ast);
  json_t *node = json_object_get(json_array_get(json_object_get(ast, "statements"), 0), "node");
  int rc = sp_unparse_query(node, &env, out, err);
  json_decref(ast);
  return rc;
}

static void expect(sp_sql_dialect d, const char *sql, const char *want) {
  char *got = NULL;
  sp_error err = {0};
  int rc = print(d, sql, &got, &err);
  if (rc != SP_OK) fail_msg("%s: %s", sql, err.msg);
  if (strcmp(got, want) != 0) fail_msg("%s\n got: %s\nwant: %s", sql, got, want);
  free(got);
}

static void refused(sp_sql_dialect d, const char *sql, const char *why) {
  char *got = NULL;
  sp_error err = {0};
  int rc = print(d, sql, &got, &err);
  if (rc != SP_ENOTSUP) fail_msg("%s was printed: %s", sql, got ? got : "?");
  if (strstr(err.msg, why) == NULL) fail_msg("%s: reason \"%s\" lacks \"%s\"", sql, err.msg, why);
}

static void postgres_queries(void **state) {
  (void)state;
  expect(SP_DIALECT_POSTGRES, "SELECT name FROM t WHERE name < 'b' ORDER BY name",
         "SELECT \"name\" AS \"name\" FROM \"s\".\"t\" AS \"t\" WHERE ((\"name\") COLLATE \"C\" < ('b') COLLATE \"C\") "
         "ORDER BY (\"name\") COLLATE \"C\" ASC NULLS LAST");
  expect(SP_DIALECT_POSTGRES, "SELECT t.id, sum(v) AS s, count(*) FROM t JOIN u ON t.id = u.id GROUP BY t.id ORDER BY s DESC LIMIT 5",
         "SELECT \"t\".\"id\" AS \"id\", sum(\"v\") AS \"s\", COUNT(*) FROM \"s\".\"t\" AS \"t\" INNER JOIN \"s\".\"u\" AS \"u\" "
         "ON (\"t\".\"id\" = \"u\".\"id\") GROUP BY \"t\".\"id\" ORDER BY sum(\"v\") DESC NULLS LAST LIMIT 5");
  expect(SP_DIALECT_POSTGRES, "SELECT id / 2, d - INTERVAL 3 DAY, 1.50, 2.5e0, 'it''s' FROM t",
         "SELECT (CAST(\"id\" AS DOUBLE PRECISION) / 2), (\"d\" - INTERVAL '3 days'), 1.50, CAST(2.5 AS DOUBLE PRECISION), "
         "'it''s' FROM \"s\".\"t\" AS \"t\"");
  expect(SP_DIALECT_POSTGRES, "WITH w AS (SELECT id FROM u) SELECT count(*) FROM w UNION ALL SELECT 1 ORDER BY 1",
         "WITH \"w\" AS (SELECT \"id\" AS \"id\" FROM \"s\".\"u\" AS \"u\") SELECT * FROM ((SELECT COUNT(*) FROM \"w\") "
         "UNION ALL (SELECT 1)) AS _sp_compound_0 ORDER BY 1 ASC NULLS LAST");
  expect(SP_DIALECT_POSTGRES, "SELECT x.id FROM (SELECT id FROM t) x WHERE x.id IN (SELECT id FROM u) AND EXISTS (SELECT 1 FROM u)",
         "SELECT \"x\".\"id\" AS \"id\" FROM (SELECT \"id\" AS \"id\" FROM \"s\".\"t\" AS \"t\") AS \"x\" WHERE "
         "((\"x\".\"id\" IN (SELECT \"id\" AS \"id\" FROM \"s\".\"u\" AS \"u\")) AND (EXISTS (SELECT 1 FROM \"s\".\"u\" AS \"u\")))");
}

static void other_dialects(void **state) {
  (void)state;
  expect(SP_DIALECT_MYSQL, "SELECT name, count(*) FROM t WHERE name LIKE 'a%' GROUP BY name ORDER BY name",
         "SELECT (`name` COLLATE utf8mb4_nopad_bin) AS `name`, COUNT(*) FROM `s`.`t` AS `t` WHERE "
         "((`name` COLLATE utf8mb4_nopad_bin) LIKE _utf8mb4 X'6125') GROUP BY (`name` COLLATE utf8mb4_nopad_bin) ORDER BY "
         "((`name` COLLATE utf8mb4_nopad_bin) IS NULL) ASC, (`name` COLLATE utf8mb4_nopad_bin) ASC");
  expect(SP_DIALECT_MYSQL, "SELECT avg(id), id || 'x' FROM t LIMIT 2 OFFSET 1",
         "SELECT (CAST(SUM(`id`) AS DOUBLE) / COUNT(`id`)), (CONCAT(`id`, _utf8mb4 X'78')) FROM `s`.`t` AS `t` LIMIT 2 OFFSET 1");
  expect(SP_DIALECT_SQLITE, "SELECT name FROM t WHERE name LIKE 'a_%' ORDER BY 1 DESC",
         "SELECT \"name\" AS \"name\" FROM \"t\" AS \"t\" WHERE (\"name\" GLOB 'a?*') ORDER BY \"name\" DESC NULLS LAST");
  expect(SP_DIALECT_SQLITE, "SELECT t.id AS k, count(*) AS n FROM t JOIN u USING (id) GROUP BY k HAVING avg(v) > 1.5 ORDER BY n",
         "SELECT \"t\".\"id\" AS \"k\", COUNT(*) AS \"n\" FROM \"t\" AS \"t\" INNER JOIN \"u\" AS \"u\" USING (\"id\") GROUP BY \"k\" "
         "HAVING ((CAST(SUM(\"v\") AS REAL) / COUNT(\"v\")) > 1.5) ORDER BY COUNT(*) ASC NULLS LAST");
}

static void refusals(void **state) {
  (void)state;
  refused(SP_DIALECT_POSTGRES, "SELECT id FROM other", "table other is not on this server");
  refused(SP_DIALECT_POSTGRES, "SELECT row_number() OVER () FROM t", "WINDOW");
  refused(SP_DIALECT_POSTGRES, "SELECT md5(name) FROM t", "function md5");
  refused(SP_DIALECT_POSTGRES, "SELECT id FROM t QUALIFY id > 1", "qualify");
  refused(SP_DIALECT_POSTGRES, "SELECT name FROM t WHERE name LIKE 'a\\%'", "backslash");
  refused(SP_DIALECT_POSTGRES, "SELECT * FROM read_csv('x.csv')", "TABLE_FUNCTION");
  refused(SP_DIALECT_MYSQL, "SELECT * FROM t FULL JOIN u ON t.id = u.id", "FULL join");
  refused(SP_DIALECT_MYSQL, "SELECT d + 1 FROM t", "date arithmetic");
  refused(SP_DIALECT_SQLITE, "SELECT extract(year FROM d) FROM t", "date_part in SQLite");
  refused(SP_DIALECT_SQLITE, "SELECT id FROM t WHERE d > 3", "column d is stored differently");
  refused(SP_DIALECT_SQLITE, "SELECT 1 AS d FROM t WHERE d > 3", "column d is stored differently");
  refused(SP_DIALECT_SQLITE, "SELECT * FROM u", "* where some columns");
  refused(SP_DIALECT_SQLITE, "SELECT upper(name) FROM t", "function upper");
  refused(SP_DIALECT_POSTGRES, "SELECT id FROM t GROUP BY ROLLUP (id)", "GROUPING SETS");
  refused(SP_DIALECT_POSTGRES, "SELECT try_cast(name AS INTEGER) FROM t", "TRY_CAST");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(postgres_queries),
      cmocka_unit_test(other_dialects),
      cmocka_unit_test(refusals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
