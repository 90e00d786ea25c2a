/* SPDX-License-Identifier: Apache-2.0
 *
 * The sqlite connector on real database files: type mapping from declared types, values that do not fit
 * their column, batches, projection / filter / limit pushdown (rows produced counted at the connector),
 * read-only opening, write-back in read_write mode, and the errors for a missing file or table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accelerators/sqlite_arrow.h"
#include "spice/arrow.h"
#include "spice/connector.h"
#include "spice/log.h"
#include "capture.h"

extern const sp_connector_module sp_connector_sqlite;

static char dir[256], db_path[300];

static void sql(const char *text) {
  sqlite3 *db;
  char *msg = NULL;
  assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
  if (sqlite3_exec(db, text, NULL, NULL, &msg) != SQLITE_OK) fail_msg("%s: %s", text, msg);
  sqlite3_close(db);
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/sp_sqlite_XXXXXX");
  assert_non_null(mkdtemp(dir));
  snprintf(db_path, sizeof db_path, "%s/src.db", dir);
  sql("CREATE TABLE types (i INTEGER, r REAL, t TEXT, b BLOB, d DECIMAL(10,2), dt DATE, ts DATETIME, flag BOOLEAN, "
      "v VARCHAR(20), anything);"
      "INSERT INTO types VALUES (42, 1.5, 'héllo ✓', x'00ff', 12.34, '2024-02-29', '2024-01-02 03:04:05.5', 1, 'x', 7);"
      "INSERT INTO types VALUES (-7, NULL, '', x'', '-0.5', '1970-01-01', '2024-01-02T03:04:05Z', 0, NULL, 'text');"
      "INSERT INTO types VALUES (NULL, 2, NULL, NULL, NULL, NULL, 1700000000, 'true', 'y', NULL);"
      "CREATE TABLE big (id INTEGER PRIMARY KEY, name TEXT, name_ci TEXT COLLATE NOCASE, x REAL);"
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 150000) "
      "INSERT INTO big SELECT i, 'n' || i, 'N' || i, i * 0.5 FROM n;"
      "CREATE TABLE bad (id INTEGER, n INTEGER); INSERT INTO bad VALUES (1, 10), (2, 'abc'), (3, 30);"
      "CREATE VIEW big_view AS SELECT id, name FROM big WHERE id <= 10;");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd);
}

typedef struct opened {
  sp_dataset_spec spec;
  sp_connector *conn;
} opened;

/* Opens `sqlite:<table>` with params "k", "v", … (NULL-terminated; sqlite_file defaults to the fixture). */
static int open_table(opened *o, const char *table, sp_dataset_mode mode, const char *const *kv, sp_error *err) {
  memset(o, 0, sizeof *o);
  o->spec.name = "ds";
  o->spec.connector = "sqlite";
  o->spec.path = (char *)table;
  o->spec.mode = mode;
  sp_params raw = {0};
  int has_file = 0;
  for (size_t i = 0; kv && kv[i]; i += 2) {
    sp_params_set(&raw, kv[i], kv[i + 1], 0, 0);
    has_file |= strcmp(kv[i], "sqlite_file") == 0;
  }
  if (!has_file) sp_params_set(&raw, "sqlite_file", db_path, 0, 0);
  int rc = sp_connector_instance_create(&sp_connector_sqlite, &o->spec, &raw, NULL, NULL, &o->conn, err);
  sp_params_free(&raw);
  return rc;
}

static void close_table(opened *o) {
  sp_connector_instance_close(o->conn);
}

/* Drains a stream: rows, batches; the first batch kept in *first (release it) when first is not NULL. */
static int64_t drain(struct ArrowArrayStream *s, int *batches, struct ArrowArray *first, char *error, size_t n) {
  int64_t rows = 0;
  int k = 0;
  for (;;) {
    struct ArrowArray a;
    if (s->get_next(s, &a) != 0) {
      snprintf(error, n, "%s", s->get_last_error(s));
      rows = -1;
      break;
    }
    if (a.release == NULL) break;
    rows += a.length;
    if (k++ == 0 && first) *first = a;
    else a.release(&a);
  }
  if (batches) *batches = k;
  s->release(s);
  return rows;
}

static const char *text_at(const struct ArrowArray *a, int64_t i, int *len) {
  const int32_t *off = a->buffers[1];
  *len = off[i + 1] - off[i];
  return (const char *)a->buffers[2] + off[i];
}

static void test_types(void **state) {
  (void)state;
  opened o;
  sp_error err = {0};
  assert_int_equal(open_table(&o, "types", SP_MODE_READ, NULL, &err), SP_OK);
  struct ArrowSchema schema;
  assert_int_equal(sp_connector_sqlite.get_schema(o.conn, &schema, &err), SP_OK);
  const char *formats[] = {"l", "g", "u", "z", "d:10,2", "tdD", "tsu:", "b", "u", "u"};
  assert_int_equal(schema.n_children, 10);
  for (int i = 0; i < 10; i++) assert_string_equal(schema.children[i]->format, formats[i]);
  schema.release(&schema);

  struct ArrowArrayStream s;
  struct ArrowArray a;
  char msg[1024] = "";
  assert_int_equal(sp_connector_sqlite.get_all_data(o.conn, &s, &err), SP_OK);
  assert_int_equal(drain(&s, NULL, &a, msg, sizeof msg), 3);
  const int64_t *i = a.children[0]->buffers[1];
  assert_int_equal(i[0], 42);
  assert_int_equal(i[1], -7);
  assert_true(sp_array_is_null(a.children[0], 2));
  const double *r = a.children[1]->buffers[1];
  assert_true(r[0] == 1.5 && r[2] == 2.0);
  assert_true(sp_array_is_null(a.children[1], 1));
  int len;
  const char *t = text_at(a.children[2], 0, &len);
  assert_int_equal(len, (int)strlen("héllo ✓"));
  assert_memory_equal(t, "héllo ✓", len);
  text_at(a.children[3], 0, &len);
  assert_int_equal(len, 2);
  const int64_t *dec = a.children[4]->buffers[1]; /* decimal128: low halves at even indexes */
  assert_int_equal(dec[0], 1234);
  assert_int_equal(dec[2], -50);
  const int32_t *days = a.children[5]->buffers[1];
  assert_int_equal(days[0], 19782);
  assert_int_equal(days[1], 0);
  const int64_t *ts = a.children[6]->buffers[1];
  assert_int_equal(ts[0], INT64_C(1704164645500000));
  assert_int_equal(ts[1], INT64_C(1704164645000000));
  assert_int_equal(ts[2], INT64_C(1700000000000000));
  const uint8_t *flags = a.children[7]->buffers[1];
  assert_int_equal(flags[0] & 7, 1 | 4); /* 1, 0, 'true' */
  t = text_at(a.children[9], 0, &len);
  assert_memory_equal(t, "7", 1); /* an untyped column reads every value as text */
  a.release(&a);
  close_table(&o);
}

static void test_batches_and_pushdown(void **state) {
  (void)state;
  opened o;
  sp_error err = {0};
  char msg[1024] = "";
  int batches = 0;
  struct ArrowArrayStream s;
  assert_int_equal(open_table(&o, "big", SP_MODE_READ, NULL, &err), SP_OK);
  assert_int_equal(sp_connector_sqlite.get_all_data(o.conn, &s, &err), SP_OK);
  assert_int_equal(drain(&s, &batches, NULL, msg, sizeof msg), 150000);
  assert_int_equal(batches, 3); /* 65536-row batches */

  /* A filter that selects one row reads one row from SQLite. */
  const char *cols[] = {"name"};
  sp_scan scan = {.columns = cols, .n_columns = 1, .limit = -1, .filter_query = "SELECT * FROM ds WHERE id = 4242"};
  struct ArrowArray a;
  assert_int_equal(sp_connector_sqlite.scan(o.conn, &scan, &s, &err), SP_OK);
  assert_int_equal(drain(&s, NULL, &a, msg, sizeof msg), 1);
  assert_int_equal(a.n_children, 1);
  int len;
  const char *t = text_at(a.children[0], 0, &len);
  assert_int_equal(len, 5);
  assert_memory_equal(t, "n4242", 5);
  a.release(&a);
  /* Ranges, OR, strings, doubles, IS NULL. */
  scan.filter_query = "SELECT * FROM ds WHERE (id > 10 AND id <= 20 OR name = 'n99') AND x >= 5.5 AND name IS NOT NULL";
  assert_int_equal(sp_connector_sqlite.scan(o.conn, &scan, &s, &err), SP_OK);
  assert_int_equal(drain(&s, NULL, NULL, msg, sizeof msg), 11);
  /* A NOCASE column compares differently in SQLite: not pushed, every row comes back for the engine. */
  scan.filter_query = "SELECT * FROM ds WHERE name_ci = 'n5'";
  assert_int_equal(sp_connector_sqlite.scan(o.conn, &scan, &s, &err), SP_OK);
  assert_int_equal(drain(&s, NULL, NULL, msg, sizeof msg), 150000);
  /* A function does not translate: not pushed either. */
  scan.filter_query = "SELECT * FROM ds WHERE lower(name) = 'n5'";
  assert_int_equal(sp_connector_sqlite.scan(o.conn, &scan, &s, &err), SP_OK);
  assert_int_equal(drain(&s, NULL, NULL, msg, sizeof msg), 150000);
  /* LIMIT, and no column at all (count(*)). */
  sp_scan lim = {.limit = 7};
  assert_int_equal(sp_connector_sqlite.scan(o.conn, &lim, &s, &err), SP_OK);
  assert_int_equal(drain(&s, NULL, NULL, msg, sizeof msg), 7);
  const char *none[] = {NULL};
  sp_scan count = {.columns = none, .n_columns = 0, .limit = -1, .filter_query = "SELECT * FROM ds WHERE id < 100"};
  assert_int_equal(sp_connector_sqlite.scan(o.conn, &count, &s, &err), SP_OK);
  assert_int_equal(drain(&s, NULL, NULL, msg, sizeof msg), 99);
  /* refresh_sql runs at the source. */
  sp_scan refresh = {.limit = -1, .query = "SELECT * FROM ds WHERE id >= 149990"};
  assert_int_equal(sp_connector_sqlite.scan(o.conn, &refresh, &s, &err), SP_OK);
  assert_int_equal(drain(&s, NULL, NULL, msg, sizeof msg), 11);
  close_table(&o);

  assert_int_equal(open_table(&o, "big_view", SP_MODE_READ, NULL, &err), SP_OK);
  assert_int_equal(sp_connector_sqlite.get_all_data(o.conn, &s, &err), SP_OK);
  assert_int_equal(drain(&s, NULL, NULL, msg, sizeof msg), 10);
  close_table(&o);
}

static void test_misfit_values(void **state) {
  (void)state;
  opened o;
  sp_error err = {0};
  char msg[1024] = "";
  struct ArrowArrayStream s;
  assert_int_equal(open_table(&o, "bad", SP_MODE_READ, NULL, &err), SP_OK);
  assert_int_equal(sp_connector_sqlite.get_all_data(o.conn, &s, &err), SP_OK);
  assert_int_equal(drain(&s, NULL, NULL, msg, sizeof msg), -1);
  assert_non_null(strstr(msg, "sqlite table \"bad\" for dataset \"ds\""));
  assert_non_null(strstr(msg, "column \"n\" (INTEGER) row 2 holds abc"));
  close_table(&o);

  const char *warn[] = {"unsupported_type_action", "warn", NULL};
  assert_int_equal(open_table(&o, "bad", SP_MODE_READ, warn, &err), SP_OK);
  assert_int_equal(sp_connector_sqlite.get_all_data(o.conn, &s, &err), SP_OK);
  capture c;
  capture_begin(&c);
  struct ArrowArray a;
  assert_int_equal(drain(&s, NULL, &a, msg, sizeof msg), 3);
  char *log = capture_end(&c);
  assert_non_null(strstr(log, "read as NULL"));
  free(log);
  assert_true(sp_array_is_null(a.children[1], 1));
  assert_false(sp_array_is_null(a.children[1], 2));
  a.release(&a);
  close_table(&o);
}

static void test_errors(void **state) {
  (void)state;
  opened o;
  sp_error err = {0};
  char missing[400];
  snprintf(missing, sizeof missing, "%s/nope.db", dir);
  const char *kv[] = {"sqlite_file", missing, NULL};
  assert_int_equal(open_table(&o, "types", SP_MODE_READ, kv, &err), SP_ENOTFOUND);
  assert_non_null(strstr(err.msg, "nope.db"));
  assert_non_null(strstr(err.msg, "dataset \"ds\""));
  assert_int_equal(access(missing, F_OK), -1); /* not created */
  assert_int_equal(open_table(&o, "no_such", SP_MODE_READ, NULL, &err), SP_ENOTFOUND);
  assert_non_null(strstr(err.msg, "sqlite table \"no_such\" does not exist"));
  const char *nofile[] = {"busy_timeout", "1s", NULL};
  sp_params raw = {0}, out = {0};
  sp_params_set(&raw, nofile[0], nofile[1], 0, 0);
  assert_int_equal(sp_params_validate(sp_connector_sqlite.params, "sqlite", &raw, NULL, "dataset \"ds\"", &out, &err), SP_EINVAL);
  assert_non_null(strstr(err.msg, "sqlite_file"));
  sp_params_free(&raw);
}

static void close_db(void *ctx, sqlite3 *db) {
  (void)ctx;
  sqlite3_close(db);
}

/* Rows to write, (id, name), read from an in-memory database by the same reader the connector uses. */
static void one_row_stream(struct ArrowArrayStream *out, int64_t id, const char *name) {
  sqlite3 *db;
  char q[200];
  snprintf(q, sizeof q, "SELECT %lld, '%s'", (long long)id, name);
  assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
  sqa_column cols[2] = {{.name = "id", .decl = "", .format = "l", .kind = SQA_INT, .width = 8},
                        {.name = "name", .decl = "", .format = "u", .kind = SQA_TEXT}};
  sqa_read_opts o = {.dataset = "rows", .table = "rows", .done = close_db};
  assert_int_equal(sqa_read(db, q, cols, 2, &o, out, NULL), SP_OK);
}

static int64_t count_rows(const char *table) {
  sqlite3 *db;
  sqlite3_stmt *st;
  char q[200];
  snprintf(q, sizeof q, "SELECT count(*) FROM %s", table);
  assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  int64_t n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

static void test_read_only_and_write_back(void **state) {
  (void)state;
  sql("CREATE TABLE w (id INTEGER, name TEXT); INSERT INTO w VALUES (1, 'a');");
  opened o;
  sp_error err = {0};
  /* Read mode: no writes offered, and the connection itself is read-only. */
  assert_int_equal(open_table(&o, "w", SP_MODE_READ, NULL, &err), SP_OK);
  assert_false(sp_connector_sqlite.supports_writes(o.conn));
  sp_data_update u = {.type = SP_UPDATE_APPEND};
  one_row_stream(&u.stream, 2, "b");
  assert_int_equal(sp_connector_sqlite.add_data(o.conn, &u, &err), SP_EDENIED);
  assert_non_null(strstr(err.msg, "readonly"));
  assert_int_equal(count_rows("w"), 1);
  close_table(&o);
  /* read_write: appended rows land in the file. */
  assert_int_equal(open_table(&o, "w", SP_MODE_READ_WRITE, NULL, &err), SP_OK);
  assert_true(sp_connector_sqlite.supports_writes(o.conn));
  one_row_stream(&u.stream, 2, "b");
  assert_int_equal(sp_connector_sqlite.add_data(o.conn, &u, &err), SP_OK);
  assert_int_equal(count_rows("w"), 2);
  close_table(&o);
}

static void test_declared_types_and_colrefs(void **state) {
  (void)state;
  static const struct { const char *decl, *format; bool pushable; } cases[] = {
      {"INTEGER", "l", true}, {"bigint", "l", true}, {"UNSIGNED BIG INT", "l", true}, {"VARCHAR(20)", "u", true},
      {"NVARCHAR", "u", true}, {"CLOB", "u", true}, {"DOUBLE PRECISION", "g", true}, {"FLOAT", "g", true},
      {"FLOATING POINT", "l", true}, /* SQLite's rules: "INT" comes first */
      {"BLOB", "z", false}, {"", "u", false}, {NULL, "u", false}, {"MONEY", "u", false}, {"NUMERIC(5)", "d:5,0", false},
      {"decimal ( 12 , 3 )", "d:12,3", false}, {"DECIMAL(50,2)", "d:38,10", false}, {"NUMERIC", "d:38,10", false},
      {"Boolean", "b", false}, {"DATE", "tdD", false}, {"timestamp", "tsu:", false}, {"DATETIME", "tsu:", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sqa_column col = {0};
    sqa_map_decltype(cases[i].decl, &col);
    if (strcmp(col.format, cases[i].format) != 0 || col.pushable != cases[i].pushable)
      fail_msg("%s: %s (pushable %d), want %s (%d)", cases[i].decl ? cases[i].decl : "(null)", col.format, col.pushable,
               cases[i].format, cases[i].pushable);
  }
  char **names;
  size_t n;
  sp_error err = {0};
  assert_int_equal(sqa_colref_parse(" id ", &names, &n, &err), SP_OK);
  assert_int_equal(n, 1);
  assert_string_equal(names[0], "id");
  sqa_names_free(names, n);
  assert_int_equal(sqa_colref_parse("(a, \"x y\" ,\"q\"\"r\")", &names, &n, &err), SP_OK);
  assert_int_equal(n, 3);
  assert_string_equal(names[1], "x y");
  assert_string_equal(names[2], "q\"r");
  sqa_names_free(names, n);
  static const char *const bad[] = {"a,b", "()", "(a,", "(a) b", "", "\"open"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (sqa_colref_parse(bad[i], &names, &n, &err) != SP_EINVAL) fail_msg("accepted %s", bad[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_types),
      cmocka_unit_test(test_batches_and_pushdown),
      cmocka_unit_test(test_misfit_values),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_read_only_and_write_back),
      cmocka_unit_test(test_declared_types_and_colrefs),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
