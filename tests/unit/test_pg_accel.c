/* SPDX-License-Identifier: Apache-2.0
 *
 * The postgres accelerator's column mapping and SQL (src/accelerators/pg_accel_sql.c), without a server: each
 * Arrow type's PostgreSQL column and whether the engine casts it first; types with no mapping refused naming
 * column, dataset and type; CREATE / INSERT … ON CONFLICT / dedup text; and Arrow types the COPY encoder does
 * not take (int8, uint64, decimal32/64, timestamp[ms], time32[s]) cast by the real engine, encoded into binary
 * COPY and decoded again with the values intact. The server side is tests/e2e/pg_accel.test.mjs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "accelerators/pg_accel.h"
#include "connectors/pg_write.h"
#include "spice/arrow.h"
#include "spice/engine.h"

/* ---- Hand-made Arrow ------------------------------------------------------------------------------------------ */

static struct ArrowSchema *field(const char *format, const char *name) {
  struct ArrowSchema *s = calloc(1, sizeof *s);
  assert_int_equal(sp_schema_node_init(s, format, name, strlen(name)), 0);
  return s;
}

static void struct_schema(struct ArrowSchema *out, struct ArrowSchema **children, int64_t n) {
  assert_int_equal(sp_schema_node_init(out, "+s", NULL, 0), 0);
  out->children = malloc((size_t)n * sizeof *out->children);
  for (int64_t i = 0; i < n; i++) out->children[i] = children[i];
  out->n_children = n;
}

static void array_release(struct ArrowArray *a) {
  for (int64_t i = 0; i < a->n_children; i++) {
    a->children[i]->release(a->children[i]);
    free(a->children[i]);
  }
  for (int64_t i = 0; i < a->n_buffers; i++) free((void *)a->buffers[i]);
  free(a->children);
  free(a->buffers);
  a->release = NULL;
}

/* A fixed-width column of n values; row `null_row` (or none when -1) is NULL. */
static struct ArrowArray *fixed(const void *values, size_t width, int64_t n, int64_t null_row) {
  struct ArrowArray *a = calloc(1, sizeof *a);
  const void **bufs = calloc(2, sizeof *bufs);
  void *data = malloc(width * (size_t)n);
  memcpy(data, values, width * (size_t)n);
  if (null_row >= 0) {
    uint8_t *valid = malloc(1);
    *valid = (uint8_t)(0xff & ~(1u << null_row));
    bufs[0] = valid;
    a->null_count = 1;
  }
  bufs[1] = data;
  a->length = n;
  a->n_buffers = 2;
  a->buffers = bufs;
  a->release = array_release;
  return a;
}

static void struct_array(struct ArrowArray *out, struct ArrowArray **children, int64_t n, int64_t rows) {
  memset(out, 0, sizeof *out);
  out->length = rows;
  out->n_buffers = 1;
  out->buffers = calloc(1, sizeof *out->buffers);
  out->n_children = n;
  out->children = malloc((size_t)n * sizeof *out->children);
  for (int64_t i = 0; i < n; i++) out->children[i] = children[i];
  out->release = array_release;
}

/* ---- Mapping ---------------------------------------------------------------------------------------------------- */

static void map_one(const char *format, const char *pg_type, const char *cast) {
  struct ArrowSchema *f = field(format, "c");
  pga_column col;
  sp_error err = {0};
  assert_int_equal(pga_map_field(f, "ds", &col, &err), SP_OK);
  assert_string_equal(col.pg_type, pg_type);
  assert_string_equal(col.cast, cast);
  assert_string_equal(col.quoted, "\"c\"");
  free(col.name);
  free(col.quoted);
  sp_schema_release(f);
  free(f);
}

static void arrow_types_map_to_postgres_columns(void **state) {
  (void)state;
  map_one("b", "boolean", "");
  map_one("c", "smallint", "SMALLINT");
  map_one("s", "smallint", "");
  map_one("i", "integer", "");
  map_one("I", "bigint", "BIGINT");
  map_one("l", "bigint", "");
  map_one("L", "numeric(20,0)", "DECIMAL(20,0)");
  map_one("f", "real", "");
  map_one("g", "double precision", "");
  map_one("u", "text", "");
  map_one("U", "text", "");
  map_one("z", "bytea", "");
  map_one("d:12,2", "numeric(12,2)", "");
  map_one("d:9,3,32", "numeric(9,3)", "DECIMAL(9,3)");
  map_one("d:18,4,64", "numeric(18,4)", "DECIMAL(18,4)");
  map_one("tdD", "date", "");
  map_one("tdm", "date", "DATE");
  map_one("ttu", "time", "");
  map_one("tts", "time", "TIME");
  map_one("tsu:", "timestamp", "");
  map_one("tsu:UTC", "timestamptz", "");
  map_one("tsn:Europe/Paris", "timestamptz", "TIMESTAMPTZ");
  map_one("tsm:", "timestamp", "TIMESTAMP");
  map_one("tin", "interval", "");
}

static void lists_map_to_arrays(void **state) {
  (void)state;
  struct ArrowSchema *f = field("+l", "tags");
  f->children = malloc(sizeof *f->children);
  f->children[0] = field("u", "item");
  f->n_children = 1;
  pga_column col;
  assert_int_equal(pga_map_field(f, "ds", &col, NULL), SP_OK);
  assert_string_equal(col.pg_type, "text[]");
  assert_int_equal(col.type.kind, PGC_LIST);
  assert_int_equal(col.type.elem, PGC_TEXT);
  free(col.name);
  free(col.quoted);
  sp_schema_release(f);
  free(f);
}

static void unmapped_types_name_column_dataset_and_type(void **state) {
  (void)state;
  static const char *const formats[] = {"d:60,2,256", "+m", "+s", "n"};
  for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
    struct ArrowSchema *f = field(formats[i], "odd col");
    pga_column col;
    sp_error err = {0};
    assert_int_equal(pga_map_field(f, "orders", &col, &err), SP_ENOTSUP);
    assert_non_null(strstr(err.msg, "column \"odd col\" of dataset \"orders\""));
    assert_non_null(strstr(err.msg, formats[i]));
    sp_schema_release(f);
    free(f);
  }
}

/* ---- SQL ----------------------------------------------------------------------------------------------------------- */

static void three_columns(struct ArrowSchema *s, pga_column **cols, size_t *n) {
  struct ArrowSchema *kids[3] = {field("l", "id"), field("u", "name"), field("d:10,2", "price")};
  struct_schema(s, kids, 3);
  assert_int_equal(pga_columns_of(s, "ds", cols, n, NULL), SP_OK);
  assert_int_equal(*n, 3);
}

static void sql_text_is_quoted_and_complete(void **state) {
  (void)state;
  struct ArrowSchema s;
  pga_column *cols;
  size_t n;
  three_columns(&s, &cols, &n);
  const char *keys[] = {"\"id\"", "\"name\""};
  char *create = pga_create_sql("\"public\".\"t\"", cols, n, keys, 2, 0);
  assert_string_equal(create, "CREATE TABLE \"public\".\"t\" (\"id\" bigint, \"name\" text, \"price\" numeric(10,2), "
                              "PRIMARY KEY (\"id\"), UNIQUE (\"name\"))");
  char *temp = pga_create_sql("spice_load", cols, n, NULL, 0, 1);
  assert_string_equal(temp, "CREATE TEMP TABLE spice_load (\"id\" bigint, \"name\" text, \"price\" numeric(10,2)) ON COMMIT DROP");
  char *upsert = pga_insert_sql("\"t\"", "spice_load", cols, n, "\"id\"", "upsert");
  assert_string_equal(upsert, "INSERT INTO \"t\" (\"id\", \"name\", \"price\") SELECT DISTINCT ON (\"id\") \"id\", \"name\", "
                              "\"price\" FROM spice_load ORDER BY \"id\", ctid DESC ON CONFLICT (\"id\") DO UPDATE SET "
                              "\"name\" = EXCLUDED.\"name\", \"price\" = EXCLUDED.\"price\"");
  char *drop = pga_insert_sql("\"t\"", "spice_load", cols, n, "\"id\", \"name\"", "drop");
  assert_string_equal(drop, "INSERT INTO \"t\" (\"id\", \"name\", \"price\") SELECT \"id\", \"name\", \"price\" FROM spice_load "
                            "ON CONFLICT (\"id\", \"name\") DO NOTHING");
  char *all_key = pga_insert_sql("\"t\"", "x", cols, 1, "\"id\"", "upsert");
  assert_non_null(strstr(all_key, "ON CONFLICT (\"id\") DO NOTHING"));
  char *any = pga_insert_sql("\"t\"", "x", cols, n, NULL, "drop");
  assert_string_equal(any, "INSERT INTO \"t\" (\"id\", \"name\", \"price\") SELECT \"id\", \"name\", \"price\" FROM x "
                           "ON CONFLICT DO NOTHING");
  free(any);
  char *dedup = pga_dedup_sql("SELECT 1 AS a", "\"a\"", 1);
  assert_non_null(strstr(dedup, "PARTITION BY \"a\" ORDER BY spice_rn DESC) = 1"));
  char *ref = NULL;
  sp_error err = {0};
  assert_int_equal(pga_colref("(id, price)", cols, n, "ds", "indexes", &ref, &err), SP_OK);
  assert_string_equal(ref, "\"id\", \"price\"");
  assert_int_equal(pga_colref("nope", cols, n, "ds", "primary_key", NULL, &err), SP_EINVAL);
  assert_string_equal(err.msg, "dataset \"ds\": primary_key names column \"nope\", which the data does not have");
  free(create), free(temp), free(upsert), free(drop), free(all_key), free(dedup), free(ref);
  pga_columns_free(cols, n);
  sp_schema_release(&s);
}

/* ---- Casts through the engine, then binary COPY and back ------------------------------------------------------------- */

static void odd_types_are_cast_encoded_and_decoded_intact(void **state) {
  (void)state;
  const int8_t i8[3] = {-128, 0, 127};
  const uint64_t u64[3] = {UINT64_MAX, 0, 42};
  const int32_t d32[3] = {-12345, 0, 99999};               /* decimal(5,2): -123.45, NULL, 999.99 */
  const int64_t d64[3] = {INT64_C(123456789012), 1, -7};   /* decimal(12,3) */
  const int64_t tsm[3] = {INT64_C(1709294400123), 0, -1000}; /* timestamp[ms] */
  const int32_t t32[3] = {0, 3600, 86399};                 /* time32[s] */
  struct ArrowSchema *kids[6] = {field("c", "i8"), field("L", "u64"), field("d:5,2,32", "d32"), field("d:12,3,64", "d64"),
                                 field("tsm:", "tsm"), field("tts", "t32")};
  struct ArrowArray *cols[6] = {fixed(i8, 1, 3, -1), fixed(u64, 8, 3, -1), fixed(d32, 4, 3, 1), fixed(d64, 8, 3, -1),
                                fixed(tsm, 8, 3, -1), fixed(t32, 4, 3, -1)};
  struct ArrowSchema schema;
  struct ArrowArray batch;
  struct_schema(&schema, kids, 6);
  struct_array(&batch, cols, 6, 3);

  sp_error err = {0};
  pga_column *mapped;
  size_t n;
  assert_int_equal(pga_columns_of(&schema, "ds", &mapped, &n, &err), SP_OK);
  assert_true(pga_needs_cast(mapped, n));
  sp_engine *e;
  sp_engine_config cfg = {.threads = 1, .data_dir = "/tmp"};
  assert_int_equal(sp_engine_create(&cfg, &e, &err), SP_OK);
  struct ArrowArrayStream in, out;
  uint64_t token;
  assert_int_equal(sp_stream_from_batches(&schema, &batch, 1, &in, &err), SP_OK);
  assert_int_equal(sp_engine_stream_register(e, &in, &token, &err), SP_OK);
  char *sql = pga_cast_sql(mapped, n, (unsigned long long)token);
  if (sp_engine_query_internal(e, sql, &out, &err) != SP_OK) fail_msg("%s: %s", sql, err.msg);

  /* After the cast every column is taken by the encoder as it is. */
  struct ArrowSchema cast_schema;
  assert_int_equal(out.get_schema(&out, &cast_schema), 0);
  pga_column *exact;
  size_t m;
  assert_int_equal(pga_columns_of(&cast_schema, "ds", &exact, &m, &err), SP_OK);
  assert_int_equal(m, 6);
  assert_false(pga_needs_cast(exact, m));
  for (size_t i = 0; i < m; i++) assert_string_equal(exact[i].pg_type, mapped[i].pg_type);

  /* Encode as the accelerator's COPY does, decode as the connector reads it back. */
  const char *names[6];
  pgc_type types[6];
  for (size_t i = 0; i < m; i++) names[i] = exact[i].quoted, types[i] = exact[i].type;
  pgw_target t = {.relation = "\"t\"", .display = "t", .dataset = "ds", .names = names, .quoted = names, .types = types, .n = m};
  sp_buf b = {0};
  struct ArrowArray got = {0};
  assert_int_equal(pgw_header(&b), SP_OK);
  for (;;) {
    struct ArrowArray part;
    assert_int_equal(out.get_next(&out, &part), 0);
    if (part.release == NULL) break;
    if (pgw_encode_batch(&t, &cast_schema, &part, &b, &err) != SP_OK) fail_msg("%s", err.msg);
    sp_array_release(&part);
  }
  assert_int_equal(pgw_trailer(&b), SP_OK);
  pgc_decoder *dec;
  assert_int_equal(pgc_decoder_new(types, m, &dec, &err), SP_OK);
  if (pgc_feed(dec, (const uint8_t *)b.data, b.len, &err) != SP_OK) fail_msg("%s", err.msg);
  assert_int_equal(pgc_pending_rows(dec), 3);
  assert_int_equal(pgc_finish_batch(dec, &got, &err), SP_OK);

  /* Rows may come back in any order from the engine: find each by its int8 value. */
  for (int64_t r = 0; r < 3; r++) {
    int16_t key = ((const int16_t *)got.children[0]->buffers[1])[r];
    int k = key == -128 ? 0 : key == 0 ? 1 : 2;
    assert_int_equal(key, i8[k]);
    __int128 u, dd;
    memcpy(&u, (const char *)got.children[1]->buffers[1] + 16 * r, 16);
    assert_true(u == (__int128)u64[k]);
    assert_int_equal(sp_array_is_null(got.children[2], r), k == 1);
    memcpy(&dd, (const char *)got.children[2]->buffers[1] + 16 * r, 16);
    if (k != 1) assert_true(dd == d32[k]);
    memcpy(&dd, (const char *)got.children[3]->buffers[1] + 16 * r, 16);
    assert_true(dd == d64[k]);
    assert_int_equal(((const int64_t *)got.children[4]->buffers[1])[r], tsm[k] * 1000);
    assert_int_equal(((const int64_t *)got.children[5]->buffers[1])[r], (int64_t)t32[k] * 1000000);
  }
  sp_array_release(&got);
  pgc_decoder_free(dec);
  sp_buf_free(&b);
  sp_schema_release(&cast_schema);
  out.release(&out);
  sp_engine_stream_unregister(e, token);
  free(sql);
  pga_columns_free(exact, m);
  pga_columns_free(mapped, n);
  sp_schema_release(&schema);
  sp_engine_destroy(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(arrow_types_map_to_postgres_columns),
      cmocka_unit_test(lists_map_to_arrays),
      cmocka_unit_test(unmapped_types_name_column_dataset_and_type),
      cmocka_unit_test(sql_text_is_quoted_and_complete),
      cmocka_unit_test(odd_types_are_cast_encoded_and_decoded_intact),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
