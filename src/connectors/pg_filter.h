/* SPDX-License-Identifier: Apache-2.0
 *
 * refresh_sql pushed to PostgreSQL, without splicing text: the query is parsed by DuckDB
 * (json_serialize_sql, done by the caller) and only one shape is accepted —
 *
 *   SELECT * FROM <dataset> WHERE <column> <op> <constant> [AND|OR|NOT …] [<column> IS [NOT] NULL]
 *
 * with op one of = <> < > <= >= and constants that are integers, decimals, doubles, strings or booleans.
 * The WHERE clause is rebuilt from that tree for PostgreSQL, with identifiers and literals quoted by the
 * caller's functions (libpq's). Anything else is SP_ENOTSUP with a message saying what was found.
 */
#ifndef SPICE_PG_FILTER_H
#define SPICE_PG_FILTER_H

#include <stddef.h>

#include "spice/error.h"

typedef struct pgf_ctx {
  const char *dataset; /* the table name the query must read */
  /* The quoted identifier of a column that may be compared at the server (malloc'd), or NULL when the column
   * is unknown or cannot be compared there. */
  char *(*column)(void *ctx, const char *name);
  /* A quoted string literal for s (malloc'd), or NULL on failure. */
  char *(*literal)(void *ctx, const char *s);
  void *ctx;
} pgf_ctx;

/* Translates the JSON of json_serialize_sql(refresh_sql) into a PostgreSQL boolean expression. *out
 * (malloc'd, owned by the caller) is "" when the query has no WHERE clause. */
int pgf_where(const char *json, const pgf_ctx *cx, char **out, sp_error *err);

#endif
