/* SPDX-License-Identifier: Apache-2.0
 *
 * refresh_mode: changes — a dataset kept up to date by its connector's change stream (e.g. PostgreSQL
 * logical replication) instead of polling.
 *
 * The stream runs on a thread of its own, started from the dataset's task thread, which then only waits
 * for the dataset to stop and sets the sink's stop flag. The connector pushes an OVERWRITE (its full load)
 * and then CHANGES batches; each is applied by the accelerator in one transaction together with the
 * stream's position, and the push returns only after that commit, so the connector confirms a position to
 * its source only once it is safe. A stream that fails is started again from the last committed position
 * with Fibonacci backoff (1 s … 300 s); the copy keeps serving meanwhile and the status says Error.
 *
 * Connectors may send changed values as text (pgoutput does): before the accelerator sees a batch, its
 * columns are cast to the copy's own column types by the engine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/runtime_int.h"
#include "spice/arrow.h"
#include "spice/log.h"
#include "spice/sqltext.h"

typedef struct changes_task {
  sp_dataset *ds;
  volatile int stop;
  char position[128];   /* the last committed position ("" none) */
  uint64_t pushes;      /* updates applied since start */
  char *columns;        /* the copy's "name\x1ftype\x1e…", cached until the next OVERWRITE */
} changes_task;

/* ---- Casting text changes to the copy's types ------------------------------------------------------------- */

/* The copy's columns and DuckDB types, as `name US type RS name US type …`. */
static int copy_columns(changes_task *t, sp_error *err) {
  if (t->columns) return SP_OK;
  char table[2048], *sql = malloc(4096), *buf = malloc(65536);
  int rc = sql && buf ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK) rc = t->ds->amod->table_sql(t->ds->accel, table, sizeof table, err);
  if (rc == SP_OK) {
    snprintf(sql, 4096, "SELECT string_agg(column_name || chr(31) || column_type, chr(30)) FROM (DESCRIBE SELECT * FROM %s)", table);
    rc = sp_engine_query_text(t->ds->rt->engine, sql, buf, 65536, err);
  }
  free(sql);
  if (rc == SP_OK) t->columns = buf;
  else free(buf);
  return rc;
}

/* The source column's format by name, or NULL when the batch does not have it. */
static const char *source_format(const struct ArrowSchema *s, const char *name) {
  for (int64_t i = 0; i < s->n_children; i++)
    if (s->children[i]->name && strcmp(s->children[i]->name, name) == 0) return s->children[i]->format;
  return NULL;
}

/* Appends to sql the expression turning column q (quoted) of format fmt into `type`. Text in PostgreSQL's
 * forms that DuckDB does not cast itself: bytea ('\x0aff') and arrays ('{1,2}'). */
static void cast_expr(char *sql, size_t n, const char *q, const char *fmt, const char *type) {
  size_t o = strlen(sql), tl = strlen(type);
  int text = fmt && (strcmp(fmt, "u") == 0 || strcmp(fmt, "U") == 0 || strcmp(fmt, "vu") == 0);
  if (text && strcmp(type, "BLOB") == 0)
    snprintf(sql + o, n - o, "CASE WHEN starts_with(%s, '\\x') THEN unhex(substr(%s, 3)) ELSE CAST(%s AS BLOB) END", q, q, q);
  else if (text && tl > 2 && strcmp(type + tl - 2, "[]") == 0)
    snprintf(sql + o, n - o, "CAST('[' || substr(%s, 2, length(%s) - 2) || ']' AS %s)", q, q, type);
  else if (text) /* what the type cannot hold (numeric NaN, ±infinity dates) becomes NULL, as in a load */
    snprintf(sql + o, n - o, "TRY_CAST(%s AS %s)", q, type);
  else
    snprintf(sql + o, n - o, "CAST(%s AS %s)", q, type);
}

/* `SELECT "_op", CAST(…) AS "col", … FROM sp_stream('token')` over the copy's columns the batch has. */
static int cast_sql(changes_task *t, const struct ArrowSchema *src, uint64_t token, char **out, sp_error *err) {
  size_t n = 256 + 4 * strlen(t->columns) * 4 + 64;
  char *sql = malloc(n), q[600];
  if (sql == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  snprintf(sql, n, "SELECT \"_op\"");
  for (char *p = t->columns; p && *p;) {
    char *us = strchr(p, '\x1f'), *rs = us ? strchr(us, '\x1e') : NULL;
    if (us == NULL) break;
    char name[512], type[256];
    snprintf(name, sizeof name, "%.*s", (int)(us - p), p);
    snprintf(type, sizeof type, "%.*s", (int)(rs ? rs - us - 1 : (long)strlen(us + 1)), us + 1);
    p = rs ? rs + 1 : us + strlen(us);
    const char *fmt = source_format(src, name);
    if (fmt == NULL || sp_sql_ident(q, sizeof q, name) != 0) continue;
    strncat(sql, ", ", n - strlen(sql) - 1);
    cast_expr(sql, n, q, fmt, type);
    size_t o = strlen(sql);
    snprintf(sql + o, n - o, " AS %s", q);
  }
  size_t o = strlen(sql);
  snprintf(sql + o, n - o, " FROM sp_stream('%llu')", (unsigned long long)token);
  *out = sql;
  return SP_OK;
}

/* Replaces u->stream by the same changes with the copy's column types (materialised: the accelerator runs
 * its own statements over it). */
static int cast_changes(changes_task *t, sp_data_update *u, sp_error *err) {
  sp_engine *e = t->ds->rt->engine;
  struct ArrowSchema src;
  uint64_t token;
  char *sql = NULL;
  int rc = copy_columns(t, err);
  if (rc == SP_OK && u->stream.get_schema(&u->stream, &src) != 0) rc = sp_fail(err, SP_EIO, "change stream has no schema");
  if (rc != SP_OK) {
    sp_stream_release(&u->stream);
    return rc;
  }
  rc = sp_engine_stream_register(e, &u->stream, &token, err); /* consumes it */
  if (rc == SP_OK) rc = cast_sql(t, &src, token, &sql, err);
  sp_schema_release(&src);
  struct ArrowArrayStream rows;
  sp_snapshot *snap = NULL;
  if (rc == SP_OK) rc = sp_engine_query_internal(e, sql, &rows, err);
  if (rc == SP_OK) rc = sp_snapshot_from_stream(&rows, &snap, err);
  if (sql) sp_engine_stream_unregister(e, token);
  free(sql);
  if (rc == SP_OK) rc = sp_snapshot_stream(snap, &u->stream, err);
  sp_snapshot_unref(snap);
  return rc;
}

/* ---- The sink ---------------------------------------------------------------------------------------------- */

/* After a committed update (u NULL: the stream is live with nothing to apply): the dataset is ready. */
static void committed(changes_task *t, const sp_data_update *u, int64_t rows) {
  sp_dataset *ds = t->ds;
  sp_runtime *rt = ds->rt;
  if (u) snprintf(t->position, sizeof t->position, "%s", u->position ? u->position : "");
  t->pushes++;
  pthread_mutex_lock(&rt->lock);
  ds->rows = rows;
  ds->status = SP_STATUS_READY;
  ds->error[0] = '\0';
  ds->ready_once = 1;
  ds->attempt = 0;
  ds->last_refresh_ms = sp__now_ms();
  ds->generation++;
  ds->served = ds->requested;
  pthread_cond_broadcast(&rt->cond);
  pthread_mutex_unlock(&rt->lock);
}

static int push(sp_update_sink *sink, sp_data_update *u, sp_error *err) {
  changes_task *t = sink->ctx;
  sp_dataset *ds = t->ds;
  int64_t rows = -1, t0 = sp__now_ms();
  if (u->stream.release == NULL) { /* nothing to apply: the stream is live again */
    pthread_mutex_lock(&ds->rt->lock);
    rows = ds->rows;
    pthread_mutex_unlock(&ds->rt->lock);
    committed(t, NULL, rows);
    return SP_OK;
  }
  if (u->type == SP_UPDATE_CHANGES) SP_TRY(cast_changes(t, u, err));
  __atomic_add_fetch(&ds->rt->data_version, 1, __ATOMIC_RELEASE);
  int rc = ds->amod->add_data(ds->accel, u, &rows, err);
  if (rc == SP_OK && u->type == SP_UPDATE_OVERWRITE) {
    free(t->columns); /* the load may have changed the copy's types */
    t->columns = NULL;
    rc = sp__define_dataset_table(ds, err);
  }
  __atomic_add_fetch(&ds->rt->data_version, 1, __ATOMIC_RELEASE);
  if (rc != SP_OK) return rc;
  committed(t, u, rows);
  if (u->type == SP_UPDATE_OVERWRITE) {
    sp_log_info("dataset \"%s\" loaded %lld rows in %.2f s (change stream at %s)", ds->spec->name, (long long)rows,
                (double)(sp__now_ms() - t0) / 1000.0, u->position ? u->position : "?");
    sp__define_views(ds->rt);
  } else {
    sp_log_debug("dataset \"%s\": applied changes up to %s (%lld rows)", ds->spec->name, u->position ? u->position : "?",
                 (long long)rows);
  }
  return SP_OK;
}

/* ---- The stream thread --------------------------------------------------------------------------------------- */

/* Fibonacci from 1 s, capped at 300 s, ±30 % (as refreshes retry). */
static int64_t backoff_ms(int attempt) {
  int64_t a = 1000, b = 1000;
  for (int i = 1; i < attempt && b < 300000; i++) {
    int64_t c = a + b;
    a = b;
    b = c;
  }
  int64_t base = a > 300000 ? 300000 : a;
  return base * (70 + rand() % 61) / 100;
}

static void sleep_unless_stopped(changes_task *t, int64_t ms) {
  for (int64_t slept = 0; slept < ms && !t->stop; slept += 100) {
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
  }
}

/* The stream failed: status Error with the message; delay < 0: it is not started again. */
static void failed(changes_task *t, const sp_error *err, int attempt, int64_t delay) {
  sp_dataset *ds = t->ds;
  pthread_mutex_lock(&ds->rt->lock);
  ds->status = SP_STATUS_ERROR;
  snprintf(ds->error, sizeof ds->error, "%s", err->msg);
  ds->attempt = attempt;
  ds->refresh_errors++;
  ds->generation++;
  pthread_cond_broadcast(&ds->rt->cond);
  pthread_mutex_unlock(&ds->rt->lock);
  if (delay < 0) sp_log_error("%s", err->msg);
  else sp_log_warn("dataset \"%s\": change stream: %s (starting again in %.1f s)", ds->spec->name, err->msg, (double)delay / 1000.0);
}

static void *stream_thread(void *arg) {
  changes_task *t = arg;
  sp_dataset *ds = t->ds;
  int attempt = 0;
  while (!t->stop) {
    sp_error err = {0};
    uint64_t before = t->pushes;
    int rc = ds->conn ? SP_OK : sp__open_connector(ds, &err);
    if (rc == SP_OK) {
      sp_update_sink sink = {.push = push, .stop = &t->stop, .ctx = t, .resume_position = t->position[0] ? t->position : NULL};
      rc = ds->cmod->stream_updates(ds->conn, &sink, &err);
    }
    if (t->stop) break;
    attempt = t->pushes > before ? 1 : attempt + 1; /* a stream that made progress starts the backoff over */
    if (rc == SP_OK) sp_fail(&err, SP_EIO, "the change stream ended");
    int64_t delay = backoff_ms(attempt);
    failed(t, &err, attempt, delay);
    sleep_unless_stopped(t, delay);
  }
  return NULL;
}

void sp__changes_run(sp_dataset *ds) {
  sp_runtime *rt = ds->rt;
  changes_task t = {.ds = ds};
  pthread_t thread;
  int started = 0;
  if (!(ds->amod->caps & SP_ACCEL_CAP_CHANGES)) {
    sp_error err;
    sp_fail(&err, SP_ENOTSUP, "dataset \"%s\": the %s engine cannot apply changes (refresh_mode: changes)", ds->spec->name,
            ds->amod->name);
    failed(&t, &err, 1, -1); /* not retried: a configuration error */
  } else {
    /* A copy served from file resumes its stream where it left off. */
    if (ds->ready_once && ds->amod->position) ds->amod->position(ds->accel, t.position, sizeof t.position, NULL);
    started = pthread_create(&thread, NULL, stream_thread, &t) == 0;
  }
  pthread_mutex_lock(&rt->lock);
  while (!rt->stopping && !ds->stop) pthread_cond_wait(&rt->cond, &rt->lock);
  pthread_mutex_unlock(&rt->lock);
  t.stop = 1;
  if (started) pthread_join(thread, NULL);
  free(t.columns);
}
