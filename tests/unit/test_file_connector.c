/* SPDX-License-Identifier: Apache-2.0
 *
 * The file connector on real files: Parquet, CSV (with its options), JSON Lines, a folder read as one table,
 * projection in scan(), refresh_sql at the source, and the errors users see.
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
#include <sys/stat.h>
#include <unistd.h>

#include "spice/arrow.h"
#include "spice/connector.h"

extern const sp_connector_module sp_connector_file;

static char dir[256];

static void sh(const char *sql) {
  duckdb_database db;
  duckdb_connection c;
  duckdb_result r;
  assert_int_equal(duckdb_open(NULL, &db), DuckDBSuccess);
  assert_int_equal(duckdb_connect(db, &c), DuckDBSuccess);
  if (duckdb_query(c, sql, &r) == DuckDBError) fail_msg("%s: %s", sql, duckdb_result_error(&r));
  duckdb_destroy_result(&r);
  duckdb_disconnect(&c);
  duckdb_close(&db);
}

static int setup(void **state) {
  snprintf(dir, sizeof dir, "/tmp/sp_file_XXXXXX");
  assert_non_null(mkdtemp(dir));
  char sql[2048];
  snprintf(sql, sizeof sql,
           "COPY (SELECT i AS id, 'n' || i AS name, i * 1.5 AS x FROM range(5000) t(i)) TO '%s/t.parquet';"
           "COPY (SELECT i AS id, 'n' || i AS name FROM range(300) t(i)) TO '%s/t.jsonl' (FORMAT json);"
           "COPY (SELECT i AS id, 'a;b' AS name FROM range(7) t(i)) TO '%s/semi.txt' (HEADER false, DELIMITER '|');"
           "COPY (SELECT i AS id FROM range(10) t(i)) TO '%s/part1.parquet';"
           "COPY (SELECT i AS id FROM range(10, 25) t(i)) TO '%s/part2.parquet';",
           dir, dir, dir, dir, dir);
  sh(sql);
  snprintf(sql, sizeof sql, "mkdir -p %s/folder && mv %s/part1.parquet %s/part2.parquet %s/folder/", dir, dir, dir, dir);
  assert_int_equal(system(sql), 0);
  return 0;
}

static int teardown(void **state) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd);
}

typedef struct opened {
  sp_dataset_spec spec;
  sp_connector *conn;
} opened;

/* Opens the connector on `path` with params "k=v" pairs (NULL-terminated). Returns the open status. */
static int open_file(opened *o, const char *path, const char *const *kv, sp_error *err) {
  static char from[512];
  memset(o, 0, sizeof *o);
  snprintf(from, sizeof from, "%s/%s", dir, path);
  o->spec.name = "ds";
  o->spec.connector = "file";
  o->spec.path = from;
  sp_params raw = {0};
  for (size_t i = 0; kv && kv[i]; i += 2) sp_params_set(&raw, kv[i], kv[i + 1], 0, 0);
  int rc = sp_connector_instance_create(&sp_connector_file, &o->spec, &raw, NULL, NULL, &o->conn, err);
  sp_params_free(&raw);
  return rc;
}

static void close_file(opened *o) {
  sp_connector_instance_close(o->conn);
}

/* Drains a stream: rows, and the number of columns of its schema. */
static int64_t drain(struct ArrowArrayStream *s, int64_t *ncols) {
  struct ArrowSchema schema;
  assert_int_equal(s->get_schema(s, &schema), 0);
  *ncols = schema.n_children;
  schema.release(&schema);
  int64_t rows = 0;
  for (;;) {
    struct ArrowArray a;
    assert_int_equal(s->get_next(s, &a), 0);
    if (a.release == NULL) break;
    rows += a.length;
    a.release(&a);
  }
  s->release(s);
  return rows;
}

static int64_t all_rows(opened *o, int64_t *ncols) {
  struct ArrowArrayStream s;
  sp_error err = {0};
  if (sp_connector_file.get_all_data(o->conn, &s, &err) != SP_OK) fail_msg("%s", err.msg);
  return drain(&s, ncols);
}

static void test_parquet_and_projection(void **state) {
  opened o;
  sp_error err = {0};
  int64_t ncols;
  assert_int_equal(open_file(&o, "t.parquet", NULL, &err), SP_OK);
  assert_int_equal(all_rows(&o, &ncols), 5000);
  assert_int_equal(ncols, 3);
  const char *cols[] = {"x"};
  sp_scan scan = {.columns = cols, .n_columns = 1, .limit = 10};
  struct ArrowArrayStream s;
  assert_int_equal(sp_connector_file.scan(o.conn, &scan, &s, &err), SP_OK);
  assert_int_equal(drain(&s, &ncols), 10);
  assert_int_equal(ncols, 1);
  sp_scan q = {.limit = -1, .query = "SELECT id FROM ds WHERE id >= 4990"};
  assert_int_equal(sp_connector_file.scan(o.conn, &q, &s, &err), SP_OK);
  assert_int_equal(drain(&s, &ncols), 10);
  close_file(&o);
}

static void test_jsonl_and_csv_options(void **state) {
  opened o;
  sp_error err = {0};
  int64_t ncols;
  assert_int_equal(open_file(&o, "t.jsonl", NULL, &err), SP_OK);
  assert_int_equal(all_rows(&o, &ncols), 300);
  assert_int_equal(ncols, 2);
  close_file(&o);
  const char *kv[] = {"file_format", "csv", "csv_has_header", "false", "csv_delimiter", "|", NULL};
  assert_int_equal(open_file(&o, "semi.txt", kv, &err), SP_OK);
  assert_int_equal(all_rows(&o, &ncols), 7);
  assert_int_equal(ncols, 2);
  close_file(&o);
}

static void test_folder_is_one_table(void **state) {
  opened o;
  sp_error err = {0};
  int64_t ncols;
  assert_int_equal(open_file(&o, "folder", NULL, &err), SP_OK);
  assert_int_equal(all_rows(&o, &ncols), 25);
  close_file(&o);
}

static void test_errors_name_the_file(void **state) {
  opened o;
  sp_error err = {0};
  assert_int_equal(open_file(&o, "missing.parquet", NULL, &err), SP_ENOTFOUND);
  assert_non_null(strstr(err.msg, "missing.parquet"));
  assert_non_null(strstr(err.msg, "dataset \"ds\""));
  assert_int_equal(open_file(&o, "semi.txt", NULL, &err), SP_EINVAL);
  assert_non_null(strstr(err.msg, "file_format"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parquet_and_projection),
      cmocka_unit_test(test_jsonl_and_csv_options),
      cmocka_unit_test(test_folder_is_one_table),
      cmocka_unit_test(test_errors_name_the_file),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
