/* SPDX-License-Identifier: Apache-2.0
 *
 * ipc_tool: writes and reads Arrow IPC stream files with spicec's codec (include/spice/ipc.h), for the
 * cross-implementation test (tests/e2e/ipc.test.mjs, against apache-arrow), the fuzz seeds and a benchmark.
 *
 *   ipc_tool write OUT [SQL] [SETTING...]   the result of SQL (default: a fixed sample of every type) in an
 *                                           in-memory DuckDB, one batch per chunk; SETTINGs are DuckDB SET
 *                                           statements run first (e.g. "SET arrow_large_buffer_size = true")
 *   ipc_tool read IN                        the stream's schema and values as JSON (format below)
 *   ipc_tool bench ROWS                     encode and decode ROWS rows of a 4-column table; prints GB/s:
 *                                           encode into a reused buffer; decode keeping every batch (fresh
 *                                           memory) and streaming (each batch released before the next)
 *
 * read prints {"fields":[{"name","format","nullable"}...],"batches":[{"length":n,"columns":[[v...]...]}...]}
 * with values in a form both sides can produce exactly: null; true/false for bool; a string for utf8; for
 * every other fixed-width or binary value the hex of its bytes (little-endian, as stored); arrays for lists
 * (map entries as [key, value]); objects for structs; a dictionary-encoded value as its dictionary value.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <duckdb.h>

#include "spice/buf.h"
#include "spice/arrow.h"
#include "spice/ipc.h"

static const char *SAMPLE =
    "SELECT i::INTEGER id, (i % 3 = 0) b, (i % 200 - 100)::TINYINT i8, (i * 10)::SMALLINT i16, i * 1000000007 i64,"
    " (i % 250)::UTINYINT u8, i::UBIGINT u64, i / 4.0::FLOAT f32, i / 7.0 f64,"
    " CASE WHEN i % 4 = 1 THEN NULL ELSE 'str ' || i || ' \"q\" ü' END s, ('\\x00\\xFF' || i)::BLOB bin,"
    " (i * 1.25)::DECIMAL(9,2) dec9, (i * 12345.678)::DECIMAL(38,10) dec38, DATE '2024-02-28' + i::INTEGER d,"
    " TIME '10:00:00' + INTERVAL (i) SECOND t, TIMESTAMP '2024-01-01 12:00:00' + INTERVAL (i) MINUTE ts,"
    " TIMESTAMPTZ '2024-01-01 00:00:00+00' + INTERVAL (i) HOUR tstz, TIMESTAMP_MS '2024-01-01' tsms,"
    " INTERVAL (i) DAY + INTERVAL (i) MONTH iv, CASE WHEN i % 5 = 0 THEN NULL ELSE [i, NULL, i + 1] END lst,"
    " {'a': i, 'b': CASE WHEN i % 2 = 0 THEN NULL ELSE 'x' || i END} st, MAP {'k' || i: i} m,"
    " [i, i + 1]::INTEGER[2] arr, (['red', 'green', 'blue'])[i % 3 + 1]::ENUM('red', 'green', 'blue') color,"
    " NULL::INTEGER empty FROM range(0, 3000) t(i)";

static int fail(const char *what, const char *msg) {
  fprintf(stderr, "ipc_tool: %s: %s\n", what, msg);
  return 1;
}

/* ---- write ---------------------------------------------------------------------------------------------- */

static int query_to_stream(const char *sql, char **settings, int n_settings, sp_buf *out) {
  duckdb_database db;
  duckdb_connection c;
  duckdb_result r;
  if (duckdb_open(NULL, &db) == DuckDBError || duckdb_connect(db, &c) == DuckDBError) return fail("duckdb", "open");
  duckdb_query(c, "SET TimeZone = 'UTC'", NULL);
  for (int i = 0; i < n_settings; i++)
    if (duckdb_query(c, settings[i], NULL) == DuckDBError) return fail(settings[i], "failed");
  if (duckdb_query(c, sql, &r) == DuckDBError) return fail(sql, duckdb_result_error(&r));
  duckdb_arrow_options o = duckdb_result_get_arrow_options(&r);
  idx_t n = duckdb_column_count(&r);
  duckdb_logical_type types[256];
  const char *names[256];
  if (n > 256) return fail("query", "too many columns");
  for (idx_t i = 0; i < n; i++) {
    types[i] = duckdb_column_logical_type(&r, i);
    names[i] = duckdb_column_name(&r, i);
  }
  struct ArrowSchema schema;
  if (duckdb_to_arrow_schema(o, types, names, n, &schema) != NULL) return fail("query", "arrow schema");
  for (idx_t i = 0; i < n; i++) duckdb_destroy_logical_type(&types[i]);
  sp_ipc_writer *w;
  sp_error err = {0};
  int rc = sp_ipc_writer_create(&schema, &w, &err);
  if (rc == SP_OK) rc = sp_ipc_write_schema(w, out, &err);
  for (duckdb_data_chunk ch; rc == SP_OK && (ch = duckdb_fetch_chunk(r)) != NULL;) {
    struct ArrowArray b;
    if (duckdb_data_chunk_to_arrow(o, ch, &b) != NULL) rc = sp_fail(&err, SP_EINTERNAL, "chunk to arrow");
    duckdb_destroy_data_chunk(&ch);
    if (rc == SP_OK) rc = sp_ipc_write_batch(w, &b, out, &err);
    sp_array_release(&b);
  }
  if (rc == SP_OK) rc = sp_ipc_write_eos(out, &err);
  sp_ipc_writer_destroy(w);
  sp_schema_release(&schema);
  duckdb_destroy_arrow_options(&o);
  duckdb_destroy_result(&r);
  duckdb_disconnect(&c);
  duckdb_close(&db);
  return rc == SP_OK ? 0 : fail("write", err.msg);
}

static int cmd_write(int argc, char **argv) {
  if (argc < 3) return fail("usage", "ipc_tool write OUT [SQL] [SETTING...]");
  sp_buf out = {0};
  int rc = query_to_stream(argc > 3 ? argv[3] : SAMPLE, argv + 4, argc > 4 ? argc - 4 : 0, &out);
  if (rc != 0) return rc;
  FILE *f = fopen(argv[2], "wb");
  if (f == NULL || fwrite(out.data, 1, out.len, f) != out.len || fclose(f) != 0) return fail(argv[2], "cannot write");
  sp_buf_free(&out);
  return 0;
}

/* ---- read ----------------------------------------------------------------------------------------------- */

static void put_hex(const uint8_t *p, int64_t n) {
  putchar('"');
  for (int64_t i = 0; i < n; i++) printf("%02x", p[i]);
  putchar('"');
}

static void put_string(const uint8_t *p, int64_t n) {
  putchar('"');
  for (int64_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c < 0x20) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

static int64_t width_of(const sp_arrow_typeinfo *t) {
  switch (t->type) {
  case SP_ARROW_INT8: case SP_ARROW_UINT8: return 1;
  case SP_ARROW_INT16: case SP_ARROW_UINT16: case SP_ARROW_HALF: return 2;
  case SP_ARROW_INT32: case SP_ARROW_UINT32: case SP_ARROW_FLOAT: case SP_ARROW_DATE32: case SP_ARROW_TIME32:
  case SP_ARROW_DECIMAL32: case SP_ARROW_INTERVAL_MONTHS: return 4;
  case SP_ARROW_DECIMAL128: case SP_ARROW_INTERVAL_MONTH_DAY_NANO: return 16;
  case SP_ARROW_DECIMAL256: return 32;
  case SP_ARROW_FIXED_BINARY: return t->byte_width;
  default: return 8;
  }
}

static int64_t index_at(const struct ArrowSchema *s, const struct ArrowArray *a, int64_t j) {
  sp_arrow_typeinfo t;
  sp_arrow_parse_format(s->format, &t);
  const void *v = a->buffers[1];
  switch (t.type) {
  case SP_ARROW_INT8: return ((const int8_t *)v)[j];
  case SP_ARROW_UINT8: return ((const uint8_t *)v)[j];
  case SP_ARROW_INT16: return ((const int16_t *)v)[j];
  case SP_ARROW_UINT16: return ((const uint16_t *)v)[j];
  case SP_ARROW_INT32: return ((const int32_t *)v)[j];
  case SP_ARROW_UINT32: return ((const uint32_t *)v)[j];
  default: return ((const int64_t *)v)[j];
  }
}

static void span(const struct ArrowArray *a, bool large, int64_t j, int64_t *lo, int64_t *hi) {
  *lo = large ? ((const int64_t *)a->buffers[1])[j] : ((const int32_t *)a->buffers[1])[j];
  *hi = large ? ((const int64_t *)a->buffers[1])[j + 1] : ((const int32_t *)a->buffers[1])[j + 1];
}

static void put_value(const struct ArrowSchema *s, const struct ArrowArray *a, int64_t i) {
  sp_arrow_typeinfo t;
  sp_arrow_parse_format(s->format, &t);
  if (t.type == SP_ARROW_NA || sp_array_is_null(a, i)) {
    printf("null");
    return;
  }
  int64_t j = a->offset + i, lo, hi;
  if (s->dictionary) {
    put_value(s->dictionary, a->dictionary, index_at(s, a, j));
    return;
  }
  switch (t.type) {
  case SP_ARROW_BOOL: printf(((const uint8_t *)a->buffers[1])[j >> 3] >> (j & 7) & 1 ? "true" : "false"); return;
  case SP_ARROW_UTF8: case SP_ARROW_LARGE_UTF8: case SP_ARROW_BINARY: case SP_ARROW_LARGE_BINARY:
    span(a, t.type == SP_ARROW_LARGE_UTF8 || t.type == SP_ARROW_LARGE_BINARY, j, &lo, &hi);
    if (t.type == SP_ARROW_UTF8 || t.type == SP_ARROW_LARGE_UTF8) put_string((const uint8_t *)a->buffers[2] + lo, hi - lo);
    else put_hex((const uint8_t *)a->buffers[2] + lo, hi - lo);
    return;
  case SP_ARROW_LIST: case SP_ARROW_LARGE_LIST: case SP_ARROW_MAP:
  case SP_ARROW_FIXED_LIST:
    if (t.type == SP_ARROW_FIXED_LIST) lo = j * t.byte_width, hi = lo + t.byte_width;
    else span(a, t.type == SP_ARROW_LARGE_LIST, j, &lo, &hi);
    putchar('[');
    for (int64_t e = lo; e < hi; e++) {
      if (e > lo) putchar(',');
      if (t.type == SP_ARROW_MAP) {
        const struct ArrowSchema *es = s->children[0];
        const struct ArrowArray *ea = a->children[0];
        putchar('[');
        put_value(es->children[0], ea->children[0], ea->offset + e);
        putchar(',');
        put_value(es->children[1], ea->children[1], ea->offset + e);
        putchar(']');
      } else {
        put_value(s->children[0], a->children[0], e);
      }
    }
    putchar(']');
    return;
  case SP_ARROW_STRUCT:
    putchar('{');
    for (int64_t c = 0; c < s->n_children; c++) {
      if (c) putchar(',');
      put_string((const uint8_t *)s->children[c]->name, (int64_t)strlen(s->children[c]->name));
      putchar(':');
      put_value(s->children[c], a->children[c], j);
    }
    putchar('}');
    return;
  default: {
    int64_t w = width_of(&t);
    put_hex((const uint8_t *)a->buffers[1] + j * w, w);
  }
  }
}

static int read_file(const char *path, uint8_t **data, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return fail(path, "cannot open");
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  *data = malloc(n > 0 ? (size_t)n : 1);
  *len = fread(*data, 1, (size_t)n, f);
  fclose(f);
  return 0;
}

static int cmd_read(int argc, char **argv) {
  if (argc < 3) return fail("usage", "ipc_tool read IN");
  uint8_t *data;
  size_t len, n;
  if (read_file(argv[2], &data, &len) != 0) return 1;
  struct ArrowSchema s;
  struct ArrowArray *b;
  sp_error err = {0};
  if (sp_ipc_read_stream(data, len, &s, &b, &n, &err) != SP_OK) return fail(argv[2], err.msg);
  printf("{\"fields\":[");
  for (int64_t c = 0; c < s.n_children; c++) {
    const struct ArrowSchema *f = s.children[c];
    printf("%s{\"name\":", c ? "," : "");
    put_string((const uint8_t *)f->name, (int64_t)strlen(f->name));
    printf(",\"format\":");
    put_string((const uint8_t *)f->format, (int64_t)strlen(f->format));
    printf(",\"nullable\":%s}", f->flags & ARROW_FLAG_NULLABLE ? "true" : "false");
  }
  printf("],\"batches\":[");
  for (size_t k = 0; k < n; k++) {
    printf("%s{\"length\":%" PRId64 ",\"columns\":[", k ? "," : "", b[k].length);
    for (int64_t c = 0; c < s.n_children; c++) {
      printf("%s[", c ? "," : "");
      for (int64_t i = 0; i < b[k].length; i++) {
        if (i) putchar(',');
        put_value(s.children[c], b[k].children[c], i);
      }
      putchar(']');
    }
    printf("]}");
    sp_array_release(&b[k]);
  }
  printf("]}\n");
  free(b);
  free(data);
  sp_schema_release(&s);
  return 0;
}

/* ---- bench ---------------------------------------------------------------------------------------------- */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmd_bench(int argc, char **argv) {
  long rows = argc > 2 ? atol(argv[2]) : 10000000;
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT i AS id, i * 1.5 AS amount, 'name-' || (i %% 1000) AS label, DATE '2024-01-01' + (i %% 365)::INTEGER AS d"
           " FROM range(%ld) t(i)", rows);
  sp_buf out = {0};
  if (query_to_stream(sql, NULL, 0, &out) != 0) return 1; /* warms up too; timed below from the same batches */
  uint8_t *copy = malloc(out.len);
  memcpy(copy, out.data, out.len);
  /* Decode timing */
  double t0 = now();
  struct ArrowSchema s;
  struct ArrowArray *b;
  size_t n;
  sp_error err = {0};
  if (sp_ipc_read_stream(copy, out.len, &s, &b, &n, &err) != SP_OK) return fail("decode", err.msg);
  double dec = now() - t0;
  /* Encode timing: the decoded batches again, into a reused buffer */
  sp_ipc_writer *w;
  sp_buf enc = {0};
  if (sp_ipc_writer_create(&s, &w, &err) != SP_OK) return fail("writer", err.msg);
  sp_ipc_write_schema(w, &enc, &err); /* first pass touches the pages */
  for (size_t i = 0; i < n; i++) sp_ipc_write_batch(w, &b[i], &enc, &err);
  enc.len = 0;
  t0 = now();
  for (size_t i = 0; i < n; i++) {
    enc.len = 0; /* per batch, as a Flight server sends it */
    if (sp_ipc_write_batch(w, &b[i], &enc, &err) != SP_OK) return fail("encode", err.msg);
  }
  double encs = now() - t0;
  /* Streaming decode: each batch released before the next (what a Flight DoPut does), so memory is reused */
  sp_ipc_reader *r;
  if (sp_ipc_reader_create(&r, &err) != SP_OK) return fail("reader", err.msg);
  t0 = now();
  for (size_t pos = 0, used;; pos += used) {
    sp_ipc_msg_type type;
    struct ArrowArray one;
    if (sp_ipc_reader_next(r, copy + pos, out.len - pos, &used, &type, &one, &err) != SP_OK) return fail("decode", err.msg);
    if (type == SP_IPC_EOS) break;
    if (type == SP_IPC_RECORD_BATCH) sp_array_release(&one);
  }
  double stream = now() - t0;
  sp_ipc_reader_destroy(r);
  printf("{\"rows\":%ld,\"batches\":%zu,\"bytes\":%zu,\"encode_gbps\":%.2f,\"decode_kept_gbps\":%.2f,"
         "\"decode_streaming_gbps\":%.2f}\n", rows, n, out.len, (double)out.len / encs / 1e9,
         (double)out.len / dec / 1e9, (double)out.len / stream / 1e9);
  for (size_t i = 0; i < n; i++) sp_array_release(&b[i]);
  free(b);
  sp_schema_release(&s);
  sp_ipc_writer_destroy(w);
  sp_buf_free(&enc);
  sp_buf_free(&out);
  free(copy);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "write") == 0) return cmd_write(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "read") == 0) return cmd_read(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "bench") == 0) return cmd_bench(argc, argv);
  fprintf(stderr, "usage: ipc_tool write OUT [SQL] [SETTING...] | read IN | bench [ROWS]\n");
  return 2;
}
