/* SPDX-License-Identifier: Apache-2.0
 *
 * The `duckdb` accelerator: the dataset is a DuckDB table, in memory or in its own database file
 * (`duckdb_file`, default `.spice/data/<dataset>.db`) attached to the serving database.
 *
 * A full refresh replaces the table inside one transaction (CREATE OR REPLACE ... AS SELECT from the
 * incoming stream, plus the checkpoint row), so readers see the old data or the new, and a process killed
 * mid-refresh leaves the last committed copy in the file: DuckDB writes a transaction to its WAL only at
 * commit. At the next start a file that holds the table is served before the source is reached.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <duckdb.h>

#include "spice/accelerator.h"
#include "spice/arrow.h"
#include "spice/engine.h"
#include "spice/log.h"
#include "spice/sqltext.h"

typedef struct duckdb_accel {
  sp_accelerator base; /* must be first */
  char catalog[300];   /* quoted: "acc_trips" (file) or the main database's "memory" */
  char table[700];     /* fully quoted table: "acc_trips"."main"."data" */
  char checkpoint[700];
  char path[4096];     /* file mode: the database file */
} duckdb_accel;

static const sp_param_spec duckdb_params[] = {
    {"file", SP_PARAM_STRING, SP_PARAM_PREFIXED, NULL, NULL, "database file for mode: file (default .spice/data/<dataset>.db)"},
    {"memory_limit", SP_PARAM_STRING, SP_PARAM_PREFIXED, NULL, NULL, "accepted for compatibility; the engine's limit applies"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

/* A catalog-safe alias from a dataset name: letters, digits and underscores. */
static void alias_of(const char *name, char *buf, size_t n) {
  size_t o = (size_t)snprintf(buf, n, "acc_");
  for (const char *p = name; *p && o + 1 < n; p++)
    buf[o++] = (char)((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ? *p : '_');
  buf[o] = '\0';
}

static int64_t now_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int duckdb_open_accel(sp_accelerator *self, sp_accel_state *state, sp_error *err) {
  duckdb_accel *a = (duckdb_accel *)self;
  char alias[280], sql[8600], lit[8300];
  alias_of(self->dataset->name, alias, sizeof alias);
  memset(state, 0, sizeof *state);
  state->rows = -1;
  state->last_refresh_ms = -1;
  if (self->dataset->acceleration.mode == SP_ACCEL_FILE) {
    const char *file = sp_params_get(&self->params, "duckdb_file");
    char cwd[2048] = "";
    if (file && *file && file[0] != '/' && getcwd(cwd, sizeof cwd) == NULL) cwd[0] = '\0';
    if (file && *file) snprintf(a->path, sizeof a->path, "%s%s%s", cwd, cwd[0] ? "/" : "", file);
    else snprintf(a->path, sizeof a->path, "%s/%s.db", self->data_dir, alias + 4);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", a->path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
      *slash = '\0';
      sp_engine_allow_directory(self->engine, dir, NULL); /* its WAL is written next to it */
    }
    sp_sql_literal(lit, sizeof lit, a->path);
    snprintf(sql, sizeof sql, "ATTACH IF NOT EXISTS %s AS \"%s\"", lit, alias);
    if (sp_engine_exec(self->engine, sql, err) != SP_OK) {
      sp_error_prefix(err, "could not open duckdb file \"%s\" for dataset \"%s\"", a->path, self->dataset->name);
      return SP_EIO;
    }
    snprintf(a->catalog, sizeof a->catalog, "\"%s\"", alias);
  } else {
    /* Memory mode: a schema of the serving database's own catalog. */
    snprintf(sql, sizeof sql, "CREATE SCHEMA IF NOT EXISTS \"%s\"", alias);
    SP_TRY(sp_engine_exec(self->engine, sql, err));
    snprintf(a->catalog, sizeof a->catalog, "memory.\"%s\"", alias);
  }
  if (self->dataset->acceleration.mode == SP_ACCEL_FILE) {
    snprintf(a->table, sizeof a->table, "%s.main.\"data\"", a->catalog);
    snprintf(a->checkpoint, sizeof a->checkpoint, "%s.main.spice_sys_dataset_checkpoint", a->catalog);
  } else {
    snprintf(a->table, sizeof a->table, "%s.\"data\"", a->catalog);
    snprintf(a->checkpoint, sizeof a->checkpoint, "%s.spice_sys_dataset_checkpoint", a->catalog);
  }
  /* Committed data from an earlier run: the checkpoint row is written in the same transaction as the data. */
  int64_t rows = -1, at = -1;
  snprintf(sql, sizeof sql, "SELECT rows FROM %s", a->checkpoint);
  if (sp_engine_query_int(self->engine, sql, &rows, NULL) == SP_OK && rows >= 0) {
    snprintf(sql, sizeof sql, "SELECT refreshed_at_ms FROM %s", a->checkpoint);
    sp_engine_query_int(self->engine, sql, &at, NULL);
    state->has_data = true;
    state->rows = rows;
    state->last_refresh_ms = at;
  }
  return SP_OK;
}

static void duckdb_close_accel(sp_accelerator *self) {
  duckdb_accel *a = (duckdb_accel *)self;
  if (self->dataset->acceleration.mode == SP_ACCEL_FILE && a->catalog[0]) {
    char sql[400];
    /* Fold the WAL into the file so the next start opens a clean database. */
    snprintf(sql, sizeof sql, "CHECKPOINT %s; DETACH %s", a->catalog, a->catalog);
    sp_engine_exec(self->engine, sql, NULL);
  }
}

/* Runs statements on one connection; on failure rolls back. */
static int run_in_tx(void *conn, const char *const *stmts, size_t n, sp_error *err) {
  duckdb_connection c = conn;
  duckdb_result r;
  for (size_t i = 0; i < n; i++) {
    if (duckdb_query(c, stmts[i], &r) == DuckDBError) {
      sp_fail(err, SP_EIO, "%s", duckdb_result_error(&r));
      duckdb_destroy_result(&r);
      if (i > 0) {
        duckdb_query(c, "ROLLBACK", &r);
        duckdb_destroy_result(&r);
      }
      return SP_EIO;
    }
    duckdb_destroy_result(&r);
  }
  return SP_OK;
}

/* ---- Change streams ------------------------------------------------------------------------------------------ */

/* `"t"."k1" IS NOT DISTINCT FROM "c"."k1" AND …` over the update's primary key. */
static char *key_match(const sp_data_update *u, sp_error *err) {
  size_t n = 16;
  for (size_t i = 0; i < u->n_primary_key; i++) n += 2 * (2 * strlen(u->primary_key[i]) + 3) + 40;
  char *s = malloc(n), q[600];
  if (s == NULL) {
    sp_fail(err, SP_ENOMEM, "out of memory");
    return NULL;
  }
  size_t o = 0;
  s[0] = '\0';
  for (size_t i = 0; i < u->n_primary_key; i++) {
    if (sp_sql_ident(q, sizeof q, u->primary_key[i]) != 0) {
      free(s);
      sp_fail(err, SP_EINVAL, "primary key column name too long");
      return NULL;
    }
    o += (size_t)snprintf(s + o, n - o, "%st.%s IS NOT DISTINCT FROM c.%s", i ? " AND " : "", q, q);
  }
  return s;
}

/* Two streams over the same changes (the delete and the insert each read them once). */
static int two_streams(sp_accelerator *self, sp_data_update *u, uint64_t tok[2], sp_error *err) {
  sp_snapshot *snap = NULL;
  struct ArrowArrayStream s[2];
  SP_TRY(sp_snapshot_from_stream(&u->stream, &snap, err));
  int rc = sp_snapshot_stream(snap, &s[0], err);
  if (rc == SP_OK && (rc = sp_snapshot_stream(snap, &s[1], err)) != SP_OK) sp_stream_release(&s[0]);
  sp_snapshot_unref(snap);
  SP_TRY(rc);
  if ((rc = sp_engine_stream_register(self->engine, &s[0], &tok[0], err)) != SP_OK) {
    sp_stream_release(&s[1]);
    return rc;
  }
  if ((rc = sp_engine_stream_register(self->engine, &s[1], &tok[1], err)) != SP_OK) {
    sp_engine_stream_unregister(self->engine, tok[0]);
    return rc;
  }
  return SP_OK;
}

/* SP_UPDATE_CHANGES: every key of the batch is deleted, the rows that are not deletions inserted, and the
 * checkpoint row (rows, position) updated, in one transaction: readers and a crash see all of it or none. */
static int apply_changes(duckdb_accel *a, sp_data_update *u, int64_t *out_rows, sp_error *err) {
  sp_accelerator *self = &a->base;
  uint64_t tok[2];
  char *match = u->n_primary_key ? key_match(u, err) : NULL;
  if (match == NULL) {
    sp_stream_release(&u->stream);
    return u->n_primary_key ? (err ? (int)err->code : SP_ENOMEM)
                            : sp_fail(err, SP_EINVAL, "dataset \"%s\": changes need a primary key", self->dataset->name);
  }
  int rc = two_streams(self, u, tok, err), registered = rc == SP_OK;
  size_t n = strlen(match) + 3 * sizeof a->table + 512;
  char *del = rc == SP_OK ? malloc(n) : NULL, ins[2400], ckpt[2400], pos[100] = "NULL";
  if (rc == SP_OK && del == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK) {
    if (u->position && sp_sql_literal(pos, sizeof pos, u->position) != 0) snprintf(pos, sizeof pos, "NULL");
    snprintf(del, n, "DELETE FROM %s AS t USING sp_stream('%llu') AS c WHERE %s", a->table, (unsigned long long)tok[0], match);
    snprintf(ins, sizeof ins, "INSERT INTO %s BY NAME SELECT * EXCLUDE (\"_op\") FROM sp_stream('%llu') WHERE \"_op\" <> 'delete'",
             a->table, (unsigned long long)tok[1]);
    snprintf(ckpt, sizeof ckpt, "UPDATE %s SET rows = (SELECT count(*) FROM %s), refreshed_at_ms = %lld, stream_position = %s",
             a->checkpoint, a->table, (long long)now_ms(), pos);
    const char *stmts[] = {"BEGIN TRANSACTION", del, ins, ckpt, "COMMIT"};
    void *conn;
    rc = sp_engine_conn_acquire(self->engine, &conn, err);
    if (rc == SP_OK) {
      rc = run_in_tx(conn, stmts, sizeof stmts / sizeof stmts[0], err);
      sp_engine_conn_release(self->engine, conn);
    }
  }
  if (rc != SP_OK && rc != SP_ENOMEM && err) sp_error_prefix(err, "could not apply changes to dataset \"%s\"", self->dataset->name);
  if (registered) { /* no-ops for the streams the statements consumed */
    sp_engine_stream_unregister(self->engine, tok[0]);
    sp_engine_stream_unregister(self->engine, tok[1]);
  }
  free(del);
  free(match);
  if (rc == SP_OK && out_rows) {
    snprintf(ins, sizeof ins, "SELECT rows FROM %s", a->checkpoint);
    sp_engine_query_int(self->engine, ins, out_rows, NULL);
  }
  return rc;
}

/* The position stored with the last update ("" when none or when the file predates positions). */
static int duckdb_position(sp_accelerator *self, char *buf, size_t n, sp_error *err) {
  duckdb_accel *a = (duckdb_accel *)self;
  char sql[800];
  (void)err;
  buf[0] = '\0';
  snprintf(sql, sizeof sql, "SELECT coalesce(stream_position, '') FROM %s", a->checkpoint);
  if (sp_engine_query_text(self->engine, sql, buf, n, NULL) != SP_OK) buf[0] = '\0';
  return SP_OK;
}

static int duckdb_add_data(sp_accelerator *self, sp_data_update *u, int64_t *out_rows, sp_error *err) {
  duckdb_accel *a = (duckdb_accel *)self;
  uint64_t token;
  if (u->type == SP_UPDATE_CHANGES) return apply_changes(a, u, out_rows, err);
  SP_TRY(sp_engine_stream_register(self->engine, &u->stream, &token, err));
  char load[1600], ckpt[1600], ckpt_row[1600];
  if (u->type == SP_UPDATE_OVERWRITE)
    snprintf(load, sizeof load, "CREATE OR REPLACE TABLE %s AS SELECT * FROM sp_stream('%llu')", a->table,
             (unsigned long long)token);
  else
    snprintf(load, sizeof load, "INSERT INTO %s SELECT * FROM sp_stream('%llu')", a->table, (unsigned long long)token);
  char pos[100] = "NULL";
  if (u->position && sp_sql_literal(pos, sizeof pos, u->position) != 0) snprintf(pos, sizeof pos, "NULL");
  snprintf(ckpt, sizeof ckpt, "CREATE OR REPLACE TABLE %s (rows BIGINT, refreshed_at_ms BIGINT, stream_position VARCHAR)",
           a->checkpoint);
  snprintf(ckpt_row, sizeof ckpt_row, "INSERT INTO %s SELECT count(*), %lld, %s FROM %s", a->checkpoint,
           (long long)now_ms(), pos, a->table);
  const char *stmts[] = {"BEGIN TRANSACTION", load, ckpt, ckpt_row, "COMMIT"};
  void *conn;
  int rc = sp_engine_conn_acquire(self->engine, &conn, err);
  if (rc == SP_OK) {
    rc = run_in_tx(conn, stmts, sizeof stmts / sizeof stmts[0], err);
    sp_engine_conn_release(self->engine, conn);
  }
  sp_engine_stream_unregister(self->engine, token); /* no-op when the load consumed it */
  if (rc != SP_OK) return rc;
  int64_t rows = -1;
  char sql[800];
  snprintf(sql, sizeof sql, "SELECT rows FROM %s", a->checkpoint);
  sp_engine_query_int(self->engine, sql, &rows, NULL);
  if (out_rows) *out_rows = rows;
  return SP_OK;
}

/* Retention: one DELETE and the checkpoint row, in one transaction. */
static int duckdb_delete_where(sp_accelerator *self, const char *condition, int64_t *out_deleted, sp_error *err) {
  duckdb_accel *a = (duckdb_accel *)self;
  int64_t before = -1, after = -1;
  char count[800];
  snprintf(count, sizeof count, "SELECT rows FROM %s", a->checkpoint);
  sp_engine_query_int(self->engine, count, &before, NULL);
  size_t n = strlen(condition) + sizeof a->table + 64;
  char *del = malloc(n), ckpt[1600];
  if (del == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  snprintf(del, n, "DELETE FROM %s WHERE %s", a->table, condition);
  snprintf(ckpt, sizeof ckpt, "UPDATE %s SET rows = (SELECT count(*) FROM %s)", a->checkpoint, a->table);
  const char *stmts[] = {"BEGIN TRANSACTION", del, ckpt, "COMMIT"};
  void *conn;
  int rc = sp_engine_conn_acquire(self->engine, &conn, err);
  if (rc == SP_OK) {
    rc = run_in_tx(conn, stmts, sizeof stmts / sizeof stmts[0], err);
    sp_engine_conn_release(self->engine, conn);
  }
  free(del);
  if (rc == SP_OK && out_deleted) {
    sp_engine_query_int(self->engine, count, &after, NULL);
    *out_deleted = before >= 0 && after >= 0 ? before - after : -1;
  }
  return rc;
}

static int duckdb_table_sql(sp_accelerator *self, char *buf, size_t n, sp_error *err) {
  duckdb_accel *a = (duckdb_accel *)self;
  if ((size_t)snprintf(buf, n, "%s", a->table) >= n) return sp_fail(err, SP_EINVAL, "buffer too small");
  return SP_OK;
}

const sp_accelerator_module sp_accelerator_duckdb = {
    .abi = SP_ACCELERATOR_ABI,
    .name = "duckdb",
    .prefix = "duckdb",
    .params = duckdb_params,
    .instance_size = sizeof(duckdb_accel),
    .caps = SP_ACCEL_CAP_MEMORY | SP_ACCEL_CAP_FILE | SP_ACCEL_CAP_APPEND | SP_ACCEL_CAP_CHANGES,
    .open = duckdb_open_accel,
    .close = duckdb_close_accel,
    .add_data = duckdb_add_data,
    .table_sql = duckdb_table_sql,
    .delete_where = duckdb_delete_where,
    .position = duckdb_position,
};
