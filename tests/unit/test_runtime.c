/* SPDX-License-Identifier: Apache-2.0
 *
 * The runtime end to end without a server: a spicepod over real files, loads into the arrow and duckdb
 * accelerators and a federated dataset, queries through the sandboxed engine, refresh atomicity under
 * concurrent queries, and file-accelerator restarts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "spice/arrow.h"
#include "spice/runtime.h"

static char tmpdir[256], oldcwd[1024];

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* n rows: id, grp, val = id * 2, ts (37 s apart from 2024-01-01), amt (a double, NULL every 7th row) */
static void write_csv(const char *path, int n) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("id,grp,val,ts,amt\n", f);
  for (int i = 1; i <= n; i++) {
    time_t t = 1704067200 + (time_t)i * 37;
    struct tm tm;
    char ts[32];
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
    if (i % 7) fprintf(f, "%d,g%d,%d,%s,%d.%02d\n", i, i % 3, i * 2, ts, i % 500, i % 100);
    else fprintf(f, "%d,g%d,%d,%s,\n", i, i % 3, i * 2, ts);
  }
  fclose(f);
}

static const char *POD =
    "version: v1\nkind: Spicepod\nname: t\n"
    "datasets:\n"
    "  - from: file:data.csv\n    name: mem\n    acceleration:\n      enabled: true\n      engine: arrow\n"
    "  - from: file:data.csv\n    name: ddb\n    acceleration:\n      engine: duckdb\n      mode: file\n"
    "  - from: file:data.csv\n    name: fed\n"
    "views:\n  - name: joined\n    sql: SELECT m.id, d.val FROM mem m JOIN ddb d ON m.id = d.id\n";

static int setup(void **state) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/sp_rt_XXXXXX");
  assert_non_null(mkdtemp(tmpdir));
  assert_non_null(getcwd(oldcwd, sizeof oldcwd));
  assert_int_equal(chdir(tmpdir), 0);
  write_csv("data.csv", 1000);
  write_file("spicepod.yaml", POD);
  return 0;
}

static int teardown(void **state) {
  char cmd[400];
  assert_int_equal(chdir(oldcwd), 0);
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  return system(cmd);
}

/* Runs sql and returns the first column of the first row as int64; -1 on error (message in err). */
static int64_t query_int(sp_runtime *rt, const char *sql, sp_error *err) {
  struct ArrowArrayStream s;
  sp_query_request req = {.sql = sql};
  if (sp_runtime_query(rt, &req, &s, err) != SP_OK) return -1;
  struct ArrowArray a;
  int64_t v = -1;
  if (s.get_next(&s, &a) == 0 && a.release) {
    const struct ArrowArray *c = a.children[0];
    if (c->length > 0) v = ((const int64_t *)c->buffers[1])[c->offset];
    a.release(&a);
  } else if (s.get_last_error(&s)) {
    snprintf(err->msg, sizeof err->msg, "%s", s.get_last_error(&s));
  }
  s.release(&s);
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
  for (int i = 0; i < 200 && !sp_runtime_ready(rt); i++) usleep(50000);
  assert_true(sp_runtime_ready(rt));
  return rt;
}

static void test_loads_and_queries(void **state) {
  sp_runtime *rt = start();
  sp_error err = {0};
  ASSERT_QUERY(rt, "SELECT count(*) FROM mem", 1000);
  ASSERT_QUERY(rt, "SELECT sum(val)::BIGINT FROM ddb", 1001000);
  ASSERT_QUERY(rt, "SELECT max(id)::BIGINT FROM fed WHERE grp = 'g1'", 1000);
  for (int i = 0; i < 50 && query_int(rt, "SELECT count(*) FROM joined", &err) < 0; i++) usleep(50000);
  assert_int_equal(query_int(rt, "SELECT count(*) FROM joined", &err), 1000);
  /* The result schema without running the query (Flight's GetFlightInfo), and the sandbox still applies. */
  struct ArrowSchema schema;
  sp_query_request sreq = {.sql = "SELECT id, grp AS g FROM mem WHERE id < 0"};
  assert_int_equal(sp_runtime_query_schema(rt, &sreq, &schema, &err), SP_OK);
  assert_int_equal(schema.n_children, 2);
  assert_string_equal(schema.children[0]->name, "id");
  assert_string_equal(schema.children[1]->name, "g");
  schema.release(&schema);
  sp_query_request bad = {.sql = "SELECT * FROM read_csv('/etc/passwd')"};
  assert_int_equal(sp_runtime_query_schema(rt, &bad, &schema, &err), SP_EDENIED);
  sp_dataset_info info;
  assert_int_equal(sp_runtime_dataset_info(rt, 0, &info), SP_OK);
  assert_string_equal(info.name, "mem");
  assert_int_equal(info.status, SP_STATUS_READY);
  assert_int_equal(info.rows, 1000);
  sp_runtime_destroy(rt);
}

static void test_sandbox_refuses(void **state) {
  sp_runtime *rt = start();
  const char *refused[] = {
      "SELECT * FROM read_csv('/etc/passwd')", "COPY mem TO '/tmp/x.csv'", "ATTACH '/tmp/x.db' AS x",
      "SET threads=1", "PRAGMA version", "INSTALL httpfs", "LOAD httpfs", "CREATE TABLE x (a INT)",
      "DROP VIEW mem", "INSERT INTO mem VALUES (1, 'x', 2)", "SELECT 1; SELECT 2", "DELETE FROM mem",
  };
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    sp_error err = {0};
    struct ArrowArrayStream s;
    sp_query_request req = {.sql = refused[i]};
    int rc = sp_runtime_query(rt, &req, &s, &err);
    if (rc == SP_OK) {
      s.release(&s);
      fail_msg("not refused: %s", refused[i]);
    }
    assert_true(rc == SP_EDENIED || rc == SP_EINVAL);
    assert_true(strlen(err.msg) > 0);
  }
  sp_runtime_destroy(rt);
}

typedef struct hammer {
  sp_runtime *rt;
  volatile int stop;
  int bad, ok;
  char last[1024];
} hammer;

static void *hammer_thread(void *arg) {
  hammer *h = arg;
  while (!h->stop) {
    sp_error err = {0};
    int64_t n = query_int(h->rt, "SELECT count(*) FROM mem", &err);
    int64_t m = query_int(h->rt, "SELECT count(*) FROM ddb", &err);
    if ((n != 1000 && n != 2000) || (m != 1000 && m != 2000)) {
      h->bad++;
      snprintf(h->last, sizeof h->last, "mem=%lld ddb=%lld %s", (long long)n, (long long)m, err.msg);
    } else {
      h->ok++;
    }
  }
  return NULL;
}

/* Queries hammer the datasets while they are refreshed again and again between two versions of the file:
 * every answer is one whole version, never an error, never a partial count. */
static void test_refresh_is_atomic(void **state) {
  sp_runtime *rt = start();
  hammer h = {.rt = rt};
  pthread_t t;
  pthread_create(&t, NULL, hammer_thread, &h);
  for (int i = 0; i < 12; i++) {
    write_csv("data.csv.tmp", i % 2 ? 1000 : 2000);
    rename("data.csv.tmp", "data.csv");
    sp_error err = {0};
    assert_int_equal(sp_runtime_refresh(rt, "MEM", NULL, NULL, &err), SP_OK);
    assert_int_equal(sp_runtime_refresh(rt, "ddb", NULL, NULL, &err), SP_OK);
    assert_int_equal(sp_runtime_wait_refresh(rt, "ddb", 30000, &err), SP_OK);
  }
  h.stop = 1;
  pthread_join(t, NULL);
  if (h.bad) fail_msg("%d wrong answers of %d, last: %s", h.bad, h.bad + h.ok, h.last);
  assert_true(h.ok > 0);
  sp_runtime_destroy(rt);
}

/* Before its first load a dataset answers with Spice's message, not "table does not exist". */
static void test_not_ready_message(void **state) {
  assert_int_equal(rename("data.csv", "data.csv.away"), 0);
  write_file("spicepod.yaml", "version: v1\nkind: Spicepod\nname: t\ndatasets:\n"
                              "  - from: file:data.csv\n    name: later\n    acceleration:\n      engine: arrow\n");
  sp_runtime *rt = NULL;
  sp_error err = {0};
  sp_runtime_options o = {0};
  assert_int_equal(sp_runtime_create(&o, &rt, &err), SP_OK);
  assert_int_equal(query_int(rt, "SELECT count(*) FROM later", &err), -1);
  assert_non_null(strstr(err.msg, "Acceleration not ready; loading initial data for later"));
  assert_int_equal(rename("data.csv.away", "data.csv"), 0);
  assert_int_equal(sp_runtime_start(rt, &err), SP_OK);
  for (int i = 0; i < 600 && !sp_runtime_ready(rt); i++) usleep(50000);
  ASSERT_QUERY(rt, "SELECT count(*) FROM later", 1000);
  sp_runtime_destroy(rt);
  write_file("spicepod.yaml", POD);
}

/* Appends rows (id, ts) for ids [from, to], ts = 2024-01-01 + id * 37 s (or `fixed_ts` when >= 0). */
static void write_events(const char *path, int from, int to, long fixed_ts) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("id,ts\n", f);
  for (int i = from; i <= to; i++) {
    time_t t = fixed_ts >= 0 ? (time_t)fixed_ts : 1704067200 + (time_t)i * 37;
    struct tm tm;
    char ts[32];
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(f, "%d,%s\n", i, ts);
  }
  fclose(f);
}

static void refresh_now(sp_runtime *rt, const char *name) {
  sp_error err = {0};
  assert_int_equal(sp_runtime_refresh(rt, name, NULL, NULL, &err), SP_OK);
  if (sp_runtime_wait_refresh(rt, name, 30000, &err) != SP_OK) fail_msg("%s", err.msg);
}

/* refresh_mode: append with a time_column: only newer rows are added, rows sharing the max timestamp are
 * neither lost nor duplicated, and an overlap window re-reads without duplicating. */
static void test_append_by_time_column(void **state) {
  write_events("events.csv", 1, 1000, -1);
  write_file("spicepod.yaml",
             "version: v1\nkind: Spicepod\nname: t\ndatasets:\n"
             "  - from: file:events.csv\n    name: ev_arrow\n    time_column: ts\n"
             "    acceleration:\n      engine: arrow\n      refresh_mode: append\n"
             "  - from: file:events.csv\n    name: ev_duck\n    time_column: ts\n"
             "    acceleration:\n      engine: duckdb\n      refresh_mode: append\n      refresh_append_overlap: 1h\n");
  sp_runtime *rt = start();
  const char *names[] = {"ev_arrow", "ev_duck"};
  for (int k = 0; k < 2; k++) {
    char q[200];
    snprintf(q, sizeof q, "SELECT count(*) * 100000 + count(DISTINCT id) FROM %s", names[k]);
    ASSERT_QUERY(rt, q, 1000 * 100000LL + 1000);
  }
  /* The source grows; one new row shares the newest timestamp already loaded. */
  FILE *f = fopen("events.csv", "a");
  assert_non_null(f);
  fclose(f);
  write_events("events.csv", 1, 1500, -1);
  f = fopen("events.csv", "a");
  fprintf(f, "%d,%s\n", 5000, "2024-01-01 10:16:40"); /* = ts of id 1000 (1704067200 + 37000) */
  fclose(f);
  for (int k = 0; k < 2; k++) {
    char q[200];
    refresh_now(rt, names[k]);
    snprintf(q, sizeof q, "SELECT count(*) * 100000 + count(DISTINCT id) FROM %s", names[k]);
    ASSERT_QUERY(rt, q, 1501 * 100000LL + 1501);
    refresh_now(rt, names[k]); /* nothing new: nothing added */
    ASSERT_QUERY(rt, q, 1501 * 100000LL + 1501);
  }
  sp_runtime_destroy(rt);
  write_file("spicepod.yaml", POD);
}

/* Rows (id, ts) with ts = now - id * 37 s for id 1..n, and, with no_time_row, a row n + 1 without a time. */
static void write_recent(const char *path, int n, int no_time_row) {
  time_t now = time(NULL);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("id,ts\n", f);
  for (int i = 1; i <= n; i++) {
    time_t t = now - (time_t)i * 37;
    struct tm tm;
    char ts[32];
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(f, "%d,%s\n", i, ts);
  }
  if (no_time_row) fprintf(f, "%d,\n", n + 1);
  fclose(f);
}

/* refresh_data_window keeps only recent rows on a full refresh. */
static void test_refresh_data_window(void **state) {
  write_recent("recent.csv", 1000, 0);
  write_file("spicepod.yaml",
             "version: v1\nkind: Spicepod\nname: t\ndatasets:\n"
             "  - from: file:recent.csv\n    name: recent\n    time_column: ts\n"
             "    acceleration:\n      engine: arrow\n      refresh_data_window: 1h\n");
  sp_runtime *rt = start();
  ASSERT_QUERY(rt, "SELECT count(*) FROM recent", 97); /* 97 * 37 s < 1 h < 98 * 37 s */
  sp_runtime_destroy(rt);
  write_file("spicepod.yaml", POD);
}

/* Retention deletes exactly the rows older than retention_period, in both engines, without a refresh. */
static void test_retention(void **state) {
  write_recent("ret.csv", 500, 1); /* and row 501 without a time: never evicted */
  write_file("spicepod.yaml",
             "version: v1\nkind: Spicepod\nname: t\ndatasets:\n"
             "  - from: file:ret.csv\n    name: ret_a\n    time_column: ts\n    acceleration:\n      engine: arrow\n"
             "      retention_check_enabled: true\n      retention_period: 1h\n      retention_check_interval: 1s\n"
             "  - from: file:ret.csv\n    name: ret_d\n    time_column: ts\n    acceleration:\n      engine: duckdb\n"
             "      retention_check_enabled: true\n      retention_period: 1h\n      retention_check_interval: 1s\n");
  sp_runtime *rt = start();
  const char *names[] = {"ret_a", "ret_d"};
  for (int k = 0; k < 2; k++) {
    char q[200];
    sp_error err = {0};
    snprintf(q, sizeof q, "SELECT count(*) FROM %s", names[k]);
    int64_t n = -1;
    for (int i = 0; i < 100 && (n = query_int(rt, q, &err)) != 98; i++) usleep(100000);
    /* 97 rows inside the hour (97 * 37 s < 1 h < 98 * 37 s) and the row without a time */
    ASSERT_QUERY(rt, q, 98);
    snprintf(q, sizeof q, "SELECT count(*) FROM %s WHERE ts < now()::TIMESTAMP - INTERVAL 1 HOUR", names[k]);
    ASSERT_QUERY(rt, q, 0);
  }
  sp_runtime_destroy(rt);
  write_file("spicepod.yaml", POD);
}

/* retention_sql deletes what its condition selects; anything but DELETE FROM <dataset> WHERE … is refused. */
static void test_retention_sql(void **state) {
  write_csv("data.csv", 1000);
  write_file("spicepod.yaml", "version: v1\nkind: Spicepod\nname: t\ndatasets:\n"
                              "  - from: file:data.csv\n    name: rs\n    acceleration:\n      engine: arrow\n"
                              "      retention_check_enabled: true\n      retention_check_interval: 1s\n"
                              "      retention_sql: DELETE FROM rs WHERE grp = 'g1' OR id > 900\n");
  sp_runtime *rt = start();
  sp_error err = {0};
  int64_t n = -1;
  /* 1000 rows; g1 = ids with id % 3 == 1 (334 of them); ids > 900 not in g1: 66 */
  for (int i = 0; i < 100 && (n = query_int(rt, "SELECT count(*) FROM rs", &err)) != 600; i++) usleep(100000);
  ASSERT_QUERY(rt, "SELECT count(*) FROM rs", 600);
  ASSERT_QUERY(rt, "SELECT count(*) FROM rs WHERE grp = 'g1' OR id > 900", 0);
  sp_runtime_destroy(rt);
  write_file("spicepod.yaml", "version: v1\nkind: Spicepod\nname: t\ndatasets:\n"
                              "  - from: file:data.csv\n    name: rs\n    acceleration:\n      engine: arrow\n"
                              "      retention_check_enabled: true\n      retention_check_interval: 1s\n"
                              "      retention_sql: DELETE FROM rs WHERE id > 1; COPY rs TO '/tmp/x'\n");
  rt = start();
  usleep(1500000);
  ASSERT_QUERY(rt, "SELECT count(*) FROM rs", 1000); /* refused: nothing deleted */
  sp_runtime_destroy(rt);
  write_file("spicepod.yaml", POD);
}

/* A refresh mode the source cannot do is a clear start-up error, not a silent full refresh. */
static void test_refresh_mode_needs_support(void **state) {
  write_file("spicepod.yaml", "version: v1\nkind: Spicepod\nname: t\ndatasets:\n"
                              "  - from: file:data.csv\n    name: cdc\n    acceleration:\n      engine: duckdb\n"
                              "      refresh_mode: changes\n");
  sp_runtime *rt = NULL;
  sp_error err = {0};
  sp_runtime_options o = {0};
  assert_int_not_equal(sp_runtime_create(&o, &rt, &err), SP_OK);
  assert_non_null(strstr(err.msg, "refresh_mode: changes needs a change stream, which the file connector does not have"));
  write_file("spicepod.yaml", POD);
}

/* refresh_on_startup: always refreshes a file accelerator at start even though it has a copy. */
static void test_refresh_on_startup_always(void **state) {
  write_file("spicepod.yaml", "version: v1\nkind: Spicepod\nname: t\ndatasets:\n"
                              "  - from: file:data.csv\n    name: st\n    acceleration:\n      engine: duckdb\n"
                              "      mode: file\n      refresh_on_startup: always\n");
  write_csv("data.csv", 1000);
  sp_runtime *rt = start();
  ASSERT_QUERY(rt, "SELECT count(*) FROM st", 1000);
  sp_runtime_destroy(rt);
  write_csv("data.csv", 1200);
  sp_error err = {0};
  sp_runtime_options o = {0};
  assert_int_equal(sp_runtime_create(&o, &rt, &err), SP_OK);
  assert_int_equal(sp_runtime_start(rt, &err), SP_OK);
  int64_t n = -1;
  for (int i = 0; i < 100 && (n = query_int(rt, "SELECT count(*) FROM st", &err)) != 1200; i++) usleep(100000);
  ASSERT_QUERY(rt, "SELECT count(*) FROM st", 1200);
  sp_runtime_destroy(rt);
  write_csv("data.csv", 1000);
  write_file("spicepod.yaml", POD);
}

/* ready_state: on_registration answers from the source before the first load, and is ready at once. */
static void test_ready_on_registration(void **state) {
  write_file("spicepod.yaml", "version: v1\nkind: Spicepod\nname: t\ndatasets:\n"
                              "  - from: file:data.csv\n    name: early\n    ready_state: on_registration\n"
                              "    acceleration:\n      engine: arrow\n");
  sp_runtime *rt = NULL;
  sp_error err = {0};
  sp_runtime_options o = {0};
  assert_int_equal(sp_runtime_create(&o, &rt, &err), SP_OK);
  assert_true(sp_runtime_ready(rt)); /* nothing loaded yet */
  ASSERT_QUERY(rt, "SELECT count(*) FROM early", 1000); /* from the file itself */
  sp_runtime_destroy(rt);
  write_file("spicepod.yaml", POD);
}

/* file_watcher: enabled refreshes the dataset when its file changes, with no interval and no request. */
static void test_file_watcher(void **state) {
  write_file("spicepod.yaml", "version: v1\nkind: Spicepod\nname: t\ndatasets:\n"
                              "  - from: file:data.csv\n    name: watched\n    acceleration:\n      engine: arrow\n"
                              "      params:\n        file_watcher: enabled\n");
  write_csv("data.csv", 1000);
  sp_runtime *rt = start();
  ASSERT_QUERY(rt, "SELECT count(*) FROM watched", 1000);
  write_csv("data.csv.tmp", 1300);
  assert_int_equal(rename("data.csv.tmp", "data.csv"), 0);
  sp_error err = {0};
  int64_t n = -1;
  for (int i = 0; i < 100 && (n = query_int(rt, "SELECT count(*) FROM watched", &err)) != 1300; i++) usleep(100000);
  ASSERT_QUERY(rt, "SELECT count(*) FROM watched", 1300);
  sp_runtime_destroy(rt);
  write_csv("data.csv", 1000);
  write_file("spicepod.yaml", POD);
}

/* on_zero_results: use_source answers from the source when the accelerated copy has no matching row. */
static void test_zero_results_use_source(void **state) {
  write_csv("data.csv", 1000);
  write_file("spicepod.yaml", "version: v1\nkind: Spicepod\nname: t\ndatasets:\n"
                              "  - from: file:data.csv\n    name: zr\n    acceleration:\n      engine: arrow\n"
                              "      refresh_sql: SELECT * FROM zr WHERE id <= 500\n      on_zero_results: use_source\n");
  sp_runtime *rt = start();
  sp_engine *e = sp_runtime_engine(rt);
  ASSERT_QUERY(rt, "SELECT count(*) FROM zr", 500);                    /* the accelerated copy */
  uint64_t before = sp_engine_zero_results_fallbacks(e);
  ASSERT_QUERY(rt, "SELECT val::BIGINT FROM zr WHERE id = 900", 1800);  /* no row in the copy: the source has it */
  ASSERT_QUERY(rt, "SELECT z.val::BIGINT FROM zr z WHERE z.id > 990 ORDER BY z.id DESC", 2000);
  assert_int_equal(sp_engine_zero_results_fallbacks(e), before + 2);
  ASSERT_QUERY(rt, "SELECT val::BIGINT FROM zr WHERE id = 10", 20);     /* found: no fallback */
  ASSERT_QUERY(rt, "SELECT count(*) FROM zr WHERE id = 900", 0);        /* an aggregate returns a row: no fallback (as in Spice) */
  assert_int_equal(sp_engine_zero_results_fallbacks(e), before + 2);
  sp_runtime_destroy(rt);
  write_file("spicepod.yaml", POD);
}

/* Hot reload: unchanged datasets are untouched, removed ones go, changed and added ones load; a broken
 * spicepod is rejected and everything keeps serving. */
static void test_reload(void **state) {
  write_csv("data.csv", 1000);
  write_file("spicepod.yaml", POD);
  sp_runtime *rt = start();
  ASSERT_QUERY(rt, "SELECT count(*) FROM fed", 1000);
  sp_dataset_info before;
  assert_int_equal(sp_runtime_dataset_info(rt, 1, &before), SP_OK);
  assert_string_equal(before.name, "ddb");
  sp_error err = {0};
  int changes = -1;
  /* broken: rejected, nothing changes */
  write_file("spicepod.yaml", "version: v1\nkind: Spicepod\nname: t\ndatasets:\n  - from: file:data.csv\n    nam: x\n");
  assert_int_not_equal(sp_runtime_reload(rt, &changes, &err), SP_OK);
  assert_non_null(strstr(err.msg, "spicepod not reloaded"));
  ASSERT_QUERY(rt, "SELECT count(*) FROM fed", 1000);
  /* fed removed, mem changed (engine), extra added, ddb unchanged, the view changed */
  write_file("spicepod.yaml",
             "version: v1\nkind: Spicepod\nname: t\n"
             "datasets:\n"
             "  - from: file:data.csv\n    name: mem\n    acceleration:\n      enabled: true\n      engine: duckdb\n"
             "  - from: file:data.csv\n    name: ddb\n    acceleration:\n      engine: duckdb\n      mode: file\n"
             "  - from: file:data.csv\n    name: extra\n    acceleration:\n      engine: arrow\n"
             "views:\n  - name: joined\n    sql: SELECT count(*) AS n FROM extra\n");
  assert_int_equal(sp_runtime_reload(rt, &changes, &err), SP_OK);
  assert_int_equal(changes, 4);
  assert_int_equal(sp_runtime_dataset_count(rt), 3);
  for (int i = 0; i < 100 && !sp_runtime_ready(rt); i++) usleep(50000);
  ASSERT_QUERY(rt, "SELECT count(*) FROM extra", 1000);
  ASSERT_QUERY(rt, "SELECT count(*) FROM mem", 1000);
  assert_int_equal(query_int(rt, "SELECT count(*) FROM fed", &err), -1);
  sp_dataset_info after;
  assert_int_equal(sp_runtime_dataset_info(rt, 1, &after), SP_OK);
  assert_string_equal(after.name, "ddb");
  assert_true(after.last_refresh_ms == before.last_refresh_ms); /* not reloaded */
  for (int i = 0; i < 50 && query_int(rt, "SELECT n FROM joined", &err) != 1000; i++) usleep(50000);
  ASSERT_QUERY(rt, "SELECT n FROM joined", 1000);
  sp_runtime_destroy(rt);
  write_file("spicepod.yaml", POD);
}

/* An accelerated view is materialised like a dataset and refreshed on its interval. */
static void test_accelerated_view(void **state) {
  write_csv("data.csv", 1000);
  write_file("spicepod.yaml", "version: v1\nkind: Spicepod\nname: t\ndatasets:\n"
                              "  - from: file:data.csv\n    name: base\n    acceleration:\n      engine: arrow\n"
                              "views:\n  - name: per_group\n    sql: SELECT grp, count(*) AS n FROM base GROUP BY grp\n"
                              "    acceleration:\n      engine: duckdb\n      refresh_check_interval: 1s\n");
  sp_runtime *rt = start();
  sp_error err = {0};
  int64_t n = -1;
  for (int i = 0; i < 100 && (n = query_int(rt, "SELECT sum(n)::BIGINT FROM per_group", &err)) != 1000; i++) usleep(100000);
  ASSERT_QUERY(rt, "SELECT sum(n)::BIGINT FROM per_group", 1000);
  ASSERT_QUERY(rt, "SELECT count(*) FROM per_group", 3);
  write_csv("data.csv", 1200);
  refresh_now(rt, "base");
  for (int i = 0; i < 100 && (n = query_int(rt, "SELECT sum(n)::BIGINT FROM per_group", &err)) != 1200; i++) usleep(100000);
  ASSERT_QUERY(rt, "SELECT sum(n)::BIGINT FROM per_group", 1200); /* its next refresh saw the new base */
  sp_dataset_info info;
  int found = 0;
  for (size_t i = 0; i < sp_runtime_dataset_count(rt); i++)
    if (sp_runtime_dataset_info(rt, i, &info) == SP_OK && strcmp(info.name, "per_group") == 0) found = 1;
  assert_true(found);
  sp_runtime_destroy(rt);
  write_csv("data.csv", 1000);
  write_file("spicepod.yaml", POD);
}

/* A file accelerator serves its committed copy at the next start even when the source is gone. */
static void test_restart_serves_file_copy(void **state) {
  sp_runtime *rt = start();
  sp_runtime_destroy(rt);
  assert_int_equal(rename("data.csv", "data.csv.away"), 0);
  write_file("spicepod.yaml",
             "version: v1\nkind: Spicepod\nname: t\ndatasets:\n"
             "  - from: file:data.csv\n    name: ddb\n    acceleration:\n      engine: duckdb\n      mode: file\n");
  sp_error err = {0};
  sp_runtime_options o = {0};
  assert_int_equal(sp_runtime_create(&o, &rt, &err), SP_OK);
  assert_true(sp_runtime_ready(rt)); /* before start: served from the file */
  assert_int_equal(sp_runtime_start(rt, &err), SP_OK);
  int64_t n = query_int(rt, "SELECT count(*) FROM ddb", &err);
  assert_true(n == 1000 || n == 2000);
  sp_runtime_destroy(rt);
  assert_int_equal(rename("data.csv.away", "data.csv"), 0);
  write_file("spicepod.yaml", POD);
}

/* Pruned arrow scans answer exactly like the duckdb accelerator on the same data, and really prune. */
static void test_arrow_pruning_is_exact(void **state) {
  write_csv("data.csv", 20000); /* ~10 batches of 2048 rows */
  sp_runtime *rt = start();
  sp_engine *e = sp_runtime_engine(rt);
  sp_error rerr = {0};
  /* ddb is a file accelerator kept from the earlier tests: it serves its old copy until refreshed. */
  assert_int_equal(sp_runtime_refresh(rt, "ddb", NULL, NULL, &rerr), SP_OK);
  assert_int_equal(sp_runtime_wait_refresh(rt, "ddb", 30000, &rerr), SP_OK);
  ASSERT_QUERY(rt, "SELECT count(*) FROM ddb", 20000);
  static const char *const filters[] = {
      "id = 12345", "id = 0", "id BETWEEN 4000 AND 4100", "id >= 19990", "id < 3", "20 > id",
      "id > 100 AND val < 500", "id = 1.5", "val <= 10 AND grp = 'g1'", "id BETWEEN 9000 AND 8000",
      "m.id = 777", "id >= 1e4 AND id <= 10001.5", "val = 24690",
      "ts >= TIMESTAMP '2024-01-02 00:00:00' AND ts < TIMESTAMP '2024-01-02 06:00:00'",
      "ts = TIMESTAMP '2024-01-01 00:06:10'", "ts < '2024-01-01 01:00:00'", "ts > DATE '2024-01-09'",
      "CAST(ts AS DATE) = DATE '2024-01-03'", "amt > 498.5", "amt BETWEEN 1.5 AND 2.5", "amt IS NULL AND id < 100",
      "amt = 3.03", "ts >= '2024-01-05T12:00:00'",
  };
  for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
    char a[512], b[512];
    const char *f = filters[i];
    int aliased = strncmp(f, "m.", 2) == 0;
    snprintf(a, sizeof a, "SELECT count(*) * 1000003 + coalesce(sum(val), 0) FROM mem%s WHERE %s", aliased ? " m" : "", f);
    snprintf(b, sizeof b, "SELECT count(*) * 1000003 + coalesce(sum(val), 0) FROM ddb%s WHERE %s", aliased ? " m" : "", f);
    sp_error err = {0};
    int64_t want = query_int(rt, b, &err);
    assert_true(want >= 0);
    ASSERT_QUERY(rt, a, want);
  }
  /* A parameter drives the hints too. */
  sp_value p = {.type = SP_VALUE_INT, .v.i = 15000};
  sp_query_request req = {.sql = "SELECT count(*) FROM mem WHERE id = $1", .params = &p, .n_params = 1};
  struct ArrowArrayStream s;
  sp_error err = {0};
  uint64_t before = sp_engine_pruned_batches(e);
  assert_int_equal(sp_runtime_query(rt, &req, &s, &err), SP_OK);
  struct ArrowArray arr;
  assert_int_equal(s.get_next(&s, &arr), 0);
  assert_int_equal(((const int64_t *)arr.children[0]->buffers[1])[0], 1);
  arr.release(&arr);
  s.release(&s);
  assert_true(sp_engine_pruned_batches(e) > before);
  /* A CTE of the same name shadows the dataset: no hints may apply to it. */
  ASSERT_QUERY(rt, "WITH mem AS (SELECT 5 AS id) SELECT count(*) FROM mem WHERE id = 5", 1);
  sp_runtime_destroy(rt);
  write_csv("data.csv", 1000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_loads_and_queries),
      cmocka_unit_test(test_sandbox_refuses),
      cmocka_unit_test(test_refresh_is_atomic),
      cmocka_unit_test(test_restart_serves_file_copy),
      cmocka_unit_test(test_arrow_pruning_is_exact),
      cmocka_unit_test(test_not_ready_message),
      cmocka_unit_test(test_append_by_time_column),
      cmocka_unit_test(test_refresh_data_window),
      cmocka_unit_test(test_retention),
      cmocka_unit_test(test_ready_on_registration),
      cmocka_unit_test(test_file_watcher),
      cmocka_unit_test(test_zero_results_use_source),
      cmocka_unit_test(test_reload),
      cmocka_unit_test(test_accelerated_view),
      cmocka_unit_test(test_retention_sql),
      cmocka_unit_test(test_refresh_mode_needs_support),
      cmocka_unit_test(test_refresh_on_startup_always),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
