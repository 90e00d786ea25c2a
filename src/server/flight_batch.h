/* SPDX-License-Identifier: Apache-2.0
 *
 * Internal to src/server/flight*.c: a tiny row-at-a-time builder for the small results the server makes itself
 * (Flight SQL catalog commands): utf8, binary and int32 columns with nulls, as one Arrow batch in a stream.
 */
#ifndef SP_SERVER_FLIGHT_BATCH_H
#define SP_SERVER_FLIGHT_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spice/arrow_abi.h"
#include "spice/buf.h"
#include "spice/error.h"

/* One column: its name, Arrow format ("u" utf8, "z" binary, "i" int32) and nullability. */
typedef struct fl_colspec {
  const char *name;
  const char *format;
  bool nullable;
} fl_colspec;

#define FL_MAX_COLS 8

typedef struct fl_col {
  sp_buf data;     /* values (utf8/binary bytes, or int32s) */
  sp_buf offsets;  /* int32 offsets, utf8/binary */
  sp_buf valid;    /* one byte per row: 1 = valid */
  int64_t nulls;
} fl_col;

typedef struct fl_table {
  const fl_colspec *spec;
  size_t n_cols;
  fl_col cols[FL_MAX_COLS];
  int64_t rows;
  bool oom; /* sticky: fl_table_finish reports it */
} fl_table;

/* Starts an empty table of columns spec[0..n) (borrowed until fl_table_finish). */
void fl_table_init(fl_table *t, const fl_colspec *spec, size_t n);
/* Appends a value to column `col` of the current row (every column once per row, in any order, then
 * fl_table_end_row). s == NULL appends a null. */
void fl_table_str(fl_table *t, size_t col, const char *s, size_t len);
void fl_table_i32(fl_table *t, size_t col, int32_t v);
void fl_table_end_row(fl_table *t);
/* The schema of spec[0..n) (a struct schema; owned by the caller). */
int fl_schema_make(const fl_colspec *spec, size_t n, struct ArrowSchema *out, sp_error *err);
/* Turns the rows into a one-batch stream (owned by the caller) and frees the builder, also on error. */
int fl_table_finish(fl_table *t, struct ArrowArrayStream *out, sp_error *err);
/* Frees the builder without making a stream. */
void fl_table_free(fl_table *t);

#endif
