/* SPDX-License-Identifier: Apache-2.0
 *
 * The binary COPY decoder of the postgres connector (src/connectors/pg_copy.c) on hand-made streams: values
 * of each kind land in the right Arrow buffers, any chunking of the input gives the same batch, numerics
 * convert exactly (decimal128 and text), arrays become lists with null elements, and malformed input is
 * refused with a message. The real-server round trip is tests/e2e/postgres.test.mjs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/pg_copy.h"
#include "spice/arrow.h"

/* ---- A tiny COPY writer ---------------------------------------------------------------------------------- */

typedef struct wbuf {
  uint8_t b[4096];
  size_t n;
} wbuf;

static void put(wbuf *w, const void *p, size_t n) {
  assert_true(w->n + n <= sizeof w->b);
  memcpy(w->b + w->n, p, n);
  w->n += n;
}
static void put16(wbuf *w, int v) {
  uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  put(w, b, 2);
}
static void put32(wbuf *w, int32_t v) {
  uint8_t b[4] = {(uint8_t)((uint32_t)v >> 24), (uint8_t)((uint32_t)v >> 16), (uint8_t)((uint32_t)v >> 8), (uint8_t)v};
  put(w, b, 4);
}
static void put64(wbuf *w, int64_t v) {
  put32(w, (int32_t)((uint64_t)v >> 32));
  put32(w, (int32_t)(uint32_t)v);
}
static void header(wbuf *w) {
  put(w, "PGCOPY\n\377\r\n\0", 11);
  put32(w, 0);
  put32(w, 0);
}
static void trailer(wbuf *w) { put16(w, -1); }
static void field_null(wbuf *w) { put32(w, -1); }
static void field_i32(wbuf *w, int32_t v) {
  put32(w, 4);
  put32(w, v);
}
static void field_text(wbuf *w, const char *s) {
  put32(w, (int32_t)strlen(s));
  put(w, s, strlen(s));
}
/* numeric: base-10000 digits */
static void field_numeric(wbuf *w, int weight, int sign, int dscale, int nd, const int *digits) {
  put32(w, 8 + 2 * nd);
  put16(w, nd);
  put16(w, weight);
  put16(w, sign);
  put16(w, dscale);
  for (int i = 0; i < nd; i++) put16(w, digits[i]);
}

/* Feeds the stream in chunks of `chunk` bytes (0 = all at once) and cuts one batch. */
static int decode(const pgc_type *types, size_t n, const wbuf *w, size_t chunk, struct ArrowArray *out, sp_error *err) {
  pgc_decoder *d;
  int rc = pgc_decoder_new(types, n, &d, err);
  if (rc != SP_OK) return rc;
  for (size_t o = 0; rc == SP_OK && o < w->n;) {
    size_t m = chunk == 0 || w->n - o < chunk ? w->n - o : chunk;
    rc = pgc_feed(d, w->b + o, m, err);
    o += m;
  }
  if (rc == SP_OK) rc = pgc_end(d, err);
  if (rc == SP_OK) rc = pgc_finish_batch(d, out, err);
  pgc_decoder_free(d);
  return rc;
}

static const char *utf8_at(const struct ArrowArray *a, int64_t i, int32_t *len) {
  const int32_t *offs = a->buffers[1];
  *len = offs[i + 1] - offs[i];
  return (const char *)a->buffers[2] + offs[i];
}

/* ---- Tests ----------------------------------------------------------------------------------------------- */

static void scalars_any_chunking(void **state) {
  pgc_type types[3] = {{.kind = PGC_INT4}, {.kind = PGC_TEXT}, {.kind = PGC_BOOL}};
  wbuf w = {0};
  header(&w);
  put16(&w, 3), field_i32(&w, 42), field_text(&w, "héllo"), put32(&w, 1), put(&w, "\1", 1);
  put16(&w, 3), field_null(&w), field_text(&w, ""), field_null(&w);
  put16(&w, 3), field_i32(&w, -7), field_null(&w), put32(&w, 1), put(&w, "\0", 1);
  trailer(&w);
  for (size_t chunk = 0; chunk <= 7; chunk++) {
    struct ArrowArray a;
    sp_error err = {0};
    assert_int_equal(decode(types, 3, &w, chunk, &a, &err), SP_OK);
    assert_int_equal(a.length, 3);
    assert_int_equal(a.n_children, 3);
    const struct ArrowArray *i4 = a.children[0], *tx = a.children[1], *b = a.children[2];
    assert_int_equal(((const int32_t *)i4->buffers[1])[0], 42);
    assert_int_equal(((const int32_t *)i4->buffers[1])[2], -7);
    assert_true(sp_array_is_null(i4, 1));
    assert_int_equal(i4->null_count, 1);
    int32_t len;
    const char *s = utf8_at(tx, 0, &len);
    assert_int_equal(len, 6);
    assert_memory_equal(s, "héllo", 6);
    utf8_at(tx, 1, &len);
    assert_int_equal(len, 0);
    assert_false(sp_array_is_null(tx, 1)); /* empty string is not NULL */
    assert_true(sp_array_is_null(tx, 2));
    const uint8_t *bits = b->buffers[1];
    assert_true(bits[0] & 1);
    assert_true(sp_array_is_null(b, 1));
    assert_false(bits[0] & 4);
    a.release(&a);
  }
}

static void numerics(void **state) {
  pgc_type types[2] = {{.kind = PGC_NUMERIC, .precision = 10, .scale = 3}, {.kind = PGC_NUMERIC_TEXT}};
  const int d1[] = {1, 2345, 6780}; /* 12345.678 */
  const int d2[] = {100};           /* 0.0000|0100 → 0.000001 */
  wbuf w = {0};
  header(&w);
  put16(&w, 2), field_numeric(&w, 1, 0, 3, 3, d1), field_numeric(&w, 1, 0, 3, 3, d1);
  put16(&w, 2), field_numeric(&w, -2, 0x4000, 6, 1, d2), field_numeric(&w, -2, 0x4000, 6, 1, d2);
  put16(&w, 2), field_numeric(&w, 0, 0xC000, 0, 0, NULL), field_numeric(&w, 0, 0xC000, 0, 0, NULL);
  put16(&w, 2), field_numeric(&w, 0, 0, 0, 0, NULL), field_numeric(&w, 0, 0, 2, 0, NULL);
  trailer(&w);
  struct ArrowArray a;
  sp_error err = {0};
  assert_int_equal(decode(types, 2, &w, 0, &a, &err), SP_OK);
  const int64_t *dec = a.children[0]->buffers[1]; /* little-endian int128: low word first */
  assert_int_equal(dec[0], 12345678);
  assert_int_equal(dec[1], 0);
  assert_int_equal(dec[2], 0); /* -0.000001 at scale 3 rounds toward zero: PostgreSQL never sends it for (10,3) */
  assert_true(sp_array_is_null(a.children[0], 2)); /* NaN has no decimal: NULL */
  assert_int_equal(dec[6], 0);
  int32_t len;
  const char *s = utf8_at(a.children[1], 0, &len);
  assert_int_equal(len, 9);
  assert_memory_equal(s, "12345.678", 9);
  s = utf8_at(a.children[1], 1, &len);
  assert_int_equal(len, 9);
  assert_memory_equal(s, "-0.000001", 9);
  s = utf8_at(a.children[1], 2, &len);
  assert_memory_equal(s, "NaN", 3);
  s = utf8_at(a.children[1], 3, &len);
  assert_int_equal(len, 4);
  assert_memory_equal(s, "0.00", 4);
  a.release(&a);
}

static void decimal_overflow_refused(void **state) {
  pgc_type types[1] = {{.kind = PGC_NUMERIC, .precision = 4, .scale = 0}};
  const int d[] = {1, 0}; /* 10000 */
  wbuf w = {0};
  header(&w);
  put16(&w, 1), field_numeric(&w, 1, 0, 0, 2, d);
  trailer(&w);
  struct ArrowArray a;
  sp_error err = {0};
  assert_int_equal(decode(types, 1, &w, 0, &a, &err), SP_EIO);
  assert_non_null(strstr(err.msg, "out of range"));
}

static void arrays_become_lists(void **state) {
  pgc_type types[1] = {{.kind = PGC_LIST, .elem = PGC_INT4}};
  wbuf w = {0};
  header(&w);
  /* {1,NULL,3} */
  put16(&w, 1), put32(&w, 12 + 8 + 8 + 4 + 8);
  put32(&w, 1), put32(&w, 1), put32(&w, 23), put32(&w, 3), put32(&w, 1);
  field_i32(&w, 1), field_null(&w), field_i32(&w, 3);
  /* {} */
  put16(&w, 1), put32(&w, 12), put32(&w, 0), put32(&w, 0), put32(&w, 23);
  put16(&w, 1), field_null(&w);
  trailer(&w);
  struct ArrowArray a;
  sp_error err = {0};
  assert_int_equal(decode(types, 1, &w, 3, &a, &err), SP_OK);
  const struct ArrowArray *l = a.children[0], *c = l->children[0];
  const int32_t *offs = l->buffers[1];
  assert_int_equal(offs[0], 0);
  assert_int_equal(offs[1], 3);
  assert_int_equal(offs[2], 3);
  assert_int_equal(offs[3], 3);
  assert_true(sp_array_is_null(l, 2));
  assert_int_equal(c->length, 3);
  assert_true(sp_array_is_null(c, 1));
  assert_int_equal(((const int32_t *)c->buffers[1])[2], 3);
  a.release(&a);
}

static void temporal_shifts(void **state) {
  pgc_type types[2] = {{.kind = PGC_DATE}, {.kind = PGC_TIMESTAMPTZ}};
  wbuf w = {0};
  header(&w);
  put16(&w, 2), field_i32(&w, 0), put32(&w, 8), put64(&w, 1);       /* 2000-01-01, 2000-01-01 00:00:00.000001 */
  put16(&w, 2), field_i32(&w, INT32_MAX), put32(&w, 8), put64(&w, INT64_MAX); /* infinity → NULL */
  trailer(&w);
  struct ArrowArray a;
  sp_error err = {0};
  assert_int_equal(decode(types, 2, &w, 0, &a, &err), SP_OK);
  assert_int_equal(((const int32_t *)a.children[0]->buffers[1])[0], 10957);
  assert_int_equal(((const int64_t *)a.children[1]->buffers[1])[0], INT64_C(946684800000001));
  assert_true(sp_array_is_null(a.children[0], 1));
  assert_true(sp_array_is_null(a.children[1], 1));
  a.release(&a);
}

static void malformed_refused(void **state) {
  pgc_type types[1] = {{.kind = PGC_INT4}};
  struct ArrowArray a;
  sp_error err = {0};
  wbuf w = {0};
  put(&w, "PGCOPY\n\377\r\n\1", 11), put32(&w, 0), put32(&w, 0);
  assert_int_equal(decode(types, 1, &w, 0, &a, &err), SP_EIO);
  assert_non_null(strstr(err.msg, "signature"));

  memset(&w, 0, sizeof w);
  header(&w), put16(&w, 2), field_i32(&w, 1), field_i32(&w, 2), trailer(&w);
  assert_int_equal(decode(types, 1, &w, 0, &a, &err), SP_EIO);
  assert_non_null(strstr(err.msg, "2 fields"));

  memset(&w, 0, sizeof w);
  header(&w), put16(&w, 1), put32(&w, 2), put16(&w, 1), trailer(&w); /* int4 with 2 bytes */
  assert_int_equal(decode(types, 1, &w, 0, &a, &err), SP_EIO);

  memset(&w, 0, sizeof w);
  header(&w), put16(&w, 1), field_i32(&w, 1); /* no trailer */
  assert_int_equal(decode(types, 1, &w, 0, &a, &err), SP_EIO);
  assert_non_null(strstr(err.msg, "ended early"));

  memset(&w, 0, sizeof w);
  header(&w), trailer(&w), put16(&w, 1);
  assert_int_equal(decode(types, 1, &w, 0, &a, &err), SP_EIO);
  assert_non_null(strstr(err.msg, "after the end"));
}

static void schema_formats(void **state) {
  pgc_type types[4] = {{.kind = PGC_NUMERIC, .precision = 38, .scale = 10}, {.kind = PGC_TIMESTAMPTZ},
                       {.kind = PGC_LIST, .elem = PGC_TEXT}, {.kind = PGC_INTERVAL}};
  const char *names[4] = {"n", "tz", "tags", "iv"};
  struct ArrowSchema s;
  assert_int_equal(pgc_schema(types, names, 4, &s, NULL), SP_OK);
  assert_string_equal(s.format, "+s");
  assert_int_equal(s.n_children, 4);
  assert_string_equal(s.children[0]->format, "d:38,10");
  assert_string_equal(s.children[1]->format, "tsu:UTC");
  assert_string_equal(s.children[2]->format, "+l");
  assert_string_equal(s.children[2]->children[0]->format, "u");
  assert_string_equal(s.children[3]->format, "tin");
  assert_string_equal(s.children[2]->name, "tags");
  s.release(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(scalars_any_chunking), cmocka_unit_test(numerics),
      cmocka_unit_test(decimal_overflow_refused), cmocka_unit_test(arrays_become_lists),
      cmocka_unit_test(temporal_shifts), cmocka_unit_test(malformed_refused),
      cmocka_unit_test(schema_formats),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
