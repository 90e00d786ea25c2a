/* SPDX-License-Identifier: Apache-2.0
 *
 * Internals of the engine shared by its files (engine.c, scan.c, query.c). Not for other layers.
 */
#ifndef SPICE_ENGINE_INT_H
#define SPICE_ENGINE_INT_H

#include <pthread.h>
#include <stdint.h>

#include "spice/arrow.h"
#include "spice/arrow_abi.h"
#include "spice/engine.h"
#include "spice/sql_dialect.h"
#include <duckdb.h>

#define SP_ENGINE_MAX_NAME 256

/* A named entry in one of the engine's small registries (snapshot slots, stream tokens, sources). */
typedef struct sp_slot {
  char name[SP_ENGINE_MAX_NAME];
  sp_snapshot *snap;                 /* snapshot slots */
  struct ArrowArrayStream stream;    /* stream tokens (one-shot) */
  struct ArrowSchema schema;         /* sources and streams: the schema */
  sp_source_open_fn open;            /* sources */
  void *ctx;
  char target[SP_ENGINE_MAX_NAME + 32]; /* fallbacks: the source view's name */
  sp_remote_source remote;           /* sources: whole-query pushdown (dialect NONE = none); strings owned */
  struct ArrowSchema computable;     /* remote.computable's copy (release NULL = none) */
  struct sp_slot *next;
} sp_slot;

/* Classifications of statements already seen, by exact text: the same query text always classifies the same
 * way while the set of writable tables is unchanged (any change clears the cache). Direct-mapped. */
#define SP_CLASS_CACHE_SLOTS 1024
typedef struct sp_class_entry {
  char *sql;      /* owned; NULL = empty */
  uint64_t hash;
  int kind;       /* sp_sql_kind */
  char target[256];
} sp_class_entry;

struct sp_engine {
  duckdb_database db;
  duckdb_connection helper;          /* used only for Arrow conversion settings (never runs SQL after setup) */
  pthread_mutex_t lock;              /* guards everything below */
  duckdb_connection *idle;           /* pooled connections */
  size_t n_idle, cap_idle;
  struct sp_session **idle_sessions; /* pooled user-query sessions */
  size_t n_sessions, cap_sessions;
  struct sp_session *busy;           /* sessions checked out, running or streaming a query */
  sp_slot *snapshots, *streams, *sources;
  uint64_t next_token;
  sp_class_entry *class_cache;       /* SP_CLASS_CACHE_SLOTS entries, guarded by lock */
  sp_engine_write_fn write_fn;
  void *write_ctx;
  char *writable;                    /* NUL-separated names of writable tables, ends with an empty name */
  size_t writable_len;
  char data_dir[4096];
  char *allowed_sql;                 /* allowed_directories list */
  char *allowed_paths_sql;           /* allowed_paths list */                 /* "'dir1/', 'dir2/'" for allowed_directories, grown by allow_directory */
  int threads;
  int locked;
  uint64_t pruned_batches;           /* atomic */
  uint64_t zero_results_fallbacks;   /* atomic */
  sp_slot *fallbacks;                /* on_zero_results: use_source: dataset name -> slot.target (its source view) */
  /* runtime.query.timeout (timeout.c), guarded by lock: */
  int64_t query_timeout_ms;          /* 0 = none */
  pthread_t watchdog;                /* ends user queries past their deadline; started with the first timeout */
  int has_watchdog, closing;
  pthread_cond_t watchdog_cv;        /* wakes the watchdog: a deadline was set, or the engine is closing */
};

/* While on, sp_unavailable() binds on this thread (so its placeholder view can be created). */
void sp_engine_placeholder_mode(int on);

/* Registers sp_arrow_scan, sp_stream and sp_source_scan on `conn`. */
int sp_engine_register_scans(sp_engine *e, duckdb_connection conn, sp_error *err);

/* DuckDB logical types of an Arrow struct schema's children, found by converting a one-row all-null batch.
 * On success *out_types is a malloc'd array of n (= schema->n_children) types the caller destroys with
 * sp_engine_free_types. */
int sp_engine_arrow_types(sp_engine *e, const struct ArrowSchema *schema, duckdb_logical_type **out_types,
                          sp_error *err);
void sp_engine_free_types(duckdb_logical_type *types, int64_t n);

/* Builds the DuckDB converted schema for the children `proj` (n of them) of `schema`. */
int sp_engine_convert_schema(sp_engine *e, const struct ArrowSchema *schema, const idx_t *proj, idx_t n,
                             duckdb_arrow_converted_schema *out, sp_error *err);

/* Fills `out` (a chunk with the projected types) with rows [off, off+n) of `batch` (a struct array whose
 * children are projected by proj). `on_release(ctx)` runs when DuckDB is done with the data. */
int sp_engine_emit_slice(sp_engine *e, duckdb_arrow_converted_schema conv, const struct ArrowArray *batch,
                         const idx_t *proj, idx_t nproj, int64_t off, int64_t n, void (*on_release)(void *),
                         void *ctx, duckdb_data_chunk out, sp_error *err);

/* Quotes an identifier for DuckDB ("a""b"); a dotted name is quoted per part. */
void sp_engine_quote_ident(char *buf, size_t n, const char *name, int split_dots);

/* Takes the message of an error_data, destroys it, and fails err with code. */
int sp_engine_fail_error_data(sp_error *err, sp_status code, duckdb_error_data ed, const char *what);

/* A user-query session: a connection with its statement classifier kept prepared. */
typedef struct sp_session {
  duckdb_connection conn;
  idx_t conn_id;                 /* DuckDB's id of conn: a scan bound on it finds the session (sp_engine_session_stop) */
  struct sp_sql_classifier *cls;
  struct sp_session *prev_busy, *next_busy; /* on the engine's busy list while checked out (for interrupts) */
  /* The query in progress (reset by sp_engine_session_get): */
  volatile int stop;             /* atomic; nonzero once the query is being ended (timeout, shutdown): connector
                                  * reads of its federated scans watch it, since interrupting DuckDB cannot
                                  * unblock a thread waiting on a source */
  int64_t deadline_ms;           /* under e->lock; monotonic ms, 0 = none */
  int64_t timeout_ms;            /* under e->lock; the timeout the deadline came from, for the message */
  int timed_out;                 /* under e->lock; the watchdog ended the query at its deadline */
} sp_session;
/* Checks a session out (on the busy list, its deadline armed from runtime.query.timeout) or in. */
int sp_engine_session_get(sp_engine *e, sp_session **out, sp_error *err);
void sp_engine_session_put(sp_engine *e, sp_session *s);
void sp_engine_session_free(sp_session *s);

/* ---- Query timeout (timeout.c) ---- */
/* Arms s's deadline from e->query_timeout_ms and clears its stop state; e->lock held. */
void sp_engine_session_arm(sp_engine *e, sp_session *s);
/* Clears s's deadline: its query produced its last row. */
void sp_engine_session_disarm(sp_engine *e, sp_session *s);
/* The stop flag of the busy session whose connection has DuckDB id conn_id, or NULL (internal connections).
 * Borrowed: valid while that session's query runs, which is as long as a scan bound in it can live. */
volatile int *sp_engine_session_stop(sp_engine *e, idx_t conn_id);
/* The same for the busy session whose connection is conn. */
volatile int *sp_engine_conn_stop(sp_engine *e, duckdb_connection conn);
/* 1 when the watchdog ended s's query at its deadline; then msg holds "query timed out after …". */
int sp_engine_session_timed_out(sp_engine *e, sp_session *s, char *msg, size_t n);
/* Ends the watchdog thread (sp_engine_destroy). */
void sp_engine_watchdog_stop(sp_engine *e);

int sp_engine_conn_get(sp_engine *e, duckdb_connection *out, sp_error *err);
void sp_engine_conn_put(sp_engine *e, duckdb_connection c);

/* Registry lookups used by the scan functions (engine.c). */
sp_snapshot *sp_engine_pin_snapshot(sp_engine *e, const char *name);
sp_slot *sp_engine_take_stream(sp_engine *e, const char *token);
int sp_engine_stream_schema(sp_engine *e, const char *token, struct ArrowSchema *out, sp_error *err);
int sp_engine_find_source(sp_engine *e, const char *name, struct ArrowSchema *schema, sp_source_open_fn *fn,
                          void **ctx, sp_error *err);
int sp_engine_is_writable(sp_engine *e, const char *name);
void sp_engine_class_cache_clear(sp_engine *e);

/* Rewrites a read that names arrow datasets so their scans get pruning hints (prune.c). Returns 1 and sets
 * *out_sql (malloc'd) when rewritten, 0 when there was nothing to prune (*out_sql NULL). Never fails the
 * query: any problem means "run it as written". */
int sp_engine_prune_rewrite(sp_engine *e, duckdb_connection conn, const sp_query_request *req, char **out_sql);

/* on_zero_results: use_source (prune.c). has_fallbacks: the query text may read such a dataset.
 * fallback_rewrite: the query with each such dataset replaced by its source view; 1 when rewritten. */
/* Whole-query pushdown (remote.c): when every table `req` reads is a remote source of one server, runs the
 * query there and returns 1 with *out_sql (malloc'd) reading its rows from stream *out_token, which the caller
 * unregisters if it does not run *out_sql. Returns 0 (and runs nothing) otherwise. */
int sp_engine_remote_rewrite(sp_engine *e, duckdb_connection conn, const sp_query_request *req, char **out_sql,
                             uint64_t *out_token);
/* The Arrow schema of a prepared statement's result (*out owned by the caller); SP_ENOTSUP when a column's type
 * is only known once parameters are bound. */
int sp_engine_prepared_schema(duckdb_connection conn, duckdb_prepared_statement ps, struct ArrowSchema *out, sp_error *err);
int sp_engine_has_fallbacks(sp_engine *e, const char *sql);
int sp_engine_fallback_rewrite(sp_engine *e, duckdb_connection conn, const char *sql, char **out_sql);

#endif
