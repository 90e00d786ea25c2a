/* SPDX-License-Identifier: Apache-2.0
 *
 * DuckDB's parser as a service for connectors that push filters to their source: the SQL is parsed into
 * DuckDB's JSON AST (json_serialize_sql) by one small process-wide database that only parses (one thread, no
 * external access), opened on first use.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "spice/duckdb_util.h"

static pthread_once_t parser_once = PTHREAD_ONCE_INIT;
static duckdb_database parser_db;

static void parser_open(void) {
  duckdb_config cfg;
  char *oerr = NULL;
  duckdb_create_config(&cfg);
  duckdb_set_config(cfg, "threads", "1");
  duckdb_set_config(cfg, "enable_external_access", "false");
  duckdb_set_config(cfg, "autoinstall_known_extensions", "false");
  if (duckdb_open_ext(NULL, &parser_db, cfg, &oerr) == DuckDBError) parser_db = NULL;
  duckdb_free(oerr);
  duckdb_destroy_config(&cfg);
}

void sp_duckdb_json_zero_unknown_locations(char *json) {
  static const char pat[] = "\"query_location\":18446744073709551615";
  const size_t keep = sizeof "\"query_location\":" - 1, drop = sizeof pat - 1 - keep - 1;
  for (char *p = strstr(json, pat); p; p = strstr(p, pat)) {
    p += keep;
    *p++ = '0';
    memmove(p, p + drop, strlen(p + drop) + 1);
  }
}

static int serialize(const char *sql, const char *what, bool keep_empty, char **out, sp_error *err) {
  pthread_once(&parser_once, parser_open);
  if (parser_db == NULL) return sp_fail(err, SP_EINTERNAL, "could not open a SQL parser for %s", what);
  duckdb_connection conn;
  duckdb_prepared_statement ps = NULL;
  duckdb_result res;
  int rc = SP_EINTERNAL;
  if (duckdb_connect(parser_db, &conn) == DuckDBError) return sp_fail(err, rc, "could not parse %s", what);
  if (duckdb_prepare(conn, keep_empty ? "SELECT json_serialize_sql($1::VARCHAR, skip_null := true)"
                                      : "SELECT json_serialize_sql($1::VARCHAR, skip_null := true, skip_empty := true)",
                     &ps) ==
          DuckDBSuccess &&
      duckdb_bind_varchar(ps, 1, sql) == DuckDBSuccess && duckdb_execute_prepared(ps, &res) == DuckDBSuccess) {
    char *v = duckdb_value_varchar(&res, 0, 0);
    *out = v ? strdup(v) : NULL;
    duckdb_free(v);
    if (*out) sp_duckdb_json_zero_unknown_locations(*out);
    rc = *out ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
    duckdb_destroy_result(&res);
  } else {
    sp_fail(err, rc, "could not parse %s: %s", what, ps ? duckdb_prepare_error(ps) : "");
  }
  duckdb_destroy_prepare(&ps);
  duckdb_disconnect(&conn);
  return rc;
}

int sp_duckdb_serialize_sql(const char *sql, const char *what, char **out, sp_error *err) {
  return serialize(sql, what, false, out, err);
}

int sp_duckdb_serialize_sql_full(const char *sql, const char *what, char **out, sp_error *err) {
  return serialize(sql, what, true, out, err);
}
