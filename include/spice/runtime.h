/* SPDX-License-Identifier: Apache-2.0
 *
 * The runtime: a loaded spicepod, its datasets (connector + accelerator + refresh task each), its views and
 * the engine that serves them. This is what the servers (HTTP, Flight) talk to; they never name a specific
 * connector or accelerator.
 *
 * Threads: every function here is safe to call from any thread once sp_runtime_start has returned.
 */
#ifndef SPICE_RUNTIME_H
#define SPICE_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

#include "spice/arrow_abi.h"
#include "spice/engine.h"
#include "spice/error.h"
#include "spice/pod.h"

typedef struct sp_runtime sp_runtime;

/* Component status, serialised by name as Spice does. */
typedef enum sp_status_kind {
  SP_STATUS_INITIALIZING = 1,
  SP_STATUS_READY,
  SP_STATUS_DISABLED,
  SP_STATUS_ERROR,
  SP_STATUS_REFRESHING,
  SP_STATUS_SHUTTING_DOWN,
} sp_status_kind;
const char *sp_status_kind_name(sp_status_kind s); /* "Ready", "Error", … */

typedef struct sp_runtime_options {
  const char *pod_path;   /* file or folder; NULL = current folder */
  const char *data_dir;   /* NULL = ".spice/data" under the current folder */
  int engine_threads;     /* 0 = cores */
} sp_runtime_options;

/* Loads the spicepod and registers every dataset and view (nothing is fetched yet). *out is owned by the
 * caller and freed with sp_runtime_destroy. */
int sp_runtime_create(const sp_runtime_options *opts, sp_runtime **out, sp_error *err);
/* Starts the initial loads (in parallel) and the refresh scheduler; returns at once. */
int sp_runtime_start(sp_runtime *rt, sp_error *err);
/* Stops refreshes and change streams, waits for them, closes accelerators consistently. NULL-safe. */
void sp_runtime_destroy(sp_runtime *rt);

/* True once every dataset has been Ready at least once. */
bool sp_runtime_ready(sp_runtime *rt);
const sp_pod *sp_runtime_pod(sp_runtime *rt); /* borrowed; lives as long as rt */
sp_engine *sp_runtime_engine(sp_runtime *rt); /* borrowed */

/* A counter that grows whenever any dataset's data may have changed (a refresh completed, a write landed).
 * A cached result taken at version v is stale once this returns anything else. */
uint64_t sp_runtime_data_version(sp_runtime *rt);

/* The schema of a statement's result without running it; see sp_engine_query_schema. */
int sp_runtime_query_schema(sp_runtime *rt, const sp_query_request *req, struct ArrowSchema *out, sp_error *err);

/* Runs one user statement; see sp_engine_query. */
int sp_runtime_query(sp_runtime *rt, const sp_query_request *req, struct ArrowArrayStream *out, sp_error *err);

/* Inserts `rows` (consumed, even on failure) into the `mode: read_write` dataset `dataset`: the rows are cast
 * to the dataset's schema by column name (missing columns are NULL; a value that does not convert fails with
 * SP_EINVAL naming the column), written to the source in one transaction, then appended to the accelerated
 * copy; it returns after both. *out_rows (may be NULL) receives the rows written. Errors: SP_ENOTFOUND (no such
 * dataset), SP_EDENIED (read-only dataset), SP_EBUSY (not loaded yet), the source's error (nothing applied),
 * or an error saying the source has the rows but the accelerator failed. Used by INSERT and Flight DoPut. */
int sp_runtime_insert(sp_runtime *rt, const char *dataset, struct ArrowArrayStream *rows, int64_t *out_rows, sp_error *err);

/* A snapshot of one dataset's state, for /v1/datasets and the CLI. Strings are copied into the struct. */
typedef struct sp_dataset_info {
  char name[256];
  char from[1024];
  bool acceleration_enabled;
  bool replication_enabled;
  sp_status_kind status;
  char error[1024];         /* last error when status is Error, else "" */
  int64_t rows;             /* rows in the accelerated copy, -1 unknown */
  int64_t last_refresh_ms;  /* unix ms, -1 never */
  int64_t refresh_errors;   /* failed refreshes since start */
  int64_t last_load_ms;     /* duration of the last successful refresh, -1 none */
} sp_dataset_info;

size_t sp_runtime_dataset_count(sp_runtime *rt);
/* Fills *out for dataset i (0-based, pod order). Returns SP_ENOTFOUND past the end. */
int sp_runtime_dataset_info(sp_runtime *rt, size_t i, sp_dataset_info *out);

typedef struct sp_refresh_overrides {
  const char *refresh_sql;  /* NULL: the dataset's own */
  const char *refresh_mode; /* NULL: the dataset's own; "full" | "append" */
} sp_refresh_overrides;

/* Triggers a refresh now (name matched case-insensitively). SP_ENOTFOUND: no such dataset ("Dataset X not
 * found"); SP_EINVAL: not accelerated ("Dataset X does not have acceleration enabled") or bad override.
 * `canonical` (may be NULL, 256 bytes) receives the dataset's name as written in the spicepod. */
int sp_runtime_refresh(sp_runtime *rt, const char *name, const sp_refresh_overrides *ov, char *canonical,
                       sp_error *err);
/* Replaces the dataset's refresh_sql until restart (PATCH /v1/datasets/{name}/acceleration). */
int sp_runtime_set_refresh_sql(sp_runtime *rt, const char *name, const char *refresh_sql, sp_error *err);

/* Reads the spicepod again and applies the difference (added, removed and changed datasets and views)
 * without a restart; unchanged datasets keep serving untouched. A spicepod that does not load is rejected and
 * nothing changes (the error says why). *out_changes (may be NULL) receives the datasets added + removed. */
int sp_runtime_reload(sp_runtime *rt, int *out_changes, sp_error *err);

/* Blocks until the last manual refresh requested for dataset `name` has completed (at once if it already
 * has), or, when none was ever requested, until the next refresh completes; at most timeout_ms.
 * For tests and the CLI. */
int sp_runtime_wait_refresh(sp_runtime *rt, const char *name, int64_t timeout_ms, sp_error *err);

#endif
