/* SPDX-License-Identifier: Apache-2.0
 *
 * What a read of a Parquet file needs, from its footer alone: the row groups that a federated scan's pushed
 * conditions cannot rule out by their statistics, and the byte ranges of the column chunks (and bloom filters)
 * of the columns it reads in those row groups. Conservative throughout: a condition it does not understand,
 * a column it cannot resolve or a statistic it cannot trust keeps everything it could concern.
 *
 * Row groups are only dropped when no row in them can satisfy one of the conditions of the scan's WHERE (which
 * the engine applies again anyway), or when a limit is met without them and no condition is pushed.
 */
#ifndef SPICE_CONNECTORS_PARQUET_PLAN_H
#define SPICE_CONNECTORS_PARQUET_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "connectors/parquet_footer.h"
#include "spice/error.h"

/* Bytes [start, end) of a file. */
typedef struct sp_byte_range {
  int64_t start, end;
} sp_byte_range;

typedef struct sp_pq_plan {
  bool *keep;            /* per row group: the read needs it */
  size_t n_kept;
  sp_byte_range *ranges; /* what reading the kept row groups touches: sorted, disjoint, not adjacent */
  size_t n_ranges;
  int64_t bytes;         /* their total */
} sp_pq_plan;

/* Plans a read of the file described by m. columns (borrowed): the columns read, by name (NULL or none: all);
 * filter_json: json_serialize_sql of the scan's `SELECT * FROM <dataset> WHERE …` (NULL: no conditions; text
 * that does not parse: conditions on unknown columns, so every column is read and no row group dropped);
 * limit: rows wanted (-1: all), used only without conditions. On success *out is owned by the caller. */
int sp__pq_plan(const sp_pq_meta *m, const char *const *columns, size_t n_columns, const char *filter_json,
                int64_t limit, sp_pq_plan *out, sp_error *err);
void sp__pq_plan_free(sp_pq_plan *p); /* NULL-safe; the struct itself is the caller's */

/* Sorts ranges[0..n) and merges those that overlap or touch; returns the new count. */
size_t sp__byte_ranges_normalize(sp_byte_range *ranges, size_t n);

#endif
