/* SPDX-License-Identifier: Apache-2.0
 *
 * DuckDB's parse tree (json_serialize_sql) printed back as SQL for another server (whole-query pushdown).
 * Engine-internal. The printer is an allow-list: a node, function or type it does not know, or one whose
 * meaning differs between DuckDB and the server, makes it refuse (SP_ENOTSUP with the reason) and the query
 * runs locally. It never copies user text: identifiers and literals are re-quoted from the tree.
 */
#ifndef SPICE_ENGINE_UNPARSE_H
#define SPICE_ENGINE_UNPARSE_H

#include <stdbool.h>

#include <jansson.h>

#include "spice/arrow_abi.h"
#include "spice/error.h"
#include "spice/sql_dialect.h"

/* One dataset as the server knows it. Borrowed for the call. */
typedef struct sp_unparse_table {
  const char *name;                /* the dataset (as the query names it) */
  const char *remote;              /* its table on the server, quoted */
  const struct ArrowSchema *schema; /* its columns, to know which ones are text (env->strict: only the computable ones) */
  const struct ArrowSchema *all;    /* env->strict: every column of the table */
} sp_unparse_table;

typedef struct sp_unparse_env {
  sp_sql_dialect dialect;
  const char *text_collation; /* SP_DIALECT_MYSQL */
  const sp_unparse_table *tables;
  size_t n_tables;
  /* The schemas list only the columns the server may compare and compute on: any other column name (one that
   * is not an alias of the query either), and `*`, are refused. */
  bool strict;
} sp_unparse_env;

/* Prints one statement's "node" (a SELECT or set operation) for env->dialect. Every table it reads must be
 * in env->tables or a CTE of the query. *out (malloc'd) is owned by the caller. SP_ENOTSUP: not printable,
 * err says why. */
int sp_unparse_query(json_t *node, const sp_unparse_env *env, char **out, sp_error *err);

#endif
