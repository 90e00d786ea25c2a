/* SPDX-License-Identifier: Apache-2.0
 *
 * One refresh of a dataset (spice-compat §3.1):
 *   full    read the source (refresh_sql and refresh_data_window applied at the source), replace the copy;
 *   append  with a time_column: read the rows at or after the accelerated copy's max(time_column) minus
 *           refresh_append_overlap, drop those already present (row equality), append the rest — rows that
 *           share the max timestamp are neither lost nor duplicated; without one: append a full read.
 * The filters are written as SQL over the dataset's own name and run by the connector at the source
 * (sp_scan.query); values come from the accelerated copy as typed literals, never from user text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/runtime_int.h"
#include "spice/arrow.h"
#include "spice/log.h"
#include "spice/sqltext.h"

/* An accelerated view reads the engine. The result is materialised before it is loaded, since the
 * accelerator may write to the database the view reads (views are usually small: aggregates, joins). */
static int read_view(sp_dataset *ds, const char *query, struct ArrowArrayStream *out, sp_error *err) {
  if (query)
    return sp_fail(err, SP_ENOTSUP, "view \"%s\": refresh_sql, refresh_data_window and append by time are not "
                   "supported for accelerated views", ds->spec->name);
  struct ArrowArrayStream rows;
  sp_snapshot *snap = NULL;
  int rc = sp_engine_query_internal(ds->rt->engine, ds->spec->view_sql, &rows, err);
  if (rc == SP_OK) rc = sp_snapshot_from_stream(&rows, &snap, err);
  if (rc == SP_OK) rc = sp_snapshot_stream(snap, out, err);
  sp_snapshot_unref(snap);
  if (rc != SP_OK) {
    sp_error_prefix(err, "view \"%s\"", ds->spec->name);
    return err ? (err->code = SP_EBUSY) : SP_EBUSY; /* usually a dataset it reads has not loaded yet: retried */
  }
  return rc;
}

/* Reads the source: a plain read, or `query` (SQL over the dataset's name) run by the connector. */
static int read_source(sp_dataset *ds, const char *query, struct ArrowArrayStream *out, sp_error *err) {
  if (ds->spec->view_sql) return read_view(ds, query, out, err);
  if (query == NULL) return ds->cmod->get_all_data(ds->conn, out, err);
  if (ds->cmod->scan == NULL)
    return sp_fail(err, SP_ENOTSUP, "dataset \"%s\": the %s connector cannot filter at the source (refresh_sql, "
                   "refresh_data_window and append need it)", ds->spec->name, ds->cmod->name);
  sp_scan scan = {.limit = -1, .query = query};
  return ds->cmod->scan(ds->conn, &scan, out, err);
}

/* Appends to *q (malloc'd, may be NULL) `SELECT * FROM (<inner>) AS "name" WHERE <cond>`, where inner is the
 * refresh_sql or the dataset itself. */
static int wrap_filter(sp_dataset *ds, const char *inner, const char *cond, char **q, sp_error *err) {
  char name[600];
  if (sp_sql_ident(name, sizeof name, ds->spec->name) != 0) return sp_fail(err, SP_EINVAL, "dataset name too long");
  size_t n = (inner ? strlen(inner) : 0) + strlen(cond) + 2 * strlen(name) + 64;
  char *out = malloc(n);
  if (out == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  if (inner) snprintf(out, n, "SELECT * FROM (%s) AS %s WHERE %s", inner, name, cond);
  else snprintf(out, n, "SELECT * FROM %s WHERE %s", name, cond);
  free(*q);
  *q = out;
  return SP_OK;
}

/* The time column, quoted. */
static int time_column(sp_dataset *ds, char *buf, size_t n, sp_error *err) {
  if (ds->spec->time_column == NULL) return sp_fail(err, SP_EINVAL, "dataset \"%s\" has no time_column", ds->spec->name);
  if (sp_sql_ident(buf, n, ds->spec->time_column) != 0) return sp_fail(err, SP_EINVAL, "time_column too long");
  return SP_OK;
}

/* `expr` moved back by `ms` in the column's own terms (time_format). */
static void minus_ms(const char *format, const char *expr, int64_t ms, char *buf, size_t n) {
  if (format && strcasecmp(format, "unix_seconds") == 0)
    snprintf(buf, n, "(%s - %lld)", expr, (long long)(ms / 1000));
  else if (format && strcasecmp(format, "unix_millis") == 0)
    snprintf(buf, n, "(%s - %lld)", expr, (long long)ms);
  else
    snprintf(buf, n, "(%s - INTERVAL '%lld milliseconds')", expr, (long long)ms);
}

/* A literal of a value the engine computes: a number as it is, anything else (timestamps, dates, text) as a
 * string constant, which both DuckDB and PostgreSQL compare by casting it to the column's type; a plain
 * constant is also what connectors that push filters accept. SP_ENOTFOUND when the value is NULL. */
static int engine_literal(sp_dataset *ds, const char *expr, const char *from, char *buf, size_t n, sp_error *err) {
  char sql[4096], type[128], text[512], lit[1100];
  snprintf(sql, sizeof sql, "SELECT typeof(%s) FROM %s", expr, from);
  SP_TRY(sp_engine_query_text(ds->rt->engine, sql, type, sizeof type, err));
  snprintf(sql, sizeof sql, "SELECT CAST(%s AS VARCHAR) FROM %s", expr, from);
  SP_TRY(sp_engine_query_text(ds->rt->engine, sql, text, sizeof text, err));
  static const char *const numeric[] = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                                       "USMALLINT", "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL"};
  for (size_t i = 0; i < sizeof numeric / sizeof numeric[0]; i++)
    if (strncmp(type, numeric[i], strlen(numeric[i])) == 0) {
      snprintf(buf, n, "%s", text);
      return SP_OK;
    }
  if (sp_sql_literal(lit, sizeof lit, text) != 0) return sp_fail(err, SP_EINVAL, "value too long");
  snprintf(buf, n, "%s", lit);
  return SP_OK;
}

/* `col > now - ms` as a condition with a typed literal, in the time column's own terms. */
static int since_condition(sp_dataset *ds, const char *op, int64_t ms, char *cond, size_t n, sp_error *err) {
  char col[600], now[64], since[256], lit[1400];
  SP_TRY(time_column(ds, col, sizeof col, err));
  const char *fmt = ds->spec->time_format;
  if (fmt && strcasecmp(fmt, "unix_seconds") == 0) snprintf(now, sizeof now, "epoch(now())::BIGINT");
  else if (fmt && strcasecmp(fmt, "unix_millis") == 0) snprintf(now, sizeof now, "epoch_ms(now())");
  else if (fmt && strcasecmp(fmt, "timestamptz") == 0) snprintf(now, sizeof now, "now()");
  else snprintf(now, sizeof now, "now()::TIMESTAMP");
  minus_ms(fmt, now, ms, since, sizeof since);
  SP_TRY(engine_literal(ds, since, "(SELECT 1)", lit, sizeof lit, err));
  snprintf(cond, n, "%s %s %s", col, op, lit);
  return SP_OK;
}

/* full + refresh_data_window: keep rows whose time column is after now - window. */
static int window_filter(sp_dataset *ds, char **query, sp_error *err) {
  char cond[2100];
  SP_TRY(since_condition(ds, ">", ds->spec->acceleration.refresh_data_window_ms, cond, sizeof cond, err));
  return wrap_filter(ds, *query, cond, query, err);
}

/* retention_sql: `DELETE FROM <dataset> WHERE <condition>`. The condition is checked as the WHERE of a read
 * of the dataset (one statement, nothing but reads), then handed to the accelerator. *cond is malloc'd. */
static int retention_sql_condition(sp_dataset *ds, const char *sql, char **cond, sp_error *err) {
  const char *p = sql;
  while (*p == ' ' || *p == '\t' || *p == '\n') p++;
  if (strncasecmp(p, "DELETE", 6) != 0) goto bad;
  for (p += 6; *p == ' ' || *p == '\t' || *p == '\n'; p++) {}
  if (strncasecmp(p, "FROM", 4) != 0) goto bad;
  for (p += 4; *p == ' ' || *p == '\t' || *p == '\n'; p++) {}
  size_t n = strlen(ds->spec->name);
  if (*p == '"') {
    if (strncmp(p + 1, ds->spec->name, n) != 0 || p[1 + n] != '"') goto bad;
    p += n + 2;
  } else {
    if (strncasecmp(p, ds->spec->name, n) != 0) goto bad;
    p += n;
  }
  for (; *p == ' ' || *p == '\t' || *p == '\n'; p++) {}
  if (strncasecmp(p, "WHERE", 5) != 0) goto bad;
  p += 5;
  char *check = NULL;
  SP_TRY(wrap_filter(ds, NULL, p, &check, err));
  int rc = sp_engine_check_sql(ds->rt->engine, check, err);
  free(check);
  SP_TRY(rc);
  if ((*cond = strdup(p)) == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  return SP_OK;
bad:
  return sp_fail(err, SP_EINVAL, "dataset \"%s\": retention_sql must be DELETE FROM %s WHERE <condition>",
                 ds->spec->name, ds->spec->name);
}

int sp__dataset_retention(sp_dataset *ds, sp_error *err) {
  const sp_acceleration_spec *a = &ds->spec->acceleration;
  char cond[2100];
  int64_t deleted = 0, more = 0;
  if (ds->amod->delete_where == NULL)
    return sp_fail(err, SP_ENOTSUP, "dataset \"%s\": the %s engine cannot delete rows for retention", ds->spec->name,
                   ds->amod->name);
  if (a->retention_period_ms > 0) {
    SP_TRY(since_condition(ds, "<", a->retention_period_ms, cond, sizeof cond, err));
    SP_TRY(ds->amod->delete_where(ds->accel, cond, &deleted, err));
  }
  if (a->retention_sql) {
    char *extra = NULL;
    SP_TRY(retention_sql_condition(ds, a->retention_sql, &extra, err));
    int rc = ds->amod->delete_where(ds->accel, extra, &more, err);
    free(extra);
    SP_TRY(rc);
    deleted += more;
  }
  if (deleted != 0) SP_TRY(sp__define_dataset_table(ds, err));
  sp_log_info("[retention] Evicted %lld records for %s", (long long)deleted, ds->spec->name);
  return SP_OK;
}

/* Progress of one load, logged every few seconds while it runs. */
typedef struct load_progress {
  const char *name;
  int64_t start_ms, last_log_ms, rows, bytes;
} load_progress;

static void on_progress(void *ctx, int64_t rows, int64_t bytes, int done) {
  load_progress *p = ctx;
  p->rows = rows;
  p->bytes = bytes;
  int64_t now = sp__now_ms();
  if (done || now - p->last_log_ms < 5000) return;
  p->last_log_ms = now;
  double secs = (double)(now - p->start_ms) / 1000.0;
  sp_log_info("dataset \"%s\": loading, %lld rows (%.1f MiB) so far, %.0f rows/s", p->name, (long long)rows,
              (double)bytes / 1048576.0, secs > 0 ? (double)rows / secs : 0.0);
}

/* Feeds `stream` (consumed) to the accelerator, metered and logged. */
static int load(sp_dataset *ds, sp_update_type type, struct ArrowArrayStream *stream, sp_error *err) {
  int64_t t0 = sp__now_ms(), rows = -1;
  load_progress progress = {.name = ds->spec->name, .start_ms = t0, .last_log_ms = t0};
  sp_data_update u = {.type = type};
  SP_TRY(sp_stream_meter(stream, on_progress, &progress, &u.stream, err));
  SP_TRY(ds->amod->add_data(ds->accel, &u, &rows, err));
  SP_TRY(sp__define_dataset_table(ds, err));
  double secs = (double)(sp__now_ms() - t0) / 1000.0, mib = (double)progress.bytes / 1048576.0;
  sp_log_info("dataset \"%s\" %s %lld rows (%.1f MiB) in %.2f s (%.0f rows/s, %.1f MiB/s)", ds->spec->name,
              type == SP_UPDATE_APPEND ? "appended" : "loaded", (long long)(type == SP_UPDATE_APPEND ? progress.rows : rows),
              mib, secs, secs > 0 ? (double)progress.rows / secs : 0.0, secs > 0 ? mib / secs : 0.0);
  pthread_mutex_lock(&ds->rt->lock);
  ds->rows = rows;
  pthread_mutex_unlock(&ds->rt->lock);
  return SP_OK;
}

/* Incremental append by time column: rows at or after (max - overlap) not already in the copy. */
static int append_by_time(sp_dataset *ds, const char *refresh_sql, sp_error *err) {
  const sp_acceleration_spec *a = &ds->spec->acceleration;
  char col[600], table[2048], from[2100], expr[1024], lit[1400], cond[2100];
  SP_TRY(time_column(ds, col, sizeof col, err));
  SP_TRY(ds->amod->table_sql(ds->accel, table, sizeof table, err));
  snprintf(from, sizeof from, "%s", table);
  snprintf(expr, sizeof expr, "max(%s)", col);
  if (a->refresh_append_overlap_ms > 0) {
    char plain[700];
    snprintf(plain, sizeof plain, "max(%s)", col);
    minus_ms(ds->spec->time_format, plain, a->refresh_append_overlap_ms, expr, sizeof expr);
  }
  pthread_mutex_lock(&ds->rt->lock);
  int has_copy = ds->ready_once;
  pthread_mutex_unlock(&ds->rt->lock);
  int rc = has_copy ? engine_literal(ds, expr, from, lit, sizeof lit, err) : SP_ENOTFOUND;
  if (rc == SP_ENOTFOUND) { /* no copy yet, or an empty one: load everything */
    struct ArrowArrayStream all;
    SP_TRY(read_source(ds, refresh_sql, &all, err));
    return load(ds, SP_UPDATE_OVERWRITE, &all, err);
  }
  SP_TRY(rc);
  snprintf(cond, sizeof cond, "%s >= %s", col, lit);
  char *query = NULL;
  struct ArrowArrayStream fetched, fresh;
  rc = wrap_filter(ds, refresh_sql, cond, &query, err);
  if (rc == SP_OK) rc = read_source(ds, query, &fetched, err);
  free(query);
  SP_TRY(rc);
  /* Drop what the copy already has: the fetched rows minus the copy's rows in the same window. */
  uint64_t token;
  SP_TRY(sp_engine_stream_register(ds->rt->engine, &fetched, &token, err));
  size_t n = strlen(table) + strlen(cond) + 128;
  char *dedup = malloc(n);
  if (dedup == NULL) {
    sp_engine_stream_unregister(ds->rt->engine, token);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  snprintf(dedup, n, "SELECT * FROM sp_stream('%llu') EXCEPT ALL SELECT * FROM %s WHERE %s", (unsigned long long)token,
           table, cond);
  /* Materialised first: the new rows are few, and the accelerator may write to the table this query reads. */
  struct ArrowArrayStream rows;
  sp_snapshot *snap = NULL;
  rc = sp_engine_query_internal(ds->rt->engine, dedup, &rows, err);
  free(dedup);
  if (rc == SP_OK) rc = sp_snapshot_from_stream(&rows, &snap, err);
  sp_engine_stream_unregister(ds->rt->engine, token);
  if (rc == SP_OK) rc = sp_snapshot_stream(snap, &fresh, err);
  sp_snapshot_unref(snap);
  SP_TRY(rc);
  return load(ds, SP_UPDATE_APPEND, &fresh, err);
}

int sp__dataset_refresh(sp_dataset *ds, const sp_refresh_job *job, sp_error *err) {
  if (ds->conn == NULL && ds->cmod) SP_TRY(sp__open_connector(ds, err));
  if (!ds->accelerated) return sp__define_dataset_table(ds, err);
  const char *refresh_sql = job->refresh_sql && *job->refresh_sql ? job->refresh_sql : NULL;
  if (refresh_sql) SP_TRY(sp_engine_check_sql(ds->rt->engine, refresh_sql, err));
  if (job->mode == SP_REFRESH_APPEND) {
    if (!(ds->amod->caps & SP_ACCEL_CAP_APPEND))
      return sp_fail(err, SP_ENOTSUP, "dataset \"%s\": the %s engine cannot append", ds->spec->name, ds->amod->name);
    if (ds->spec->time_column) return append_by_time(ds, refresh_sql, err);
    struct ArrowArrayStream all;
    SP_TRY(read_source(ds, refresh_sql, &all, err));
    return load(ds, SP_UPDATE_APPEND, &all, err);
  }
  char *query = refresh_sql ? strdup(refresh_sql) : NULL;
  int rc = SP_OK;
  if (ds->spec->acceleration.refresh_data_window_ms > 0) rc = window_filter(ds, &query, err);
  struct ArrowArrayStream stream;
  if (rc == SP_OK) rc = read_source(ds, query, &stream, err);
  free(query);
  SP_TRY(rc);
  return load(ds, SP_UPDATE_OVERWRITE, &stream, err);
}
