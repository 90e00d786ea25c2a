/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for whole-query pushdown's printer (src/engine/unparse.c): arbitrary bytes (up to the first
 * NUL) parsed by DuckDB (json_serialize_sql, as the engine does) and printed for every dialect against two
 * known tables. Must never crash or leak; a refusal is a normal answer.
 *
 *   make fuzz (see scripts/fuzz.sh); replayed over tests/fuzz/corpus/unparse by ctest (replay_unparse).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/unparse.h"
#include "spice/duckdb_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ArrowSchema col_id = {.format = "i", .name = "id"}, col_name = {.format = "u", .name = "name"},
                          col_d = {.format = "tdD", .name = "d"};
static struct ArrowSchema *cols[] = {&col_id, &col_name, &col_d};
static struct ArrowSchema schema = {.format = "+s", .n_children = 3, .children = cols},
                          some = {.format = "+s", .n_children = 2, .children = cols};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  char *sql = malloc(size + 1);
  if (sql == NULL) return 0;
  memcpy(sql, data, size);
  sql[size] = '\0';
  char *json = NULL;
  if (sp_duckdb_serialize_sql_full(sql, "fuzz input", &json, NULL) == SP_OK) {
    json_t *ast = json_loads(json, 0, NULL);
    json_t *node = json_object_get(json_array_get(json_object_get(ast, "statements"), 0), "node");
    /* SQLite computes on id and name only (strict), as for an accelerated table with a date column. */
    static const sp_unparse_table tables[] = {{"t", "\"s\".\"t\"", &schema, &schema}, {"u", "\"s\".\"u\"", &schema, &schema}};
    static const sp_unparse_table strict_tables[] = {{"t", "\"t\"", &some, &schema}, {"u", "\"u\"", &some, &schema}};
    for (int d = SP_DIALECT_POSTGRES; node && d <= SP_DIALECT_SQLITE; d++) {
      sp_unparse_env env = {.dialect = (sp_sql_dialect)d, .text_collation = "utf8mb4_nopad_bin",
                            .tables = d == SP_DIALECT_SQLITE ? strict_tables : tables, .n_tables = 2,
                            .strict = d == SP_DIALECT_SQLITE};
      char *out = NULL;
      sp_error err = {0};
      if (sp_unparse_query(node, &env, &out, &err) == SP_OK) free(out);
    }
    json_decref(ast);
  }
  free(json);
  free(sql);
  return 0;
}
