/* SPDX-License-Identifier: Apache-2.0
 *
 * refresh_sql pushed to PostgreSQL, without splicing text: the query is parsed by DuckDB
 * (json_serialize_sql, done by the caller) and only one shape is accepted —
 *
 *   SELECT * FROM <dataset> WHERE <column> <op> <constant> [AND|OR|NOT …] [<column> IS [NOT] NULL]
 *                                 [<column> [NOT] IN (<constant>, …)] [<column> BETWEEN <constant> AND <constant>]
 *
 * with op one of = <> < > <= >= and constants that are integers, decimals, doubles, strings or booleans, and
 * DATE '…' / TIMESTAMP '…' when the caller can write them (typed_literal).
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
  /* Optional: a literal of SQL type `type` ("DATE" or "TIMESTAMP") from its text, in the source's dialect
   * (malloc'd), or NULL when it cannot be written. NULL: such constants are not pushed. */
  char *(*typed_literal)(void *ctx, const char *type, const char *s);
  /* Optional: the column as an operand of <, <=, >, >= or BETWEEN, when ordering at the source needs more than
   * its name (e.g. a byte-order collation); NULL: `column` serves there too. */
  char *(*ordered_column)(void *ctx, const char *name);
} pgf_ctx;

/* Translates the JSON of json_serialize_sql(refresh_sql) into a PostgreSQL boolean expression. *out
 * (malloc'd, owned by the caller) is "" when the query has no WHERE clause. */
int pgf_where(const char *json, const pgf_ctx *cx, char **out, sp_error *err);
/* The same for the filters of a federated query, which the engine applies again anyway: the conjuncts of the
 * top-level AND that translate, joined by AND; "" when none does. Fails only on a malformed shape. */
int pgf_where_some(const char *json, const pgf_ctx *cx, char **out, sp_error *err);

#endif
