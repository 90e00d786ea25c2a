/* SPDX-License-Identifier: Apache-2.0
 *
 * Result writers: Arrow record batches (C Data Interface) rendered as JSON rows, CSV, an ASCII box table, or
 * Spice's application/vnd.spiceai.sql.v1+json envelope, appended to a growable buffer. They read ArrowArray,
 * never DuckDB vectors, so HTTP /v1/sql, the CLI and Flight can share them.
 *
 *   sp_formatter *f;  sp_buf out = {0};
 *   SP_TRY(sp_formatter_create(SP_FORMAT_JSON, &schema, &f, err));   schema may be released afterwards
 *   sp_format_begin(f, &out, err);
 *   for each batch b:  sp_format_batch(f, &b, &out, err);            or sp_format_rows() in bounded pieces
 *   sp_format_end(f, &out, err);
 *   sp_formatter_destroy(f);  sp_buf_free(&out);
 *
 * Streaming: every call only appends, so a caller may send out->data and reset out->len between calls. The
 * table format is the exception that needs look-ahead for column widths: it holds rows back (up to
 * SP_TABLE_BLOCK_ROWS rows or SP_TABLE_BLOCK_BYTES of cell text) and writes them aligned when a block is full.
 *
 * How each Arrow type is rendered is documented in docs/http-api.md ("Value formatting").
 * Hot paths allocate nothing per value: numbers are formatted without printf into the buffer, which grows by
 * doubling and is meant to be reused across batches and requests.
 */
#ifndef SPICE_SERVER_FORMAT_H
#define SPICE_SERVER_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "spice/arrow_abi.h"
#include "spice/buf.h"
#include "spice/error.h"

/* ---- Formatters ----------------------------------------------------------------------------------------- */

typedef enum sp_format_kind {
  SP_FORMAT_JSON = 0, /* application/json: [{"col":value,...},...] (NULLs written as null) */
  SP_FORMAT_CSV,      /* text/csv: header row, then rows; RFC 4180 quoting; "\n" line ends */
  SP_FORMAT_TABLE,    /* text/plain: +---+ box table like DataFusion's show() */
  SP_FORMAT_SQL_V1,   /* application/vnd.spiceai.sql.v1+json: {"schema":{..},"data":[..],"row_count":N} */
} sp_format_kind;

/* Rows the table format holds back at most before it writes an aligned block. */
#define SP_TABLE_BLOCK_ROWS 100000
#define SP_TABLE_BLOCK_BYTES ((size_t)16 << 20)

typedef struct sp_formatter sp_formatter;

/* Prepares a writer for batches of `schema` (a struct schema whose children are the columns, as returned by
 * ArrowArrayStream.get_schema). The schema is only read during the call. Fails with SP_ENOTSUP naming the
 * column when a column's type cannot be rendered, SP_EINVAL when the schema is malformed. *out is owned by
 * the caller (sp_formatter_destroy). */
int sp_formatter_create(sp_format_kind kind, const struct ArrowSchema *schema, sp_formatter **out, sp_error *err);
void sp_formatter_destroy(sp_formatter *f); /* NULL-safe */

/* Writes what comes before the first row (JSON "[", CSV header, ...). */
int sp_format_begin(sp_formatter *f, sp_buf *out, sp_error *err);
/* Writes rows *row, *row+1, ... of `batch` (a struct array matching the schema; borrowed) and stops after the
 * row that makes out->len reach `soft_limit`, or at the end of the batch. Advances *row. SP_EINVAL when the
 * batch does not match the schema; SP_ENOMEM when the buffer cannot grow. */
int sp_format_rows(sp_formatter *f, const struct ArrowArray *batch, int64_t *row, size_t soft_limit, sp_buf *out,
                   sp_error *err);
/* All rows of `batch`. */
int sp_format_batch(sp_formatter *f, const struct ArrowArray *batch, sp_buf *out, sp_error *err);
/* Writes the rest (held-back table rows, closing brackets, row_count). */
int sp_format_end(sp_formatter *f, sp_buf *out, sp_error *err);

/* Rows written (or held back) so far. */
int64_t sp_format_row_count(const sp_formatter *f);

/* The MIME type a kind is served as ("application/json", "text/csv", "text/plain; charset=utf-8", ...);
 * a static string. */
const char *sp_format_content_type(sp_format_kind kind);

#endif
