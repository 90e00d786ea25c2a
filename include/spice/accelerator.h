/* SPDX-License-Identifier: Apache-2.0
 *
 * Data accelerators: the seed's DataBackend as a const method table (DESIGN §2). An accelerator keeps the
 * local copy of one dataset and exposes it to the query engine as a DuckDB table expression.
 *
 * Adding an accelerator: one file in src/accelerators/ exporting `const sp_accelerator_module
 * sp_accelerator_<name>`, plus one line in src/runtime/modules.def.
 *
 * Threads: add_data is called by one refresh at a time per dataset; queries read concurrently. An OVERWRITE
 * must be atomic: a query sees the old data or the new, never a mix and never an empty table.
 */
#ifndef SPICE_ACCELERATOR_H
#define SPICE_ACCELERATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spice/arrow_abi.h"
#include "spice/connector.h"
#include "spice/error.h"
#include "spice/params.h"
#include "spice/pod.h"

#define SP_ACCELERATOR_ABI 1

typedef struct sp_engine sp_engine;
typedef struct sp_accelerator_module sp_accelerator_module;

typedef struct sp_accelerator {
  const sp_accelerator_module *module;
  const sp_dataset_spec *dataset; /* borrowed; outlives the instance */
  sp_params params;               /* validated acceleration params; owned by the core */
  sp_engine *engine;              /* borrowed: the serving engine */
  const char *data_dir;           /* borrowed: absolute folder for file-mode data (".spice/data") */
} sp_accelerator;

enum {
  SP_ACCEL_CAP_FILE = 1u << 0,    /* supports mode: file */
  SP_ACCEL_CAP_MEMORY = 1u << 1,  /* supports mode: memory */
  SP_ACCEL_CAP_APPEND = 1u << 2,  /* add_data accepts SP_UPDATE_APPEND */
  SP_ACCEL_CAP_CHANGES = 1u << 3, /* add_data accepts SP_UPDATE_CHANGES */
};

/* What a file accelerator found from an earlier run. */
typedef struct sp_accel_state {
  bool has_data;            /* a committed copy exists and can be served now */
  int64_t rows;             /* rows in it, -1 unknown */
  int64_t last_refresh_ms;  /* unix ms of its last successful refresh, -1 unknown */
} sp_accel_state;

struct sp_accelerator_module {
  uint32_t abi;               /* SP_ACCELERATOR_ABI; fields are only ever appended */
  const char *name;           /* acceleration.engine: "arrow", "duckdb" */
  const char *prefix;         /* parameter prefix: "duckdb" */
  const sp_param_spec *params;
  size_t instance_size;       /* >= sizeof(sp_accelerator) */
  uint32_t caps;              /* SP_ACCEL_CAP_* */

  /* Required. Creates or attaches the storage. A file-mode accelerator reports a copy left by an earlier
   * run in *state, so the dataset can serve it before its source is reached. */
  int (*open)(sp_accelerator *self, sp_accel_state *state, sp_error *err);
  /* Required. Releases the storage; cannot fail. Committed file data stays on disk. */
  void (*close)(sp_accelerator *self);
  /* Required. Applies an update; consumes update->stream even on failure. On failure the previous copy is
   * left exactly as it was. `out_rows` (may be NULL) receives the rows written. */
  int (*add_data)(sp_accelerator *self, sp_data_update *update, int64_t *out_rows, sp_error *err);
  /* Required. Writes into buf the DuckDB table expression that reads the current copy
   * (e.g. `sp_arrow_scan('trips')` or `"acc_trips"."main"."trips"`). Returns SP_EINVAL if buf is short. */
  int (*table_sql)(sp_accelerator *self, char *buf, size_t n, sp_error *err);

  /* Optional (retention). Deletes the rows for which `condition` (a DuckDB boolean expression over the
   * dataset's columns, written by the runtime) is true, atomically like an OVERWRITE. */
  int (*delete_where)(sp_accelerator *self, const char *condition, int64_t *out_deleted, sp_error *err);

  /* Optional (change streams). Writes into buf the sp_data_update.position stored with the last committed
   * update ("" when none, e.g. after a plain refresh or in memory mode after a restart). */
  int (*position)(sp_accelerator *self, char *buf, size_t n, sp_error *err);
};

#endif
