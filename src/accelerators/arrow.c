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

/* An APPEND builds a new snapshot from the current one's batches (shared, not copied) followed by the new
 * rows, then publishes it like a full refresh: readers still see one whole version at a time. */
static int arrow_add_data(sp_accelerator *self, sp_data_update *u, int64_t *out_rows, sp_error *err) {
  if (u->type == SP_UPDATE_CHANGES) {
    sp_stream_release(&u->stream);
    return sp_fail(err, SP_ENOTSUP, "the arrow accelerator does not apply change streams yet");
  }
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
    .caps = SP_ACCEL_CAP_MEMORY | SP_ACCEL_CAP_APPEND,
    .open = arrow_open,
    .close = arrow_close,
    .add_data = arrow_add_data,
    .table_sql = arrow_table_sql,
    .delete_where = arrow_delete_where,
};
