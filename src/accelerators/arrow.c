/* SPDX-License-Identifier: Apache-2.0
 *
 * The `arrow` accelerator: the dataset lives in memory as an immutable Arrow snapshot that the engine scans
 * with sp_arrow_scan('name'). A full refresh builds a complete new snapshot and then swaps the pointer, so
 * queries see the old data or the new, never a mix, and a failed refresh leaves the old one serving.
 * Memory only (Spice: "File mode not supported for Arrow engine").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spice/accelerator.h"
#include "spice/arrow.h"
#include "spice/engine.h"
#include "spice/sqltext.h"

typedef struct arrow_accel {
  sp_accelerator base; /* must be first */
} arrow_accel;

static int arrow_open(sp_accelerator *self, sp_accel_state *state, sp_error *err) {
  memset(state, 0, sizeof *state);
  state->rows = -1;
  state->last_refresh_ms = -1;
  return SP_OK;
}

static void arrow_close(sp_accelerator *self) { sp_engine_remove_snapshot(self->engine, self->dataset->name); }

static int arrow_table_sql(sp_accelerator *self, char *buf, size_t n, sp_error *err);

/* `SELECT` of the copy's rows whose key the changes do not touch, then the changed rows that are not
 * deletions (the changes are read twice: once as a snapshot stream per use). */
static char *changes_sql(sp_accelerator *self, const sp_data_update *u, uint64_t tok0, uint64_t tok1, sp_error *err) {
  char scan[700], q[600];
  if (arrow_table_sql(self, scan, sizeof scan, err) != SP_OK) return NULL;
  size_t n = strlen(scan) + 512;
  for (size_t i = 0; i < u->n_primary_key; i++) n += 2 * (2 * strlen(u->primary_key[i]) + 3) + 40;
  char *s = malloc(n);
  if (s == NULL) {
    sp_fail(err, SP_ENOMEM, "out of memory");
    return NULL;
  }
  size_t o = (size_t)snprintf(s, n, "SELECT t.* FROM %s AS t ANTI JOIN sp_stream('%llu') AS c ON ", scan, (unsigned long long)tok0);
  for (size_t i = 0; i < u->n_primary_key; i++) {
    if (sp_sql_ident(q, sizeof q, u->primary_key[i]) != 0) {
      free(s);
      sp_fail(err, SP_EINVAL, "primary key column name too long");
      return NULL;
    }
    o += (size_t)snprintf(s + o, n - o, "%st.%s IS NOT DISTINCT FROM c.%s", i ? " AND " : "", q, q);
  }
  snprintf(s + o, n - o, " UNION ALL BY NAME SELECT * EXCLUDE (\"_op\") FROM sp_stream('%llu') WHERE \"_op\" <> 'delete'",
           (unsigned long long)tok1);
  return s;
}

/* Registers two streams over the changes (consumed). */
static int register_twice(sp_accelerator *self, sp_data_update *u, uint64_t tok[2], sp_error *err) {
  sp_snapshot *snap = NULL;
  struct ArrowArrayStream s0, s1;
  SP_TRY(sp_snapshot_from_stream(&u->stream, &snap, err));
  int rc = sp_snapshot_stream(snap, &s0, err);
  if (rc == SP_OK && (rc = sp_snapshot_stream(snap, &s1, err)) != SP_OK) sp_stream_release(&s0);
  sp_snapshot_unref(snap);
  SP_TRY(rc);
  if ((rc = sp_engine_stream_register(self->engine, &s0, &tok[0], err)) != SP_OK) {
    sp_stream_release(&s1);
    return rc;
  }
  if ((rc = sp_engine_stream_register(self->engine, &s1, &tok[1], err)) != SP_OK) sp_engine_stream_unregister(self->engine, tok[0]);
  return rc;
}

/* SP_UPDATE_CHANGES: the next snapshot is the current one without the changed keys plus the new versions of
 * the rows, computed by the engine and published whole (readers see one version at a time). It rewrites the
 * copy, so it suits small tables or infrequent changes; the duckdb engine applies changes in place. */
static int arrow_apply_changes(sp_accelerator *self, sp_data_update *u, int64_t *out_rows, sp_error *err) {
  uint64_t tok[2];
  if (u->n_primary_key == 0) {
    sp_stream_release(&u->stream);
    return sp_fail(err, SP_EINVAL, "dataset \"%s\": changes need a primary key", self->dataset->name);
  }
  sp_snapshot *current = sp_engine_pin_current(self->engine, self->dataset->name);
  if (current == NULL) {
    sp_stream_release(&u->stream);
    return sp_fail(err, SP_EBUSY, "dataset \"%s\": changes before the first load", self->dataset->name);
  }
  sp_snapshot_unref(current); /* one refresh at a time: nobody else publishes meanwhile */
  SP_TRY(register_twice(self, u, tok, err));
  char *sql = changes_sql(self, u, tok[0], tok[1], err);
  struct ArrowArrayStream rows;
  sp_snapshot *next = NULL;
  int rc = sql ? sp_engine_query_internal(self->engine, sql, &rows, err) : (err ? (int)err->code : SP_ENOMEM);
  free(sql);
  if (rc == SP_OK) rc = sp_snapshot_from_stream(&rows, &next, err);
  sp_engine_stream_unregister(self->engine, tok[0]);
  sp_engine_stream_unregister(self->engine, tok[1]);
  if (rc == SP_OK) rc = sp_engine_publish_snapshot(self->engine, self->dataset->name, next, err);
  if (rc == SP_OK && out_rows) *out_rows = next->rows;
  sp_snapshot_unref(next);
  return rc;
}

/* An APPEND builds a new snapshot from the current one's batches (shared, not copied) followed by the new
 * rows, then publishes it like a full refresh: readers still see one whole version at a time. */
static int arrow_add_data(sp_accelerator *self, sp_data_update *u, int64_t *out_rows, sp_error *err) {
  if (u->type == SP_UPDATE_CHANGES) return arrow_apply_changes(self, u, out_rows, err);
  sp_snapshot *current = u->type == SP_UPDATE_APPEND ? sp_engine_pin_current(self->engine, self->dataset->name) : NULL;
  sp_snapshot *snap;
  int arc = sp_snapshot_append(current, &u->stream, &snap, err);
  sp_snapshot_unref(current);
  SP_TRY(arc);
  int rc = sp_engine_publish_snapshot(self->engine, self->dataset->name, snap, err);
  if (rc == SP_OK && out_rows) *out_rows = snap->rows;
  sp_snapshot_unref(snap);
  return rc;
}

static int arrow_table_sql(sp_accelerator *self, char *buf, size_t n, sp_error *err) {
  char lit[600];
  if (sp_sql_literal(lit, sizeof lit, self->dataset->name) != 0 ||
      (size_t)snprintf(buf, n, "sp_arrow_scan(%s)", lit) >= n)
    return sp_fail(err, SP_EINVAL, "dataset name too long");
  return SP_OK;
}

/* Retention: the kept rows become the next snapshot (the condition is evaluated by the engine). */
static int arrow_delete_where(sp_accelerator *self, const char *condition, int64_t *out_deleted, sp_error *err) {
  sp_snapshot *current = sp_engine_pin_current(self->engine, self->dataset->name), *kept = NULL;
  if (current == NULL) return SP_OK; /* nothing loaded yet */
  char scan[700];
  int rc = arrow_table_sql(self, scan, sizeof scan, err);
  size_t n = strlen(scan) + 2 * strlen(condition) + 64;
  char *sql = rc == SP_OK ? malloc(n) : NULL;
  if (rc == SP_OK && sql == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  struct ArrowArrayStream rows;
  if (rc == SP_OK) {
    snprintf(sql, n, "SELECT * FROM %s WHERE (%s) IS NOT TRUE", scan, condition);
    rc = sp_engine_query_internal(self->engine, sql, &rows, err);
  }
  free(sql);
  if (rc == SP_OK) rc = sp_snapshot_from_stream(&rows, &kept, err);
  if (rc == SP_OK) rc = sp_engine_publish_snapshot(self->engine, self->dataset->name, kept, err);
  if (rc == SP_OK && out_deleted) *out_deleted = current->rows - kept->rows;
  sp_snapshot_unref(kept);
  sp_snapshot_unref(current);
  return rc;
}

const sp_accelerator_module sp_accelerator_arrow = {
    .abi = SP_ACCELERATOR_ABI,
    .name = "arrow",
    .prefix = "arrow",
    .params = (const sp_param_spec[]){{0}},
    .instance_size = sizeof(arrow_accel),
    .caps = SP_ACCEL_CAP_MEMORY | SP_ACCEL_CAP_APPEND | SP_ACCEL_CAP_CHANGES,
    .open = arrow_open,
    .close = arrow_close,
    .add_data = arrow_add_data,
    .table_sql = arrow_table_sql,
    .delete_where = arrow_delete_where,
};
