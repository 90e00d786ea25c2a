/* SPDX-License-Identifier: Apache-2.0
 *
 * The SQL classifier that guards the sandboxed serving DuckDB (DESIGN §4, docs/security.md). Every user
 * statement is classified before it is prepared: plain reads are allowed, INSERT only into a writable
 * dataset, and everything else is refused with SP_EDENIED and a message that says what and why.
 *
 * How it works: the statement is parsed once by DuckDB's own parser through `json_serialize_sql`, and the
 * whole AST is walked (FROM clauses, subqueries, CTEs, joins, set operations, expressions) against an
 * allow-list of table functions and a deny-list of scalar functions. Nothing is bound or prepared here:
 * binding a statement can already read files (a CSV sniff, a replacement scan), so classification is pure
 * parsing. Statements that json_serialize_sql cannot serialize (everything but SELECT) are refused by their
 * leading keyword, except INSERT and EXPLAIN, whose query part is cut off and serialized on its own.
 */
#ifndef SPICE_ENGINE_CLASSIFY_H
#define SPICE_ENGINE_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>

#include <duckdb.h>

#include "spice/error.h"

typedef enum sp_sql_kind { SP_SQL_READ = 1, SP_SQL_INSERT } sp_sql_kind;

typedef struct sp_sql_class {
  sp_sql_kind kind;
  /* INSERT: the table name as written, unquoted; a qualified name keeps its parts joined by '.'
   * ("main.orders"). Unquoted names keep their case: compare case-insensitively, as DuckDB does. */
  char target[256];
  /* INSERT: byte offset in the SQL text where the source query starts (SELECT, VALUES, WITH, FROM, a
   * parenthesised query); the source runs to the end of the text and has been checked like a read. */
  size_t source_offset;
  /* INSERT: the column list as written, parentheses included ("(a, \"b c\")"); columns_len 0 = none. */
  size_t columns_offset, columns_len;
  bool by_name; /* INSERT INTO t BY NAME <query> */
} sp_sql_class;

/* Tells whether `table` (as in sp_sql_class.target) is a writable dataset. Called with the ctx given to
 * the classify call, on the calling thread. NULL hook = no table is writable. */
typedef bool (*sp_sql_is_writable_fn)(void *ctx, const char *table);

/* A classifier bound to one DuckDB connection: it keeps `SELECT json_serialize_sql(?)` prepared, which
 * saves a prepare (about half the cost) on every call. Use it from one thread at a time, like its
 * connection. */
typedef struct sp_sql_classifier sp_sql_classifier;

/* Creates a classifier on `conn` (borrowed; must outlive the classifier). The connection is only used to
 * run json_serialize_sql, so the sandboxed serving connection is fine. *out is owned by the caller and
 * released with sp_sql_classifier_destroy. SP_EINTERNAL when json_serialize_sql is not available. */
int sp_sql_classifier_create(duckdb_connection conn, sp_sql_classifier **out, sp_error *err);
/* NULL-safe. */
void sp_sql_classifier_destroy(sp_sql_classifier *c);

/* Classifies one user statement `sql` (borrowed, NUL-terminated). is_writable/ctx decide INSERT targets
 * (NULL hook: none). Returns SP_OK and fills *out for an allowed statement; SP_EINVAL for a syntax error
 * (DuckDB's own message, e.g. `Parser Error: syntax error at or near "SELEC"`) or an empty request;
 * SP_EDENIED for a refused statement, with the message of docs/security.md; SP_EINTERNAL when DuckDB
 * fails. *out is untouched unless SP_OK. An allowed statement may still fail to bind later (unknown
 * table, wrong types): that error comes from preparing it. */
int sp_sql_classifier_check(sp_sql_classifier *c, const char *sql, sp_sql_is_writable_fn is_writable, void *ctx,
                            sp_sql_class *out, sp_error *err);

/* One-shot form of the above for occasional callers (view definitions, the CLI): prepares the serializer
 * on `conn` (borrowed), classifies, and releases it. */
int sp_sql_classify(duckdb_connection conn, const char *sql, sp_sql_is_writable_fn is_writable, void *ctx,
                    sp_sql_class *out, sp_error *err);

#endif
