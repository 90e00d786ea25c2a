/* SPDX-License-Identifier: Apache-2.0
 *
 * The `arrow` accelerator: the dataset lives in memory as an immutable Arrow snapshot that the engine scans
 * with sp_arrow_scan('name'). A full refresh builds a complete new snapshot and then swaps the pointer, so
 * queries see the old data or the new, never a mix, and a failed refresh leaves the old one serving.
 * Memory only (Spice: "File mode not supported for Arrow engine").
 */
#include <stdio.h>
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
};
