/* SPDX-License-Identifier: Apache-2.0
 *
 * Quoting for the SQL that spicec writes itself (internal views, reader queries). User SQL is never spliced:
 * it is classified and run as written.
 */
#ifndef SPICE_SQLTEXT_H
#define SPICE_SQLTEXT_H

#include <stddef.h>
#include <stdint.h>

/* Writes s as a string literal ('it''s') into buf. Returns 0, or -1 when it does not fit (buf is then "''"
 * if n allows, never a truncated literal). */
int sp_sql_literal(char *buf, size_t n, const char *s);
/* Writes s as a quoted identifier ("a""b") into buf; same contract. */
int sp_sql_ident(char *buf, size_t n, const char *s);
/* `SELECT e1, e2, … FROM relation [WHERE where] [LIMIT limit]` (where NULL or "" = none, limit < 0 = none),
 * with the expressions and the relation already quoted for the target dialect. malloc'd, or NULL when out of
 * memory. For connectors that read their source with SQL. */
char *sp_sql_select(const char *const *exprs, size_t n, const char *relation, const char *where, int64_t limit);

/* The literal in a malloc'd string the caller frees, or NULL when out of memory. */
char *sp_sql_literal_dup(const char *s);

#endif
