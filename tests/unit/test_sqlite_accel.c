/* SPDX-License-Identifier: Apache-2.0
 *
 * The sqlite accelerator through the runtime, fed by the sqlite connector: the same answers as the arrow
 * accelerator (joins, aggregates, windows, NULLs, decimals, unicode, empty results), filters pushed into
 * SQLite (one matching row read, seen in the debug log), atomic overwrites under concurrent queries, two
 * datasets sharing one file, a restart serving the file copy without its source, append with primary_key +
 * on_conflict (upsert and drop), indexes, retention, change streams with their position.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spice/accelerator.h"
#include "spice/arrow.h"
#include "spice/engine.h"
#include "spice/log.h"
#include "spice/runtime.h"
#include "capture.h"

static char tmpdir[256], oldcwd[1024];

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void sql_on(const char *file, const char *text) {
  sqlite3 *db;
  char *msg = NULL;
  assert_int_equal(sqlite3_open(file, &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  if (sqlite3_exec(db, text, NULL, NULL, &msg) != SQLITE_OK) fail_msg("%s: %s", text, msg);
  sqlite3_close(db);
}

/* items: n rows; every 7th note NULL, unicode notes, decimals, timestamps, booleans. */
static void fill_items(int n) {
  char q[1200];
  snprintf(q, sizeof q,
           "BEGIN; DROP TABLE IF EXISTS items; CREATE TABLE items (id INTEGER, grp TEXT, val DECIMAL(10,2), "
           "note TEXT, ts DATETIME, flag BOOLEAN);"
           "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
           "INSERT INTO items SELECT i, 'g' || (i %% 3), (i %% 100) * 1.25 + 0.01, "
           "CASE WHEN i %% 7 = 0 THEN NULL WHEN i %% 5 = 0 THEN 'ünïcødé ✓ ' || i ELSE 'n' || i END, "
           "datetime(1704067200 + i * 37, 'unixepoch'), i %% 2 FROM n; COMMIT;", n);
  sql_on("src.db", q);
}

static const char *POD =
    "version: v1\nkind: Spicepod\nname: t\n"
    "datasets:\n"
    "  - from: sqlite:items\n    name: ref\n    params:\n      sqlite_file: src.db\n    acceleration:\n      engine: arrow\n"
    "  - from: sqlite:items\n    name: mem\n    params:\n      sqlite_file: src.db\n    acceleration:\n      engine: sqlite\n"
    "  - from: sqlite:items\n    name: disk\n    params:\n      sqlite_file: src.db\n"
    "    acceleration:\n      engine: sqlite\n      mode: file\n"
    "  - from: sqlite:items\n    name: shared_a\n    params:\n      sqlite_file: src.db\n"
    "    acceleration:\n      engine: sqlite\n      mode: file\n      params:\n        sqlite_file: shared.sqlite\n"
    "  - from: sqlite:items\n    name: shared_b\n    params:\n      sqlite_file: src.db\n"
    "    acceleration:\n      engine: sqlite\n      mode: file\n      params:\n        sqlite_file: shared.sqlite\n";

static int setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/sp_sqacc_XXXXXX");
  assert_non_null(mkdtemp(tmpdir));
  assert_non_null(getcwd(oldcwd, sizeof oldcwd));
  assert_int_equal(chdir(tmpdir), 0);
  fill_items(1000);
  write_file("spicepod.yaml", POD);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[400];
  assert_int_equal(chdir(oldcwd), 0);
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  return system(cmd);
}

/* The first value of the first row as text (int64 or utf8 result); NULL on error (message in err). */
static char *query_text(sp_runtime *rt, const char *sql, sp_error *err) {
  struct ArrowArrayStream s;
  sp_query_request req = {.sql = sql};
  if (sp_runtime_query(rt, &req, &s, err) != SP_OK) return NULL;
  struct ArrowSchema schema;
  struct ArrowArray a;
  char *out = NULL;
  s.get_schema(&s, &schema);
  if (s.get_next(&s, &a) == 0 && a.release) {
    const struct ArrowArray *c = a.children[0];
    if (c->length > 0 && !sp_array_is_null(c, 0)) {
      if (strcmp(schema.children[0]->format, "l") == 0) {
        out = malloc(32);
        snprintf(out, 32, "%lld", (long long)((const int64_t *)c->buffers[1])[c->offset]);
      } else {
        const int32_t *o = c->buffers[1];
        out = strndup((const char *)c->buffers[2] + o[c->offset], (size_t)(o[c->offset + 1] - o[c->offset]));
      }
    } else {
      out = strdup("NULL");
    }
    a.release(&a);
  } else if (s.get_last_error(&s)) {
    snprintf(err->msg, sizeof err->msg, "%s", s.get_last_error(&s));
  }
  schema.release(&schema);
  s.release(&s);
  return out;
}

static int64_t query_int(sp_runtime *rt, const char *sql, sp_error *err) {
  char *t = query_text(rt, sql, err);
  int64_t v = t && strcmp(t, "NULL") != 0 ? strtoll(t, NULL, 10) : -1;
  free(t);
  return v;
}

#define ASSERT_QUERY(rt, sql, expected)                                                                     \
  do {                                                                                                      \
    sp_error qerr = {0};                                                                                    \
    int64_t got = query_int(rt, sql, &qerr);                                                                \
    if (got != (expected)) fail_msg("%s: got %lld, want %lld (%s)", sql, (long long)got, (long long)(expected), qerr.msg); \
  } while (0)

static sp_runtime *start(void) {
  sp_runtime *rt = NULL;
  sp_error err = {0};
  sp_runtime_options o = {0};
  if (sp_runtime_create(&o, &rt, &err) != SP_OK) fail_msg("create: %s", err.msg);
  assert_int_equal(sp_runtime_start(rt, &err), SP_OK);
  for (int i = 0; i < 400 && !sp_runtime_ready(rt); i++) usleep(50000);
  assert_true(sp_runtime_ready(rt));
  return rt;
}

static void refresh_now(sp_runtime *rt, const char *name) {
  sp_error err = {0};
  assert_int_equal(sp_runtime_refresh(rt, name, NULL, NULL, &err), SP_OK);
  if (sp_runtime_wait_refresh(rt, name, 30000, &err) != SP_OK) fail_msg("%s", err.msg);
}

/* Every row of `q` (with {t} standing for the dataset) as one sorted text, for comparing engines. */
static char *rows_of(sp_runtime *rt, const char *q, const char *t, sp_error *err) {
  char body[1200], sql[1600];
  size_t o = 0;
  for (const char *p = q; *p && o + 64 < sizeof body; p++) {
    if (strncmp(p, "{t}", 3) == 0) o += (size_t)snprintf(body + o, sizeof body - o, "%s", t), p += 2;
    else body[o++] = *p;
  }
  body[o] = '\0';
  snprintf(sql, sizeof sql, "SELECT coalesce(string_agg(CAST(r AS VARCHAR), ' | ' ORDER BY CAST(r AS VARCHAR)), '<empty>') "
           "FROM (%s) r", body);
  return query_text(rt, sql, err);
}

static void test_same_answers_as_arrow(void **state) {
  (void)state;
  sp_runtime *rt = start();
  static const char *const queries[] = {
      "SELECT grp, count(*), sum(val), avg(id), min(note), max(ts) FROM {t} GROUP BY grp",
      "SELECT id, grp FROM {t} WHERE note IS NULL AND id < 60",
      "SELECT id, note FROM {t} WHERE note = 'ünïcødé ✓ 25' OR note LIKE 'ünïcødé ✓ 10%'",
      "SELECT a.id, b.grp, b.val FROM {t} a JOIN {t} b ON a.id = b.id + 1 WHERE a.id < 40 AND b.flag",
      "SELECT id, sum(val) OVER (PARTITION BY grp ORDER BY id) FROM {t} WHERE id <= 30",
      "SELECT * FROM {t} WHERE val > 100.5 AND flag AND id BETWEEN 100 AND 300",
      "SELECT * FROM {t} WHERE id = -1",
      "SELECT id FROM {t} WHERE val = 12.51 AND id < 400",
      "SELECT id FROM {t} WHERE val >= 0.01 AND val <= 1.26 AND id < 300",
      "SELECT count(*), count(note), sum(CASE WHEN flag THEN 1 END) FROM {t} WHERE grp <> 'g1' AND val <= 50",
      "SELECT ts, val FROM {t} WHERE ts >= TIMESTAMP '2024-01-01 08:00:00' ORDER BY ts LIMIT 3",
  };
  static const char *const engines[] = {"mem", "disk", "shared_a"};
  for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
    sp_error err = {0};
    char *want = rows_of(rt, queries[i], "ref", &err);
    if (want == NULL) fail_msg("%s on arrow: %s", queries[i], err.msg);
    assert_true(strlen(want) > 0);
    for (size_t k = 0; k < sizeof engines / sizeof engines[0]; k++) {
      char *got = rows_of(rt, queries[i], engines[k], &err);
      if (got == NULL || strcmp(got, want) != 0)
        fail_msg("%s on %s:\n got %s\nwant %s\n(%s)", queries[i], engines[k], got ? got : "(error)", want, err.msg);
      free(got);
    }
    free(want);
  }
  sp_runtime_destroy(rt);
}

/* A query on one dataset runs in SQLite whole (one row out: the count); one the printer refuses (md5) scans
 * the table with its filter pushed, reading only the matching rows. */
static void test_filters_pushed_into_sqlite(void **state) {
  (void)state;
  sp_runtime *rt = start();
  capture c;
  sp_log_set_level(SP_LOG_DEBUG);
  capture_begin(&c);
  ASSERT_QUERY(rt, "SELECT count(*) FROM mem WHERE id = 77", 1);
  ASSERT_QUERY(rt, "SELECT count(*), md5(min(grp)) FROM disk WHERE grp = 'g2' AND id > 990", 3);
  char *log = capture_end(&c);
  sp_log_set_level(SP_LOG_INFO);
  if (!strstr(log, "runs the whole query: SELECT COUNT(*) FROM \"mem\" AS \"mem\" WHERE (\"id\" = 77)") ||
      !strstr(log, "dataset \"mem\": 1 rows read from sqlite"))
    fail_msg("query not pushed whole:\n%s", log);
  if (!strstr(log, "dataset \"disk\": 3 rows read from sqlite")) fail_msg("filter not pushed:\n%s", log);
  free(log);
  sp_runtime_destroy(rt);
}

typedef struct hammer {
  sp_runtime *rt;
  volatile int stop;
  int bad, ok;
  char last[1200];
} hammer;

static void *hammer_thread(void *arg) {
  hammer *h = arg;
  static const char *const names[] = {"disk", "shared_a", "shared_b", "mem"};
  while (!h->stop) {
    for (int k = 0; k < 4; k++) {
      sp_error err = {0};
      char q[200];
      snprintf(q, sizeof q, "SELECT count(*) * 10 + count(DISTINCT grp) FROM %s", names[k]);
      int64_t n = query_int(h->rt, q, &err);
      if (n != 10003 && n != 20003) {
        h->bad++;
        snprintf(h->last, sizeof h->last, "%s=%lld %s", names[k], (long long)n, err.msg);
      } else {
        h->ok++;
      }
    }
  }
  return NULL;
}

/* Queries hammer four sqlite datasets, two of them in one file, while all four are refreshed at once again
 * and again between 1000 and 2000 rows: every answer is one whole version, never an error ("database is
 * locked" included). */
static void test_atomic_overwrite_and_shared_file(void **state) {
  (void)state;
  sp_runtime *rt = start();
  hammer h = {.rt = rt};
  pthread_t t;
  pthread_create(&t, NULL, hammer_thread, &h);
  static const char *const names[] = {"disk", "shared_a", "shared_b", "mem"};
  for (int i = 0; i < 8; i++) {
    fill_items(i % 2 ? 1000 : 2000);
    sp_error err = {0};
    for (int k = 0; k < 4; k++) assert_int_equal(sp_runtime_refresh(rt, names[k], NULL, NULL, &err), SP_OK);
    for (int k = 0; k < 4; k++)
      if (sp_runtime_wait_refresh(rt, names[k], 30000, &err) != SP_OK) fail_msg("%s: %s", names[k], err.msg);
  }
  h.stop = 1;
  pthread_join(t, NULL);
  if (h.bad) fail_msg("%d wrong answers of %d, last: %s", h.bad, h.bad + h.ok, h.last);
  assert_true(h.ok > 0);
  for (size_t i = 0; i < sp_runtime_dataset_count(rt); i++) {
    sp_dataset_info info;
    assert_int_equal(sp_runtime_dataset_info(rt, i, &info), SP_OK);
    if (info.refresh_errors) fail_msg("dataset %s: %lld refresh errors: %s", info.name, (long long)info.refresh_errors, info.error);
  }
  sp_runtime_destroy(rt);
  /* Both datasets are tables of the one file, with their checkpoint rows. */
  sqlite3 *db;
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_open("shared.sqlite", &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, "SELECT group_concat(dataset_name) FROM (SELECT dataset_name FROM "
                                          "spice_sys_dataset_checkpoint ORDER BY 1)", -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(st, 0), "shared_a,shared_b");
  sqlite3_finalize(st);
  sqlite3_close(db);
  fill_items(1000);
}

/* A restart serves the file copies while the source is gone; the memory copy waits for its source. */
static void test_restart_serves_file_copy(void **state) {
  (void)state;
  sp_runtime *rt = start();
  ASSERT_QUERY(rt, "SELECT count(*) FROM disk", 1000);
  sp_runtime_destroy(rt);
  assert_int_equal(rename("src.db", "src.db.away"), 0);
  sp_error err = {0};
  sp_runtime_options o = {0};
  assert_int_equal(sp_runtime_create(&o, &rt, &err), SP_OK);
  ASSERT_QUERY(rt, "SELECT count(*) FROM disk", 1000);
  ASSERT_QUERY(rt, "SELECT count(*) FROM shared_b WHERE id <= 10", 10);
  assert_int_equal(query_int(rt, "SELECT count(*) FROM mem", &err), -1);
  assert_non_null(strstr(err.msg, "Acceleration not ready"));
  sp_runtime_destroy(rt);
  assert_int_equal(rename("src.db.away", "src.db"), 0);
}

/* refresh_mode: append with primary_key and on_conflict: upsert replaces a changed row, drop keeps the first;
 * indexes are created in the file. */
static void test_append_on_conflict(void **state) {
  (void)state;
  sql_on("src.db", "DROP TABLE IF EXISTS kv; CREATE TABLE kv (id INTEGER, v TEXT);"
                   "INSERT INTO kv VALUES (1, 'a'), (2, 'b'), (3, 'c');");
  write_file("spicepod.yaml",
             "version: v1\nkind: Spicepod\nname: t\ndatasets:\n"
             "  - from: sqlite:kv\n    name: up\n    params:\n      sqlite_file: src.db\n"
             "    acceleration:\n      engine: sqlite\n      mode: file\n      refresh_mode: append\n"
             "      primary_key: id\n      on_conflict:\n        id: upsert\n      indexes:\n        v: enabled\n"
             "  - from: sqlite:kv\n    name: keep\n    params:\n      sqlite_file: src.db\n"
             "    acceleration:\n      engine: sqlite\n      refresh_mode: append\n"
             "      primary_key: id\n      on_conflict:\n        id: drop\n");
  sp_runtime *rt = start();
  ASSERT_QUERY(rt, "SELECT count(*) FROM up", 3);
  sql_on("src.db", "UPDATE kv SET v = 'B' WHERE id = 2; INSERT INTO kv VALUES (4, 'd');");
  refresh_now(rt, "up");
  refresh_now(rt, "keep");
  ASSERT_QUERY(rt, "SELECT count(*) FROM up", 4);
  ASSERT_QUERY(rt, "SELECT count(*) FROM keep", 4);
  ASSERT_QUERY(rt, "SELECT count(*) FROM up WHERE id = 2 AND v = 'B'", 1);
  ASSERT_QUERY(rt, "SELECT count(*) FROM keep WHERE id = 2 AND v = 'b'", 1);
  sp_runtime_destroy(rt);
  sqlite3 *db;
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_open(".spice/data/up.sqlite", &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'up' AND sql IS NOT NULL",
                                      -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_non_null(strstr((const char *)sqlite3_column_text(st, 0), "ON \"up\" (\"v\")"));
  sqlite3_finalize(st);
  sqlite3_close(db);
  write_file("spicepod.yaml", POD);
}

/* Retention deletes exactly the rows older than retention_period, and the copy keeps its refresh time. */
static void test_retention(void **state) {
  (void)state;
  sql_on("src.db", "DROP TABLE IF EXISTS ev; CREATE TABLE ev (id INTEGER, ts DATETIME);"
                   "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) "
                   "INSERT INTO ev SELECT i, datetime('now', '-' || (i * 37) || ' seconds') FROM n;"
                   "INSERT INTO ev VALUES (501, NULL);");
  write_file("spicepod.yaml",
             "version: v1\nkind: Spicepod\nname: t\ndatasets:\n"
             "  - from: sqlite:ev\n    name: ret\n    time_column: ts\n    params:\n      sqlite_file: src.db\n"
             "    acceleration:\n      engine: sqlite\n      mode: file\n      retention_check_enabled: true\n"
             "      retention_period: 1h\n      retention_check_interval: 1s\n");
  sp_runtime *rt = start();
  sp_error err = {0};
  int64_t n = -1;
  for (int i = 0; i < 100 && (n = query_int(rt, "SELECT count(*) FROM ret", &err)) != 98; i++) usleep(100000);
  /* 97 rows inside the hour (97 * 37 s < 1 h < 98 * 37 s) and the row without a time */
  ASSERT_QUERY(rt, "SELECT count(*) FROM ret", 98);
  ASSERT_QUERY(rt, "SELECT max(id) FROM ret WHERE ts IS NOT NULL", 97);
  sp_dataset_info info;
  assert_int_equal(sp_runtime_dataset_info(rt, 0, &info), SP_OK);
  sp_runtime_destroy(rt);
  sqlite3 *db;
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_open(".spice/data/ret.sqlite", &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, "SELECT rows, refreshed_at_ms FROM spice_sys_dataset_checkpoint WHERE dataset_name = 'ret'",
                                      -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int64(st, 0), 98);
  /* Written at the load's commit, just before the runtime noted the refresh; the eviction came later. */
  assert_true(sqlite3_column_int64(st, 1) > 0 && sqlite3_column_int64(st, 1) <= info.last_refresh_ms);
  sqlite3_finalize(st);
  sqlite3_close(db);
  write_file("spicepod.yaml", POD);
}

/* on_zero_results: use_source cannot work with this engine: refused at start with a message, not ignored. */
static void test_use_source_refused(void **state) {
  (void)state;
  write_file("spicepod.yaml",
             "version: v1\nkind: Spicepod\nname: t\ndatasets:\n"
             "  - from: sqlite:items\n    name: z\n    params:\n      sqlite_file: src.db\n"
             "    acceleration:\n      engine: sqlite\n      on_zero_results: use_source\n");
  sp_runtime *rt = NULL;
  sp_error err = {0};
  sp_runtime_options o = {0};
  int rc = sp_runtime_create(&o, &rt, &err);
  sp_runtime_destroy(rt);
  assert_int_not_equal(rc, SP_OK);
  assert_non_null(strstr(err.msg, "on_zero_results: use_source is not supported by the sqlite engine"));
  write_file("spicepod.yaml", POD);
}

extern const sp_accelerator_module sp_accelerator_sqlite;

static sp_accelerator *open_accel(sp_engine *e, const sp_dataset_spec *spec, sp_accel_state *state) {
  sp_accelerator *acc = calloc(1, sp_accelerator_sqlite.instance_size);
  sp_params raw = {0};
  sp_error err = {0};
  acc->module = &sp_accelerator_sqlite;
  acc->dataset = spec;
  acc->engine = e;
  acc->data_dir = tmpdir;
  assert_int_equal(sp_params_validate(sp_accelerator_sqlite.params, "sqlite", &raw, NULL, "acceleration", &acc->params, &err), SP_OK);
  if (sp_accelerator_sqlite.open(acc, state, &err) != SP_OK) fail_msg("%s", err.msg);
  return acc;
}

static void close_accel(sp_accelerator *acc) {
  sp_accelerator_sqlite.close(acc);
  sp_params_free(&acc->params);
  free(acc);
}

/* A change stream: deletes, updates and inserts by primary key, with the source position kept in the same
 * transaction and found again after a restart. */
static void test_changes(void **state) {
  (void)state;
  sp_engine *e = NULL;
  sp_error err = {0};
  sp_engine_config cfg = {.threads = 1, .data_dir = tmpdir};
  assert_int_equal(sp_engine_create(&cfg, &e, &err), SP_OK);
  sp_dataset_spec spec = {.name = "ch"};
  spec.acceleration.mode = SP_ACCEL_FILE;
  sp_accel_state st;
  sp_accelerator *acc = open_accel(e, &spec, &st);
  assert_false(st.has_data);
  sp_data_update u = {.type = SP_UPDATE_OVERWRITE, .position = "0/10"};
  assert_int_equal(sp_engine_query_internal(e, "SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (3, 'c')) t(id, v)", &u.stream, &err), SP_OK);
  int64_t rows = 0;
  assert_int_equal(sp_accelerator_sqlite.add_data(acc, &u, &rows, &err), SP_OK);
  assert_int_equal(rows, 3);
  static const char *const key[] = {"id"};
  sp_data_update c = {.type = SP_UPDATE_CHANGES, .primary_key = key, .n_primary_key = 1, .position = "0/20"};
  assert_int_equal(sp_engine_query_internal(e, "SELECT * FROM (VALUES ('delete', 1, NULL::VARCHAR), ('update', 2, 'B'), "
                                               "('insert', 4, 'd')) t(_op, id, v)", &c.stream, &err), SP_OK);
  if (sp_accelerator_sqlite.add_data(acc, &c, &rows, &err) != SP_OK) fail_msg("%s", err.msg);
  assert_int_equal(rows, 3);
  char table[256], text[256];
  assert_int_equal(sp_accelerator_sqlite.table_sql(acc, table, sizeof table, &err), SP_OK);
  assert_int_equal(sp_engine_define_table(e, "ch", table, 0, &err), SP_OK);
  assert_int_equal(sp_engine_query_text(e, "SELECT string_agg(id || v, ',' ORDER BY id) FROM ch", text, sizeof text, &err), SP_OK);
  assert_string_equal(text, "2B,3c,4d");
  assert_int_equal(sp_accelerator_sqlite.position(acc, text, sizeof text, &err), SP_OK);
  assert_string_equal(text, "0/20");
  close_accel(acc);
  acc = open_accel(e, &spec, &st);
  assert_true(st.has_data);
  assert_int_equal(st.rows, 3);
  assert_int_equal(sp_accelerator_sqlite.position(acc, text, sizeof text, &err), SP_OK);
  assert_string_equal(text, "0/20");
  close_accel(acc);
  sp_engine_destroy(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_same_answers_as_arrow),
      cmocka_unit_test(test_filters_pushed_into_sqlite),
      cmocka_unit_test(test_atomic_overwrite_and_shared_file),
      cmocka_unit_test(test_restart_serves_file_copy),
      cmocka_unit_test(test_append_on_conflict),
      cmocka_unit_test(test_retention),
      cmocka_unit_test(test_use_source_refused),
      cmocka_unit_test(test_changes),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
