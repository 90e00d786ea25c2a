/* SPDX-License-Identifier: Apache-2.0
 *
 * PostgreSQL binary COPY (`COPY … TO STDOUT (FORMAT binary)`) decoded straight into Arrow arrays: the
 * postgres connector's load path, kept apart from libpq so that it can be fuzzed on its own.
 *
 * The decoder takes the bytes of the COPY stream in any chunking (libpq hands out one CopyData message per
 * row, with the file header in the first one), appends each row to per-column builders, and cuts a batch
 * (a struct array) whenever the caller asks for one. Buffers grow geometrically inside a batch; each
 * finished batch owns its buffers, and the next batch starts presized to the previous one.
 */
#ifndef SPICE_PG_COPY_H
#define SPICE_PG_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spice/arrow_abi.h"
#include "spice/error.h"

/* What a column decodes into. */
typedef enum pgc_kind {
  PGC_BOOL = 0,
  PGC_INT2,
  PGC_INT4,
  PGC_INT8,
  PGC_OID,          /* uint32 → int64 */
  PGC_FLOAT4,
  PGC_FLOAT8,
  PGC_TEXT,         /* text, varchar, name, "char", json, enum labels, ::text casts → utf8 */
  PGC_JSONB,        /* version byte 1, then text → utf8 */
  PGC_BYTEA,        /* → binary */
  PGC_DATE,         /* → date32 */
  PGC_TIME,         /* → time64[us] */
  PGC_TIMESTAMP,    /* → timestamp[us] */
  PGC_TIMESTAMPTZ,  /* → timestamp[us, UTC] */
  PGC_INTERVAL,     /* → interval month_day_nano */
  PGC_UUID,         /* → utf8, canonical 8-4-4-4-12 text */
  PGC_NUMERIC,      /* → decimal128(precision, scale) */
  PGC_NUMERIC_TEXT, /* unbounded numeric → utf8 with every digit */
  PGC_LIST,         /* one-dimensional array (multi-dimensional ones are flattened) of `elem` → list */
  PGC_BPCHAR,       /* char(n) → utf8 without the trailing spaces that pad it (PostgreSQL compares it without
                     * them too; Spice trims them as well) */
  PGC_KIND_COUNT
} pgc_kind;

typedef struct pgc_type {
  pgc_kind kind;
  int precision, scale;     /* PGC_NUMERIC */
  pgc_kind elem;            /* PGC_LIST: the element kind (never PGC_LIST) */
  int elem_precision, elem_scale;
} pgc_type;

typedef struct pgc_decoder pgc_decoder;

/* The Arrow schema (a struct) of columns `names` (borrowed, copied) with `types`. *out is owned by the caller. */
int pgc_schema(const pgc_type *types, const char *const *names, size_t n, struct ArrowSchema *out, sp_error *err);

/* A decoder for rows of n columns with `types` (copied). Free it with pgc_decoder_free (NULL-safe). */
int pgc_decoder_new(const pgc_type *types, size_t n, pgc_decoder **out, sp_error *err);
void pgc_decoder_free(pgc_decoder *d);

/* Feeds the next `len` bytes of the COPY stream (borrowed). Whole rows are decoded at once; a partial row
 * waits for the next call. Any malformed input is SP_EIO with a message saying what was wrong. */
int pgc_feed(pgc_decoder *d, const uint8_t *data, size_t len, sp_error *err);

/* Rows decoded and not yet cut into a batch, and the bytes their buffers hold. */
int64_t pgc_pending_rows(const pgc_decoder *d);
size_t pgc_pending_bytes(const pgc_decoder *d);

/* True once the trailer (-1) has been read. */
bool pgc_done(const pgc_decoder *d);

/* Checks that the stream ended cleanly (the trailer read, nothing left over). */
int pgc_end(const pgc_decoder *d, sp_error *err);

/* Cuts the pending rows into a struct array (owned by the caller; it owns its buffers). */
int pgc_finish_batch(pgc_decoder *d, struct ArrowArray *out, sp_error *err);

#endif
