/* SPDX-License-Identifier: Apache-2.0
 *
 * The duckdb connector on a real database file: the three table-name forms and the table-function form,
 * projection / limit / filter_query pushdown and refresh_sql at the source (even when the dataset has the
 * table's name), the file left unlocked between reads (a writer can change it and the next read sees it),
 * and the errors users see (missing file, missing table, missing duckdb_open).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <duckdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spice/arrow.h"
#include "spice/connector.h"

extern const sp_connector_module sp_connector_duckdb;

static char dir[256], dbfile[300];

/* Runs sql on the database file opened read-write (or in memory when file is NULL). */
static void sh(const char *file, const char *sql) {
  duckdb_database db;
  duckdb_connection c;
  duckdb_result r;
  assert_int_equal(duckdb_open(file, &db), DuckDBSuccess);
  assert_int_equal(duckdb_connect(db, &c), DuckDBSuccess);
  if (duckdb_query(c, sql, &r) == DuckDBError) fail_msg("%s: %s", sql, duckdb_result_error(&r));
  duckdb_destroy_result(&r);
  duckdb_disconnect(&c);
  duckdb_close(&db);
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/sp_duck_XXXXXX");
  assert_non_null(mkdtemp(dir));
  snprintf(dbfile, sizeof dbfile, "%s/shop.db", dir);
  sh(dbfile, "CREATE TABLE trips AS SELECT i AS id, 'n' || i AS name, i * 1.5 AS x FROM range(5000) t(i);"
             "CREATE SCHEMA sales; CREATE TABLE sales.orders AS SELECT i AS id FROM range(10) t(i);");
  char sql[600];
  snprintf(sql, sizeof sql, "COPY (SELECT i AS id FROM range(42) t(i)) TO '%s/p.parquet'", dir);
  sh(NULL, sql);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd);
}

typedef struct opened {
  sp_dataset_spec spec;
  sp_connector *conn;
} opened;

/* Opens the connector as dataset `name` reading `path`, with duckdb_open = file (NULL: none). */
static int open_duck(opened *o, const char *name, const char *path, const char *file, sp_error *err) {
  memset(o, 0, sizeof *o);
  o->spec.name = (char *)name;
  o->spec.connector = "duckdb";
  o->spec.path = (char *)path;
  sp_params raw = {0};
  if (file) sp_params_set(&raw, "duckdb_open", file, 0, 0);
  int rc = sp_connector_instance_create(&sp_connector_duckdb, &o->spec, &raw, NULL, NULL, &o->conn, err);
  sp_params_free(&raw);
  return rc;
}

static void close_duck(opened *o) {
  sp_connector_instance_close(o->conn);
}

/* Drains a stream: rows, columns, and the sum of the first column (an int64). */
static int64_t drain(struct ArrowArrayStream *s, int64_t *ncols, int64_t *sum) {
  struct ArrowSchema schema;
  assert_int_equal(s->get_schema(s, &schema), 0);
  *ncols = schema.n_children;
  int sums = strcmp(schema.children[0]->format, "l") == 0;
  schema.release(&schema);
  int64_t rows = 0;
  *sum = 0;
  for (;;) {
    struct ArrowArray a;
    assert_int_equal(s->get_next(s, &a), 0);
    if (a.release == NULL) break;
    const int64_t *v = a.children[0]->buffers[1];
    for (int64_t i = 0; sums && i < a.length; i++) *sum += v[a.children[0]->offset + i];
    rows += a.length;
    a.release(&a);
  }
  s->release(s);
  return rows;
}

static int64_t scan_rows(opened *o, const sp_scan *scan, int64_t *ncols, int64_t *sum) {
  struct ArrowArrayStream s;
  sp_error err = {0};
  if (sp_connector_duckdb.scan(o->conn, scan, &s, &err) != SP_OK) fail_msg("%s", err.msg);
  return drain(&s, ncols, sum);
}

static void test_table_forms(void **state) {
  (void)state;
  opened o;
  sp_error err = {0};
  int64_t ncols, sum;
  struct ArrowArrayStream s;
  const char *paths[] = {"trips", "main.trips", "shop.main.trips"};
  for (size_t i = 0; i < 3; i++) {
    if (open_duck(&o, "t", paths[i], dbfile, &err) != SP_OK) fail_msg("%s: %s", paths[i], err.msg);
    assert_int_equal(sp_connector_duckdb.get_all_data(o.conn, &s, &err), SP_OK);
    assert_int_equal(drain(&s, &ncols, &sum), 5000);
    assert_int_equal(ncols, 3);
    assert_int_equal(sum, 4999 * 5000 / 2);
    close_duck(&o);
  }
  assert_int_equal(open_duck(&o, "orders", "sales.orders", dbfile, &err), SP_OK);
  assert_int_equal(sp_connector_duckdb.get_all_data(o.conn, &s, &err), SP_OK);
  assert_int_equal(drain(&s, &ncols, &sum), 10);
  close_duck(&o);
}

static void test_pushdown(void **state) {
  (void)state;
  opened o;
  sp_error err = {0};
  int64_t ncols, sum;
  char cwd[1024];
  assert_non_null(getcwd(cwd, sizeof cwd));
  assert_int_equal(chdir(dir), 0); /* duckdb_open relative to the working folder */
  /* The dataset has the table's name: the CTE that binds it must not hide the table. */
  int rc = open_duck(&o, "trips", "trips", "shop.db", &err);
  assert_int_equal(chdir(cwd), 0);
  if (rc != SP_OK) fail_msg("%s", err.msg);
  const char *cols[] = {"id"};
  sp_scan proj = {.columns = cols, .n_columns = 1, .limit = 10};
  assert_int_equal(scan_rows(&o, &proj, &ncols, &sum), 10);
  assert_int_equal(ncols, 1);
  sp_scan filt = {.columns = cols, .n_columns = 1, .limit = -1,
                  .filter_query = "SELECT * FROM \"trips\" WHERE (\"id\" >= 4990) AND (\"name\" <> 'n4995')"};
  assert_int_equal(scan_rows(&o, &filt, &ncols, &sum), 9);
  assert_int_equal(sum, 4990 + 4991 + 4992 + 4993 + 4994 + 4996 + 4997 + 4998 + 4999);
  /* Conditions DuckDB cannot bind here are dropped (the engine applies the WHERE again). */
  sp_scan bad = {.columns = cols, .n_columns = 1, .limit = -1, .filter_query = "SELECT * FROM \"trips\" WHERE nope > 1"};
  assert_int_equal(scan_rows(&o, &bad, &ncols, &sum), 5000);
  sp_scan q = {.limit = -1, .query = "SELECT id FROM trips WHERE id < 100 AND x > 3"};
  assert_int_equal(scan_rows(&o, &q, &ncols, &sum), 97);
  close_duck(&o);
}

/* Between reads nothing holds the file: a writer opens it, and the next read sees what it wrote. */
static void test_file_unlocked_between_reads(void **state) {
  (void)state;
  opened o;
  sp_error err = {0};
  int64_t ncols, sum;
  assert_int_equal(open_duck(&o, "orders", "sales.orders", dbfile, &err), SP_OK);
  sp_scan all = {.limit = -1};
  assert_int_equal(scan_rows(&o, &all, &ncols, &sum), 10);
  sh(dbfile, "INSERT INTO sales.orders SELECT 100 + i FROM range(5) t(i)");
  assert_int_equal(scan_rows(&o, &all, &ncols, &sum), 15);
  sh(dbfile, "DELETE FROM sales.orders WHERE id >= 100");
  close_duck(&o);
}

static void test_table_function(void **state) {
  (void)state;
  opened o;
  sp_error err = {0};
  int64_t ncols, sum;
  char path[600];
  snprintf(path, sizeof path, "read_parquet('%s/p.parquet')", dir);
  if (open_duck(&o, "p", path, NULL, &err) != SP_OK) fail_msg("%s", err.msg);
  sp_scan all = {.limit = -1};
  assert_int_equal(scan_rows(&o, &all, &ncols, &sum), 42);
  assert_int_equal(sum, 41 * 42 / 2);
  sp_scan q = {.limit = -1, .query = "SELECT id FROM p WHERE id > 39"};
  assert_int_equal(scan_rows(&o, &q, &ncols, &sum), 2);
  close_duck(&o);
}

/* Every column reaches Arrow in a form the engine scans: BLOB as binary, UNION and BIT as text. */
static void test_types_without_mapping(void **state) {
  (void)state;
  opened o;
  sp_error err = {0};
  const char *q = "(SELECT 1::BIGINT AS id, 'ab'::BLOB AS bl, union_value(n := 7)::UNION(n INT, s VARCHAR) AS u, "
                  "'101'::BIT AS b, 1.25::DECIMAL(9,2) AS d)";
  if (open_duck(&o, "odd", q, NULL, &err) != SP_OK) fail_msg("%s", err.msg);
  struct ArrowSchema schema;
  assert_int_equal(sp_connector_duckdb.get_schema(o.conn, &schema, &err), SP_OK);
  assert_int_equal(schema.n_children, 5);
  assert_string_equal(schema.children[1]->format, "z");
  assert_string_equal(schema.children[2]->format, "u");
  assert_string_equal(schema.children[2]->name, "u");
  assert_string_equal(schema.children[3]->format, "u");
  assert_string_equal(schema.children[4]->format, "d:9,2,128");
  schema.release(&schema);
  struct ArrowArrayStream s;
  sp_scan scan = {.limit = -1};
  assert_int_equal(sp_connector_duckdb.scan(o.conn, &scan, &s, &err), SP_OK);
  struct ArrowArray a;
  assert_int_equal(s.get_next(&s, &a), 0);
  const struct ArrowArray *u = a.children[2], *b = a.children[3];
  const int32_t *uoff = u->buffers[1], *boff = b->buffers[1];
  assert_memory_equal((const char *)u->buffers[2] + uoff[0], "7", 1);
  assert_int_equal(boff[1] - boff[0], 3);
  assert_memory_equal((const char *)b->buffers[2] + boff[0], "101", 3);
  a.release(&a);
  s.release(&s);
  close_duck(&o);
}

static void test_errors(void **state) {
  (void)state;
  opened o;
  sp_error err = {0};
  char missing[400];
  snprintf(missing, sizeof missing, "%s/none.db", dir);
  assert_int_equal(open_duck(&o, "ds", "trips", missing, &err), SP_ENOTFOUND);
  assert_non_null(strstr(err.msg, "none.db"));
  assert_non_null(strstr(err.msg, "dataset \"ds\""));
  assert_int_equal(open_duck(&o, "ds", "no_such_table", dbfile, &err), SP_ENOTFOUND);
  assert_non_null(strstr(err.msg, "\"no_such_table\""));
  assert_non_null(strstr(err.msg, "dataset \"ds\""));
  assert_int_equal(open_duck(&o, "ds", "trips", NULL, &err), SP_EINVAL);
  assert_non_null(strstr(err.msg, "duckdb_open"));
  assert_int_equal(open_duck(&o, "ds", "a.b.c.d", dbfile, &err), SP_EINVAL);
  /* The connector never writes: the file is opened read-only. */
  assert_int_equal(open_duck(&o, "ds", "trips", dbfile, &err), SP_OK);
  struct ArrowArrayStream s;
  sp_scan q = {.limit = -1, .query = "CREATE TABLE x AS SELECT 1"};
  assert_int_not_equal(sp_connector_duckdb.scan(o.conn, &q, &s, &err), SP_OK);
  close_duck(&o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table_forms),
      cmocka_unit_test(test_pushdown),
      cmocka_unit_test(test_file_unlocked_between_reads),
      cmocka_unit_test(test_table_function),
      cmocka_unit_test(test_types_without_mapping),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
