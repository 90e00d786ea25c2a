/* SPDX-License-Identifier: Apache-2.0
 *
 * Arrow helpers over the C Data Interface: format-string parsing, deep copies, releases, value access, and
 * immutable ref-counted snapshots (the arrow accelerator's storage).
 */
#ifndef SPICE_ARROW_H
#define SPICE_ARROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spice/arrow_abi.h"
#include "spice/error.h"

typedef enum sp_arrow_type {
  SP_ARROW_NA = 0, SP_ARROW_BOOL,
  SP_ARROW_INT8, SP_ARROW_INT16, SP_ARROW_INT32, SP_ARROW_INT64,
  SP_ARROW_UINT8, SP_ARROW_UINT16, SP_ARROW_UINT32, SP_ARROW_UINT64,
  SP_ARROW_HALF, SP_ARROW_FLOAT, SP_ARROW_DOUBLE,
  SP_ARROW_UTF8, SP_ARROW_LARGE_UTF8, SP_ARROW_BINARY, SP_ARROW_LARGE_BINARY, SP_ARROW_FIXED_BINARY,
  SP_ARROW_UTF8_VIEW, SP_ARROW_BINARY_VIEW,
  SP_ARROW_DECIMAL32, SP_ARROW_DECIMAL64, SP_ARROW_DECIMAL128, SP_ARROW_DECIMAL256,
  SP_ARROW_DATE32, SP_ARROW_DATE64, SP_ARROW_TIME32, SP_ARROW_TIME64, SP_ARROW_TIMESTAMP, SP_ARROW_DURATION,
  SP_ARROW_INTERVAL_MONTHS, SP_ARROW_INTERVAL_DAY_TIME, SP_ARROW_INTERVAL_MONTH_DAY_NANO,
  SP_ARROW_LIST, SP_ARROW_LARGE_LIST, SP_ARROW_FIXED_LIST, SP_ARROW_STRUCT, SP_ARROW_MAP,
  SP_ARROW_UNSUPPORTED
} sp_arrow_type;

typedef enum sp_time_unit { SP_UNIT_SECOND = 0, SP_UNIT_MILLI, SP_UNIT_MICRO, SP_UNIT_NANO } sp_time_unit;

typedef struct sp_arrow_typeinfo {
  sp_arrow_type type;
  int precision, scale;  /* decimals */
  int byte_width;        /* fixed-size binary; fixed list size */
  sp_time_unit unit;     /* time, timestamp, duration */
  char tz[64];           /* timestamp zone ("" = none) */
} sp_arrow_typeinfo;

/* Parses an Arrow format string ("l", "tsu:UTC", "d:12,2"). Unknown formats give SP_ARROW_UNSUPPORTED. */
void sp_arrow_parse_format(const char *format, sp_arrow_typeinfo *out);

/* Schema nodes built by spicec (copies, decoded IPC): format, name and metadata are malloc'd strings held in
 * private_data, children are malloc'd structs; the release frees them all, recursively. */
typedef struct sp_schema_strings {
  char *format, *name, *metadata;
} sp_schema_strings;
/* Makes *s such a node with copies of format and name (name_len bytes; name may be NULL) and no children.
 * Returns 0, or -1 when out of memory (then release *s, which is always set). */
int sp_schema_node_init(struct ArrowSchema *s, const char *format, const char *name, size_t name_len);
void sp_schema_node_release(struct ArrowSchema *s);

/* Deep-copies a schema; *out is owned by the caller. */
int sp_schema_copy(struct ArrowSchema *out, const struct ArrowSchema *src, sp_error *err);
/* Calls release if set; safe on released or zeroed structs. */
void sp_schema_release(struct ArrowSchema *s);
void sp_array_release(struct ArrowArray *a);
void sp_stream_release(struct ArrowArrayStream *s);
/* Moves src into dst (struct copy; src->release = NULL). */
void sp_array_move(struct ArrowArray *dst, struct ArrowArray *src);
void sp_stream_move(struct ArrowArrayStream *dst, struct ArrowArrayStream *src);

/* True if element i (0-based, before the array offset is applied) is null. */
static inline bool sp_array_is_null(const struct ArrowArray *a, int64_t i) {
  const uint8_t *v = a->n_buffers > 0 ? (const uint8_t *)a->buffers[0] : NULL;
  if (a->null_count == 0 || v == NULL) return false;
  int64_t j = i + a->offset;
  return (v[j >> 3] & (1u << (j & 7))) == 0;
}

/* Bytes of Arrow payload in a batch (buffers reachable from it, sliced to its length), for progress
 * reports and memory accounting. */
int64_t sp_array_payload_bytes(const struct ArrowSchema *schema, const struct ArrowArray *a);

/* Called after every batch that passes through a metering stream (done = 0), and once at its end (done = 1),
 * with running totals. */
typedef void (*sp_stream_progress_fn)(void *ctx, int64_t rows, int64_t bytes, int done);
/* Wraps *inner (moved; released even on failure) in a stream that counts rows and bytes. */
int sp_stream_meter(struct ArrowArrayStream *inner, sp_stream_progress_fn fn, void *ctx, struct ArrowArrayStream *out,
                    sp_error *err);

/* A stream over zero or more batches that it owns, with a copy of schema. Consumes the batches. */
int sp_stream_from_batches(const struct ArrowSchema *schema, struct ArrowArray *batches, size_t n,
                           struct ArrowArrayStream *out, sp_error *err);

/* ---- Snapshots ------------------------------------------------------------------------------------------ */

/* Min/max of one column in one batch, for pruning batches a filter cannot match. Integers, dates, times,
 * timestamps and decimal32/64 compare as int64 (decimals unscaled); floats as double. */
typedef enum sp_stat_kind { SP_STAT_NONE = 0, SP_STAT_INT, SP_STAT_FLOAT, SP_STAT_ALL_NULL } sp_stat_kind;
typedef struct sp_column_stats {
  uint8_t kind; /* sp_stat_kind; NONE = unknown (never prune) */
  union { int64_t i; double d; } min, max;
} sp_column_stats;

/* An immutable, ref-counted set of batches with one schema. Readers pin it with sp_snapshot_ref while they
 * read, so a refresh can publish a new one at any time. */
struct sp_batch_owner;

typedef struct sp_snapshot {
  struct ArrowSchema schema;   /* a struct schema */
  struct ArrowArray *batches;  /* struct arrays (non-owning copies of the owners' top nodes; read-only) */
  struct sp_batch_owner **owners; /* who owns each batch; shared between snapshots */
  size_t n_batches;
  int64_t rows;
  int64_t bytes;
  int refs;                    /* atomic */
  sp_column_stats *stats;      /* n_batches * schema.n_children, row-major by batch; NULL = none */
} sp_snapshot;

/* A new snapshot with base's batches (shared, not copied) followed by `stream`'s (consumed, even on failure).
 * base may be NULL. base is unchanged; the result has one reference. */
int sp_snapshot_append(sp_snapshot *base, struct ArrowArrayStream *stream, sp_snapshot **out, sp_error *err);
/* Drains `stream` (consumed, even on failure) into a new snapshot with one reference. */
int sp_snapshot_from_stream(struct ArrowArrayStream *stream, sp_snapshot **out, sp_error *err);
/* An empty snapshot of `schema` (copied). */
int sp_snapshot_empty(const struct ArrowSchema *schema, sp_snapshot **out, sp_error *err);
sp_snapshot *sp_snapshot_ref(sp_snapshot *s);
void sp_snapshot_unref(sp_snapshot *s); /* NULL-safe; frees at zero */
/* A stream over the snapshot's batches (holds a reference; batches shared, not copied). */
int sp_snapshot_stream(sp_snapshot *s, struct ArrowArrayStream *out, sp_error *err);

#endif
