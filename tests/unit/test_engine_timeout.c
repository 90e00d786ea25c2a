/* SPDX-License-Identifier: Apache-2.0
 *
 * runtime.query.timeout in the engine: a query past its timeout fails with SP_ETIMEDOUT and "query timed out
 * after …", both when DuckDB itself is busy (the interrupt) and when a federated scan waits on a source that
 * stopped answering (the scan's stop flag, which the source must see: interrupting DuckDB alone would wait
 * for it forever). The session is then reused cleanly, and a timeout of 0 means none.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "spice/arrow.h"
#include "spice/engine.h"

static void noop_schema(struct ArrowSchema *s) { s->release = NULL; }

static void one_column_schema(struct ArrowSchema *out) {
  static struct ArrowSchema x = {.format = "l", .name = "x", .flags = ARROW_FLAG_NULLABLE, .release = noop_schema};
  static struct ArrowSchema *kids[1] = {&x};
  *out = (struct ArrowSchema){.format = "+s", .name = "", .n_children = 1, .children = kids, .release = noop_schema};
}

/* A source that never sends a row: its stream waits until the reader's stop flag is set (at most 30 s, so a
 * broken engine fails the test instead of hanging it), as a connector on a stalled server does. */
typedef struct stalled_source {
  volatile int *stop; /* what the engine passed: must not be NULL for a user query */
  int opened, stopped;
} stalled_source;

static int stalled_schema(struct ArrowArrayStream *st, struct ArrowSchema *out) {
  (void)st;
  one_column_schema(out);
  return 0;
}

static int stalled_next(struct ArrowArrayStream *st, struct ArrowArray *out) {
  stalled_source *src = st->private_data;
  memset(out, 0, sizeof *out);
  for (int i = 0; i < 3000 && !(src->stop && __atomic_load_n(src->stop, __ATOMIC_ACQUIRE)); i++)
    nanosleep(&(struct timespec){.tv_nsec = 10 * 1000000L}, NULL);
  src->stopped = src->stop && __atomic_load_n(src->stop, __ATOMIC_ACQUIRE);
  return ECANCELED;
}

static const char *stalled_error(struct ArrowArrayStream *st) {
  (void)st;
  return "the read was stopped";
}

static void stalled_release(struct ArrowArrayStream *st) { st->release = NULL; }

static int stalled_open(void *ctx, const char *const *columns, size_t n_columns, int64_t limit,
                        const char *filter_query, volatile int *stop, struct ArrowArrayStream *out, sp_error *err) {
  (void)columns, (void)n_columns, (void)limit, (void)filter_query, (void)err;
  stalled_source *src = ctx;
  src->stop = stop;
  src->opened++;
  *out = (struct ArrowArrayStream){.get_schema = stalled_schema, .get_next = stalled_next,
                                   .get_last_error = stalled_error, .release = stalled_release, .private_data = src};
  return SP_OK;
}

/* Runs sql to its end; returns the status (from sp_engine_query, or from the stream's get_next). */
static int run(sp_engine *e, const char *sql, sp_error *err) {
  struct ArrowArrayStream st;
  sp_query_request req = {.sql = sql};
  int rc = sp_engine_query(e, &req, &st, err);
  if (rc != SP_OK) return rc;
  for (;;) {
    struct ArrowArray a;
    int n = st.get_next(&st, &a);
    if (n != 0) {
      rc = sp_fail(err, sp_status_from_errno(n, SP_EINVAL), "%s", st.get_last_error(&st));
      break;
    }
    if (a.release == NULL) break;
    a.release(&a);
  }
  st.release(&st);
  return rc;
}

static sp_engine *engine_with(int64_t timeout_ms, stalled_source *src) {
  sp_engine *e;
  sp_error err = {0};
  sp_engine_config cfg = {.threads = 2, .data_dir = "/tmp", .query_timeout_ms = timeout_ms};
  assert_int_equal(sp_engine_create(&cfg, &e, &err), SP_OK);
  struct ArrowSchema schema;
  one_column_schema(&schema);
  assert_int_equal(sp_engine_register_source(e, "stalled", &schema, stalled_open, src, &err), SP_OK);
  if (sp_engine_define_table(e, "stalled", "sp_source_scan('stalled')", 0, &err) != SP_OK) fail_msg("%s", err.msg);
  return e;
}

static void a_scan_waiting_on_a_source_is_stopped_at_the_timeout(void **state) {
  (void)state;
  stalled_source src = {0};
  sp_engine *e = engine_with(300, &src);
  sp_error err = {0};
  assert_int_equal(run(e, "SELECT count(*) FROM stalled", &err), SP_ETIMEDOUT);
  assert_string_equal(err.msg, "query timed out after 0.3s (runtime.query.timeout)");
  assert_int_equal(src.opened, 1);
  assert_non_null(src.stop);
  assert_true(src.stopped);
  /* The same session answers the next query. */
  assert_int_equal(run(e, "SELECT 42", &err), SP_OK);
  sp_engine_destroy(e);
}

static void a_busy_engine_is_interrupted_at_the_timeout(void **state) {
  (void)state;
  stalled_source src = {0};
  sp_engine *e = engine_with(300, &src);
  sp_error err = {0};
  /* Minutes of work for DuckDB, no source involved. */
  int rc = run(e, "SELECT count(*) FROM range(1000000) a, range(1000000) b WHERE a.range + b.range = -1", &err);
  assert_int_equal(rc, SP_ETIMEDOUT);
  assert_string_equal(err.msg, "query timed out after 0.3s (runtime.query.timeout)");
  assert_int_equal(run(e, "SELECT 42", &err), SP_OK);
  sp_engine_destroy(e);
}

static void no_timeout_and_a_changed_timeout(void **state) {
  (void)state;
  stalled_source src = {0};
  sp_engine *e = engine_with(0, &src);
  sp_error err = {0};
  assert_int_equal(run(e, "SELECT count(*) FROM range(1000000)", &err), SP_OK);
  /* A reload sets a timeout: queries that start from then on have it. */
  sp_engine_set_query_timeout(e, 1500);
  assert_int_equal(run(e, "SELECT count(*) FROM stalled", &err), SP_ETIMEDOUT);
  assert_string_equal(err.msg, "query timed out after 1.5s (runtime.query.timeout)");
  sp_engine_set_query_timeout(e, 0);
  assert_int_equal(run(e, "SELECT 1", &err), SP_OK);
  sp_engine_destroy(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_scan_waiting_on_a_source_is_stopped_at_the_timeout),
      cmocka_unit_test(a_busy_engine_is_interrupted_at_the_timeout),
      cmocka_unit_test(no_timeout_and_a_changed_timeout),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
