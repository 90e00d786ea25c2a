/* SPDX-License-Identifier: Apache-2.0
 *
 * Write-back to MySQL / MariaDB (the mysql connector's add_data): Arrow rows become multi-row
 * `INSERT INTO <table> (<columns>) VALUES (…), (…)` statements of about 1 MiB each, with every value written as
 * a literal (strings escaped by the server library for the connection's character set, binary as X'…'),
 * all in one transaction: the rows are all written or none is (on a transactional engine such as InnoDB).
 * The session's time_zone is '+00:00' (the connector sets it), so timestamps are written as UTC.
 */
#ifndef SPICE_MYSQL_WRITE_H
#define SPICE_MYSQL_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

#include "spice/arrow_abi.h"
#include "spice/buf.h"
#include "spice/error.h"

/* The target of a write. Borrowed. */
typedef struct myw_target {
  const char *relation;      /* `db`.`table`, quoted */
  const char *display;       /* db.table, for messages */
  const char *dataset;       /* the dataset's name, for messages */
  const char *const *names;  /* column names (for messages), in the rows' order */
  const char *const *quoted; /* the same, quoted with backticks */
  size_t n;
} myw_target;

/* Appends row `row` of `batch` (a struct array with `schema`) as `(v1, v2, …)`. m (may be NULL: then
 * backslashes and quotes are escaped by hand, as for a utf8mb4 connection) escapes strings. A value that
 * MySQL cannot take (NaN, an Arrow type without a mapping) is SP_EINVAL naming the column. */
int myw_append_row(MYSQL *m, const myw_target *t, const struct ArrowSchema *schema, const struct ArrowArray *batch,
                   int64_t row, sp_buf *out, sp_error *err);

/* Writes `rows` (consumed, even on failure) over m (borrowed, connected, no transaction open) in one
 * transaction. Errors name the dataset and carry the server's message; nothing is written then. */
int myw_insert(MYSQL *m, const myw_target *t, struct ArrowArrayStream *rows, int64_t *out_rows, sp_error *err);

#endif
