/* SPDX-License-Identifier: Apache-2.0
 *
 * duckdb_exec: runs SQL statements in an embedded DuckDB, for test and benchmark fixtures (turn a CSV into
 * Parquet, build a DuckDB database file) without a DuckDB CLI on the machine.
 *
 *   duckdb_exec [--db FILE] SQL [SQL ...]
 *
 * Without --db the database is in memory. Each argument is run as given (it may hold several statements); the
 * first failure is printed with its statement and the exit status is 1. Rows a statement returns are printed
 * as tab-separated text, one row a line (NULL as an empty field).
 */
#include <stdio.h>
#include <string.h>

#include <duckdb.h>

static void print_rows(duckdb_result *res) {
  idx_t cols = duckdb_column_count(res), rows = duckdb_row_count(res);
  for (idx_t r = 0; r < rows; r++) {
    for (idx_t c = 0; c < cols; c++) {
      char *v = duckdb_value_varchar(res, c, r);
      printf("%s%s", c ? "\t" : "", v ? v : "");
      duckdb_free(v);
    }
    putchar('\n');
  }
}

int main(int argc, char **argv) {
  const char *path = NULL;
  int first = 1;
  if (argc > 2 && strcmp(argv[1], "--db") == 0) {
    path = argv[2];
    first = 3;
  }
  if (first >= argc) {
    fprintf(stderr, "usage: duckdb_exec [--db FILE] SQL [SQL ...]\n");
    return 2;
  }
  duckdb_database db;
  duckdb_connection con;
  if (duckdb_open(path, &db) == DuckDBError || duckdb_connect(db, &con) == DuckDBError) {
    fprintf(stderr, "duckdb_exec: could not open %s\n", path ? path : "an in-memory database");
    return 1;
  }
  int rc = 0;
  for (int i = first; i < argc && rc == 0; i++) {
    duckdb_result res;
    if (duckdb_query(con, argv[i], &res) == DuckDBError) {
      fprintf(stderr, "duckdb_exec: %s\n  in: %.300s\n", duckdb_result_error(&res), argv[i]);
      rc = 1;
    } else {
      print_rows(&res);
    }
    duckdb_destroy_result(&res);
  }
  duckdb_disconnect(&con);
  duckdb_close(&db);
  return rc;
}
