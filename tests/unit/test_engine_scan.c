/* SPDX-License-Identifier: Apache-2.0
 *
 * The engine's Arrow scans (sp_stream, sp_arrow_scan) hand DuckDB one slice of each batch at a time; a slice
 * must keep its NULLs, dictionary-encoded columns included (DuckDB reads their validity only when
 * null_count > 0).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "spice/arrow.h"
#include "spice/engine.h"

static void noop_schema(struct ArrowSchema *s) { s->release = NULL; }
static void noop_array(struct ArrowArray *a) { a->release = NULL; }

/* A one-column batch: dictionary ["a", "b"] with int32 indices [0, NULL, 1, NULL, 0]. */
static void dictionary_batch(struct ArrowSchema *schema, struct ArrowArray *batch) {
  static int32_t dict_off[3] = {0, 1, 2};
  static const char dict_data[] = "ab";
  static const void *dict_bufs[3] = {NULL, dict_off, dict_data};
  static struct ArrowArray dict = {.length = 2, .n_buffers = 3, .buffers = dict_bufs, .release = noop_array};
  static uint8_t valid[1] = {0x15}; /* rows 0, 2, 4 */
  static int32_t idx[5] = {0, 0, 1, 0, 0};
  static const void *idx_bufs[2] = {valid, idx};
  static struct ArrowArray col = {.length = 5, .null_count = 2, .n_buffers = 2, .buffers = idx_bufs,
                                  .dictionary = &dict, .release = noop_array};
  static struct ArrowArray *kids[1] = {&col};
  static const void *struct_bufs[1] = {NULL};
  static struct ArrowSchema dict_schema = {.format = "u", .name = "", .release = noop_schema};
  static struct ArrowSchema col_schema = {.format = "i", .name = "s", .flags = ARROW_FLAG_NULLABLE,
                                          .dictionary = &dict_schema, .release = noop_schema};
  static struct ArrowSchema *schema_kids[1] = {&col_schema};
  *batch = (struct ArrowArray){.length = 5, .n_buffers = 1, .buffers = struct_bufs, .n_children = 1, .children = kids,
                               .release = noop_array};
  *schema = (struct ArrowSchema){.format = "+s", .name = "", .n_children = 1, .children = schema_kids,
                                 .release = noop_schema};
}

static void dictionary_nulls_survive_a_stream_scan(void **state) {
  (void)state;
  sp_engine *e;
  sp_error err = {0};
  sp_engine_config cfg = {.threads = 1, .data_dir = "/tmp"};
  assert_int_equal(sp_engine_create(&cfg, &e, &err), SP_OK);
  struct ArrowSchema schema;
  struct ArrowArray batch;
  dictionary_batch(&schema, &batch);
  struct ArrowArrayStream in;
  uint64_t token;
  assert_int_equal(sp_stream_from_batches(&schema, &batch, 1, &in, &err), SP_OK);
  assert_int_equal(sp_engine_stream_register(e, &in, &token, &err), SP_OK);
  char sql[200], out[200];
  snprintf(sql, sizeof sql, "SELECT string_agg(coalesce(s, '-'), ',') FROM sp_stream('%llu')", (unsigned long long)token);
  if (sp_engine_query_text(e, sql, out, sizeof out, &err) != SP_OK) fail_msg("%s", err.msg);
  assert_string_equal(out, "a,-,b,-,a");
  sp_engine_destroy(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(dictionary_nulls_survive_a_stream_scan)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
