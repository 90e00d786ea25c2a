/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for the SQL classifier: arbitrary bytes (up to the first NUL) classified as one user
 * request against an in-memory DuckDB opened once, sandboxed like the serving database. Must never crash,
 * leak, or run anything: classification only parses.
 *
 *   clang -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
 *     -isystem third_party/duckdb/include tests/fuzz/fuzz_classify.c src/engine/classify.c src/core/error.c \
 *     -Lthird_party/duckdb/lib -lduckdb -ljansson -Wl,-rpath,$PWD/third_party/duckdb/lib -o fuzz_classify
 *   ./fuzz_classify -max_len=512 tests/fuzz/corpus/classify
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/classify.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static duckdb_database db;
static duckdb_connection conn;
static bool opened;

static bool is_writable(void *ctx, const char *table) {
  (void)ctx;
  return strcmp(table, "w") == 0;
}

static int open_once(void) {
  if (opened) return 0;
  duckdb_result res;
  if (duckdb_open(NULL, &db) == DuckDBError || duckdb_connect(db, &conn) == DuckDBError) return -1;
  if (duckdb_query(conn,
                   "CREATE TABLE t(a INTEGER, b VARCHAR); CREATE TABLE w(a INTEGER, b VARCHAR);"
                   "SET autoinstall_known_extensions = false; SET autoload_known_extensions = false;"
                   "SET enable_external_access = false; SET lock_configuration = true",
                   &res) == DuckDBError) {
    duckdb_destroy_result(&res);
    return -1;
  }
  duckdb_destroy_result(&res);
  opened = true;
  return 0;
}

/* Opens the database before fuzzing starts and warms it up: DuckDB allocates caches lazily on its first
 * queries, which LeakSanitizer would otherwise report against the first input. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  if (open_once() != 0) abort();
  static const char *const warm_up[] = {"SELECT 1", "INSERT INTO w SELECT * FROM t", "EXPLAIN SELECT 1",
                                        "COPY t TO 'x'", "SELEC"};
  for (size_t i = 0; i < sizeof warm_up / sizeof warm_up[0]; i++) {
    sp_sql_class out;
    sp_sql_classify(conn, warm_up[i], is_writable, NULL, &out, NULL);
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (open_once() != 0) abort();
  char *sql = malloc(size + 1);
  if (sql == NULL) return 0;
  memcpy(sql, data, size);
  sql[size] = '\0';
  sp_sql_class out;
  sp_error err;
  /* One-shot classify: a long-lived prepared statement keeps a result collector per run until it is
   * destroyed (duckdb/duckdb#21089), which LeakSanitizer would report against each input. */
  int rc = sp_sql_classify(conn, sql, is_writable, NULL, &out, &err);
  /* An allowed INSERT points inside the text it was given. */
  if (rc == SP_OK && out.kind == SP_SQL_INSERT && out.source_offset >= strlen(sql)) abort();
  if (rc != SP_OK && rc != SP_EINVAL && rc != SP_EDENIED) abort();
  free(sql);
  return 0;
}
