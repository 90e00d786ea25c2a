/* SPDX-License-Identifier: Apache-2.0
 *
 * DuckDB helpers for modules that use DuckDB themselves (the file and duckdb connectors read sources through
 * a private DuckDB database that user SQL never reaches).
 */
#ifndef SPICE_DUCKDB_UTIL_H
#define SPICE_DUCKDB_UTIL_H

#include <duckdb.h>

#include "spice/arrow_abi.h"
#include "spice/error.h"

/* Runs trusted `sql` on a new connection to `db` as a streaming result, exposed as an Arrow stream that owns
 * the connection (closed on release). On success *out is owned by the caller. */
int sp_duckdb_stream(duckdb_database db, const char *sql, struct ArrowArrayStream *out, sp_error *err);

/* DuckDB writes an unknown query_location as 2^64-1, which jansson (int64) rejects; it only positions error
 * messages, so this rewrites it to 0 in place (the JSON only gets shorter). Inside JSON strings quotes are
 * escaped, so the pattern cannot match user text. */
void sp_duckdb_json_zero_unknown_locations(char *json);

/* DuckDB's JSON AST of `sql` (json_serialize_sql, nulls and empties skipped, unknown locations zeroed), from a
 * process-wide database that only parses. `what` names the text in messages ("the refresh_sql of dataset
 * \"x\""). *out is malloc'd, owned by the caller. Thread-safe. */
int sp_duckdb_serialize_sql(const char *sql, const char *what, char **out, sp_error *err);
/* The same keeping empty lists and strings: skipping them loses meaning (ROLLUP's empty grouping set). */
int sp_duckdb_serialize_sql_full(const char *sql, const char *what, char **out, sp_error *err);

#endif
