/* SPDX-License-Identifier: Apache-2.0
 *
 * Internal to the postgres accelerator: how Arrow columns become PostgreSQL columns (the type in the CREATE
 * TABLE, the binary COPY encoding pg_write.c uses for it, and the DuckDB cast that first brings an Arrow type
 * the encoder does not take to one it does), and the SQL text built from them. No libpq here, so it can be
 * tested without a server.
 */
#ifndef SPICE_PG_ACCEL_H
#define SPICE_PG_ACCEL_H

#include <stddef.h>

#include "connectors/pg_copy.h"
#include "spice/arrow_abi.h"
#include "spice/error.h"

typedef struct pga_column {
  char *name;        /* as in the data */
  char *quoted;      /* "name", quoted for PostgreSQL (and DuckDB) */
  char pg_type[48];  /* numeric(12,2), timestamptz, bigint[] */
  pgc_type type;     /* the binary COPY encoding of the column */
  char cast[40];     /* DuckDB type the values are cast to before encoding; "" when the Arrow type is taken as is */
} pga_column;

/* Maps one Arrow field. SP_ENOTSUP (naming column, dataset and Arrow type) when PostgreSQL cannot hold it. */
int pga_map_field(const struct ArrowSchema *field, const char *dataset, pga_column *out, sp_error *err);
/* Maps every child of a struct schema. *out (n entries) is owned by the caller: pga_columns_free. */
int pga_columns_of(const struct ArrowSchema *schema, const char *dataset, pga_column **out, size_t *n, sp_error *err);
void pga_columns_free(pga_column *cols, size_t n);
/* True when some column needs the DuckDB cast. */
int pga_needs_cast(const pga_column *cols, size_t n);

/* SELECT CAST("a" AS SMALLINT) AS "a", "b", … FROM sp_stream('<token>'). malloc'd, NULL when out of memory. */
char *pga_cast_sql(const pga_column *cols, size_t n, unsigned long long token);
/* One row per key of `inner` (a SELECT): the last one read when keep_last, else the first. `target` is a quoted
 * colref. malloc'd, NULL when out of memory. */
char *pga_dedup_sql(const char *inner, const char *target, int keep_last);
/* CREATE [TEMP] TABLE <relation> ("a" bigint, …[, PRIMARY KEY (…)][, UNIQUE (…)…]). `keys` are colref lists
 * already quoted ("a", "b"), NULL entries skipped; keys[0] is the primary key. temp adds ON COMMIT DROP. */
char *pga_create_sql(const char *relation, const pga_column *cols, size_t n, const char *const *keys, size_t n_keys, int temp);
/* Quotes each column of a colref ("a" or "(a, b)") after checking it is one of cols: `"a", "b"`. `what`
 * names the setting in messages. *out is malloc'd. */
int pga_colref(const char *ref, const pga_column *cols, size_t n, const char *dataset, const char *what, char **out,
               sp_error *err);
/* INSERT INTO <relation> (cols) SELECT cols FROM <from> [ON CONFLICT …] for on_conflict `action` ("upsert" | "drop",
 * NULL: none) on `target` (quoted colref; NULL or "" with drop: DO NOTHING on any unique constraint). An upsert
 * keeps the last row of each key from `from`. */
char *pga_insert_sql(const char *relation, const char *from, const pga_column *cols, size_t n, const char *target,
                     const char *action);

#endif
