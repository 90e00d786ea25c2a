/* SPDX-License-Identifier: Apache-2.0
 *
 * The footer of a Parquet file (FileMetaData, Thrift compact protocol), read from bytes fetched over the
 * network: outside input, so every length, count and offset is checked. Only what a ranged read needs is
 * kept: the top-level columns and their leaves, and per row group and leaf the byte range of the column chunk,
 * its bloom filter and its statistics. The footer can be written again with a subset of its row groups (every
 * other byte copied as it was), so that a reader of the file cannot reach the row groups left out.
 */
#ifndef SPICE_CONNECTORS_PARQUET_FOOTER_H
#define SPICE_CONNECTORS_PARQUET_FOOTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spice/buf.h"
#include "spice/error.h"

enum { SP_PQ_TAIL = 8 }; /* a file ends with the footer's length (4 bytes, little-endian) and "PAR1" */

/* Parquet's physical types (Type in parquet.thrift). */
typedef enum sp_pq_type {
  SP_PQ_BOOLEAN = 0, SP_PQ_INT32, SP_PQ_INT64, SP_PQ_INT96, SP_PQ_FLOAT, SP_PQ_DOUBLE, SP_PQ_BYTE_ARRAY,
  SP_PQ_FIXED_LEN_BYTE_ARRAY
} sp_pq_type;

/* How a leaf's values compare, as far as row-group pruning cares (from its converted and logical types). */
typedef enum sp_pq_kind {
  SP_PQ_KIND_OTHER = 0, /* no pruning on it */
  SP_PQ_KIND_INT,       /* signed INT32/INT64, no annotation or a signed integer one */
  SP_PQ_KIND_DOUBLE,    /* DOUBLE, no annotation */
  SP_PQ_KIND_STRING,    /* BYTE_ARRAY annotated UTF8 / STRING: unsigned byte-wise order */
  SP_PQ_KIND_DATE,      /* INT32 days since 1970-01-01 */
} sp_pq_kind;

typedef struct sp_pq_leaf {
  int top;              /* index of its top-level column */
  sp_pq_type type;
  sp_pq_kind kind;
  bool flat;            /* the top-level column itself, not repeated: one value (or null) per row */
  bool ordered;         /* column_orders says TYPE_ORDER: min_value / max_value are meaningful */
} sp_pq_leaf;

/* A column chunk of one row group. Pointers point into the sp_pq_meta's copy of the footer. */
typedef struct sp_pq_chunk {
  int64_t start, len;          /* the pages, as readers find them: the dictionary page (when its offset is
                                * >= 4) or the first data page, total_compressed_size bytes */
  int64_t bloom_start, bloom_len; /* -1 when absent; bloom_len -1 when the footer does not say */
  int64_t num_values;
  const uint8_t *min, *max;    /* min_value / max_value, PLAIN-encoded; NULL when absent */
  uint32_t min_len, max_len;
  int64_t null_count, nan_count; /* -1 when absent */
} sp_pq_chunk;

typedef struct sp_pq_row_group {
  int64_t num_rows;
  sp_pq_chunk *chunks; /* one per leaf, in leaf order */
  size_t span_start, span_end; /* its bytes in the footer */
} sp_pq_row_group;

/* A parsed footer; owned by the caller, freed with sp__pq_meta_free. */
typedef struct sp_pq_meta {
  uint8_t *raw;        /* the FileMetaData bytes (a copy) */
  size_t raw_len;
  char **top;          /* top-level column names, NUL-terminated */
  size_t n_top;
  sp_pq_leaf *leaves;
  size_t n_leaves;
  sp_pq_row_group *rgs;
  size_t n_rgs;
  int64_t num_rows;
  int64_t data_end;    /* where the footer starts in the file: every range lies before it */
  /* Where the rewrite patches: num_rows' value and the row_groups list (header and elements). */
  size_t num_rows_at, num_rows_end, rgs_at, rgs_end;
} sp_pq_meta;

/* The footer's length from the last SP_PQ_TAIL bytes of a file. SP_ENOTSUP for an encrypted footer ("PARE"),
 * SP_EINVAL when they are no Parquet tail or the length cannot fit in a file of `file_size` bytes. */
int sp__pq_footer_length(const uint8_t tail[SP_PQ_TAIL], int64_t file_size, uint32_t *len, sp_error *err);

/* Parses len bytes of FileMetaData (copied). Every column chunk, bloom filter and row group must lie in
 * [4, data_end), data_end being where the footer starts in the file. SP_EINVAL with a message for malformed
 * input; SP_ENOTSUP for valid files a ranged read does not handle (encrypted columns, column data in other
 * files). On success *out is owned by the caller. */
int sp__pq_meta_parse(const uint8_t *buf, size_t len, int64_t data_end, sp_pq_meta **out, sp_error *err);
void sp__pq_meta_free(sp_pq_meta *m); /* NULL-safe */

/* Appends to out the footer of the same file with only the row groups i for which keep[i] (in order),
 * num_rows adjusted, every other byte as it was; then its length and "PAR1". */
int sp__pq_footer_subset(const sp_pq_meta *m, const bool *keep, sp_buf *out, sp_error *err);

#endif
