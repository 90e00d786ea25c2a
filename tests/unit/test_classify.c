/* SPDX-License-Identifier: Apache-2.0
 *
 * The SQL classifier against a real in-memory DuckDB, sandboxed like the serving database (external access
 * off, no extension autoload, configuration locked). Allowed statements are also run, to show that what the
 * classifier lets through is valid SQL that DuckDB executes; refused ones are checked for having had no
 * effect (classification only parses).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "engine/classify.h"

typedef struct fixture {
  duckdb_database db;
  duckdb_connection conn;
  sp_sql_classifier *cls;
  int hook_calls;
} fixture;

#define MSG_READ_ONLY_DS "is read-only: INSERT requires mode: read_write with replication enabled"
#define WHY_DDL "spicec serves read-only SQL; datasets and views are defined in the spicepod"
#define WHY_DML "spicec serves read-only SQL; datasets with mode: read_write accept INSERT only"
#define WHY_DATASETS "queries may read only datasets and views"

/* Writable datasets of the test: "w" and "s.w2" (case-insensitive, as DuckDB names are). */
static bool is_writable(void *ctx, const char *table) {
  fixture *f = ctx;
  f->hook_calls++;
  return strcasecmp(table, "w") == 0 || strcasecmp(table, "main.w") == 0 || strcasecmp(table, "s.w2") == 0;
}

static void run_sql(duckdb_connection conn, const char *sql) {
  duckdb_result res;
  duckdb_state st = duckdb_query(conn, sql, &res);
  if (st == DuckDBError) fail_msg("%s: %s", sql, duckdb_result_error(&res));
  duckdb_destroy_result(&res);
}

static int64_t query_int(duckdb_connection conn, const char *sql) {
  duckdb_result res;
  if (duckdb_query(conn, sql, &res) == DuckDBError) fail_msg("%s: %s", sql, duckdb_result_error(&res));
  int64_t v = duckdb_value_int64(&res, 0, 0);
  duckdb_destroy_result(&res);
  return v;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  duckdb_config config;
  char *open_err = NULL;
  assert_int_equal(duckdb_create_config(&config), DuckDBSuccess);
  duckdb_set_config(config, "autoinstall_known_extensions", "false");
  duckdb_set_config(config, "autoload_known_extensions", "false");
  if (duckdb_open_ext(NULL, &f->db, config, &open_err) == DuckDBError) fail_msg("open: %s", open_err);
  duckdb_destroy_config(&config);
  assert_int_equal(duckdb_connect(f->db, &f->conn), DuckDBSuccess);
  run_sql(f->conn, "CREATE TABLE t(a INTEGER, b VARCHAR);"
                   "INSERT INTO t VALUES (1, 'x'), (2, 'y'), (3, 'z');"
                   "CREATE TABLE w(a INTEGER, b VARCHAR);"
                   "CREATE SCHEMA s; CREATE TABLE s.w2(a INTEGER);"
                   "CREATE VIEW v AS SELECT a, b FROM t WHERE a > 1;"
                   "SET enable_external_access = false; SET lock_configuration = true;");
  sp_error err = {0};
  if (sp_sql_classifier_create(f->conn, &f->cls, &err) != SP_OK) fail_msg("%s", err.msg);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  sp_sql_classifier_destroy(f->cls);
  duckdb_disconnect(&f->conn);
  duckdb_close(&f->db);
  free(f);
  return 0;
}

static int classify(fixture *f, const char *sql, sp_sql_class *out, sp_error *err) {
  sp_error_clear(err);
  return sp_sql_classifier_check(f->cls, sql, is_writable, f, out, err);
}

/* Asserts `sql` is refused with exactly `msg`, and that *out was left alone. */
static void expect_denied(fixture *f, const char *sql, const char *msg) {
  sp_sql_class out;
  sp_error err;
  memset(&out, 0x5a, sizeof out);
  int rc = classify(f, sql, &out, &err);
  if (rc != SP_EDENIED) fail_msg("%s: expected EDENIED, got %s (%s)", sql, sp_status_name(rc), err.msg);
  if (strcmp(err.msg, msg) != 0) fail_msg("%s:\n  got      \"%s\"\n  expected \"%s\"", sql, err.msg, msg);
  assert_int_equal(err.code, SP_EDENIED);
  assert_int_equal(((unsigned char *)&out)[0], 0x5a);
}

static void expect_invalid(fixture *f, const char *sql, const char *msg) {
  sp_sql_class out;
  sp_error err;
  int rc = classify(f, sql, &out, &err);
  if (rc != SP_EINVAL) fail_msg("%s: expected EINVAL, got %s (%s)", sql, sp_status_name(rc), err.msg);
  if (strcmp(err.msg, msg) != 0) fail_msg("%s:\n  got      \"%s\"\n  expected \"%s\"", sql, err.msg, msg);
}

/* Asserts `sql` is an allowed read, and that DuckDB runs it. */
static void expect_read(fixture *f, const char *sql) {
  sp_sql_class out;
  sp_error err;
  int rc = classify(f, sql, &out, &err);
  if (rc != SP_OK) fail_msg("%s: expected OK, got %s (%s)", sql, sp_status_name(rc), err.msg);
  assert_int_equal(out.kind, SP_SQL_READ);
  assert_string_equal(out.target, "");
}

static void expect_read_runs(fixture *f, const char *sql) {
  expect_read(f, sql);
  duckdb_prepared_statement stmt;
  if (duckdb_prepare(f->conn, sql, &stmt) == DuckDBError) fail_msg("%s: %s", sql, duckdb_prepare_error(stmt));
  for (idx_t i = 1; i <= duckdb_nparams(stmt); i++) duckdb_bind_int32(stmt, i, 1);
  duckdb_result res;
  if (duckdb_execute_prepared(stmt, &res) == DuckDBError) fail_msg("%s: %s", sql, duckdb_result_error(&res));
  duckdb_destroy_result(&res);
  duckdb_destroy_prepare(&stmt);
}

/* ---- Allowed ---------------------------------------------------------------------------------------- */

static void test_reads_are_allowed(void **state) {
  fixture *f = *state;
  static const char *const reads[] = {
      "SELECT 1",
      "select * from t order by a",
      "SELECT a, b FROM v",
      "FROM t",
      "TABLE t",
      "VALUES (1, 'a'), (2, 'b')",
      "(SELECT a FROM t)",
      "SELECT t.a, u.b FROM t JOIN t AS u ON t.a = u.a LEFT JOIN v ON v.a = t.a",
      "SELECT * FROM t ASOF JOIN t u ON t.a >= u.a",
      "WITH x AS (SELECT a FROM t), y AS (SELECT a FROM x WHERE a > 1) SELECT count(*) FROM y",
      "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT sum(n) FROM r",
      "SELECT a, row_number() OVER (PARTITION BY b ORDER BY a), sum(a) OVER w FROM t WINDOW w AS (ORDER BY a)",
      "SELECT * FROM t WHERE a IN (SELECT a FROM v) AND EXISTS (SELECT 1 FROM t u WHERE u.a = t.a)",
      "SELECT (SELECT max(a) FROM t) AS m",
      "SELECT * FROM t, LATERAL (SELECT t.a * 2 AS d) l",
      "SELECT a FROM t UNION SELECT a FROM v EXCEPT SELECT 2 INTERSECT SELECT a FROM t",
      "SELECT * FROM range(5) r(x) JOIN generate_series(1, 3) g(y) ON x = y",
      "SELECT unnest([1, 2, 3])",
      "FROM unnest([1, 2]) u(x)",
      "SELECT list_transform([1, 2], x -> x + 1), current_setting('threads')",
      "SELECT * FROM information_schema.tables",
      "SELECT table_name FROM information_schema.columns WHERE table_schema = 'main'",
      "SELECT * FROM duckdb_tables()",
      "SELECT * FROM duckdb_columns() c JOIN duckdb_views() v USING (schema_name)",
      "SELECT * FROM duckdb_schemas()",
      "SELECT * FROM duckdb_tables t JOIN duckdb_columns USING (table_name)",
      "SELECT name, value FROM duckdb_settings() WHERE name = 'threads'",
      "SELECT * FROM t WHERE a = $1",
      "SELECT * FROM t WHERE a = $name",
      "SELECT * FROM t WHERE a = ?",
      "PIVOT t ON b IN ('x', 'y') USING sum(a)",
      "UNPIVOT (SELECT a, a AS c FROM t) ON a, c INTO NAME n VALUE val",
      "DESCRIBE t",
      "DESCRIBE SELECT a FROM t",
      "SHOW TABLES",
      "SHOW ALL TABLES",
      "SUMMARIZE t",
      "EXPLAIN SELECT * FROM t",
      "EXPLAIN ANALYZE SELECT count(*) FROM t JOIN v USING (a)",
      "EXPLAIN (FORMAT json) SELECT 1",
      "EXPLAIN (SELECT a FROM t)",
      "-- a comment\nSELECT 1; -- trailing\n",
      "/* block /* nested */ comment */ SELECT ';' AS semi, $$a;b$$ AS dollar",
      "SELECT 1;",
  };
  for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) expect_read_runs(f, reads[i]);
  /* Allowed by the classifier; the table functions exist only in a running spicec engine. */
  expect_read(f, "SELECT * FROM sp_arrow_scan('trips')");
  expect_read(f, "SELECT * FROM sp_source_scan('orders') WHERE id > 3");
  assert_int_equal(f->hook_calls, 0);
}

static void test_insert_into_writable_dataset(void **state) {
  fixture *f = *state;
  sp_sql_class out;
  sp_error err;
  const char *sql = "INSERT INTO w VALUES (1, 'a')";
  assert_int_equal(classify(f, sql, &out, &err), SP_OK);
  assert_int_equal(out.kind, SP_SQL_INSERT);
  assert_string_equal(out.target, "w");
  assert_string_equal(sql + out.source_offset, "VALUES (1, 'a')");
  assert_int_equal(out.columns_len, 0);
  assert_false(out.by_name);

  sql = "insert into W (a, \"b\") select a, b from t where a > $1";
  assert_int_equal(classify(f, sql, &out, &err), SP_OK);
  assert_string_equal(out.target, "W");
  assert_string_equal(sql + out.source_offset, "select a, b from t where a > $1");
  assert_int_equal(out.columns_len, strlen("(a, \"b\")"));
  assert_memory_equal(sql + out.columns_offset, "(a, \"b\")", out.columns_len);

  sql = "INSERT INTO \"s\".w2 BY NAME SELECT 7 AS a";
  assert_int_equal(classify(f, sql, &out, &err), SP_OK);
  assert_string_equal(out.target, "s.w2");
  assert_true(out.by_name);
  assert_string_equal(sql + out.source_offset, "SELECT 7 AS a");

  sql = "INSERT INTO main.w (SELECT a, b FROM v)";
  assert_int_equal(classify(f, sql, &out, &err), SP_OK);
  assert_string_equal(out.target, "main.w");
  assert_string_equal(sql + out.source_offset, "(SELECT a, b FROM v)");

  sql = "INSERT INTO w /* c /* nested */ */ WITH x AS (SELECT a, b FROM t) SELECT * FROM x";
  assert_int_equal(classify(f, sql, &out, &err), SP_OK);
  assert_string_equal(sql + out.source_offset, "WITH x AS (SELECT a, b FROM t) SELECT * FROM x");

  /* What the classifier accepted is what DuckDB runs: the source query inserts the rows. */
  run_sql(f->conn, sql);
  assert_int_equal(query_int(f->conn, "SELECT count(*) FROM w"), 3);
}

/* ---- Refused statements ---------------------------------------------------------------------------- */

typedef struct refusal_case {
  const char *sql, *msg;
} refusal_case;

static void expect_all_denied(fixture *f, const refusal_case *cases, size_t n) {
  for (size_t i = 0; i < n; i++) expect_denied(f, cases[i].sql, cases[i].msg);
}

static void test_statements_are_refused(void **state) {
  static const refusal_case cases[] = {
      {"COPY t TO 'out.csv'", "COPY is not allowed: spicec serves read-only SQL"},
      {"COPY t FROM '/etc/passwd'", "COPY is not allowed: spicec serves read-only SQL"},
      {"EXPORT DATABASE 'dump'", "EXPORT DATABASE is not allowed: spicec serves read-only SQL"},
      {"IMPORT DATABASE 'dump'", "IMPORT DATABASE is not allowed: spicec serves read-only SQL"},
      {"ATTACH 'other.db' AS o", "ATTACH is not allowed: " WHY_DATASETS},
      {"DETACH o", "DETACH is not allowed: " WHY_DATASETS},
      {"USE memory", "USE is not allowed: " WHY_DATASETS},
      {"SET threads = 1", "SET is not allowed: the engine configuration is locked"},
      {"SET VARIABLE x = 1", "SET is not allowed: the engine configuration is locked"},
      {"RESET threads", "RESET is not allowed: the engine configuration is locked"},
      {"PRAGMA version", "PRAGMA is not allowed: spicec serves read-only SQL"},
      {"PRAGMA show_tables", "PRAGMA is not allowed: spicec serves read-only SQL"},
      {"INSTALL httpfs", "INSTALL is not allowed: extensions cannot be installed or loaded"},
      {"FORCE INSTALL httpfs", "INSTALL is not allowed: extensions cannot be installed or loaded"},
      {"LOAD httpfs", "LOAD is not allowed: extensions cannot be installed or loaded"},
      {"CALL range(3)", "CALL is not allowed: spicec serves read-only SQL"},
      {"CHECKPOINT", "CHECKPOINT is not allowed: spicec serves read-only SQL"},
      {"FORCE CHECKPOINT", "CHECKPOINT is not allowed: spicec serves read-only SQL"},
      {"VACUUM", "VACUUM is not allowed: spicec serves read-only SQL"},
      {"ANALYZE t", "ANALYZE is not allowed: spicec serves read-only SQL"},
      {"BEGIN", "BEGIN is not allowed: each request runs in its own transaction"},
      {"BEGIN TRANSACTION", "BEGIN is not allowed: each request runs in its own transaction"},
      {"START TRANSACTION", "START TRANSACTION is not allowed: each request runs in its own transaction"},
      {"COMMIT", "COMMIT is not allowed: each request runs in its own transaction"},
      {"ROLLBACK", "ROLLBACK is not allowed: each request runs in its own transaction"},
      {"PREPARE p AS SELECT 1", "PREPARE is not allowed: send query parameters ($1, $name) with the request instead"},
      {"EXECUTE p", "EXECUTE is not allowed: send query parameters ($1, $name) with the request instead"},
      {"DEALLOCATE p", "DEALLOCATE is not allowed: send query parameters ($1, $name) with the request instead"},
      {"CREATE TABLE x (a INTEGER)", "CREATE TABLE is not allowed: " WHY_DDL},
      {"CREATE TABLE x AS SELECT * FROM t", "CREATE TABLE is not allowed: " WHY_DDL},
      {"CREATE OR REPLACE TEMP VIEW x AS SELECT 1", "CREATE VIEW is not allowed: " WHY_DDL},
      {"CREATE MACRO m(x) AS x + 1", "CREATE MACRO is not allowed: " WHY_DDL},
      {"CREATE FUNCTION m(x) AS x + 1", "CREATE FUNCTION is not allowed: " WHY_DDL},
      {"CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET 's')", "CREATE SECRET is not allowed: " WHY_DDL},
      {"CREATE PERSISTENT SECRET s (TYPE s3)", "CREATE SECRET is not allowed: " WHY_DDL},
      {"CREATE TYPE mood AS ENUM ('ok')", "CREATE TYPE is not allowed: " WHY_DDL},
      {"CREATE SEQUENCE seq", "CREATE SEQUENCE is not allowed: " WHY_DDL},
      {"CREATE UNIQUE INDEX i ON t (a)", "CREATE INDEX is not allowed: " WHY_DDL},
      {"CREATE SCHEMA x", "CREATE SCHEMA is not allowed: " WHY_DDL},
      {"DROP TABLE t", "DROP TABLE is not allowed: " WHY_DDL},
      {"DROP VIEW v", "DROP VIEW is not allowed: " WHY_DDL},
      {"DROP SECRET s", "DROP SECRET is not allowed: " WHY_DDL},
      {"ALTER TABLE t ADD COLUMN c INTEGER", "ALTER TABLE is not allowed: " WHY_DDL},
      {"ALTER VIEW v RENAME TO v2", "ALTER VIEW is not allowed: " WHY_DDL},
      {"COMMENT ON TABLE t IS 'x'", "COMMENT ON is not allowed: " WHY_DDL},
      {"UPDATE t SET a = 0", "UPDATE is not allowed: " WHY_DML},
      {"UPDATE w SET a = 0", "UPDATE is not allowed: " WHY_DML},
      {"DELETE FROM t", "DELETE is not allowed: " WHY_DML},
      {"WITH x AS (SELECT 1) DELETE FROM t", "DELETE is not allowed: " WHY_DML},
      {"MERGE INTO t USING w ON t.a = w.a WHEN MATCHED THEN DELETE", "MERGE is not allowed: " WHY_DML},
      {"TRUNCATE t", "TRUNCATE is not allowed: " WHY_DML},
      {"PIVOT t ON b USING sum(a)",
       "PIVOT without an IN list is not allowed: it would create a type; list the values, as in PIVOT t ON c "
       "IN ('a', 'b') USING sum(x)"},
      {"EXPLAIN COPY t TO 'x.csv'", "COPY is not allowed: spicec serves read-only SQL"},
      {"EXPLAIN ANALYZE INSERT INTO w VALUES (1, 'a')", "EXPLAIN is allowed only for queries"},
      {"EXPLAIN CREATE TABLE x (a INTEGER)", "EXPLAIN is allowed only for queries"},
  };
  expect_all_denied(*state, cases, sizeof cases / sizeof cases[0]);
}

static void test_multiple_statements_are_refused(void **state) {
  static const refusal_case cases[] = {
      {"SELECT 1; SELECT 2", "multiple statements are not allowed in one request"},
      {"SELECT 1; DROP TABLE t", "multiple statements are not allowed in one request"},
      {"DROP TABLE t; SELECT 1", "multiple statements are not allowed in one request"},
      {"SELECT * FROM t; COPY t TO 'x.csv'", "multiple statements are not allowed in one request"},
      {"INSERT INTO w VALUES (1, 'a'); SELECT 1", "multiple statements are not allowed in one request"},
      {"INSERT INTO w VALUES (1, 'a'); DELETE FROM w", "multiple statements are not allowed in one request"},
      {"EXPLAIN SELECT 1; SELECT 2", "multiple statements are not allowed in one request"},
  };
  expect_all_denied(*state, cases, sizeof cases / sizeof cases[0]);
}

static void test_file_and_network_functions_are_refused(void **state) {
#define TF(name) "table function \"" name "\" is not allowed: " WHY_DATASETS
  static const refusal_case cases[] = {
      {"SELECT * FROM read_csv('/etc/passwd')", TF("read_csv")},
      {"SELECT * FROM read_csv_auto('x.csv')", TF("read_csv_auto")},
      {"SELECT * FROM READ_PARQUET('x.parquet')", TF("read_parquet")},
      {"SELECT * FROM \"Parquet_Scan\"('x.parquet')", TF("parquet_scan")},
      {"SELECT * FROM parquet_metadata('x.parquet')", TF("parquet_metadata")},
      {"SELECT * FROM parquet_schema('x.parquet')", TF("parquet_schema")},
      {"SELECT * FROM read_json('x.json')", TF("read_json")},
      {"SELECT * FROM read_json_auto('x.json')", TF("read_json_auto")},
      {"SELECT * FROM read_ndjson_objects('x.json')", TF("read_ndjson_objects")},
      {"SELECT * FROM read_text('/etc/passwd')", TF("read_text")},
      {"SELECT * FROM read_blob('/etc/passwd')", TF("read_blob")},
      {"SELECT * FROM glob('/*')", TF("glob")},
      {"SELECT * FROM sqlite_scan('x.db', 't')", TF("sqlite_scan")},
      {"SELECT * FROM postgres_scan('host=x', 'public', 't')", TF("postgres_scan")},
      {"SELECT * FROM iceberg_scan('s3://b/t')", TF("iceberg_scan")},
      {"SELECT * FROM delta_scan('s3://b/t')", TF("delta_scan")},
      {"SELECT * FROM query('SELECT 1')", TF("query")},
      {"SELECT * FROM query_table('t')", TF("query_table")},
      {"SELECT * FROM duckdb_secrets()", TF("duckdb_secrets")},
      {"SELECT * FROM duckdb_databases()", TF("duckdb_databases")},
      {"SELECT * FROM duckdb_extensions()", TF("duckdb_extensions")},
      {"SELECT * FROM pragma_table_info('t')", TF("pragma_table_info")},
      {"SELECT * FROM sp_stream(42)", TF("sp_stream")},
      {"SELECT * FROM json_execute_serialized_sql('{}')", TF("json_execute_serialized_sql")},
      {"SELECT * FROM arrow_scan(0, 0, 0)", TF("arrow_scan")},
      {"SELECT * FROM duckdb_logs_parsed('x')", TF("duckdb_logs_parsed")},
      {"SELECT * FROM duckdb_databases", "table \"duckdb_databases\" is not allowed: " WHY_DATASETS},
      {"SELECT * FROM main.pragma_database_list", "table \"pragma_database_list\" is not allowed: " WHY_DATASETS},
      {"SELECT * FROM duckdb_logs", "table \"duckdb_logs\" is not allowed: " WHY_DATASETS},
      {"SELECT * FROM system.main.read_csv('x.csv')", TF("read_csv")},
      /* Everywhere in the statement. */
      {"WITH x AS (SELECT * FROM read_csv('x.csv')) SELECT * FROM x", TF("read_csv")},
      {"SELECT * FROM t JOIN read_parquet('x.parquet') p ON p.a = t.a", TF("read_parquet")},
      {"SELECT * FROM t, LATERAL (SELECT * FROM read_text('/etc/passwd')) l", TF("read_text")},
      {"SELECT a FROM t UNION ALL SELECT * FROM glob('*')", TF("glob")},
      {"SELECT * FROM t WHERE b IN (SELECT content FROM read_text('/etc/passwd'))", TF("read_text")},
      {"SELECT (SELECT count(*) FROM read_csv('x.csv')) AS n", TF("read_csv")},
      {"SELECT * FROM range((SELECT count(*) FROM read_csv('x.csv')))", TF("read_csv")},
      {"SELECT a, sum(a) OVER (ORDER BY (SELECT 1 FROM glob('*'))) FROM t", TF("glob")},
      {"SELECT * FROM (SELECT * FROM (SELECT * FROM read_json('x.json')))", TF("read_json")},
      {"EXPLAIN SELECT * FROM read_csv('x.csv')", TF("read_csv")},
      {"EXPLAIN ANALYZE SELECT * FROM glob('*')", TF("glob")},
      {"DESCRIBE SELECT * FROM read_csv('x.csv')", TF("read_csv")},
      {"INSERT INTO w SELECT * FROM read_csv('x.csv')", TF("read_csv")},
      {"INSERT INTO w SELECT a, b FROM t WHERE a IN (SELECT 1 FROM glob('*'))", TF("glob")},
      /* Replacement scans: a quoted path as a table. */
      {"SELECT * FROM 'x.csv'", "reading files is not allowed: \"x.csv\" is not a dataset; " WHY_DATASETS},
      {"FROM 'data/trips.parquet'",
       "reading files is not allowed: \"data/trips.parquet\" is not a dataset; " WHY_DATASETS},
      {"SELECT * FROM \"/etc/passwd\"", "reading files is not allowed: \"/etc/passwd\" is not a dataset; " WHY_DATASETS},
      {"SELECT * FROM t, 's3://bucket/key.json'",
       "reading files is not allowed: \"s3://bucket/key.json\" is not a dataset; " WHY_DATASETS},
      {"SELECT * FROM 'https://example.com/x'",
       "reading files is not allowed: \"https://example.com/x\" is not a dataset; " WHY_DATASETS},
      {"SELECT * FROM 'logs/*.ndjson'", "reading files is not allowed: \"logs/*.ndjson\" is not a dataset; " WHY_DATASETS},
      {"SUMMARIZE 'x.parquet'", "reading files is not allowed: \"x.parquet\" is not a dataset; " WHY_DATASETS},
      {"DESCRIBE 'x.csv.gz'", "reading files is not allowed: \"x.csv.gz\" is not a dataset; " WHY_DATASETS},
      {"INSERT INTO w SELECT * FROM 'x.csv'", "reading files is not allowed: \"x.csv\" is not a dataset; " WHY_DATASETS},
      /* Scalar functions that reach outside. */
      {"SELECT getenv('HOME')", "function \"getenv\" is not allowed: it reads the server's environment"},
      {"SELECT a FROM t WHERE b = getenv('USER')", "function \"getenv\" is not allowed: it reads the server's environment"},
      {"SELECT list_transform(['HOME'], x -> getenv(x))",
       "function \"getenv\" is not allowed: it reads the server's environment"},
      {"SELECT which_secret('s3://b/k', 's3')", "function \"which_secret\" is not allowed: it reveals the server's secrets"},
      {"SELECT nextval('seq')", "function \"nextval\" is not allowed: it changes a sequence"},
      {"SELECT sqlite_version()", "function \"sqlite_version\" is not allowed: it reaches outside the query"},
      {"INSERT INTO w VALUES (1, getenv('HOME'))", "function \"getenv\" is not allowed: it reads the server's environment"},
  };
#undef TF
  expect_all_denied(*state, cases, sizeof cases / sizeof cases[0]);
}

static void test_insert_refusals(void **state) {
  fixture *f = *state;
  static const refusal_case cases[] = {
      {"INSERT INTO t VALUES (4, 'q')", "dataset \"t\" " MSG_READ_ONLY_DS},
      {"INSERT INTO v SELECT * FROM t", "dataset \"v\" " MSG_READ_ONLY_DS},
      {"INSERT INTO s.t VALUES (1)", "dataset \"s.t\" " MSG_READ_ONLY_DS},
      {"INSERT INTO \"My Table\" VALUES (1)", "dataset \"My Table\" " MSG_READ_ONLY_DS},
      {"INSERT INTO \"s.w2\" VALUES (1)",
       "table name \"s.w2\" has a dot inside quotes: quote schema and table apart (\"s\".\"t\")"},
      {"INSERT OR REPLACE INTO w VALUES (1, 'a')",
       "this form of INSERT is not allowed: write INSERT INTO <dataset> [(columns)] <query> (OR REPLACE, ON "
       "CONFLICT, RETURNING and DEFAULT VALUES are not supported)"},
      {"INSERT INTO w VALUES (1, 'a') RETURNING *",
       "this form of INSERT is not allowed: write INSERT INTO <dataset> [(columns)] <query> (OR REPLACE, ON "
       "CONFLICT, RETURNING and DEFAULT VALUES are not supported)"},
      {"INSERT INTO w VALUES (1, 'a') RETURNING (SELECT content FROM read_text('/etc/passwd'))",
       "this form of INSERT is not allowed: write INSERT INTO <dataset> [(columns)] <query> (OR REPLACE, ON "
       "CONFLICT, RETURNING and DEFAULT VALUES are not supported)"},
      {"INSERT INTO w VALUES (1, 'a') ON CONFLICT DO NOTHING",
       "this form of INSERT is not allowed: write INSERT INTO <dataset> [(columns)] <query> (OR REPLACE, ON "
       "CONFLICT, RETURNING and DEFAULT VALUES are not supported)"},
      {"INSERT INTO w DEFAULT VALUES",
       "this form of INSERT is not allowed: write INSERT INTO <dataset> [(columns)] <query> (OR REPLACE, ON "
       "CONFLICT, RETURNING and DEFAULT VALUES are not supported)"},
      {"WITH x AS (SELECT 1, 'a') INSERT INTO w SELECT * FROM x",
       "INSERT after a WITH clause is not allowed: write INSERT INTO <dataset> WITH ... SELECT ... instead"},
  };
  expect_all_denied(f, cases, sizeof cases / sizeof cases[0]);
  assert_int_equal(f->hook_calls, 4);

  /* Without a hook nothing is writable. */
  sp_sql_class out;
  sp_error err;
  assert_int_equal(sp_sql_classifier_check(f->cls, "INSERT INTO w VALUES (1, 'a')", NULL, NULL, &out, &err),
                   SP_EDENIED);
  assert_string_equal(err.msg, "dataset \"w\" " MSG_READ_ONLY_DS);
}

/* ---- Syntax errors and odd input ---------------------------------------------------------------------- */

static void test_syntax_errors(void **state) {
  fixture *f = *state;
  expect_invalid(f, "SELEC 1", "Parser Error: syntax error at or near \"SELEC\"");
  expect_invalid(f, "SELECT * FROM", "Parser Error: syntax error at end of input");
  expect_invalid(f, "SELECT 'abc", "Parser Error: unterminated quoted string at or near \"'abc\"");
  expect_invalid(f, "SELECT 1; SELEC 2", "Parser Error: syntax error at or near \"SELEC\"");
  expect_invalid(f, "DROP TABLE", "Parser Error: syntax error at end of input");
  expect_invalid(f, "INSERT INTO w VALUES (1, 'a'), (2", "Parser Error: syntax error at end of input");
  expect_invalid(f, "INSERT INTO select VALUES (1)", "Parser Error: syntax error at or near \"select\"");
  expect_invalid(f, "INSERT INTO w", "Parser Error: syntax error at end of input");
  expect_invalid(f, "EXPLAIN", "Parser Error: syntax error at end of input");
  expect_invalid(f, "", "no SQL statement in the request");
  expect_invalid(f, " ; -- nothing\n", "no SQL statement in the request");
  expect_invalid(f, "SELECT '\xff'", "the SQL text is not valid UTF-8");

  sp_sql_class out;
  sp_error err;
  assert_int_equal(sp_sql_classifier_check(f->cls, NULL, NULL, NULL, &out, &err), SP_EINVAL);
  assert_int_equal(sp_sql_classifier_check(f->cls, "SELEC 1", NULL, NULL, &out, NULL), SP_EINVAL);
}

/* Classification only parses: refused statements leave the database as it was. */
static void test_refused_statements_have_no_effect(void **state) {
  fixture *f = *state;
  char dir[] = "/tmp/sp_classify_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/schema.sql", dir);
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs("CREATE TABLE imported (a INTEGER);\n", fp);
  fclose(fp);
  snprintf(path, sizeof path, "%s/load.sql", dir);
  fp = fopen(path, "w");
  assert_non_null(fp);
  fclose(fp);

  char sql[512];
  snprintf(sql, sizeof sql, "IMPORT DATABASE '%s'", dir);
  expect_denied(f, sql, "IMPORT DATABASE is not allowed: spicec serves read-only SQL");
  expect_denied(f, "CREATE TABLE created (a INTEGER)", "CREATE TABLE is not allowed: " WHY_DDL);
  expect_denied(f, "ATTACH ':memory:' AS other", "ATTACH is not allowed: " WHY_DATASETS);
  expect_denied(f, "DELETE FROM t", "DELETE is not allowed: " WHY_DML);
  expect_denied(f, "BEGIN", "BEGIN is not allowed: each request runs in its own transaction");
  assert_int_equal(query_int(f->conn, "SELECT count(*) FROM duckdb_tables() WHERE table_name IN ('imported', 'created')"),
                   0);
  assert_int_equal(query_int(f->conn, "SELECT count(*) FROM duckdb_databases() WHERE database_name = 'other'"), 0);
  assert_int_equal(query_int(f->conn, "SELECT count(*) FROM t"), 3);
  run_sql(f->conn, "SELECT 1"); /* still in auto-commit: BEGIN did not run */

  snprintf(path, sizeof path, "%s/schema.sql", dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/load.sql", dir);
  unlink(path);
  rmdir(dir);
}

static void test_one_shot_classify(void **state) {
  fixture *f = *state;
  sp_sql_class out;
  sp_error err;
  assert_int_equal(sp_sql_classify(f->conn, "SELECT count(*) FROM v", NULL, NULL, &out, &err), SP_OK);
  assert_int_equal(out.kind, SP_SQL_READ);
  assert_int_equal(sp_sql_classify(f->conn, "INSERT INTO s.w2 VALUES (1)", is_writable, f, &out, &err), SP_OK);
  assert_int_equal(out.kind, SP_SQL_INSERT);
  assert_string_equal(out.target, "s.w2");
  assert_int_equal(sp_sql_classify(f->conn, "COPY t TO 'x'", NULL, NULL, &out, &err), SP_EDENIED);
  assert_string_equal(err.msg, "COPY is not allowed: spicec serves read-only SQL");
  sp_sql_classifier_destroy(NULL);
}

/* The classifier re-prepares its serializer every thousand runs (duckdb/duckdb#21089); results stay right
 * across renewals. */
static void test_classifier_survives_renewals(void **state) {
  fixture *f = *state;
  for (int i = 0; i < 2500; i++) {
    sp_sql_class out;
    sp_error err;
    if (i % 2 == 0) {
      assert_int_equal(classify(f, "SELECT * FROM t JOIN v USING (a)", &out, &err), SP_OK);
      assert_int_equal(out.kind, SP_SQL_READ);
    } else {
      assert_int_equal(classify(f, "SELECT * FROM read_csv('x.csv')", &out, &err), SP_EDENIED);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_reads_are_allowed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_insert_into_writable_dataset, setup, teardown),
      cmocka_unit_test_setup_teardown(test_statements_are_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_multiple_statements_are_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_and_network_functions_are_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_insert_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_syntax_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused_statements_have_no_effect, setup, teardown),
      cmocka_unit_test_setup_teardown(test_one_shot_classify, setup, teardown),
      cmocka_unit_test_setup_teardown(test_classifier_survives_renewals, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
