/* SPDX-License-Identifier: Apache-2.0
 *
 * SP_UPDATE_CHANGES in the duckdb (memory and file) and arrow accelerators, driven directly: changes are
 * applied by key (updates, deletes, inserts, a key deleted and inserted again), a batch that fails leaves the
 * copy and its stored position exactly as they were, and a duckdb file reopened reports the position stored
 * with the last committed batch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "spice/accelerator.h"
#include "spice/arrow.h"
#include "spice/engine.h"

extern const sp_accelerator_module sp_accelerator_duckdb, sp_accelerator_arrow;

static char dir[256];
static sp_engine *engine;

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/sp_accchg_XXXXXX");
  assert_non_null(mkdtemp(dir));
  sp_engine_config cfg = {.threads = 2, .data_dir = dir};
  return sp_engine_create(&cfg, &engine, NULL);
}

static int teardown(void **state) {
  (void)state;
  sp_engine_destroy(engine);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd);
}

static sp_accelerator *open_accel(const sp_accelerator_module *m, sp_dataset_spec *spec, sp_accel_state *st) {
  sp_accelerator *a = calloc(1, m->instance_size);
  assert_non_null(a);
  a->module = m;
  a->dataset = spec;
  a->engine = engine;
  a->data_dir = dir;
  sp_error err = {0};
  if (m->open(a, st, &err) != SP_OK) fail_msg("open: %s", err.msg);
  return a;
}

static void close_accel(sp_accelerator *a) {
  a->module->close(a);
  free(a);
}

/* Applies `sql` (rows built by the engine) as an update of `type`; returns the accelerator's status. */
static int apply(sp_accelerator *a, sp_update_type type, const char *sql, const char *position, sp_error *err) {
  static const char *const key[] = {"id"};
  sp_data_update u = {.type = type, .position = position};
  if (type == SP_UPDATE_CHANGES) {
    u.primary_key = key;
    u.n_primary_key = 1;
  }
  assert_int_equal(sp_engine_query_internal(engine, sql, &u.stream, NULL), SP_OK);
  int64_t rows = -1;
  return a->module->add_data(a, &u, &rows, err);
}

/* The copy as "id:v,id:v" in key order. */
static void contents(sp_accelerator *a, char *out, size_t n) {
  char table[700], sql[1000];
  assert_int_equal(a->module->table_sql(a, table, sizeof table, NULL), SP_OK);
  snprintf(sql, sizeof sql, "SELECT coalesce(string_agg(id || ':' || coalesce(v, '-'), ',' ORDER BY id), '') FROM %s", table);
  assert_int_equal(sp_engine_query_text(engine, sql, out, n, NULL), SP_OK);
}

static void position_is(sp_accelerator *a, const char *want) {
  char buf[64];
  if (a->module->position == NULL) return;
  assert_int_equal(a->module->position(a, buf, sizeof buf, NULL), SP_OK);
  assert_string_equal(buf, want);
}

static void changes_by_key(const sp_accelerator_module *m, sp_accel_mode mode, const char *name) {
  sp_dataset_spec spec = {.name = (char *)name};
  spec.acceleration.mode = mode;
  sp_accel_state st;
  sp_error err = {0};
  char got[256];
  sp_accelerator *a = open_accel(m, &spec, &st);
  assert_int_equal(apply(a, SP_UPDATE_OVERWRITE, "SELECT i::INTEGER AS id, 'v' || i AS v FROM range(1, 6) t(i)", "0/10", &err), SP_OK);
  position_is(a, "0/10");
  assert_int_equal(apply(a, SP_UPDATE_CHANGES,
                         "SELECT * FROM (VALUES ('update', 2, 'two'), ('delete', 3, NULL), ('insert', 9, 'nine'), "
                         "('update', 5, NULL), ('delete', 42, NULL)) t(_op, id, v)", "0/20", &err), SP_OK);
  contents(a, got, sizeof got);
  assert_string_equal(got, "1:v1,2:two,4:v4,5:-,9:nine");
  position_is(a, "0/20");
  /* A batch that cannot be applied (a key that is not a number) changes nothing, position included. */
  assert_int_not_equal(apply(a, SP_UPDATE_CHANGES,
                             "SELECT * FROM (VALUES ('delete', '1', NULL), ('insert', 'x', 'bad')) t(_op, id, v)", "0/30", &err),
                       SP_OK);
  contents(a, got, sizeof got);
  assert_string_equal(got, "1:v1,2:two,4:v4,5:-,9:nine");
  position_is(a, "0/20");
  close_accel(a);
  if (mode != SP_ACCEL_FILE) return;
  /* The file keeps the copy and the position committed with it. */
  a = open_accel(m, &spec, &st);
  assert_true(st.has_data);
  assert_int_equal(st.rows, 5);
  position_is(a, "0/20");
  contents(a, got, sizeof got);
  assert_string_equal(got, "1:v1,2:two,4:v4,5:-,9:nine");
  /* A plain refresh clears the position: the next change stream starts with a load. */
  assert_int_equal(apply(a, SP_UPDATE_OVERWRITE, "SELECT 1::INTEGER AS id, 'x' AS v", NULL, &err), SP_OK);
  position_is(a, "");
  close_accel(a);
}

static void duckdb_file(void **state) {
  (void)state;
  changes_by_key(&sp_accelerator_duckdb, SP_ACCEL_FILE, "chg_file");
}

static void duckdb_memory(void **state) {
  (void)state;
  changes_by_key(&sp_accelerator_duckdb, SP_ACCEL_MEMORY, "chg_mem");
}

static void arrow_memory(void **state) {
  (void)state;
  changes_by_key(&sp_accelerator_arrow, SP_ACCEL_MEMORY, "chg_arrow");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(duckdb_file),
      cmocka_unit_test(duckdb_memory),
      cmocka_unit_test(arrow_memory),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
