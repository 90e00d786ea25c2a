/* SPDX-License-Identifier: Apache-2.0
 *
 * bench_db: times SQL run directly on a PostgreSQL or MariaDB/MySQL server, for the benchmarks that compare
 * spiced with the server it reads from (bench/sections/tpch_pg.mjs). One connection, kept open; requests come
 * as JSON lines on stdin and each gets one JSON line on stdout, so a driver can interleave direct runs with
 * runs through spiced without paying a process start or a connection per query.
 *
 *   bench_db --pg CONNINFO
 *   bench_db --mysql [--host H] [--port N] [--socket PATH] [--user U] [--password P] [--db NAME]
 *
 * Request:  {"sql": "SELECT …", "rows": true}
 * Answer:   {"ms": 12.3, "nrows": 4, "columns": ["a", …], "rows": [["1", null, …], …]}   or   {"error": "…"}
 *
 * "ms" is the wall time from sending the statement until the whole result is in this process (PQexec;
 * mysql_real_query + mysql_store_result): what a client of the server waits for. Values are the server's text
 * (NULL as null); "rows" is present only when asked for. The exit status is non-zero only when the connection
 * could not be made.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <mysql.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static json_t *error_answer(const char *what, const char *msg) {
  json_t *a = json_object();
  char text[2048];
  snprintf(text, sizeof text, "%s: %s", what, msg ? msg : "unknown error");
  size_t n = strlen(text);
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' ')) text[--n] = '\0';
  json_object_set_new(a, "error", json_string(text));
  return a;
}

static json_t *run_pg(PGconn *pg, const char *sql, bool want_rows) {
  double t0 = now_ms();
  PGresult *res = PQexec(pg, sql);
  double ms = now_ms() - t0;
  ExecStatusType st = PQresultStatus(res);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    json_t *a = error_answer("postgres", PQresultErrorMessage(res));
    PQclear(res);
    return a;
  }
  json_t *a = json_object();
  int nrows = PQntuples(res), ncols = PQnfields(res);
  json_object_set_new(a, "ms", json_real(ms));
  json_object_set_new(a, "nrows", json_integer(nrows));
  json_t *cols = json_array();
  for (int c = 0; c < ncols; c++) json_array_append_new(cols, json_string(PQfname(res, c)));
  json_object_set_new(a, "columns", cols);
  if (want_rows) {
    json_t *rows = json_array();
    for (int r = 0; r < nrows; r++) {
      json_t *row = json_array();
      for (int c = 0; c < ncols; c++)
        json_array_append_new(row, PQgetisnull(res, r, c) ? json_null() : json_string(PQgetvalue(res, r, c)));
      json_array_append_new(rows, row);
    }
    json_object_set_new(a, "rows", rows);
  }
  PQclear(res);
  return a;
}

static json_t *run_mysql(MYSQL *my, const char *sql, bool want_rows) {
  double t0 = now_ms();
  int rc = mysql_real_query(my, sql, strlen(sql));
  MYSQL_RES *res = rc == 0 ? mysql_store_result(my) : NULL;
  double ms = now_ms() - t0;
  if (rc != 0 || (res == NULL && mysql_field_count(my) != 0)) return error_answer("mysql", mysql_error(my));
  json_t *a = json_object();
  json_object_set_new(a, "ms", json_real(ms));
  json_t *cols = json_array();
  if (res == NULL) { /* a statement without a result set */
    json_object_set_new(a, "nrows", json_integer(0));
    json_object_set_new(a, "columns", cols);
    return a;
  }
  unsigned ncols = mysql_num_fields(res);
  MYSQL_FIELD *fields = mysql_fetch_fields(res);
  for (unsigned c = 0; c < ncols; c++) json_array_append_new(cols, json_string(fields[c].name));
  json_object_set_new(a, "columns", cols);
  json_object_set_new(a, "nrows", json_integer((json_int_t)mysql_num_rows(res)));
  if (want_rows) {
    json_t *rows = json_array();
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res)) != NULL) {
      unsigned long *len = mysql_fetch_lengths(res);
      json_t *jr = json_array();
      for (unsigned c = 0; c < ncols; c++)
        json_array_append_new(jr, row[c] ? json_stringn(row[c], len[c]) : json_null());
      json_array_append_new(rows, jr);
    }
    json_object_set_new(a, "rows", rows);
  }
  mysql_free_result(res);
  return a;
}

static int usage(void) {
  fprintf(stderr, "usage: bench_db --pg CONNINFO\n"
                  "       bench_db --mysql [--host H] [--port N] [--socket PATH] [--user U] [--password P] [--db NAME]\n"
                  "then one JSON request a line on stdin: {\"sql\": \"...\", \"rows\": true}\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *conninfo = NULL, *host = NULL, *sock = NULL, *user = NULL, *pass = NULL, *db = NULL;
  unsigned port = 0;
  bool mysql = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--mysql") == 0) mysql = true;
    else if (v && strcmp(a, "--pg") == 0) conninfo = argv[++i];
    else if (v && strcmp(a, "--host") == 0) host = argv[++i];
    else if (v && strcmp(a, "--port") == 0) port = (unsigned)atoi(argv[++i]);
    else if (v && strcmp(a, "--socket") == 0) sock = argv[++i];
    else if (v && strcmp(a, "--user") == 0) user = argv[++i];
    else if (v && strcmp(a, "--password") == 0) pass = argv[++i];
    else if (v && strcmp(a, "--db") == 0) db = argv[++i];
    else return usage();
  }
  if (mysql == (conninfo != NULL)) return usage();

  PGconn *pg = NULL;
  MYSQL *my = NULL;
  if (conninfo) {
    pg = PQconnectdb(conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
      fprintf(stderr, "bench_db: could not connect to postgres: %s", PQerrorMessage(pg));
      PQfinish(pg);
      return 1;
    }
  } else {
    my = mysql_init(NULL);
    unsigned proto = sock ? MYSQL_PROTOCOL_SOCKET : MYSQL_PROTOCOL_TCP;
    mysql_optionsv(my, MYSQL_OPT_PROTOCOL, &proto);
    if (!mysql_real_connect(my, host, user, pass, db, port, sock, 0)) {
      fprintf(stderr, "bench_db: could not connect to mysql: %s\n", mysql_error(my));
      mysql_close(my);
      return 1;
    }
  }

  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, stdin)) > 0) {
    if (n == 1 && line[0] == '\n') continue;
    json_error_t jerr;
    json_t *req = json_loads(line, 0, &jerr), *answer;
    const char *sql = req ? json_string_value(json_object_get(req, "sql")) : NULL;
    if (sql == NULL)
      answer = error_answer("bad request", req ? "no \"sql\" string" : jerr.text);
    else {
      bool want_rows = json_is_true(json_object_get(req, "rows"));
      answer = pg ? run_pg(pg, sql, want_rows) : run_mysql(my, sql, want_rows);
    }
    char *out = json_dumps(answer, JSON_COMPACT | JSON_REAL_PRECISION(9));
    if (out) {
      fputs(out, stdout);
      fputc('\n', stdout);
      fflush(stdout);
    }
    free(out);
    json_decref(answer);
    json_decref(req);
  }
  free(line);
  if (pg) PQfinish(pg);
  if (my) mysql_close(my);
  return 0;
}
