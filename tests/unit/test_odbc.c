/* SPDX-License-Identifier: Apache-2.0
 *
 * The odbc connector against Debian's SQLite ODBC driver (libsqliteodbc) on a file made by the sqlite3 CLI:
 * batches cut by rows and by bytes (also in the middle of a fetched block), long text refused or cut as the
 * params say, projection and limit in scan(), refresh_sql at the source, and the errors users see.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spice/arrow.h"
#include "spice/connector.h"

extern const sp_connector_module sp_connector_odbc;

#define DRIVER "/usr/lib/x86_64-linux-gnu/odbc/libsqlite3odbc.so"

static char dir[256], cs[512];

static int setup(void **state) {
  (void)state;
  char cmd[1024];
  snprintf(dir, sizeof dir, "/tmp/sp_odbc_XXXXXX");
  assert_non_null(mkdtemp(dir));
  snprintf(cmd, sizeof cmd,
           "sqlite3 %s/t.db \"CREATE TABLE nums (id INTEGER, name VARCHAR(10));"
           "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 1000) "
           "INSERT INTO nums SELECT i, 'n' || i FROM r;"
           "UPDATE nums SET name = 'a value much longer than ten' WHERE id = 7;\"",
           dir);
  assert_int_equal(system(cmd), 0);
  snprintf(cs, sizeof cs, "DRIVER=%s;Database=%s/t.db", DRIVER, dir);
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

/* Opens the connector on table `path` with params "k=v" pairs (NULL-terminated) besides the connection string. */
static int open_odbc(opened *o, const char *path, const char *const *kv, sp_error *err) {
  memset(o, 0, sizeof *o);
  o->spec.name = "ds";
  o->spec.connector = "odbc";
  o->spec.path = (char *)path;
  sp_params raw = {0};
  sp_params_set(&raw, "odbc_connection_string", cs, 0, 0);
  for (size_t i = 0; kv && kv[i]; i += 2) sp_params_set(&raw, kv[i], kv[i + 1], 0, 0);
  int rc = sp_connector_instance_create(&sp_connector_odbc, &o->spec, &raw, NULL, NULL, &o->conn, err);
  sp_params_free(&raw);
  return rc;
}

static void close_odbc(opened *o) {
  sp_connector_instance_close(o->conn);
}

typedef struct drained {
  int64_t rows, batches, max_batch, ncols, id_sum;
  int in_order; /* the first column counts 1, 2, 3… across batches */
  int status;   /* get_next's last result */
  char error[1024];
} drained;

static void drain(struct ArrowArrayStream *s, drained *d) {
  struct ArrowSchema schema;
  memset(d, 0, sizeof *d);
  d->in_order = 1;
  assert_int_equal(s->get_schema(s, &schema), 0);
  d->ncols = schema.n_children;
  int ints = strcmp(schema.children[0]->format, "i") == 0;
  schema.release(&schema);
  for (;;) {
    struct ArrowArray a;
    if ((d->status = s->get_next(s, &a)) != 0) {
      snprintf(d->error, sizeof d->error, "%s", s->get_last_error(s));
      break;
    }
    if (a.release == NULL) break;
    const int32_t *ids = ints ? (const int32_t *)a.children[0]->buffers[1] : NULL;
    for (int64_t i = 0; ids && i < a.length; i++) {
      d->id_sum += ids[i];
      if (ids[i] != d->rows + i + 1) d->in_order = 0;
    }
    d->rows += a.length;
    d->batches++;
    if (a.length > d->max_batch) d->max_batch = a.length;
    a.release(&a);
  }
  s->release(s);
}

static void read_all(opened *o, drained *d) {
  struct ArrowArrayStream s;
  sp_error err = {0};
  if (sp_connector_odbc.get_all_data(o->conn, &s, &err) != SP_OK) fail_msg("%s", err.msg);
  drain(&s, d);
}

static void test_batches_by_rows_and_bytes(void **state) {
  (void)state;
  opened o;
  drained d;
  sp_error err = {0};
  const char *by_rows[] = {"odbc_max_num_rows_per_batch", "64", "odbc_max_text_size", "100", NULL};
  assert_int_equal(open_odbc(&o, "nums", by_rows, &err), SP_OK);
  read_all(&o, &d);
  assert_int_equal(d.status, 0);
  assert_int_equal(d.rows, 1000);
  assert_int_equal(d.id_sum, 500500);
  assert_true(d.in_order);
  assert_int_equal(d.max_batch, 64);
  assert_int_equal(d.batches, 16); /* 15 × 64 + 40 */
  close_odbc(&o);
  /* ~200 bytes a batch (about 20 rows): the cut falls inside the blocks fetched 64 rows at a time, and nothing is lost. */
  const char *by_bytes[] = {"odbc_max_num_rows_per_batch", "64", "odbc_max_bytes_per_batch", "200", "odbc_max_text_size",
                            "100", NULL};
  assert_int_equal(open_odbc(&o, "nums", by_bytes, &err), SP_OK);
  read_all(&o, &d);
  assert_int_equal(d.rows, 1000);
  assert_int_equal(d.id_sum, 500500);
  assert_true(d.in_order);
  assert_true(d.max_batch < 64 && d.batches > 16);
  close_odbc(&o);
}

static void test_long_text(void **state) {
  (void)state;
  opened o;
  drained d;
  sp_error err = {0};
  assert_int_equal(open_odbc(&o, "nums", NULL, &err), SP_OK); /* varchar(10): 10 characters staged */
  read_all(&o, &d);
  assert_int_equal(d.status, 5);
  assert_non_null(strstr(d.error, "column \"name\" is longer than 10 characters; set odbc_max_text_size"));
  close_odbc(&o);
  const char *cut[] = {"odbc_max_text_size", "6", NULL};
  assert_int_equal(open_odbc(&o, "nums", cut, &err), SP_OK);
  const char *cols[] = {"name", "id"};
  sp_scan scan = {.columns = cols, .n_columns = 2, .limit = -1, .query = NULL};
  struct ArrowArrayStream s;
  assert_int_equal(sp_connector_odbc.scan(o.conn, &scan, &s, &err), SP_OK);
  struct ArrowArray a;
  assert_int_equal(s.get_next(&s, &a), 0);
  const int32_t *offs = a.children[0]->buffers[1];
  const char *text = a.children[0]->buffers[2];
  assert_int_equal(offs[7] - offs[6], 6); /* row 7, cut to 6 characters */
  assert_memory_equal(text + offs[6], "a valu", 6);
  assert_int_equal(offs[1] - offs[0], 2); /* "n1" as it is */
  a.release(&a);
  s.release(&s);
  close_odbc(&o);
}

static void test_scan_and_refresh_sql(void **state) {
  (void)state;
  opened o;
  drained d;
  sp_error err = {0};
  const char *p[] = {"odbc_max_text_size", "100", NULL};
  assert_int_equal(open_odbc(&o, "nums", p, &err), SP_OK);
  const char *cols[] = {"id"};
  sp_scan scan = {.columns = cols, .n_columns = 1, .limit = 3};
  struct ArrowArrayStream s;
  assert_int_equal(sp_connector_odbc.scan(o.conn, &scan, &s, &err), SP_OK);
  drain(&s, &d);
  assert_int_equal(d.rows, 3);
  assert_int_equal(d.ncols, 1);
  sp_scan refresh = {.limit = -1, .query = "SELECT * FROM ds WHERE id > 990 AND name IS NOT NULL"};
  assert_int_equal(sp_connector_odbc.scan(o.conn, &refresh, &s, &err), SP_OK);
  drain(&s, &d);
  assert_int_equal(d.rows, 10);
  assert_int_equal(d.ncols, 2);
  sp_scan bad = {.limit = -1, .query = "SELECT * FROM ds WHERE abs(id) > 3"};
  assert_int_equal(sp_connector_odbc.scan(o.conn, &bad, &s, &err), SP_ENOTSUP);
  assert_non_null(strstr(err.msg, "cannot be pushed to odbc"));
  /* A federated filter that cannot be pushed is left to the engine: every row comes back. */
  sp_scan fed = {.limit = -1, .filter_query = "SELECT * FROM ds WHERE abs(id) > 3"};
  assert_int_equal(sp_connector_odbc.scan(o.conn, &fed, &s, &err), SP_OK);
  drain(&s, &d);
  assert_int_equal(d.rows, 1000);
  close_odbc(&o);
}

static void test_errors(void **state) {
  (void)state;
  opened o;
  sp_error err = {0};
  int missing = open_odbc(&o, "missing", NULL, &err);
  if (missing != SP_ENOTFOUND) fail_msg("%d: %s", missing, err.msg);
  assert_non_null(strstr(err.msg, "odbc table \"missing\" for dataset \"ds\" does not exist"));
  char saved[512];
  snprintf(saved, sizeof saved, "%s", cs);
  snprintf(cs, sizeof cs, "DRIVER=/nonexistent/driver.so;UID=me;PWD=hunter22");
  int nodrv = open_odbc(&o, "nums", NULL, &err);
  if (nodrv != SP_EINVAL) fail_msg("%d: %s", nodrv, err.msg);
  assert_non_null(strstr(err.msg, "could not connect to odbc data source \"DRIVER=/nonexistent/driver.so;UID=me;PWD=***\""));
  assert_null(strstr(err.msg, "hunter22"));
  snprintf(cs, sizeof cs, "%s", saved);
}

int main(void) {
  if (access(DRIVER, R_OK) != 0) {
    fprintf(stderr, "skipped: %s is not installed\n", DRIVER);
    return 0;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_batches_by_rows_and_bytes),
      cmocka_unit_test(test_long_text),
      cmocka_unit_test(test_scan_and_refresh_sql),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
