/* SPDX-License-Identifier: Apache-2.0
 *
 * The Arrow helpers of src/arrow/ against a real producer: an in-memory DuckDB whose results are converted to
 * Arrow exactly as src/engine/query.c does (duckdb_result_get_arrow_options, duckdb_to_arrow_schema,
 * duckdb_data_chunk_to_arrow). Format parsing, deep schema copies, releases and moves, streams over owned
 * batches, and snapshots: row counts, sizes, concurrent readers, lifetimes, and that every batch DuckDB made
 * is released exactly once (each release is wrapped and counted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <duckdb.h>

#include "spice/arrow.h"

static duckdb_database db;

static duckdb_connection connect_with(const char *const *settings) {
  duckdb_connection c;
  assert_int_equal(duckdb_connect(db, &c), DuckDBSuccess);
  for (; settings && *settings; settings++) {
    duckdb_result r;
    if (duckdb_query(c, *settings, &r) == DuckDBError) fail_msg("%s: %s", *settings, duckdb_result_error(&r));
    duckdb_destroy_result(&r);
  }
  return c;
}

static int group_setup(void **state) {
  (void)state;
  if (duckdb_open(NULL, &db) == DuckDBError) return -1;
  duckdb_connection c = connect_with((const char *const[]){"CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')", NULL});
  duckdb_disconnect(&c);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  duckdb_close(&db);
  return 0;
}

/* ---- DuckDB as the producer ------------------------------------------------------------------------------ */

typedef struct ddb_arrow {
  struct ArrowSchema schema;
  struct ArrowArray *batches;
  size_t n;
} ddb_arrow;

static void fail_on(duckdb_error_data ed, const char *what) {
  if (ed == NULL) return;
  if (duckdb_error_data_has_error(ed)) fail_msg("%s: %s", what, duckdb_error_data_message(ed));
  duckdb_destroy_error_data(&ed);
}

static void ddb_schema(duckdb_result *r, duckdb_arrow_options o, struct ArrowSchema *out) {
  idx_t n = duckdb_column_count(r);
  duckdb_logical_type *types = calloc(n, sizeof *types);
  const char **names = calloc(n, sizeof *names);
  assert_true(types != NULL && names != NULL);
  for (idx_t i = 0; i < n; i++) {
    types[i] = duckdb_column_logical_type(r, i);
    names[i] = duckdb_column_name(r, i);
  }
  fail_on(duckdb_to_arrow_schema(o, types, names, n, out), "duckdb_to_arrow_schema");
  for (idx_t i = 0; i < n; i++) duckdb_destroy_logical_type(&types[i]);
  free(types);
  free(names);
}

/* Runs sql on c; fills out with the result's Arrow schema and one batch per DuckDB chunk (all owned by out). */
static void ddb_query(duckdb_connection c, const char *sql, ddb_arrow *out) {
  duckdb_result r;
  memset(out, 0, sizeof *out);
  if (duckdb_query(c, sql, &r) == DuckDBError) fail_msg("%s: %s", sql, duckdb_result_error(&r));
  duckdb_arrow_options o = duckdb_result_get_arrow_options(&r);
  ddb_schema(&r, o, &out->schema);
  for (duckdb_data_chunk ch; (ch = duckdb_fetch_chunk(r)) != NULL;) {
    out->batches = realloc(out->batches, (out->n + 1) * sizeof *out->batches);
    assert_non_null(out->batches);
    fail_on(duckdb_data_chunk_to_arrow(o, ch, &out->batches[out->n]), "duckdb_data_chunk_to_arrow");
    out->n++;
    duckdb_destroy_data_chunk(&ch);
  }
  duckdb_destroy_arrow_options(&o);
  duckdb_destroy_result(&r);
}

static void ddb_arrow_free(ddb_arrow *a) {
  for (size_t i = 0; i < a->n; i++) sp_array_release(&a->batches[i]);
  free(a->batches);
  sp_schema_release(&a->schema);
}

/* ---- Counting releases ----------------------------------------------------------------------------------- */

/* Wraps an array's release so the test sees every call. The producer's release runs on the first call only,
 * so a second call (a bug) is counted instead of crashing. The counter outlives the array: the test owns it. */
typedef struct counted {
  void (*release)(struct ArrowArray *);
  void *private_data;
  int calls; /* atomic: snapshot readers release from several threads */
} counted;

static void counted_release(struct ArrowArray *a) {
  counted *c = a->private_data;
  if (__atomic_add_fetch(&c->calls, 1, __ATOMIC_SEQ_CST) == 1) {
    a->private_data = c->private_data;
    a->release = c->release;
    a->release(a);
  }
  a->release = NULL;
}

static void count_releases(struct ArrowArray *a, counted *c) {
  c->release = a->release;
  c->private_data = a->private_data;
  c->calls = 0;
  a->release = counted_release;
  a->private_data = c;
}

static int calls(const counted *c) { return __atomic_load_n(&c->calls, __ATOMIC_SEQ_CST); }

static void assert_calls(const counted *c, size_t n, int expected) {
  for (size_t i = 0; i < n; i++) {
    if (calls(&c[i]) != expected) fail_msg("batch %zu released %d times, expected %d", i, calls(&c[i]), expected);
  }
}

/* ---- Format strings -------------------------------------------------------------------------------------- */

typedef struct fmt_case {
  const char *path; /* column.child.child, "#dict" for a dictionary, "item" for an unnamed child */
  sp_arrow_type type;
  int precision, scale, width;
  sp_time_unit unit;
  const char *tz;
} fmt_case;

static void assert_typeinfo(const char *what, const char *format, const fmt_case *want) {
  sp_arrow_typeinfo t;
  sp_arrow_parse_format(format, &t);
  if (t.type != want->type) fail_msg("%s: format \"%s\" parsed to type %d, expected %d", what, format, t.type, want->type);
  if (want->type == SP_ARROW_UNSUPPORTED) return;
  if (t.precision != want->precision || t.scale != want->scale)
    fail_msg("%s: format \"%s\" gave decimal(%d,%d)", what, format, t.precision, t.scale);
  if (t.byte_width != want->width) fail_msg("%s: format \"%s\" gave width %d", what, format, t.byte_width);
  if (want->type >= SP_ARROW_TIME32 && want->type <= SP_ARROW_DURATION && t.unit != want->unit)
    fail_msg("%s: format \"%s\" gave unit %d", what, format, t.unit);
  if (strcmp(t.tz, want->tz ? want->tz : "") != 0) fail_msg("%s: format \"%s\" gave zone \"%s\"", what, format, t.tz);
}

/* Checks every node of a DuckDB schema against cases (by path); every case must be met exactly once. */
static void check_tree(const struct ArrowSchema *s, const char *path, const fmt_case *cases, size_t n, int *seen) {
  size_t i = 0;
  while (i < n && strcmp(cases[i].path, path) != 0) i++;
  if (i == n) fail_msg("no expectation for \"%s\" (format \"%s\")", path, s->format);
  assert_typeinfo(path, s->format, &cases[i]);
  seen[i]++;
  char child[256];
  for (int64_t k = 0; k < s->n_children; k++) {
    const char *name = s->children[k]->name && *s->children[k]->name ? s->children[k]->name : "item";
    snprintf(child, sizeof child, "%s%s%s", path, *path ? "." : "", name);
    check_tree(s->children[k], child, cases, n, seen);
  }
  if (s->dictionary) {
    snprintf(child, sizeof child, "%s#dict", path);
    check_tree(s->dictionary, child, cases, n, seen);
  }
}

static void check_duckdb_formats(const char *const *settings, const char *sql, const fmt_case *cases, size_t n) {
  duckdb_connection c = connect_with(settings);
  ddb_arrow a;
  ddb_query(c, sql, &a);
  int *seen = calloc(n, sizeof *seen);
  assert_non_null(seen);
  check_tree(&a.schema, "", cases, n, seen);
  for (size_t i = 0; i < n; i++)
    if (seen[i] != 1) fail_msg("expectation \"%s\" met %d times", cases[i].path, seen[i]);
  free(seen);
  ddb_arrow_free(&a);
  duckdb_disconnect(&c);
}

static const char *ALL_TYPES =
    "SELECT true b, 1::TINYINT ti, 1::SMALLINT si, 1::INTEGER i, 1::BIGINT bi, 1::UTINYINT ut, 1::USMALLINT us,"
    " 1::UINTEGER ui, 1::UBIGINT ub, 1::HUGEINT hi, 1::UHUGEINT uhi, 1.5::FLOAT f, 1.5::DOUBLE d, 'x' s,"
    " 'x'::BLOB bl, 1.5::DECIMAL(4,1) d4, 1.5::DECIMAL(9,2) d9, 1.5::DECIMAL(18,3) d18, 1.5::DECIMAL(38,10) d38,"
    " DATE '2020-01-01' dt, TIME '10:00:00' tm, TIMESTAMP '2020-01-01' ts, TIMESTAMP_S '2020-01-01' tss,"
    " TIMESTAMP_MS '2020-01-01' tsm, TIMESTAMP_NS '2020-01-01' tsn, TIMESTAMPTZ '2020-01-01 00:00:00+00' tstz,"
    " INTERVAL 1 DAY iv, [1, 2] lst, [{'x': 1}] los, {'a': 1, 'b': 'x'} st, MAP {'k': 1} m, [1, 2, 3]::INTEGER[3] arr,"
    " gen_random_uuid() u, 'ok'::mood e, NULL::INTEGER n, NULL nn, TIMETZ '10:00:00+01' ttz,"
    " '101'::BITSTRING bt, 1::UNION(a INT, b VARCHAR) un, 1::VARINT vi";

#define T(p, ty) {p, ty, 0, 0, 0, SP_UNIT_SECOND, NULL}
#define DEC(p, ty, prec, sc) {p, ty, prec, sc, 0, SP_UNIT_SECOND, NULL}
#define W(p, ty, w) {p, ty, 0, 0, w, SP_UNIT_SECOND, NULL}
#define TU(p, ty, u, tz) {p, ty, 0, 0, 0, u, tz}

/* The columns and nested fields every pass shares, whatever the Arrow settings. */
#define COMMON_CASES                                                                                          \
  T("", SP_ARROW_STRUCT), T("ti", SP_ARROW_INT8), T("si", SP_ARROW_INT16), T("i", SP_ARROW_INT32),         \
  T("bi", SP_ARROW_INT64), T("ut", SP_ARROW_UINT8), T("us", SP_ARROW_UINT16), T("ui", SP_ARROW_UINT32),    \
  T("ub", SP_ARROW_UINT64), W("uhi", SP_ARROW_FIXED_BINARY, 16), T("f", SP_ARROW_FLOAT),                   \
  T("d", SP_ARROW_DOUBLE), DEC("d38", SP_ARROW_DECIMAL128, 38, 10), T("dt", SP_ARROW_DATE32),               \
  TU("tm", SP_ARROW_TIME64, SP_UNIT_MICRO, NULL), TU("ts", SP_ARROW_TIMESTAMP, SP_UNIT_MICRO, NULL),        \
  TU("tss", SP_ARROW_TIMESTAMP, SP_UNIT_SECOND, NULL), TU("tsm", SP_ARROW_TIMESTAMP, SP_UNIT_MILLI, NULL),  \
  TU("tsn", SP_ARROW_TIMESTAMP, SP_UNIT_NANO, NULL), T("iv", SP_ARROW_INTERVAL_MONTH_DAY_NANO),             \
  T("lst.l", SP_ARROW_INT32), T("los.l", SP_ARROW_STRUCT), T("los.l.x", SP_ARROW_INT32),                   \
  T("st", SP_ARROW_STRUCT), T("st.a", SP_ARROW_INT32), T("m", SP_ARROW_MAP), T("m.entries", SP_ARROW_STRUCT), \
  T("m.entries.value", SP_ARROW_INT32), W("arr", SP_ARROW_FIXED_LIST, 3), T("arr.item", SP_ARROW_INT32),    \
  T("e", SP_ARROW_UINT8), T("e#dict", SP_ARROW_UTF8), T("n", SP_ARROW_INT32), T("nn", SP_ARROW_INT32),     \
  T("un", SP_ARROW_UNSUPPORTED), T("un.a", SP_ARROW_INT32)

static void test_parse_duckdb_formats(void **state) {
  (void)state;
  static const fmt_case plain[] = {
      COMMON_CASES, T("b", SP_ARROW_BOOL), DEC("hi", SP_ARROW_DECIMAL128, 38, 0), T("s", SP_ARROW_UTF8),
      T("bl", SP_ARROW_BINARY), DEC("d4", SP_ARROW_DECIMAL128, 4, 1), DEC("d9", SP_ARROW_DECIMAL128, 9, 2),
      DEC("d18", SP_ARROW_DECIMAL128, 18, 3), TU("tstz", SP_ARROW_TIMESTAMP, SP_UNIT_MICRO, "UTC"),
      T("lst", SP_ARROW_LIST), T("los", SP_ARROW_LIST), T("st.b", SP_ARROW_UTF8), T("m.entries.key", SP_ARROW_UTF8),
      T("u", SP_ARROW_UTF8), TU("ttz", SP_ARROW_TIME64, SP_UNIT_MICRO, NULL), T("bt", SP_ARROW_BINARY),
      T("un.b", SP_ARROW_UTF8), T("vi", SP_ARROW_BINARY),
  };
  check_duckdb_formats((const char *const[]){"SET SESSION TimeZone = 'UTC'", NULL}, ALL_TYPES, plain,
                       sizeof plain / sizeof plain[0]);

  /* Lossless, 64-bit offsets and a zone: bool as int8, uuid/hugeint/timetz as fixed binary, large types. */
  static const fmt_case large[] = {
      COMMON_CASES, T("b", SP_ARROW_INT8), W("hi", SP_ARROW_FIXED_BINARY, 16), T("s", SP_ARROW_LARGE_UTF8),
      T("bl", SP_ARROW_LARGE_BINARY), DEC("d4", SP_ARROW_DECIMAL128, 4, 1), DEC("d9", SP_ARROW_DECIMAL128, 9, 2),
      DEC("d18", SP_ARROW_DECIMAL128, 18, 3), TU("tstz", SP_ARROW_TIMESTAMP, SP_UNIT_MICRO, "Europe/Paris"),
      T("lst", SP_ARROW_LARGE_LIST), T("los", SP_ARROW_LARGE_LIST), T("st.b", SP_ARROW_LARGE_UTF8),
      T("m.entries.key", SP_ARROW_LARGE_UTF8), W("u", SP_ARROW_FIXED_BINARY, 16), W("ttz", SP_ARROW_FIXED_BINARY, 8),
      T("bt", SP_ARROW_LARGE_BINARY), T("un.b", SP_ARROW_LARGE_UTF8), T("vi", SP_ARROW_LARGE_BINARY),
  };
  check_duckdb_formats((const char *const[]){"SET SESSION arrow_lossless_conversion = true", "SET SESSION arrow_large_buffer_size = true",
                                             "SET SESSION TimeZone = 'Europe/Paris'", NULL},
                       ALL_TYPES, large, sizeof large / sizeof large[0]);

  /* Arrow 1.5 output: small decimals as decimal32/64, string and binary views, list views (unsupported). */
  static const fmt_case v15[] = {
      COMMON_CASES, T("b", SP_ARROW_BOOL), DEC("hi", SP_ARROW_DECIMAL128, 38, 0), T("s", SP_ARROW_UTF8_VIEW),
      T("bl", SP_ARROW_BINARY_VIEW), DEC("d4", SP_ARROW_DECIMAL32, 4, 1), DEC("d9", SP_ARROW_DECIMAL32, 9, 2),
      DEC("d18", SP_ARROW_DECIMAL64, 18, 3), TU("tstz", SP_ARROW_TIMESTAMP, SP_UNIT_MICRO, "UTC"),
      T("lst", SP_ARROW_UNSUPPORTED), T("los", SP_ARROW_UNSUPPORTED), T("st.b", SP_ARROW_UTF8_VIEW),
      T("m.entries.key", SP_ARROW_UTF8_VIEW), T("u", SP_ARROW_UTF8_VIEW), TU("ttz", SP_ARROW_TIME64, SP_UNIT_MICRO, NULL),
      T("bt", SP_ARROW_BINARY_VIEW), T("un.b", SP_ARROW_UTF8_VIEW), T("vi", SP_ARROW_BINARY),
  };
  check_duckdb_formats((const char *const[]){"SET SESSION arrow_output_version = '1.5'", "SET SESSION produce_arrow_string_view = true",
                                             "SET SESSION arrow_output_list_view = true", "SET SESSION TimeZone = 'UTC'", NULL},
                       ALL_TYPES, v15, sizeof v15 / sizeof v15[0]);
}

/* Formats DuckDB does not produce, and malformed ones (which must not be guessed at, nor read past their end). */
static void test_parse_hand_formats(void **state) {
  (void)state;
  static const struct {
    const char *format;
    fmt_case want;
  } cases[] = {
      {"n", T("", SP_ARROW_NA)}, {"e", T("", SP_ARROW_HALF)}, {"vu", T("", SP_ARROW_UTF8_VIEW)},
      {"vz", T("", SP_ARROW_BINARY_VIEW)}, {"tsn:Europe/Paris", TU("", SP_ARROW_TIMESTAMP, SP_UNIT_NANO, "Europe/Paris")},
      {"tss:", TU("", SP_ARROW_TIMESTAMP, SP_UNIT_SECOND, NULL)},
      {"tsu:+07:30", TU("", SP_ARROW_TIMESTAMP, SP_UNIT_MICRO, "+07:30")},
      {"d:38,10", DEC("", SP_ARROW_DECIMAL128, 38, 10)}, {"d:76,5,256", DEC("", SP_ARROW_DECIMAL256, 76, 5)},
      {"d:5,-2", DEC("", SP_ARROW_DECIMAL128, 5, -2)}, {"d:9,2,32", DEC("", SP_ARROW_DECIMAL32, 9, 2)},
      {"d:18,0,64", DEC("", SP_ARROW_DECIMAL64, 18, 0)}, {"+w:4", W("", SP_ARROW_FIXED_LIST, 4)},
      {"w:16", W("", SP_ARROW_FIXED_BINARY, 16)}, {"w:0", W("", SP_ARROW_FIXED_BINARY, 0)},
      {"tdm", TU("", SP_ARROW_DATE64, SP_UNIT_MILLI, NULL)}, {"tts", TU("", SP_ARROW_TIME32, SP_UNIT_SECOND, NULL)},
      {"ttm", TU("", SP_ARROW_TIME32, SP_UNIT_MILLI, NULL)}, {"ttn", TU("", SP_ARROW_TIME64, SP_UNIT_NANO, NULL)},
      {"tDs", TU("", SP_ARROW_DURATION, SP_UNIT_SECOND, NULL)}, {"tDm", TU("", SP_ARROW_DURATION, SP_UNIT_MILLI, NULL)},
      {"tDu", TU("", SP_ARROW_DURATION, SP_UNIT_MICRO, NULL)}, {"tDn", TU("", SP_ARROW_DURATION, SP_UNIT_NANO, NULL)},
      {"tiM", T("", SP_ARROW_INTERVAL_MONTHS)}, {"tiD", T("", SP_ARROW_INTERVAL_DAY_TIME)},
      {"tin", T("", SP_ARROW_INTERVAL_MONTH_DAY_NANO)}, {"+L", T("", SP_ARROW_LARGE_LIST)},
      {"+m", T("", SP_ARROW_MAP)},
      /* malformed or unsupported */
      {"", T("", SP_ARROW_UNSUPPORTED)}, {"x", T("", SP_ARROW_UNSUPPORTED)}, {"ll", T("", SP_ARROW_UNSUPPORTED)},
      {"v", T("", SP_ARROW_UNSUPPORTED)}, {"ts", T("", SP_ARROW_UNSUPPORTED)}, {"td", T("", SP_ARROW_UNSUPPORTED)},
      {"tdx", T("", SP_ARROW_UNSUPPORTED)}, {"tsx:", T("", SP_ARROW_UNSUPPORTED)}, {"tsuX", T("", SP_ARROW_UNSUPPORTED)},
      {"ttD", T("", SP_ARROW_UNSUPPORTED)}, {"tix", T("", SP_ARROW_UNSUPPORTED)}, {"tDmm", T("", SP_ARROW_UNSUPPORTED)},
      {"d:", T("", SP_ARROW_UNSUPPORTED)}, {"d:x,2", T("", SP_ARROW_UNSUPPORTED)}, {"d:38,10,64x", T("", SP_ARROW_UNSUPPORTED)},
      {"d:38,10,16", T("", SP_ARROW_UNSUPPORTED)}, {"d:99999999999,1", T("", SP_ARROW_UNSUPPORTED)},
      {"w:", T("", SP_ARROW_UNSUPPORTED)}, {"w:-1", T("", SP_ARROW_UNSUPPORTED)}, {"w:4x", T("", SP_ARROW_UNSUPPORTED)},
      {"+w", T("", SP_ARROW_UNSUPPORTED)}, {"+w:", T("", SP_ARROW_UNSUPPORTED)}, {"+lx", T("", SP_ARROW_UNSUPPORTED)},
      {"+us:0,1", T("", SP_ARROW_UNSUPPORTED)}, {"+ud:0", T("", SP_ARROW_UNSUPPORTED)}, {"+r", T("", SP_ARROW_UNSUPPORTED)},
      {"+vl", T("", SP_ARROW_UNSUPPORTED)}, {"+", T("", SP_ARROW_UNSUPPORTED)},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    /* an exact-size copy, so ASan sees a read past the terminator */
    size_t len = strlen(cases[i].format) + 1;
    char *f = malloc(len);
    assert_non_null(f);
    memcpy(f, cases[i].format, len);
    assert_typeinfo(cases[i].format, f, &cases[i].want);
    free(f);
  }
  sp_arrow_typeinfo t;
  sp_arrow_parse_format(NULL, &t);
  assert_int_equal(t.type, SP_ARROW_UNSUPPORTED);
  /* A zone longer than the field is cut, never overflowed. */
  char longtz[200] = "tsu:";
  memset(longtz + 4, 'Z', sizeof longtz - 5);
  longtz[sizeof longtz - 1] = '\0';
  sp_arrow_parse_format(longtz, &t);
  assert_int_equal(t.type, SP_ARROW_TIMESTAMP);
  assert_int_equal(strlen(t.tz), sizeof t.tz - 1);
}

/* ---- Deep schema copies ---------------------------------------------------------------------------------- */

static size_t metadata_len(const char *m) {
  if (m == NULL) return 0;
  int32_t n, len;
  size_t pos = 4;
  memcpy(&n, m, 4);
  for (int32_t i = 0; i < 2 * n; i++) {
    memcpy(&len, m + pos, 4);
    pos += 4 + (size_t)len;
  }
  return pos;
}

/* Metadata as text: "count{key=value;key=value;}". */
static void describe_metadata(FILE *f, const char *m) {
  if (m == NULL) return;
  int32_t n, len;
  size_t pos = 4;
  memcpy(&n, m, 4);
  fprintf(f, "%d{", n);
  for (int32_t i = 0; i < 2 * n; i++) {
    memcpy(&len, m + pos, 4);
    fprintf(f, "%.*s%s", (int)len, m + pos + 4, i % 2 ? ";" : "=");
    pos += 4 + (size_t)len;
  }
  fputs("}", f);
}

/* Everything a schema says, as text: names, formats, flags, metadata bytes, children and dictionaries. */
static void describe(FILE *f, const struct ArrowSchema *s) {
  fprintf(f, "(%s|%s|%lld|", s->name ? s->name : "<null>", s->format, (long long)s->flags);
  describe_metadata(f, s->metadata);
  for (int64_t i = 0; i < s->n_children; i++) describe(f, s->children[i]);
  if (s->dictionary) {
    fputs("#", f);
    describe(f, s->dictionary);
  }
  fputs(")", f);
}

static char *description(const struct ArrowSchema *s) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  describe(f, s);
  fclose(f);
  return text;
}

/* No string or node of the copy may be the original's: the copy must stand alone. */
static void assert_disjoint(const struct ArrowSchema *a, const struct ArrowSchema *b) {
  assert_ptr_not_equal(a, b);
  assert_ptr_not_equal(a->format, b->format);
  if (a->name) assert_ptr_not_equal(a->name, b->name);
  if (a->metadata) assert_ptr_not_equal(a->metadata, b->metadata);
  assert_int_equal(a->n_children, b->n_children);
  if (a->n_children) assert_ptr_not_equal(a->children, b->children);
  for (int64_t i = 0; i < a->n_children; i++) assert_disjoint(a->children[i], b->children[i]);
  assert_int_equal(a->dictionary == NULL, b->dictionary == NULL);
  if (a->dictionary) assert_disjoint(a->dictionary, b->dictionary);
}

static void test_schema_copy_duckdb(void **state) {
  (void)state;
  /* Lossless output carries extension metadata (uuid, uhugeint, bool); the enum has a dictionary. */
  duckdb_connection c = connect_with((const char *const[]){"SET SESSION arrow_lossless_conversion = true", NULL});
  ddb_arrow a;
  ddb_query(c, ALL_TYPES, &a);
  duckdb_disconnect(&c);
  char *before = description(&a.schema);
  assert_non_null(strstr(before, "arrow.uuid"));  /* the metadata really is there to be copied */
  assert_non_null(strstr(before, "(e|C|2|#(|u|")); /* and the dictionary */

  struct ArrowSchema copy, copy2;
  assert_int_equal(sp_schema_copy(&copy, &a.schema, NULL), SP_OK);
  assert_non_null(copy.release);
  assert_disjoint(&a.schema, &copy);
  ddb_arrow_free(&a); /* DuckDB's schema is gone: the copy must still read right (ASan checks the reads) */
  assert_null(a.schema.release);

  char *after = description(&copy);
  assert_string_equal(before, after);
  assert_int_equal(sp_schema_copy(&copy2, &copy, NULL), SP_OK); /* a copy of a copy */
  sp_schema_release(&copy);
  assert_null(copy.release);
  sp_schema_release(&copy); /* released: a no-op */
  char *again = description(&copy2);
  assert_string_equal(before, again);
  sp_schema_release(&copy2);
  free(before);
  free(after);
  free(again);
}

/* A schema put together by hand: binary metadata with several pairs, a NULL name, flags, a dictionary with
 * its own metadata, nested children. */
static void put_kv(char *buf, size_t *pos, const char *s) {
  int32_t len = (int32_t)strlen(s);
  memcpy(buf + *pos, &len, 4);
  memcpy(buf + *pos + 4, s, (size_t)len);
  *pos += 4 + (size_t)len;
}

static size_t make_metadata(char *buf, const char *const *kv, int32_t pairs) {
  size_t pos = 4;
  memcpy(buf, &pairs, 4);
  for (int32_t i = 0; i < 2 * pairs; i++) put_kv(buf, &pos, kv[i]);
  return pos;
}

static void test_schema_copy_hand(void **state) {
  (void)state;
  char meta[256], dmeta[64];
  make_metadata(meta, (const char *const[]){"ARROW:extension:name", "spice.thing", "", "empty key"}, 2);
  make_metadata(dmeta, (const char *const[]){"k", ""}, 1);
  struct ArrowSchema dict = {.format = "u", .name = "values", .metadata = dmeta};
  struct ArrowSchema leaf = {.format = "tsu:UTC", .name = "at", .flags = ARROW_FLAG_NULLABLE};
  struct ArrowSchema *inner_kids[] = {&leaf};
  struct ArrowSchema inner = {.format = "+s", .name = "inner", .n_children = 1, .children = inner_kids};
  struct ArrowSchema coded = {.format = "i", .name = "coded", .metadata = meta,
                              .flags = ARROW_FLAG_DICTIONARY_ORDERED | ARROW_FLAG_NULLABLE, .dictionary = &dict};
  struct ArrowSchema noname = {.format = "d:12,2"};
  struct ArrowSchema *kids[] = {&inner, &coded, &noname};
  struct ArrowSchema root = {.format = "+s", .n_children = 3, .children = kids};

  struct ArrowSchema copy;
  assert_int_equal(sp_schema_copy(&copy, &root, NULL), SP_OK);
  assert_disjoint(&root, &copy);
  char *a = description(&root), *b = description(&copy);
  assert_string_equal(a, b);
  assert_null(copy.name);
  assert_null(copy.children[2]->name);
  assert_int_equal(copy.children[1]->flags, ARROW_FLAG_DICTIONARY_ORDERED | ARROW_FLAG_NULLABLE);
  assert_string_equal(copy.children[1]->dictionary->name, "values");
  assert_memory_equal(copy.children[1]->metadata, meta, metadata_len(meta));
  assert_null(copy.children[0]->metadata);
  /* children and dictionaries belong to the root: only the root is released (spec) */
  assert_non_null(copy.children[0]->release);
  sp_schema_release(&copy);
  assert_null(copy.release);
  free(a);
  free(b);
}

/* ---- Releases and moves ---------------------------------------------------------------------------------- */

static void test_release_and_move(void **state) {
  (void)state;
  duckdb_connection c = connect_with(NULL);
  ddb_arrow a;
  ddb_query(c, "SELECT 42::INTEGER AS x, 'hello' AS s", &a);
  duckdb_disconnect(&c);
  assert_int_equal(a.n, 1);
  counted cnt;
  count_releases(&a.batches[0], &cnt);

  struct ArrowArray moved;
  sp_array_move(&moved, &a.batches[0]);
  assert_null(a.batches[0].release);
  assert_int_equal(moved.length, 1);
  assert_int_equal(((const int32_t *)moved.children[0]->buffers[1])[0], 42);
  sp_array_release(&a.batches[0]); /* moved from: nothing to release */
  assert_int_equal(calls(&cnt), 0);
  sp_array_release(&moved);
  assert_int_equal(calls(&cnt), 1);
  assert_null(moved.release);
  sp_array_release(&moved);
  assert_int_equal(calls(&cnt), 1);
  sp_array_release(NULL);
  struct ArrowArray zero = {0};
  sp_array_release(&zero);
  sp_schema_release(NULL);

  struct ArrowArrayStream st, st2, none = {0};
  assert_int_equal(sp_stream_from_batches(&a.schema, NULL, 0, &st, NULL), SP_OK);
  sp_stream_move(&st2, &st);
  assert_null(st.release);
  sp_stream_release(&st);
  struct ArrowSchema s;
  assert_int_equal(st2.get_schema(&st2, &s), 0);
  assert_string_equal(s.children[1]->name, "s");
  sp_schema_release(&s);
  sp_stream_release(&st2);
  assert_null(st2.release);
  sp_stream_release(&none);
  sp_stream_release(NULL);
  ddb_arrow_free(&a);
}

/* ---- The test data: several chunks, nulls, strings, decimals, lists, structs ------------------------------- */

#define ROWS 5000
static const char *DATA_SQL =
    "SELECT i::INTEGER AS id, CASE WHEN i % 7 = 0 THEN NULL ELSE 'row-' || i END AS name,"
    " (i * 0.25)::DECIMAL(12,2) AS amount, CASE WHEN i % 5 = 0 THEN NULL ELSE [i::INTEGER, (i + 1)::INTEGER] END AS pair,"
    " {'n': (i % 3)::INTEGER, 's': 'g' || (i % 3)} AS grp FROM range(5000) t(i) ORDER BY i";

typedef struct totals {
  int64_t rows, id_sum, null_names, null_pairs, amount_cents;
} totals;

/* Reads every value of a DATA_SQL batch and checks it against its id; adds to *t. */
static void read_batch(const struct ArrowArray *b, totals *t) {
  assert_int_equal(b->n_children, 5);
  const struct ArrowArray *id = b->children[0], *name = b->children[1], *amount = b->children[2];
  const struct ArrowArray *pair = b->children[3], *grp = b->children[4];
  for (int64_t r = 0; r < b->length; r++) {
    int64_t i = b->offset + r;
    int32_t v = ((const int32_t *)id->buffers[1])[id->offset + i];
    t->id_sum += v;
    if (sp_array_is_null(name, i)) {
      assert_int_equal(v % 7, 0);
      t->null_names++;
    } else {
      const int32_t *off = (const int32_t *)name->buffers[1] + name->offset;
      char want[32];
      int n = snprintf(want, sizeof want, "row-%d", v);
      assert_int_equal(off[i + 1] - off[i], n);
      assert_memory_equal((const char *)name->buffers[2] + off[i], want, (size_t)n);
    }
    int64_t cents;
    memcpy(&cents, (const char *)amount->buffers[1] + 16 * (amount->offset + i), 8); /* low half, little-endian */
    assert_int_equal(cents, (int64_t)v * 25);
    t->amount_cents += cents;
    if (sp_array_is_null(pair, i)) {
      t->null_pairs++;
    } else {
      const int32_t *off = (const int32_t *)pair->buffers[1] + pair->offset;
      const int32_t *items = (const int32_t *)pair->children[0]->buffers[1];
      assert_int_equal(off[i + 1] - off[i], 2);
      assert_int_equal(items[off[i]], v);
      assert_int_equal(items[off[i] + 1], v + 1);
    }
    const struct ArrowArray *gn = grp->children[0];
    assert_int_equal(((const int32_t *)gn->buffers[1])[gn->offset + i], v % 3);
  }
  t->rows += b->length;
}

static void assert_totals(const totals *t) {
  assert_int_equal(t->rows, ROWS);
  assert_int_equal(t->id_sum, (int64_t)ROWS * (ROWS - 1) / 2);
  assert_int_equal(t->null_names, (ROWS - 1) / 7 + 1);
  assert_int_equal(t->null_pairs, (ROWS - 1) / 5 + 1);
  assert_int_equal(t->amount_cents, 25 * ((int64_t)ROWS * (ROWS - 1) / 2));
}

/* The DATA_SQL result with every batch's release counted in cnt (room for 16). */
static void data_batches(ddb_arrow *a, counted *cnt) {
  duckdb_connection c = connect_with(NULL);
  ddb_query(c, DATA_SQL, a);
  duckdb_disconnect(&c);
  assert_true(a->n >= 2 && a->n <= 16); /* DuckDB chunks are 2048 rows */
  for (size_t i = 0; i < a->n; i++) count_releases(&a->batches[i], &cnt[i]);
}

/* ---- Streams over owned batches -------------------------------------------------------------------------- */

static void test_stream_from_batches(void **state) {
  (void)state;
  ddb_arrow a;
  counted cnt[16];
  data_batches(&a, cnt);
  struct ArrowArrayStream st;
  assert_int_equal(sp_stream_from_batches(&a.schema, a.batches, a.n, &st, NULL), SP_OK);
  for (size_t i = 0; i < a.n; i++) assert_null(a.batches[i].release); /* consumed */
  sp_schema_release(&a.schema); /* the stream has its own copy */

  for (int round = 0; round < 2; round++) { /* the schema can be asked for more than once */
    struct ArrowSchema s;
    assert_int_equal(st.get_schema(&st, &s), 0);
    assert_string_equal(s.format, "+s");
    assert_int_equal(s.n_children, 5);
    assert_string_equal(s.children[3]->name, "pair");
    sp_schema_release(&s);
  }
  totals t = {0};
  struct ArrowArray b;
  size_t got = 0;
  for (; st.get_next(&st, &b) == 0 && b.release != NULL; got++) {
    read_batch(&b, &t);
    sp_array_release(&b);
    assert_int_equal(calls(&cnt[got]), 1);
  }
  assert_int_equal(got, a.n);
  assert_totals(&t);
  assert_int_equal(st.get_next(&st, &b), 0); /* stays at the end */
  assert_null(b.release);
  sp_stream_release(&st);
  assert_calls(cnt, a.n, 1);
  free(a.batches);
}

/* A stream released before it is drained releases what it still holds, once. */
static void test_stream_released_early(void **state) {
  (void)state;
  ddb_arrow a;
  counted cnt[16];
  data_batches(&a, cnt);
  struct ArrowArrayStream st;
  assert_int_equal(sp_stream_from_batches(&a.schema, a.batches, a.n, &st, NULL), SP_OK);
  struct ArrowArray first;
  assert_int_equal(st.get_next(&st, &first), 0);
  sp_stream_release(&st);
  assert_int_equal(calls(&cnt[0]), 0); /* the consumer owns the batch it took */
  for (size_t i = 1; i < a.n; i++) assert_int_equal(calls(&cnt[i]), 1);
  totals t = {0};
  read_batch(&first, &t); /* still readable after its stream is gone */
  sp_array_release(&first);
  assert_calls(cnt, a.n, 1);
  sp_schema_release(&a.schema);
  free(a.batches);
}

/* ---- Snapshots ------------------------------------------------------------------------------------------- */

/* A snapshot of DATA_SQL with its batches' releases counted in cnt. */
static sp_snapshot *data_snapshot(counted *cnt, size_t *n) {
  ddb_arrow a;
  data_batches(&a, cnt);
  struct ArrowArrayStream st;
  assert_int_equal(sp_stream_from_batches(&a.schema, a.batches, a.n, &st, NULL), SP_OK);
  sp_schema_release(&a.schema);
  free(a.batches);
  sp_snapshot *s = NULL;
  sp_error err = {0};
  assert_int_equal(sp_snapshot_from_stream(&st, &s, &err), SP_OK);
  assert_null(st.release); /* consumed */
  *n = a.n;
  return s;
}

static void test_snapshot_from_stream(void **state) {
  (void)state;
  counted cnt[16];
  size_t n;
  sp_snapshot *s = data_snapshot(cnt, &n);
  assert_int_equal(s->rows, ROWS);
  assert_int_equal(s->n_batches, n);
  assert_true(s->bytes > 0);
  assert_string_equal(s->schema.format, "+s");
  assert_int_equal(s->schema.n_children, 5);
  assert_int_equal(s->refs, 1);
  totals t = {0};
  for (size_t i = 0; i < s->n_batches; i++) {
    assert_int_equal(s->batches[i].offset, 0);
    read_batch(&s->batches[i], &t);
  }
  assert_totals(&t);
  assert_calls(cnt, n, 0); /* the snapshot holds them */
  assert_ptr_equal(sp_snapshot_ref(s), s);
  assert_int_equal(s->refs, 2);
  sp_snapshot_unref(s);
  assert_calls(cnt, n, 0);
  sp_snapshot_unref(s);
  assert_calls(cnt, n, 1);
  sp_snapshot_unref(NULL);
}

/* Sizes that can be worked out by hand: a non-null int32 column is 4 bytes a row; a string column is its
 * offsets plus its characters, per batch. */
static void test_snapshot_bytes(void **state) {
  (void)state;
  duckdb_connection c = connect_with(NULL);
  ddb_arrow a;
  ddb_query(c, "SELECT i::INTEGER AS x FROM range(5000) t(i)", &a);
  struct ArrowArrayStream st;
  assert_int_equal(sp_stream_from_batches(&a.schema, a.batches, a.n, &st, NULL), SP_OK);
  sp_snapshot *s;
  assert_int_equal(sp_snapshot_from_stream(&st, &s, NULL), SP_OK);
  assert_int_equal(s->bytes, 4 * 5000);
  sp_snapshot_unref(s);
  ddb_arrow_free(&a);

  ddb_query(c, "SELECT repeat('x', (i % 10)::INTEGER) AS s FROM range(3000) t(i)", &a);
  int64_t want = 0;
  for (size_t i = 0; i < a.n; i++) want += 4 * (a.batches[i].length + 1);
  for (int i = 0; i < 3000; i++) want += i % 10;
  assert_int_equal(sp_stream_from_batches(&a.schema, a.batches, a.n, &st, NULL), SP_OK);
  assert_int_equal(sp_snapshot_from_stream(&st, &s, NULL), SP_OK);
  assert_int_equal(s->rows, 3000);
  assert_int_equal(s->bytes, want);
  sp_snapshot_unref(s);
  ddb_arrow_free(&a);
  duckdb_disconnect(&c);
}

/* ---- A producer that fails, and one with empty batches ----------------------------------------------------- */

typedef struct fake_stream {
  struct ArrowSchema *schema; /* borrowed */
  struct ArrowArray *batches; /* handed out in order, moved */
  size_t n, next;
  int fail_after;             /* get_next fails once `next` reaches it; -1 never */
  int released;
} fake_stream;

static int fake_schema(struct ArrowArrayStream *st, struct ArrowSchema *out) {
  fake_stream *f = st->private_data;
  return sp_schema_copy(out, f->schema, NULL) == SP_OK ? 0 : 12;
}

static int fake_next(struct ArrowArrayStream *st, struct ArrowArray *out) {
  fake_stream *f = st->private_data;
  if (f->fail_after >= 0 && f->next == (size_t)f->fail_after) return 5;
  if (f->next == f->n) {
    memset(out, 0, sizeof *out);
    return 0;
  }
  sp_array_move(out, &f->batches[f->next++]);
  return 0;
}

static const char *fake_error(struct ArrowArrayStream *st) { return "the disk is on fire"; }

static void fake_release(struct ArrowArrayStream *st) {
  fake_stream *f = st->private_data;
  f->released++;
  st->release = NULL;
}

static struct ArrowArrayStream fake(fake_stream *f) {
  return (struct ArrowArrayStream){fake_schema, fake_next, fake_error, fake_release, f};
}

static void empty_release(struct ArrowArray *a) { a->release = NULL; }

static void test_snapshot_failing_stream(void **state) {
  (void)state;
  ddb_arrow a;
  counted cnt[16];
  data_batches(&a, cnt);
  fake_stream f = {.schema = &a.schema, .batches = a.batches, .n = a.n, .fail_after = 1};
  struct ArrowArrayStream st = fake(&f);
  sp_snapshot *s = NULL;
  sp_error err = {0};
  assert_int_equal(sp_snapshot_from_stream(&st, &s, &err), SP_EIO);
  assert_null(s);
  assert_string_equal(err.msg, "the disk is on fire");
  assert_int_equal(f.released, 1);
  assert_int_equal(calls(&cnt[0]), 1); /* the batch it had taken */
  for (size_t i = 1; i < a.n; i++) assert_int_equal(calls(&cnt[i]), 0); /* never handed out */
  ddb_arrow_free(&a);
  assert_calls(cnt, a.n, 1);
}

static void test_snapshot_skips_empty_batches(void **state) {
  (void)state;
  ddb_arrow a;
  counted cnt[16], ecnt[2];
  data_batches(&a, cnt);
  /* [empty, b0, empty, b1...] */
  struct ArrowArray list[20];
  size_t n = 0;
  for (size_t i = 0; i < a.n; i++) {
    if (i < 2) {
      list[n] = (struct ArrowArray){.release = empty_release};
      count_releases(&list[n++], &ecnt[i]);
    }
    sp_array_move(&list[n++], &a.batches[i]);
  }
  fake_stream f = {.schema = &a.schema, .batches = list, .n = n, .fail_after = -1};
  struct ArrowArrayStream st = fake(&f);
  sp_snapshot *s;
  assert_int_equal(sp_snapshot_from_stream(&st, &s, NULL), SP_OK);
  assert_int_equal(f.released, 1);
  assert_int_equal(s->n_batches, a.n);
  assert_int_equal(s->rows, ROWS);
  assert_calls(ecnt, 2, 1); /* dropped at once */
  assert_calls(cnt, a.n, 0);
  sp_snapshot_unref(s);
  assert_calls(cnt, a.n, 1);
  sp_schema_release(&a.schema);
  free(a.batches);
}

/* ---- Streams over a snapshot ------------------------------------------------------------------------------ */

typedef struct reader {
  struct ArrowArrayStream *st;
  totals t;
  struct ArrowArray kept; /* the last batch, kept past the stream's release */
} reader;

static void *read_stream(void *arg) {
  reader *r = arg;
  struct ArrowSchema s;
  assert_int_equal(r->st->get_schema(r->st, &s), 0);
  assert_int_equal(s.n_children, 5);
  sp_schema_release(&s);
  struct ArrowArray b;
  memset(&r->kept, 0, sizeof r->kept);
  while (r->st->get_next(r->st, &b) == 0 && b.release != NULL) {
    read_batch(&b, &r->t);
    sp_array_release(&r->kept);
    sp_array_move(&r->kept, &b);
  }
  return NULL;
}

static void test_snapshot_streams(void **state) {
  (void)state;
  counted cnt[16];
  size_t n;
  sp_snapshot *s = data_snapshot(cnt, &n);
  for (int round = 0; round < 2; round++) {
    /* round 0: the owner keeps its reference; round 1: it drops it while the readers run */
    struct ArrowArrayStream st[2];
    reader r[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
      assert_int_equal(sp_snapshot_stream(s, &st[i], NULL), SP_OK);
      r[i] = (reader){.st = &st[i]};
    }
    if (round == 1) sp_snapshot_unref(s); /* the owner's last reference */
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, read_stream, &r[i]), 0);
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < 2; i++) assert_totals(&r[i].t);
    assert_calls(cnt, n, 0);
    sp_stream_release(&st[0]);
    sp_stream_release(&st[1]);
    assert_calls(cnt, n, 0); /* the kept batches pin the snapshot */
    totals t = {0};
    read_batch(&r[0].kept, &t);
    sp_array_release(&r[0].kept);
    assert_calls(cnt, n, 0);
    sp_array_release(&r[1].kept);
    assert_calls(cnt, n, round == 0 ? 0 : 1);
  }
}

/* The Arrow spec lets a consumer move a child out of a batch and release the parent at once. A batch of a
 * snapshot stream is shared with every other reader, so that must not take the child from the snapshot. */
static void test_snapshot_stream_child_move(void **state) {
  (void)state;
  counted cnt[16];
  size_t n;
  sp_snapshot *s = data_snapshot(cnt, &n);
  struct ArrowArrayStream st;
  assert_int_equal(sp_snapshot_stream(s, &st, NULL), SP_OK);
  struct ArrowArray b, name;
  assert_int_equal(st.get_next(&st, &b), 0);
  int64_t len = b.length;
  sp_array_move(&name, b.children[1]);
  sp_array_release(&b);
  sp_stream_release(&st);
  sp_snapshot_unref(s); /* the moved child alone keeps the data */
  assert_calls(cnt, n, 0);
  assert_int_equal(name.length, len);
  const int32_t *off = (const int32_t *)name.buffers[1];
  assert_memory_equal((const char *)name.buffers[2] + off[1], "row-1", 5);
  sp_array_release(&name);
  assert_calls(cnt, n, 1);

  /* and with the snapshot alive, other readers still see everything */
  s = data_snapshot(cnt, &n);
  assert_int_equal(sp_snapshot_stream(s, &st, NULL), SP_OK);
  while (st.get_next(&st, &b) == 0 && b.release != NULL) {
    for (int64_t k = 0; k < b.n_children; k++) {
      struct ArrowArray kid;
      sp_array_move(&kid, b.children[k]);
      sp_array_release(&kid);
    }
    sp_array_release(&b);
  }
  sp_stream_release(&st);
  reader r;
  assert_int_equal(sp_snapshot_stream(s, &st, NULL), SP_OK);
  r = (reader){.st = &st};
  read_stream(&r);
  assert_totals(&r.t);
  sp_array_release(&r.kept);
  sp_stream_release(&st);
  assert_calls(cnt, n, 0);
  sp_snapshot_unref(s);
  assert_calls(cnt, n, 1);
}

static void test_snapshot_empty(void **state) {
  (void)state;
  duckdb_connection c = connect_with(NULL);
  ddb_arrow a;
  ddb_query(c, "SELECT 1::INTEGER AS id, 'x' AS name, [1] AS l WHERE false", &a);
  duckdb_disconnect(&c);
  assert_int_equal(a.n, 0);
  sp_snapshot *s;
  assert_int_equal(sp_snapshot_empty(&a.schema, &s, NULL), SP_OK);
  char *want = description(&a.schema);
  ddb_arrow_free(&a); /* copied */
  assert_int_equal(s->rows, 0);
  assert_int_equal(s->bytes, 0);
  assert_int_equal(s->n_batches, 0);
  assert_int_equal(s->refs, 1);
  struct ArrowArrayStream st;
  assert_int_equal(sp_snapshot_stream(s, &st, NULL), SP_OK);
  sp_snapshot_unref(s);
  struct ArrowSchema schema;
  assert_int_equal(st.get_schema(&st, &schema), 0);
  char *got = description(&schema);
  assert_string_equal(want, got);
  sp_schema_release(&schema);
  struct ArrowArray b;
  assert_int_equal(st.get_next(&st, &b), 0);
  assert_null(b.release); /* end at once */
  sp_stream_release(&st);
  free(want);
  free(got);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_duckdb_formats),
      cmocka_unit_test(test_parse_hand_formats),
      cmocka_unit_test(test_schema_copy_duckdb),
      cmocka_unit_test(test_schema_copy_hand),
      cmocka_unit_test(test_release_and_move),
      cmocka_unit_test(test_stream_from_batches),
      cmocka_unit_test(test_stream_released_early),
      cmocka_unit_test(test_snapshot_from_stream),
      cmocka_unit_test(test_snapshot_bytes),
      cmocka_unit_test(test_snapshot_failing_stream),
      cmocka_unit_test(test_snapshot_skips_empty_batches),
      cmocka_unit_test(test_snapshot_streams),
      cmocka_unit_test(test_snapshot_stream_child_move),
      cmocka_unit_test(test_snapshot_empty),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
