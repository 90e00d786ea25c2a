/* SPDX-License-Identifier: Apache-2.0
 *
 * Write-back to PostgreSQL (the postgres connector's add_data): Arrow rows encoded into the binary COPY
 * format and sent with `COPY <table> (<columns>) FROM STDIN (FORMAT binary)`, one statement, so the rows are
 * all written or none is. The encoder is the inverse of pg_copy.c's decoder and is kept apart from libpq.
 */
#ifndef SPICE_PG_WRITE_H
#define SPICE_PG_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "connectors/pg_copy.h"
#include "spice/arrow_abi.h"
#include "spice/buf.h"
#include "spice/error.h"

/* The target of a write: the columns of the rows, in their order, and how each one is encoded. Borrowed. */
typedef struct pgw_target {
  const char *relation;             /* "schema"."table", quoted */
  const char *display;              /* schema.table, for messages */
  const char *dataset;              /* the dataset's name, for messages */
  const char *const *names;         /* column names, unquoted */
  const char *const *quoted;        /* the same, quoted for PostgreSQL */
  const pgc_type *types;
  const uint32_t *elem_oids;        /* PGC_LIST columns: the element type's oid (pgw_copy_in finds them); else 0 */
  size_t n;
  int freeze;                       /* COPY … (FORMAT binary, FREEZE): the table was created in this transaction */
} pgw_target;

/* The 19-byte file header of a binary COPY. */
int pgw_header(sp_buf *out);
/* Appends every row of `batch` (a struct array of t->n children with `schema`) in the binary COPY row format.
 * A value that cannot be encoded (a child of the wrong Arrow type, a malformed uuid or numeric text) is
 * SP_EINVAL naming the column. */
int pgw_encode_batch(const pgw_target *t, const struct ArrowSchema *schema, const struct ArrowArray *batch, sp_buf *out,
                     sp_error *err);
/* The trailer (-1). */
int pgw_trailer(sp_buf *out);

/* Writes `rows` (consumed, even on failure) into t->relation over pq (borrowed, idle; idle again afterwards).
 * Errors name the dataset and carry the server's message (e.g. a constraint violation): nothing is written. */
int pgw_copy_in(PGconn *pq, const pgw_target *t, struct ArrowArrayStream *rows, int64_t *out_rows, sp_error *err);

#endif
