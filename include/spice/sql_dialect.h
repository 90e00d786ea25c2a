/* SPDX-License-Identifier: Apache-2.0
 *
 * Whole-query pushdown: how a source that runs SQL itself describes its server to the engine. When every
 * table a query reads is a federated dataset on one such server (same `server` identity), the engine prints
 * the query in the server's dialect from DuckDB's parse tree (an allow-list: anything else runs locally) and
 * runs it there; the rows come back cast to the types DuckDB would have given them.
 */
#ifndef SPICE_SQL_DIALECT_H
#define SPICE_SQL_DIALECT_H

#include <stddef.h>

#include "spice/arrow_abi.h"
#include "spice/error.h"

typedef enum sp_sql_dialect {
  SP_DIALECT_NONE = 0,
  SP_DIALECT_POSTGRES,
  SP_DIALECT_MYSQL,  /* MySQL and MariaDB: text compared under `text_collation` */
  SP_DIALECT_SQLITE,
} sp_sql_dialect;

/* Runs `sql` (a SELECT in the server's dialect) and streams its rows; *out is owned by the caller. `want`
 * (borrowed) is the schema DuckDB planned for the query: a server without static result types (SQLite) reads
 * values as those types; others may ignore it (the engine casts the rows anyway). A failure to start (syntax the
 * server refuses, a function it lacks) lets the engine run the query locally instead. stop (may be NULL): the
 * user query's stop flag, borrowed for the life of the stream, as sp_scan.stop. */
typedef int (*sp_remote_query_fn)(void *ctx, const char *sql, const struct ArrowSchema *want, volatile int *stop,
                                  struct ArrowArrayStream *out, sp_error *err);

/* A federated dataset's place on a server that can run whole queries. Strings are copied by the engine. */
typedef struct sp_remote_source {
  sp_sql_dialect dialect;
  /* Who runs the query and as whom (e.g. "postgres host=… port=… dbname=… user=…"): queries whose tables all
   * share it may run there. Never holds a password. */
  const char *server;
  const char *table;          /* the dataset's table as the server names it, already quoted */
  const char *text_collation; /* SP_DIALECT_MYSQL: a byte-order, no-pad collation for text ("utf8mb4_nopad_bin") */
  /* Optional (copied): the columns the server stores so that it compares and computes on them exactly as
   * DuckDB does; a query naming any other column, or `*`, runs locally. NULL: every column. */
  const struct ArrowSchema *computable;
  sp_remote_query_fn run;
  void *ctx;                  /* borrowed until the source is unregistered */
} sp_remote_source;

#endif
