/* SPDX-License-Identifier: Apache-2.0
 *
 * The query engine: one in-memory DuckDB database that is the catalog (every dataset and view is a table by
 * its name), sandboxed once set up (DESIGN §4). User SQL goes through sp_engine_query, which classifies the
 * statement first and refuses anything that is not a read (or an INSERT into a writable dataset). Trusted
 * internal SQL (accelerators, the runtime) goes through sp_engine_exec and the internal connection pool.
 */
#ifndef SPICE_ENGINE_H
#define SPICE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spice/arrow_abi.h"
#include "spice/error.h"
#include "spice/sql_dialect.h"

typedef struct sp_engine sp_engine;
typedef struct sp_snapshot sp_snapshot;

typedef struct sp_engine_config {
  int threads;                /* DuckDB worker threads; 0 = number of cores */
  int64_t memory_limit_bytes; /* 0 = DuckDB's default */
  const char *data_dir;       /* absolute folder for file accelerators; stays writable after lock */
  int64_t query_timeout_ms;   /* runtime.query.timeout: user queries end after this long; 0 = never */
} sp_engine_config;

int sp_engine_create(const sp_engine_config *cfg, sp_engine **out, sp_error *err);
/* Destroys the engine; every stream it returned must have been released. NULL-safe. */
void sp_engine_destroy(sp_engine *e);

/* Applies the sandbox: external access off (except cfg->data_dir), no extension loading, configuration
 * locked. Call once every dataset is registered. Internal SQL keeps working. */
int sp_engine_lock(sp_engine *e, sp_error *err);

/* Adds a folder that stays readable and writable after sp_engine_lock (a file accelerator's database kept
 * outside data_dir). Call before sp_engine_lock; SP_EBUSY after. */
int sp_engine_allow_directory(sp_engine *e, const char *dir, sp_error *err);

/* Adds a file (or, with is_dir, a folder) that internal views may read after sp_engine_lock: a federated
 * dataset's source read natively by the engine. Call before sp_engine_lock; SP_EBUSY after. User SQL can still
 * never name it: the classifier refuses file-reading functions. */
int sp_engine_allow_path(sp_engine *e, const char *path, bool is_dir, sp_error *err);
/* True once sp_engine_lock has run. */
bool sp_engine_locked(sp_engine *e);

/* Runs trusted internal SQL (several statements allowed) on a pooled internal connection. */
int sp_engine_exec(sp_engine *e, const char *sql, sp_error *err);
/* Runs trusted internal SQL and returns the first column of the first row as int64 (*out untouched when
 * there is no row). */
int sp_engine_query_int(sp_engine *e, const char *sql, int64_t *out, sp_error *err);

/* Runs trusted internal SQL as a streaming result on a pooled connection (no classification: never pass
 * user SQL). *out is owned by the caller. */
int sp_engine_query_internal(sp_engine *e, const char *sql, struct ArrowArrayStream *out, sp_error *err);
/* Runs trusted internal SQL and writes the first column of the first row as text into out (n bytes).
 * SP_ENOTFOUND when there is no row or the value is NULL. */
int sp_engine_query_text(sp_engine *e, const char *sql, char *out, size_t n, sp_error *err);

/* Borrows an internal connection (a duckdb_connection, as void* so this header needs no duckdb.h). It is
 * unsandboxed: never run user SQL on it. Give it back with sp_engine_conn_release. */
int sp_engine_conn_acquire(sp_engine *e, void **out_conn, sp_error *err);
void sp_engine_conn_release(sp_engine *e, void *conn);

/* ---- Tables ---------------------------------------------------------------------------------------- */

enum { SP_TABLE_WRITABLE = 1u << 0, SP_TABLE_VIEW = 1u << 1 };

/* Hook for INSERT into a writable dataset: receives the rows to insert as a stream (consumed). */
typedef int (*sp_engine_write_fn)(void *ctx, const char *table, struct ArrowArrayStream *rows, int64_t *out_rows,
                                  sp_error *err);

/* (Re)defines the user-visible table `name` (bare or schema.table) as `SELECT * FROM <table_sql>`.
 * Atomic for readers. `flags` are SP_TABLE_*. */
int sp_engine_define_table(sp_engine *e, const char *name, const char *table_sql, unsigned flags, sp_error *err);
/* Defines `name` as a placeholder until its data exists: a query that reads it fails with `message`
 * (e.g. "Acceleration not ready; loading initial data for trips"). */
int sp_engine_define_placeholder(sp_engine *e, const char *name, const char *message, sp_error *err);
/* Defines a view from user SQL (classified like a query first). */
int sp_engine_define_view(sp_engine *e, const char *name, const char *sql, sp_error *err);
int sp_engine_drop_table(sp_engine *e, const char *name, sp_error *err);
bool sp_engine_has_table(sp_engine *e, const char *name);
void sp_engine_set_write_hook(sp_engine *e, sp_engine_write_fn fn, void *ctx);

/* ---- Arrow snapshots (the arrow accelerator) --------------------------------------------------------- */

/* Publishes `snap` as the current data of slot `name`, readable as `sp_arrow_scan('name')`. Takes a
 * reference on snap; the previous snapshot is unreferenced once no query uses it. */
int sp_engine_publish_snapshot(sp_engine *e, const char *name, sp_snapshot *snap, sp_error *err);
void sp_engine_remove_snapshot(sp_engine *e, const char *name);
/* The snapshot published as `name`, with a reference the caller drops (sp_snapshot_unref), or NULL. */
sp_snapshot *sp_engine_pin_current(sp_engine *e, const char *name);

/* ---- Streams (loading, federated scans) -------------------------------------------------------------- */

/* Makes a one-shot stream readable as `sp_stream(<token>)` by internal SQL. Takes ownership of *stream
 * (moved; stream->release is NULL after). The stream is released when scanned or on unregister. */
int sp_engine_stream_register(sp_engine *e, struct ArrowArrayStream *stream, uint64_t *out_token, sp_error *err);
void sp_engine_stream_unregister(sp_engine *e, uint64_t token);

/* A federated source: a callback that opens a fresh stream with only `columns` (NULL = all).
 * filter_query (may be NULL): see sp_scan.filter_query. stop (may be NULL: an internal query): the query's stop
 * flag, borrowed for the life of the stream; see sp_scan.stop. */
typedef int (*sp_source_open_fn)(void *ctx, const char *const *columns, size_t n_columns, int64_t limit,
                                 const char *filter_query, volatile int *stop, struct ArrowArrayStream *out,
                                 sp_error *err);
/* Registers source `name` (readable as `sp_source_scan('name')`) with its schema (copied). ctx is borrowed
 * until sp_engine_unregister_source. */
int sp_engine_register_source(sp_engine *e, const char *name, const struct ArrowSchema *schema, sp_source_open_fn fn,
                              void *ctx, sp_error *err);
void sp_engine_unregister_source(sp_engine *e, const char *name);
/* Declares that registered source `name` lives on a server that runs whole queries (spice/sql_dialect.h);
 * r's strings are copied, r->ctx is borrowed until the source is unregistered. */
int sp_engine_set_source_remote(sp_engine *e, const char *name, const sp_remote_source *r, sp_error *err);

/* ---- User queries --------------------------------------------------------------------------------------- */

typedef enum sp_value_type { SP_VALUE_NULL = 0, SP_VALUE_BOOL, SP_VALUE_INT, SP_VALUE_DOUBLE, SP_VALUE_STRING } sp_value_type;

/* A query parameter. Named ones have name set ("id" for $id / :id); positional ones have name NULL and bind
 * $1, $2, … in order. Strings are borrowed for the call. */
typedef struct sp_value {
  const char *name;
  sp_value_type type;
  union {
    bool b;
    int64_t i;
    double d;
    const char *s;
  } v;
} sp_value;

typedef struct sp_query_request {
  const char *sql;
  const sp_value *params;
  size_t n_params;
} sp_query_request;

/* Classifies, binds and runs one user statement. On success *out is a stream of the result (owned by the
 * caller; release it to free the connection). Errors: SP_EINVAL (syntax, binding, bad parameters),
 * SP_EDENIED (sandbox: the message says what is refused and why), SP_ENOTFOUND (unknown table). Errors that
 * happen while batches are produced come from the stream's get_last_error. */
int sp_engine_query(sp_engine *e, const sp_query_request *req, struct ArrowArrayStream *out, sp_error *err);

/* on_zero_results: use_source. Defines a hidden view over the dataset's source (`source_table_sql`) and makes
 * any query that reads dataset `name` and returns no rows run again against the source. */
int sp_engine_set_zero_results_source(sp_engine *e, const char *name, const char *source_table_sql, sp_error *err);
/* How many queries were answered from a source that way (metric accelerated_zero_results_federated_fallback). */
uint64_t sp_engine_zero_results_fallbacks(sp_engine *e);

/* Arrow batches skipped so far because their statistics ruled out every row of a query (for tests and
 * metrics). */
uint64_t sp_engine_pruned_batches(sp_engine *e);

/* The Arrow schema a statement's result will have, without running it (classified and prepared only).
 * *out is owned by the caller. SP_ENOTSUP when types depend on parameters not given (run it instead). */
int sp_engine_query_schema(sp_engine *e, const sp_query_request *req, struct ArrowSchema *out, sp_error *err);

/* Only the classification step, for tests and for the CLI: SP_OK when the statement would be allowed. */
int sp_engine_check_sql(sp_engine *e, const char *sql, sp_error *err);
/* Sets runtime.query.timeout (0 = none) for the user queries that start from now on (a reload). A query past
 * its timeout — counted from sp_engine_query until its stream's last batch — is interrupted, the reads of its
 * federated scans are told to stop (sp_scan.stop), and it fails with SP_ETIMEDOUT, "query timed out after
 * <timeout>" (from sp_engine_query, or from the stream's get_next with ETIMEDOUT). Thread-safe. */
void sp_engine_set_query_timeout(sp_engine *e, int64_t timeout_ms);
/* Interrupts every user query running or streaming now (shutdown past its timeout): each fails with DuckDB's
 * "Interrupted" error and gives its session back. Returns how many were interrupted. Thread-safe. */
int sp_engine_interrupt_all(sp_engine *e);

#endif
