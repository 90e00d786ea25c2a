/* SPDX-License-Identifier: Apache-2.0
 *
 * The Arrow IPC codec (include/spice/ipc.h): every type round-trips encode -> decode with exactly the same
 * values, batches from real DuckDB queries (converted as src/engine/query.c does) and hand-built arrays for the
 * types DuckDB does not produce; slices, empty batches, nested nulls, dictionaries; re-encoding a decoded
 * stream gives the same bytes; the Flight frames point at the messages; and malformed input (truncated,
 * lying offsets and lengths, misaligned buffers, broken flatbuffers, random damage) is refused with SP_EINVAL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <duckdb.h>

#include "arrow/flatbuf.h"
#include "spice/buf.h"
#include "spice/arrow.h"
#include "spice/ipc.h"

static duckdb_database db;

static int group_setup(void **state) {
  (void)state;
  return duckdb_open(NULL, &db) == DuckDBError ? -1 : 0;
}

static int group_teardown(void **state) {
  (void)state;
  duckdb_close(&db);
  return 0;
}

/* ---- DuckDB as the producer ------------------------------------------------------------------------------ */

typedef struct batches {
  struct ArrowSchema schema;
  struct ArrowArray *b;
  size_t n;
} batches;

static void fail_on(duckdb_error_data ed, const char *what) {
  if (ed == NULL) return;
  if (duckdb_error_data_has_error(ed)) fail_msg("%s: %s", what, duckdb_error_data_message(ed));
  duckdb_destroy_error_data(&ed);
}

static void run(duckdb_connection c, const char *sql) {
  duckdb_result r;
  if (duckdb_query(c, sql, &r) == DuckDBError) fail_msg("%s: %s", sql, duckdb_result_error(&r));
  duckdb_destroy_result(&r);
}

/* Runs sql (after the settings) and returns its Arrow schema and one batch per chunk. */
static void ddb_query(const char *const *settings, const char *sql, batches *out) {
  duckdb_connection c;
  assert_int_equal(duckdb_connect(db, &c), DuckDBSuccess);
  run(c, "SET SESSION TimeZone = 'UTC'");
  for (; settings && *settings; settings++) run(c, *settings);
  duckdb_result r;
  memset(out, 0, sizeof *out);
  if (duckdb_query(c, sql, &r) == DuckDBError) fail_msg("%s: %s", sql, duckdb_result_error(&r));
  duckdb_arrow_options o = duckdb_result_get_arrow_options(&r);
  idx_t n = duckdb_column_count(&r);
  duckdb_logical_type *types = calloc(n, sizeof *types);
  const char **names = calloc(n, sizeof *names);
  for (idx_t i = 0; i < n; i++) {
    types[i] = duckdb_column_logical_type(&r, i);
    names[i] = duckdb_column_name(&r, i);
  }
  fail_on(duckdb_to_arrow_schema(o, types, names, n, &out->schema), "duckdb_to_arrow_schema");
  for (idx_t i = 0; i < n; i++) duckdb_destroy_logical_type(&types[i]);
  free(types);
  free(names);
  for (duckdb_data_chunk ch; (ch = duckdb_fetch_chunk(r)) != NULL;) {
    out->b = realloc(out->b, (out->n + 1) * sizeof *out->b);
    fail_on(duckdb_data_chunk_to_arrow(o, ch, &out->b[out->n]), "duckdb_data_chunk_to_arrow");
    out->n++;
    duckdb_destroy_data_chunk(&ch);
  }
  duckdb_destroy_arrow_options(&o);
  duckdb_destroy_result(&r);
  duckdb_disconnect(&c);
}

static void batches_free(batches *a) {
  for (size_t i = 0; i < a->n; i++) sp_array_release(&a->b[i]);
  free(a->b);
  sp_schema_release(&a->schema);
}

/* ---- Comparing values ------------------------------------------------------------------------------------ */

static int64_t load_index(const struct ArrowSchema *s, const struct ArrowArray *a, int64_t j) {
  sp_arrow_typeinfo t;
  sp_arrow_parse_format(s->format, &t);
  const uint8_t *v = a->buffers[1];
  switch (t.type) {
  case SP_ARROW_INT8: return ((const int8_t *)v)[j];
  case SP_ARROW_UINT8: return v[j];
  case SP_ARROW_INT16: return ((const int16_t *)(const void *)v)[j];
  case SP_ARROW_UINT16: return ((const uint16_t *)(const void *)v)[j];
  case SP_ARROW_INT32: return ((const int32_t *)(const void *)v)[j];
  case SP_ARROW_UINT32: return ((const uint32_t *)(const void *)v)[j];
  default: return ((const int64_t *)(const void *)v)[j];
  }
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

static void offsets_at(const struct ArrowArray *a, bool large, int64_t j, int64_t *lo, int64_t *hi) {
  if (large) {
    *lo = ((const int64_t *)a->buffers[1])[j];
    *hi = ((const int64_t *)a->buffers[1])[j + 1];
  } else {
    *lo = ((const int32_t *)a->buffers[1])[j];
    *hi = ((const int32_t *)a->buffers[1])[j + 1];
  }
}

/* Logical element i of a equals element k of b (both of schema s); i and k before the arrays' offsets. */
static void cmp(const struct ArrowSchema *s, const struct ArrowArray *a, int64_t i, const struct ArrowArray *b,
                int64_t k, const char *path) {
  sp_arrow_typeinfo t;
  sp_arrow_parse_format(s->format, &t);
  if (t.type == SP_ARROW_NA) return;
  bool na = sp_array_is_null(a, i), nb = sp_array_is_null(b, k);
  if (na != nb) fail_msg("%s[%lld]: null %d vs %d", path, (long long)i, na, nb);
  if (na) return;
  int64_t j = a->offset + i, m = b->offset + k, alo, ahi, blo, bhi;
  if (s->dictionary) {
    cmp(s->dictionary, a->dictionary, load_index(s, a, j), b->dictionary, load_index(s, b, m), path);
    return;
  }
  switch (t.type) {
  case SP_ARROW_BOOL: {
    const uint8_t *x = a->buffers[1], *y = b->buffers[1];
    if (((x[j >> 3] >> (j & 7)) & 1) != ((y[m >> 3] >> (m & 7)) & 1)) fail_msg("%s[%lld]: bool differs", path, (long long)i);
    return;
  }
  case SP_ARROW_UTF8: case SP_ARROW_BINARY: case SP_ARROW_LARGE_UTF8: case SP_ARROW_LARGE_BINARY: {
    bool large = t.type == SP_ARROW_LARGE_UTF8 || t.type == SP_ARROW_LARGE_BINARY;
    offsets_at(a, large, j, &alo, &ahi);
    offsets_at(b, large, m, &blo, &bhi);
    if (ahi - alo != bhi - blo || memcmp((const char *)a->buffers[2] + alo, (const char *)b->buffers[2] + blo,
                                         (size_t)(ahi - alo)) != 0)
      fail_msg("%s[%lld]: bytes differ", path, (long long)i);
    return;
  }
  case SP_ARROW_LIST: case SP_ARROW_LARGE_LIST: case SP_ARROW_MAP:
    offsets_at(a, t.type == SP_ARROW_LARGE_LIST, j, &alo, &ahi);
    offsets_at(b, t.type == SP_ARROW_LARGE_LIST, m, &blo, &bhi);
    if (ahi - alo != bhi - blo) fail_msg("%s[%lld]: list lengths %lld vs %lld", path, (long long)i,
                                         (long long)(ahi - alo), (long long)(bhi - blo));
    for (int64_t e = 0; e < ahi - alo; e++) cmp(s->children[0], a->children[0], alo + e, b->children[0], blo + e, path);
    return;
  case SP_ARROW_FIXED_LIST:
    for (int64_t e = 0; e < t.byte_width; e++)
      cmp(s->children[0], a->children[0], j * t.byte_width + e, b->children[0], m * t.byte_width + e, path);
    return;
  case SP_ARROW_STRUCT:
    for (int64_t c = 0; c < s->n_children; c++) cmp(s->children[c], a->children[c], j, b->children[c], m, path);
    return;
  default: {
    int64_t w = width_of(&t);
    if (memcmp((const uint8_t *)a->buffers[1] + j * w, (const uint8_t *)b->buffers[1] + m * w, (size_t)w) != 0)
      fail_msg("%s[%lld]: value differs (format %s)", path, (long long)i, s->format);
  }
  }
}

/* Bytes of a C Data Interface metadata blob (0 for none or no entries). */
static size_t metadata_size(const char *m) {
  if (m == NULL) return 0;
  int32_t n, len;
  size_t pos = 4;
  memcpy(&n, m, 4);
  for (int32_t i = 0; i < 2 * n; i++) {
    memcpy(&len, m + pos, 4);
    pos += 4 + (size_t)len;
  }
  return n ? pos : 0;
}

static void cmp_schema(const struct ArrowSchema *a, const struct ArrowSchema *b) {
  sp_arrow_typeinfo ta, tb; /* "d:4,1,128" and "d:4,1" are one type */
  sp_arrow_parse_format(a->format, &ta);
  sp_arrow_parse_format(b->format, &tb);
  if (memcmp(&ta, &tb, sizeof ta) != 0) fail_msg("format %s vs %s", a->format, b->format);
  if (strcmp(a->name ? a->name : "", b->name ? b->name : "") != 0) fail_msg("name %s vs %s", a->name, b->name);
  if (a->flags != b->flags) fail_msg("flags of %s: %lld vs %lld", a->name, (long long)a->flags, (long long)b->flags);
  assert_int_equal(a->n_children, b->n_children);
  for (int64_t i = 0; i < a->n_children; i++) cmp_schema(a->children[i], b->children[i]);
  assert_int_equal(metadata_size(a->metadata), metadata_size(b->metadata));
  if (a->metadata) assert_memory_equal(a->metadata, b->metadata, metadata_size(a->metadata));
  assert_int_equal(a->dictionary != NULL, b->dictionary != NULL);
  if (a->dictionary) {
    sp_arrow_parse_format(a->dictionary->format, &ta);
    sp_arrow_parse_format(b->dictionary->format, &tb);
    assert_memory_equal(&ta, &tb, sizeof ta);
    assert_int_equal(a->dictionary->n_children, b->dictionary->n_children);
    for (int64_t i = 0; i < a->dictionary->n_children; i++) cmp_schema(a->dictionary->children[i], b->dictionary->children[i]);
  }
}

/* A batch schema: the root's name and flags are not part of the IPC schema, only the columns are. */
static void cmp_columns(const struct ArrowSchema *a, const struct ArrowSchema *b) {
  assert_string_equal(b->format, "+s");
  assert_int_equal(a->n_children, b->n_children);
  for (int64_t i = 0; i < a->n_children; i++) cmp_schema(a->children[i], b->children[i]);
}

static void cmp_batch(const struct ArrowSchema *s, const struct ArrowArray *a, const struct ArrowArray *b) {
  assert_int_equal(a->length, b->length);
  for (int64_t c = 0; c < s->n_children; c++)
    for (int64_t i = 0; i < a->length; i++)
      cmp(s->children[c], a->children[c], a->offset + i, b->children[c], b->offset + i, s->children[c]->name);
}

/* ---- Round trips ----------------------------------------------------------------------------------------- */

static void encode(const struct ArrowSchema *s, const struct ArrowArray *b, size_t n, sp_buf *out) {
  sp_ipc_writer *w;
  sp_error err = {0};
  if (sp_ipc_writer_create(s, &w, &err) != SP_OK) fail_msg("writer: %s", err.msg);
  if (sp_ipc_write_schema(w, out, &err) != SP_OK) fail_msg("schema: %s", err.msg);
  for (size_t i = 0; i < n; i++)
    if (sp_ipc_write_batch(w, &b[i], out, &err) != SP_OK) fail_msg("batch %zu: %s", i, err.msg);
  assert_int_equal(sp_ipc_write_eos(out, &err), SP_OK);
  sp_ipc_writer_destroy(w);
}

/* Encodes, decodes, compares; then re-encodes the decoded stream and expects the same bytes. */
static void round_trip(const struct ArrowSchema *s, const struct ArrowArray *b, size_t n) {
  sp_buf out = {0}, again = {0};
  sp_error err = {0};
  encode(s, b, n, &out);
  struct ArrowSchema s2;
  struct ArrowArray *b2;
  size_t n2;
  if (sp_ipc_read_stream((const uint8_t *)out.data, out.len, &s2, &b2, &n2, &err) != SP_OK) fail_msg("read: %s", err.msg);
  assert_int_equal(n2, n);
  cmp_columns(s, &s2);
  for (size_t i = 0; i < n; i++) cmp_batch(s, &b[i], &b2[i]);
  encode(&s2, b2, n2, &again);
  assert_int_equal(again.len, out.len);
  assert_memory_equal(again.data, out.data, out.len);
  for (size_t i = 0; i < n2; i++) sp_array_release(&b2[i]);
  free(b2);
  sp_schema_release(&s2);
  sp_buf_free(&out);
  sp_buf_free(&again);
}

static const char *ALL_TYPES =
    "SELECT (i % 3 = 0) b, (i % 100)::TINYINT ti, i::SMALLINT si, i::INTEGER i, i * 1000000007 bi, (i % 200)::UTINYINT ut,"
    " i::USMALLINT us, i::UINTEGER ui, i::UBIGINT ub, i::HUGEINT hi, i / 3.0::FLOAT f, i / 7.0 d,"
    " 'str' || i s, ('blob' || i)::BLOB bl, (i / 10)::DECIMAL(4,1) d4, (i / 100)::DECIMAL(9,2) d9,"
    " (i * 1.5)::DECIMAL(18,3) d18, (i * 12345.678)::DECIMAL(38,10) d38, DATE '2020-01-01' + i::INTEGER dt,"
    " TIME '10:00:00' + INTERVAL (i) SECOND tm, TIMESTAMP '2020-01-01' + INTERVAL (i) MINUTE ts,"
    " TIMESTAMP_S '2020-01-01' tss, TIMESTAMP_MS '2020-01-01' tsm, TIMESTAMP_NS '2020-01-01' tsn,"
    " TIMESTAMPTZ '2020-01-01 00:00:00+00' + INTERVAL (i) HOUR tstz, INTERVAL (i) DAY + INTERVAL (i) MONTH iv,"
    " CASE WHEN i % 4 = 0 THEN NULL ELSE [i, NULL, i + 1] END lst, [{'x': i}, NULL, {'x': NULL}] los,"
    " CASE WHEN i % 5 = 0 THEN NULL ELSE {'a': i, 'b': CASE WHEN i % 2 = 0 THEN NULL ELSE 'x' || i END} END st,"
    " MAP {'k' || i: i, 'z': NULL} m, [i, i + 1, NULL]::INTEGER[3] arr,"
    " (['sad', 'ok', 'happy'])[i % 3 + 1]::ENUM('sad', 'ok', 'happy') e, NULL::INTEGER n,"
    " CASE WHEN i % 2 = 0 THEN NULL ELSE i END half_null, repeat('x', (i % 50)::INTEGER) var,"
    " {'k': i, 'e': (['x', 'y'])[i % 2 + 1]::ENUM('x', 'y')} se,"
    " [(['p', 'q', 'r'])[i % 3 + 1]::ENUM('p', 'q', 'r'), NULL] le,"
    " ('00000000-0000-0000-0000-' || lpad(i::VARCHAR, 12, '0'))::UUID u"
    " FROM range(0, 5000) t(i)";

static void test_duckdb_all_types(void **state) {
  (void)state;
  static const char *const settings[][4] = {
      {NULL},
      {"SET SESSION arrow_lossless_conversion = true", "SET SESSION arrow_large_buffer_size = true", NULL},
      {"SET SESSION arrow_output_version = '1.5'", "SET SESSION produce_arrow_string_view = false", NULL},
  };
  char narrow[2048]; /* Arrow 1.5 output has views for blobs and lists: keep its decimal32/64 and the rest */
  snprintf(narrow, sizeof narrow, "SELECT * EXCLUDE (bl, lst, los) FROM (%s)", ALL_TYPES);
  for (size_t k = 0; k < sizeof settings / sizeof settings[0]; k++) {
    batches a;
    ddb_query(settings[k], k == 2 ? narrow : ALL_TYPES, &a);
    assert_true(a.n >= 2);
    round_trip(&a.schema, a.b, a.n);
    if (k == 1) { /* lossless: uuid is fixed-size binary with the arrow.uuid extension in its metadata */
      const struct ArrowSchema *u = a.schema.children[a.schema.n_children - 1];
      assert_string_equal(u->format, "w:16");
      assert_true(metadata_size(u->metadata) > 0);
    }
    batches_free(&a);
  }
}

/* A batch viewed from row `start` for `len` rows: a shallow copy with a different offset and length (and a
 * no-op release; the original keeps ownership). */
static void noop_release(struct ArrowArray *a) { a->release = NULL; }
static void s_release(struct ArrowSchema *s) { s->release = NULL; }

static struct ArrowArray view(const struct ArrowArray *b, int64_t start, int64_t len) {
  struct ArrowArray v = *b;
  v.offset = b->offset + start;
  v.length = len;
  v.null_count = -1;
  v.release = noop_release;
  return v;
}

static void test_slices_and_empty(void **state) {
  (void)state;
  batches a;
  ddb_query(NULL, ALL_TYPES, &a);
  struct ArrowArray v[4] = {view(&a.b[0], 3, 1000), view(&a.b[0], 1, 1), view(&a.b[0], 17, 0),
                            view(&a.b[1], 13, a.b[1].length - 13)};
  round_trip(&a.schema, v, 4);
  /* A child sliced on its own: shift the column arrays by 5 and the parent view keeps them aligned. */
  struct ArrowArray cols[64], *ptrs[64], top = view(&a.b[0], 0, a.b[0].length - 5);
  assert_true(a.b[0].n_children <= 64);
  for (int64_t c = 0; c < a.b[0].n_children; c++) {
    cols[c] = view(a.b[0].children[c], 5, a.b[0].children[c]->length - 5);
    ptrs[c] = &cols[c];
  }
  top.children = ptrs;
  round_trip(&a.schema, &top, 1);
  round_trip(&a.schema, NULL, 0);
  batches_free(&a);

  /* no columns at all: empty node and buffer vectors */
  struct ArrowSchema none = {.format = "+s", .name = "", .release = s_release};
  struct ArrowArray rows = {.length = 5, .n_buffers = 1, .buffers = (const void *[]){NULL}, .release = noop_release};
  round_trip(&none, &rows, 1);

  batches e;
  ddb_query(NULL, "SELECT 1 a, 'x' b, [1] c WHERE false", &e);
  assert_int_equal(e.n, 0);
  round_trip(&e.schema, NULL, 0);
  batches_free(&e);
}

/* ---- Hand-built arrays for what DuckDB does not produce ------------------------------------------------- */

typedef struct hand {
  struct ArrowSchema s[24], *sp[24];
  struct ArrowArray a[24], *ap[24];
  int n;
} hand;

static int col(hand *h, const char *format, const char *name, int64_t len, int64_t nulls, const void *b0,
               const void *b1, const void *b2) {
  int i = h->n++;
  h->s[i] = (struct ArrowSchema){.format = format, .name = name, .flags = ARROW_FLAG_NULLABLE, .release = s_release};
  static const void *bufs[24][3];
  bufs[i][0] = b0;
  bufs[i][1] = b1;
  bufs[i][2] = b2;
  int nb = format[0] == 'n' ? 0 : (b2 ? 3 : b1 ? 2 : 1);
  h->a[i] = (struct ArrowArray){.length = len, .null_count = nulls, .n_buffers = nb, .buffers = bufs[i],
                                .release = noop_release};
  h->sp[i] = &h->s[i];
  h->ap[i] = &h->a[i];
  return i;
}

static void test_hand_built_types(void **state) {
  (void)state;
  static const uint8_t valid[] = {0x5b}; /* rows 2 and 5 null */
  static const uint16_t halfs[] = {0x3c00, 0xc000, 0, 0x7bff, 0x3555, 0, 1};
  static const int32_t i32[] = {1, -2, 3, 40000, -5, 6, 7};
  static const int64_t i64[] = {86400000, -1, 3, 1LL << 40, -5, 6, 7};
  static const int32_t months[] = {1, 2, 3, 4, 5, 6, 7};
  static const int32_t daytime[] = {1, 1000, 2, 2000, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7};
  static const char fsb[] = "aaaabbbbccccddddeeeeffffgggg";
  static const int64_t loffs[] = {0, 1, 3, 3, 6, 7, 9, 10};
  static const char ldata[] = "abbcccdeeffg";
  static uint8_t dec256[7 * 32];
  for (int i = 0; i < 7; i++) dec256[i * 32] = (uint8_t)(i + 1), dec256[i * 32 + 31] = i == 4 ? 0xff : 0;
  static const uint8_t dict_idx[] = {2, 0, 1, 1, 0, 2, 2};
  static const int32_t dict_offs[] = {0, 3, 5, 10};
  static const char dict_data[] = "redokyellow";

  hand h = {0};
  col(&h, "e", "half", 7, 2, valid, halfs, NULL);
  col(&h, "tdm", "date64", 7, 2, valid, i64, NULL);
  col(&h, "tts", "time32s", 7, 0, NULL, i32, NULL);
  col(&h, "ttm", "time32ms", 7, 2, valid, i32, NULL);
  col(&h, "ttn", "time64ns", 7, 2, valid, i64, NULL);
  col(&h, "tDs", "dur_s", 7, 2, valid, i64, NULL);
  col(&h, "tDn", "dur_ns", 7, 0, NULL, i64, NULL);
  col(&h, "tiM", "months", 7, 2, valid, months, NULL);
  col(&h, "tiD", "day_time", 7, 2, valid, daytime, NULL);
  col(&h, "w:4", "fsb", 7, 2, valid, fsb, NULL);
  col(&h, "U", "large_utf8", 7, 2, valid, loffs, ldata);
  col(&h, "Z", "large_bin", 7, 0, NULL, loffs, ldata);
  col(&h, "d:40,5,256", "dec256", 7, 2, valid, dec256, NULL);
  col(&h, "d:9,2,32", "dec32", 7, 2, valid, i32, NULL);
  col(&h, "d:18,2,64", "dec64", 7, 2, valid, i64, NULL);
  col(&h, "tsn:America/New_York", "ts_zone", 7, 2, valid, i64, NULL);
  col(&h, "n", "nulls", 7, 7, NULL, NULL, NULL);
  int li = col(&h, "+L", "large_list", 7, 2, valid, loffs, NULL);
  int lc = h.n;
  static const int32_t items[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  col(&h, "i", "item", 10, 0, NULL, items, NULL);
  int di = col(&h, "C", "dict_u8", 7, 2, valid, dict_idx, NULL);
  int dv = col(&h, "u", NULL, 3, 0, NULL, dict_offs, dict_data);
  int fl = col(&h, "+w:2", "fixed_list", 3, 1, (const uint8_t[]){0x05}, NULL, NULL);
  int fc = col(&h, "tDm", "item", 6, 0, NULL, i64, NULL);
  /* the nested ones point at their children and dictionary */
  h.s[li].n_children = 1, h.s[li].children = &h.sp[lc];
  h.a[li].n_children = 1, h.a[li].children = &h.ap[lc];
  h.s[di].dictionary = &h.s[dv];
  h.a[di].dictionary = &h.a[dv];
  h.s[fl].n_children = 1, h.s[fl].children = &h.sp[fc];
  h.a[fl].n_children = 1, h.a[fl].children = &h.ap[fc];
  h.a[fl].n_buffers = 1;
  /* top-level: every column but the children */
  struct ArrowSchema *cs[24];
  struct ArrowArray *ca[24];
  int n = 0;
  for (int i = 0; i < h.n; i++) {
    if (i == lc || i == dv || i == fc || i == fl) continue;
    cs[n] = &h.s[i];
    ca[n++] = &h.a[i];
  }
  struct ArrowSchema top = {.format = "+s", .name = "", .n_children = n, .children = cs, .release = s_release};
  struct ArrowArray batch = {.length = 7, .n_buffers = 1, .buffers = (const void *[]){NULL}, .n_children = n,
                             .children = ca, .release = noop_release};
  round_trip(&top, &batch, 1);
  struct ArrowArray sl[2] = {view(&batch, 2, 4), view(&batch, 5, 2)};
  round_trip(&top, sl, 2);
  /* fixed-size list alone (3 rows of 2), sliced by one row */
  struct ArrowSchema *fcs[1] = {&h.s[fl]};
  struct ArrowArray *fca[1] = {&h.a[fl]};
  struct ArrowSchema ftop = {.format = "+s", .name = "", .n_children = 1, .children = fcs, .release = s_release};
  struct ArrowArray fb = {.length = 3, .n_buffers = 1, .buffers = (const void *[]){NULL}, .n_children = 1,
                          .children = fca, .release = noop_release};
  round_trip(&ftop, &fb, 1);
  struct ArrowArray fsl = view(&fb, 1, 2);
  round_trip(&ftop, &fsl, 1);
}

/* ---- Frames --------------------------------------------------------------------------------------------- */

static void test_frames_feed_the_message_reader(void **state) {
  (void)state;
  batches a;
  ddb_query(NULL, "SELECT i, 'v' || (i % 7) s, (['a','b'])[i % 2 + 1]::ENUM('a','b') e FROM range(3000) t(i)", &a);
  sp_ipc_writer *w;
  sp_ipc_reader *r;
  sp_buf out = {0};
  sp_error err = {0};
  assert_int_equal(sp_ipc_writer_create(&a.schema, &w, &err), SP_OK);
  assert_int_equal(sp_ipc_reader_create(&r, &err), SP_OK);
  size_t nf;
  assert_int_equal(sp_ipc_write_schema(w, &out, &err), SP_OK);
  const sp_ipc_frame *f = sp_ipc_writer_frames(w, &nf);
  assert_int_equal(nf, 1);
  assert_int_equal(f[0].type, SP_IPC_SCHEMA);
  assert_int_equal(f[0].body_len, 0);
  sp_ipc_msg_type type;
  struct ArrowArray got;
  assert_int_equal(sp_ipc_reader_message(r, (const uint8_t *)out.data + f[0].header_off, f[0].header_len, NULL, 0,
                                         &type, &got, &err), SP_OK);
  assert_int_equal(type, SP_IPC_SCHEMA);
  for (size_t i = 0; i < a.n; i++) {
    out.len = 0; /* the buffer is reused; every other batch after 3 bytes of the caller's (unaligned frames) */
    size_t pre = i % 2 ? 3 : 0;
    assert_int_equal(sp_buf_append(&out, "pre", pre), SP_OK);
    assert_int_equal(sp_ipc_write_batch(w, &a.b[i], &out, &err), SP_OK);
    f = sp_ipc_writer_frames(w, &nf);
    assert_int_equal(nf, 2); /* the enum's dictionary, then the batch */
    assert_int_equal(f[0].type, SP_IPC_DICTIONARY);
    assert_int_equal(f[1].type, SP_IPC_RECORD_BATCH);
    assert_int_equal(f[1].body_off + f[1].body_len, out.len);
    for (size_t k = 0; k < nf; k++) {
      assert_int_equal((f[k].header_off - pre) % 8, 0);
      assert_int_equal((f[k].body_off - pre) % 8, 0);
      /* a body in a buffer of its own, as Flight hands it over */
      uint8_t *body = malloc(f[k].body_len + 1);
      memcpy(body, out.data + f[k].body_off, f[k].body_len);
      int rc = sp_ipc_reader_message(r, (const uint8_t *)out.data + f[k].header_off, f[k].header_len, body,
                                     f[k].body_len, &type, &got, &err);
      free(body);
      if (rc != SP_OK) fail_msg("message %zu: %s", k, err.msg);
    }
    assert_int_equal(type, SP_IPC_RECORD_BATCH);
    cmp_batch(&a.schema, &a.b[i], &got);
    sp_array_release(&got);
  }
  struct ArrowSchema s2;
  assert_int_equal(sp_ipc_reader_schema(r, &s2, &err), SP_OK);
  cmp_columns(&a.schema, &s2);
  sp_schema_release(&s2);
  sp_ipc_reader_destroy(r);
  sp_ipc_writer_destroy(w);
  sp_buf_free(&out);
  batches_free(&a);
}

/* Children moved out of a decoded batch outlive it; a batch outlives its reader (dictionaries too). */
static void test_ownership(void **state) {
  (void)state;
  batches a;
  ddb_query(NULL, "SELECT 'x' || i s, 'e' || (i % 3) e FROM range(10) t(i)", &a);
  sp_buf out = {0};
  encode(&a.schema, a.b, a.n, &out);
  struct ArrowSchema s2;
  struct ArrowArray *b2;
  size_t n2;
  sp_error err = {0};
  assert_int_equal(sp_ipc_read_stream((const uint8_t *)out.data, out.len, &s2, &b2, &n2, &err), SP_OK);
  sp_buf_free(&out); /* decoded batches do not point into the input */
  struct ArrowArray child;
  sp_array_move(&child, b2[0].children[1]);
  sp_array_release(&b2[0]);
  assert_int_equal(child.length, 10);
  assert_memory_equal((const char *)child.buffers[2], "e0e1e2", 6);
  sp_array_release(&child);
  free(b2);
  sp_schema_release(&s2);
  batches_free(&a);
}

/* ---- Malformed input ------------------------------------------------------------------------------------ */

static int decode(const uint8_t *p, size_t n, sp_error *err) {
  struct ArrowSchema s;
  struct ArrowArray *b;
  size_t nb;
  int rc = sp_ipc_read_stream(p, n, &s, &b, &nb, err);
  if (rc != SP_OK) return rc;
  for (size_t i = 0; i < nb; i++) {
    cmp_batch(&s, &b[i], &b[i]); /* touches every value: ASan sees any read outside */
    sp_array_release(&b[i]);
  }
  free(b);
  sp_schema_release(&s);
  return SP_OK;
}

/* The sample stream used by the corruption tests, and where its last record batch's metadata sits. */
typedef struct sample {
  sp_buf buf;
  size_t rb_meta, rb_meta_len, rb_body, rb_body_len;
  fb_vec nodes, buffers;
  fb_buf fb;
} sample;

static void make_sample(sample *s) {
  batches a;
  ddb_query(NULL, "SELECT i, 's' || i s, [i, i] l, CASE WHEN i % 2 = 0 THEN NULL ELSE i END h FROM range(100) t(i)", &a);
  sp_ipc_writer *w;
  sp_error err = {0};
  memset(s, 0, sizeof *s);
  assert_int_equal(sp_ipc_writer_create(&a.schema, &w, &err), SP_OK);
  assert_int_equal(sp_ipc_write_schema(w, &s->buf, &err), SP_OK);
  assert_int_equal(sp_ipc_write_batch(w, &a.b[0], &s->buf, &err), SP_OK);
  size_t nf;
  const sp_ipc_frame *f = sp_ipc_writer_frames(w, &nf);
  s->rb_meta = f[0].header_off;
  s->rb_meta_len = f[0].header_len;
  s->rb_body = f[0].body_off;
  s->rb_body_len = f[0].body_len;
  assert_int_equal(sp_ipc_write_eos(&s->buf, &err), SP_OK);
  sp_ipc_writer_destroy(w);
  batches_free(&a);
  s->fb = (fb_buf){(const uint8_t *)s->buf.data + s->rb_meta, s->rb_meta_len};
  fb_table msg, rb;
  assert_int_equal(fb_root(&s->fb, &msg, &err), SP_OK);
  assert_int_equal(fb_subtable(&msg, 2, &rb, &err), SP_OK);
  assert_int_equal(fb_vector(&rb, 1, 16, 8, &s->nodes, &err), SP_OK);
  assert_int_equal(fb_vector(&rb, 2, 16, 8, &s->buffers, &err), SP_OK);
}

typedef struct corruption {
  const char *what;
  int vec;        /* 0 nodes, 1 buffers, 2 raw metadata byte offset, 3 body offset */
  uint32_t index; /* element (or byte offset) */
  int half;       /* which int64 of the pair */
  int64_t value;
} corruption;

static void expect_einval(const uint8_t *p, size_t n, const char *what) {
  sp_error err = {0};
  int rc = decode(p, n, &err);
  if (rc != SP_EINVAL) fail_msg("%s: expected EINVAL, got %s (%s)", what, sp_status_name(rc), err.msg);
  assert_true(strstr(err.msg, "arrow ipc") != NULL);
}

static void test_corrupted_input(void **state) {
  (void)state;
  sample s;
  make_sample(&s);
  const uint8_t *orig = (const uint8_t *)s.buf.data;
  size_t len = s.buf.len;
  sp_error err = {0};
  assert_int_equal(decode(orig, len, &err), SP_OK);
  /* buffers: 0 i.valid 1 i.values 2 s.valid 3 s.offsets 4 s.data 5 l.valid 6 l.offsets 7 item.valid 8 item.values
   * 9 h.valid 10 h.values; nodes: 0 i 1 s 2 l 3 item 4 h */
  static const corruption cases[] = {
      {"buffer offset past the body", 1, 1, 0, 1 << 20},
      {"buffer offset negative", 1, 1, 0, -8},
      {"buffer misaligned", 1, 1, 0, 4},
      {"buffer length huge", 1, 4, 1, INT64_MAX},
      {"values buffer too short", 1, 1, 1, 8},
      {"offsets buffer too short", 1, 3, 1, 4},
      {"string data too short", 1, 4, 1, 3},
      {"validity too short for the nulls", 1, 9, 1, 1},
      {"node length huge", 0, 0, 0, INT64_MAX},
      {"node length negative", 0, 1, 0, -1},
      {"node null count above length", 0, 4, 1, 1000},
      {"list child shorter than offsets", 0, 3, 0, 10},
      {"column shorter than the batch", 0, 0, 0, 50},
  };
  uint8_t *p = malloc(len);
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    memcpy(p, orig, len);
    const fb_vec *v = cases[k].vec == 0 ? &s.nodes : &s.buffers;
    assert_true(cases[k].index < v->n);
    memcpy(p + s.rb_meta + v->pos + 16 * cases[k].index + 8 * cases[k].half, &cases[k].value, 8);
    expect_einval(p, len, cases[k].what);
  }
  /* body contents: the string offsets (buffer 3) decreasing, and past the data */
  const uint8_t *be = orig + s.rb_meta + s.buffers.pos + 16 * 3;
  int64_t offs_at;
  memcpy(&offs_at, be, 8);
  int32_t bad_vals[] = {-1, 1 << 30};
  for (int k = 0; k < 2; k++) {
    memcpy(p, orig, len);
    memcpy(p + s.rb_body + offs_at + 4 * 5, &bad_vals[k], 4);
    expect_einval(p, len, k ? "offset past the data" : "negative offset");
  }
  /* flatbuffer structure: root offset, a table's vtable offset, the metadata length */
  uint32_t big = 0x7ffffff0;
  memcpy(p, orig, len);
  memcpy(p + s.rb_meta, &big, 4);
  expect_einval(p, len, "root offset out of bounds");
  memcpy(p, orig, len);
  uint32_t root;
  memcpy(&root, orig + s.rb_meta, 4);
  memcpy(p + s.rb_meta + root, &big, 4);
  expect_einval(p, len, "vtable offset out of bounds");
  memcpy(p, orig, len);
  memcpy(p + s.rb_meta - 4, &big, 4);
  expect_einval(p, len, "metadata length past the end");
  /* every truncation that does not fall on a message boundary */
  for (size_t cut = 1; cut < len; cut++) {
    if (cut == s.rb_meta - 8 || cut == s.rb_body + s.rb_body_len) continue;
    char what[64];
    snprintf(what, sizeof what, "truncated at %zu of %zu", cut, len);
    expect_einval(orig, cut, what);
  }
  /* random damage: never a crash, only SP_OK or a clean error */
  srand(42);
  for (int k = 0; k < 4000; k++) {
    memcpy(p, orig, len);
    int flips = 1 + rand() % 4;
    for (int f = 0; f < flips; f++) p[rand() % len] = (uint8_t)rand();
    int rc = decode(p, len, &err);
    if (rc != SP_OK && rc != SP_EINVAL && rc != SP_ENOTSUP) fail_msg("random damage: %s (%s)", sp_status_name(rc), err.msg);
  }
  free(p);
  sp_buf_free(&s.buf);
}

static void test_writer_refuses(void **state) {
  (void)state;
  sp_ipc_writer *w;
  sp_error err = {0};
  struct ArrowSchema notstruct = {.format = "i", .release = s_release};
  assert_int_equal(sp_ipc_writer_create(&notstruct, &w, &err), SP_EINVAL);
  struct ArrowSchema view = {.format = "vu", .name = "v", .release = s_release}, *vp = &view;
  struct ArrowSchema top = {.format = "+s", .n_children = 1, .children = &vp, .release = s_release};
  assert_int_equal(sp_ipc_writer_create(&top, &w, &err), SP_ENOTSUP);
  assert_non_null(strstr(err.msg, "vu"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_duckdb_all_types),
      cmocka_unit_test(test_slices_and_empty),
      cmocka_unit_test(test_hand_built_types),
      cmocka_unit_test(test_frames_feed_the_message_reader),
      cmocka_unit_test(test_ownership),
      cmocka_unit_test(test_corrupted_input),
      cmocka_unit_test(test_writer_refuses),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
