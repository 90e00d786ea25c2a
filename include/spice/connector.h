/* SPDX-License-Identifier: Apache-2.0
 *
 * Data connectors: the seed's DataConnector as a const method table (DESIGN §2). One instance is opened per
 * dataset, with the dataset's validated params. A NULL method means "not supported"; the core calls modules
 * through the method table.
 *
 * Adding a connector: one file in src/connectors/ exporting `const sp_connector_module sp_connector_<name>`,
 * plus one line in src/runtime/modules.def. Instances are made with sp_connector_instance_open (below).
 *
 * Threads: open/close run on the runtime's control path. get_schema/get_all_data/scan may run concurrently
 * on several threads for one instance (a refresh and federated queries at once): keep per-call state local.
 */
#ifndef SPICE_CONNECTOR_H
#define SPICE_CONNECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spice/arrow_abi.h"
#include "spice/error.h"
#include "spice/params.h"
#include "spice/pod.h"
#include "spice/sql_dialect.h"

#define SP_CONNECTOR_ABI 1

typedef enum sp_update_type { SP_UPDATE_OVERWRITE = 0, SP_UPDATE_APPEND, SP_UPDATE_CHANGES } sp_update_type;

/* The seed's DataUpdate. `stream` is owned by whoever holds the update; the consumer (an accelerator's
 * add_data, a connector's add_data) releases it, even when it fails. */
typedef struct sp_data_update {
  sp_update_type type;
  struct ArrowArrayStream stream;
  /* SP_UPDATE_CHANGES: the stream carries a leading utf8 column "_op" ("insert"|"update"|"delete") and the
   * rows are keyed by these columns. Each key appears at most once per update (its net change); a delete
   * needs only its key columns. A connector may send the other columns as utf8 in the source's text form:
   * the runtime casts them to the accelerated copy's types before the accelerator sees them. */
  const char *const *primary_key;
  size_t n_primary_key;
  /* Change streams: the source's position after this update (e.g. a PostgreSQL LSN "0/16B3748"), borrowed.
   * A file accelerator stores it in the same transaction as the data; NULL = none. */
  const char *position;
} sp_data_update;

/* Pushes updates from a change stream into the runtime. Thread-safe; `push` consumes the update. An update
 * whose stream is unset (release NULL) applies nothing: it says the stream is live (caught up after a start). */
typedef struct sp_update_sink {
  int (*push)(struct sp_update_sink *sink, sp_data_update *update, sp_error *err);
  volatile int *stop; /* non-zero: the stream should return SP_ECANCELED soon */
  void *ctx;
  /* The position of the last update the accelerator committed (borrowed; NULL = none: start with a full
   * load, pushed as an OVERWRITE). A stream resumes after it, with no loss and no duplicates. */
  const char *resume_position;
} sp_update_sink;

/* A scan request for federated queries. Inputs are borrowed for the call. */
typedef struct sp_scan {
  const char *const *columns; /* projection by name; NULL = every column in schema order */
  size_t n_columns;
  int64_t limit;              /* -1: none */
  /* Optional: a SELECT over the dataset's own name (refresh_sql, e.g. `SELECT * FROM trips WHERE x > 1`),
   * to run at the source instead of a plain read. A connector that cannot run it returns SP_ENOTSUP. */
  const char *query;
  /* Optional pushdown: `SELECT * FROM <dataset> WHERE …` holding conditions of a federated query that a
   * connector may apply at the source. Unlike `query` it may be ignored (entirely or not at all): the engine
   * applies the whole WHERE clause again. */
  const char *filter_query;
  /* Optional (NULL: none): the reader's stop flag, as sp_update_sink.stop, borrowed for the life of the stream.
   * Once it is nonzero (the federated query timed out, or spiced is shutting down) the stream should fail
   * soon: a connector waiting on its source looks at it at least every 100 ms and gives up, so that a stalled
   * source never holds a query past its timeout. */
  volatile int *stop;
} sp_scan;

typedef struct sp_connector_module sp_connector_module;

/* Instance base; each module's instance struct starts with it. The core allocates instance_size bytes
 * zeroed, fills the base, then calls open(). */
typedef struct sp_connector {
  const sp_connector_module *module;
  const sp_dataset_spec *dataset; /* borrowed; outlives the instance */
  sp_params params;               /* validated and complete (defaults filled); owned by the core */
  struct sp_engine *engine;       /* borrowed: the serving engine, for connectors that read the pod's own
                                   * datasets (localpod); set before open() */
} sp_connector;

enum {
  SP_CONNECTOR_CAP_SCAN_PROJECTION = 1u << 0, /* scan() honours sp_scan.columns */
  SP_CONNECTOR_CAP_SCAN_LIMIT = 1u << 1,      /* scan() honours sp_scan.limit */
};

struct sp_connector_module {
  uint32_t abi;               /* SP_CONNECTOR_ABI; fields are only ever appended */
  const char *name;           /* the `from:` scheme: "file", "postgres" */
  const char *prefix;         /* parameter prefix: "file", "pg" */
  const sp_param_spec *params;
  size_t instance_size;       /* >= sizeof(sp_connector) */
  uint32_t caps;              /* SP_CONNECTOR_CAP_* */

  /* Required. Checks the path and the params and opens what the instance needs. A source that cannot be
   * reached now is SP_ECONNECT (the runtime retries), a configuration error SP_EINVAL (it does not). */
  int (*open)(sp_connector *self, sp_error *err);
  /* Required. Frees what open made; cannot fail. */
  void (*close)(sp_connector *self);
  /* Required. The dataset's Arrow schema (a struct of the columns). *out is owned by the caller. */
  int (*get_schema)(sp_connector *self, struct ArrowSchema *out, sp_error *err);
  /* Required. Every row, as a stream of batches; nothing holds the whole table twice. */
  int (*get_all_data)(sp_connector *self, struct ArrowArrayStream *out, sp_error *err);

  /* Optional: federated reads with pushdown. NULL = the engine reads get_all_data and filters locally. */
  int (*scan)(sp_connector *self, const sp_scan *scan, struct ArrowArrayStream *out, sp_error *err);
  /* Optional: a DuckDB table expression that reads the source directly (`read_parquet('/abs/x.parquet')`),
   * for sources that DuckDB opens itself. The engine then serves federated queries from it with DuckDB's own
   * pushdown (projection, filters, row-group pruning). *out_path receives the file or folder the expression
   * reads, which the sandbox must allow. Returns SP_ENOTSUP when this dataset cannot be read that way. */
  int (*native_scan)(sp_connector *self, char *sql, size_t sql_len, char *out_path, size_t path_len, sp_error *err);
  /* Optional: change streams. stream_updates blocks, pushing updates into sink until sink->stop is set. */
  bool (*supports_streaming)(sp_connector *self);
  int (*stream_updates)(sp_connector *self, sp_update_sink *sink, sp_error *err);
  /* Optional: write-back. add_data consumes update->stream. */
  bool (*supports_writes)(sp_connector *self);
  int (*add_data)(sp_connector *self, sp_data_update *update, sp_error *err);

  /* Optional: whole-query pushdown (spice/sql_dialect.h). remote() fills out->dialect, server, table and
   * text_collation (strings owned by the instance, valid while it is open; run/ctx are set by the runtime)
   * or returns SP_ENOTSUP; query() runs a SELECT in that dialect and streams its rows (*out owned by the
   * caller), failing at once when the server refuses it, and soon once *stop (may be NULL) is set, as scan()
   * does for sp_scan.stop. */
  int (*remote)(sp_connector *self, sp_remote_source *out, sp_error *err);
  int (*query)(sp_connector *self, const char *sql, const struct ArrowSchema *want, volatile int *stop,
               struct ArrowArrayStream *out, sp_error *err);
};

/* Opens an instance of m for dataset `spec` (borrowed; must outlive the instance) with `params` already
 * validated against m->params (moved into the instance: *params is empty afterwards, on failure too). engine
 * (borrowed, may be NULL) is the serving engine. On success *out is owned by the caller: close it with
 * sp_connector_instance_close (NULL-safe), which closes the module and frees the instance. */
int sp_connector_instance_open(const sp_connector_module *m, const sp_dataset_spec *spec, sp_params *params,
                               struct sp_engine *engine, sp_connector **out, sp_error *err);
/* The same from the dataset's params as written (raw, borrowed), validated first against m->params with the
 * secrets (borrowed, may be NULL) as the runtime does; messages name `dataset "<spec->name>"`. */
int sp_connector_instance_create(const sp_connector_module *m, const sp_dataset_spec *spec, const sp_params *raw,
                                 sp_secrets *secrets, struct sp_engine *engine, sp_connector **out, sp_error *err);
void sp_connector_instance_close(sp_connector *c);

#endif
