/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for what the sqlite connector and accelerator read from outside (sqlite_arrow.c): any bytes
 * as a declared column type, as a spicepod column reference (`col`, `(a, b)`), and as a stored value read
 * into each kind of column (text dates, timestamps with zones, decimals, booleans, integers). Nothing may
 * crash; every batch must have the rows asked for. Seeds: tests/fuzz/corpus/sqlite_text/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "accelerators/sqlite_arrow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The value as TEXT and as BLOB, read through one column of each kind. */
static void read_value(const char *text, size_t size) {
  static const sqa_column kinds[] = {
      {.name = "a", .decl = "DATE", .format = "tdD", .kind = SQA_DATE_TEXT, .width = 4},
      {.name = "b", .decl = "DATETIME", .format = "tsu:", .kind = SQA_TS_TEXT, .width = 8},
      {.name = "c", .decl = "DECIMAL(20,4)", .format = "d:20,4", .kind = SQA_DECIMAL, .width = 16, .precision = 20, .scale = 4},
      {.name = "d", .decl = "BOOLEAN", .format = "b", .kind = SQA_BOOL},
      {.name = "e", .decl = "TINYINT", .format = "c", .kind = SQA_INT, .width = 1},
      {.name = "f", .decl = "TEXT", .format = "u", .kind = SQA_TEXT},
      {.name = "g", .decl = "BLOB", .format = "w:4", .kind = SQA_FIXED, .width = 4},
  };
  sqlite3 *db;
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) return;
  sqlite3_stmt *st;
  /* CAST(? AS NUMERIC) also gives integers and reals out of numeric-looking text. */
  sqlite3_exec(db, "CREATE TABLE v (x); ", NULL, NULL, NULL);
  if (sqlite3_prepare_v2(db, "INSERT INTO v VALUES (?), (?), (CAST(?1 AS NUMERIC))", -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, text, (int)size, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, text, (int)size, SQLITE_STATIC);
    sqlite3_step(st);
    sqlite3_finalize(st);
  }
  for (int action = 0; action < 2; action++) {
    sqa_column cols[7];
    memcpy(cols, kinds, sizeof cols);
    struct ArrowArrayStream s;
    /* No `done`: the database stays open for the next pass and is closed below. */
    sqa_read_opts o = {.dataset = "fuzz", .table = "v", .action = action ? SQA_ACTION_IGNORE : SQA_ACTION_ERROR};
    if (sqa_read(db, "SELECT x, x, x, x, x, x, x FROM v", cols, 7, &o, &s, NULL) != SP_OK) break;
    struct ArrowArray a;
    while (s.get_next(&s, &a) == 0 && a.release) {
      if (a.length < 1 || a.n_children != 7) abort();
      a.release(&a);
    }
    s.release(&s);
  }
  sqlite3_close(db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (text == NULL) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  sqa_column col = {0};
  sqa_map_decltype(text, &col);
  if (col.format[0] == '\0') abort();
  char **names;
  size_t n;
  if (sqa_colref_parse(text, &names, &n, NULL) == SP_OK) {
    if (n == 0) abort();
    sqa_names_free(names, n);
  }
  read_value(text, strlen(text));
  free(text);
  return 0;
}
