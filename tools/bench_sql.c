/* SPDX-License-Identifier: Apache-2.0
 *
 * bench_sql: times the same SQL through spiced's HTTP API and in an embedded DuckDB, side by side in one run.
 *
 *   bench_sql --free-ports N
 *       prints N distinct free loopback TCP ports, one a line (for bench/run.sh)
 *   bench_sql --http HOST:PORT --parquet FILE --queries FILE [--pid PID] [--wait-ready SECONDS]
 *             [--reps N] [--warmup N] [--match SUBSTRING] [--md FILE] [--json FILE]
 *   bench_sql --http HOST:PORT --tables DIR [--label NAME] [--flight HOST:PORT] --queries FILE [the same options]
 *
 * With --tables, every DIR/<name>.parquet is a table <name> on both sides (spiced serves them as datasets
 * of those names, e.g. the TPC-H tables) and the queries name them directly: one target, called NAME; with
 * --flight a second one, NAME/flight, runs the same queries over Arrow Flight (DoGet, every batch decoded).
 * Otherwise each query of the queries file runs against three spiced datasets built from FILE (trips_arrow,
 * trips_duckdb, trips_federated) and, in this process, against the same data in DuckDB: a table loaded from
 * FILE for the two accelerated datasets, read_parquet(FILE) for the federated one. Repetitions are
 * interleaved (spiced, DuckDB, next query, ...; the first of each pair alternates) so that drift on the
 * machine hits both sides alike, and the median of each side is reported with their ratio. The HTTP client
 * is a plain keep-alive HTTP/1.1 client on one socket: it adds a few microseconds, not a library.
 * Nothing fails on a slow ratio; the exit status is non-zero only when the benchmark could not run.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <duckdb.h>
#include <jansson.h>

#include "flight/client.h"
#include "spice/error.h"

#define GOAL_RATIO 1.05
#define MAX_QUERIES 64
#define MAX_REPS 100

/* ---- small helpers ------------------------------------------------------------------------------------- */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

typedef struct buf {
  char *p;
  size_t len, cap;
} buf;

static int buf_reserve(buf *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap) return SP_OK;
  size_t cap = b->cap ? b->cap : 8192;
  while (cap < b->len + extra + 1) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) return SP_ENOMEM;
  b->p = p;
  b->cap = cap;
  return SP_OK;
}

static int buf_add(buf *b, const void *data, size_t n) {
  SP_TRY(buf_reserve(b, n));
  memcpy(b->p + b->len, data, n);
  b->len += n;
  b->p[b->len] = '\0';
  return SP_OK;
}

static double median(double *v, int n) {
  for (int i = 1; i < n; i++) /* insertion sort: n is a handful */
    for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
      double t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* kB value of a "Name:   123 kB" line of /proc/<pid>/status, or -1. */
static long proc_status_kb(const char *pid, const char *field) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%s/status", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long kb = -1;
  size_t n = strlen(field);
  while (fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0 && line[n] == ':') kb = strtol(line + n + 1, NULL, 10);
  fclose(f);
  return kb;
}

/* True while pid runs (a zombie counts as gone). */
static bool process_alive(long pid) {
  if (kill((pid_t)pid, 0) != 0) return false;
  char path[64], stat[512];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return false;
  size_t n = fread(stat, 1, sizeof stat - 1, f);
  fclose(f);
  stat[n] = '\0';
  const char *rp = strrchr(stat, ')');
  return !(rp && rp[1] == ' ' && rp[2] == 'Z');
}

/* ---- a keep-alive HTTP/1.1 client ------------------------------------------------------------------------ */

typedef struct http_client {
  char host[256];
  int port;
  int fd;
  buf raw;  /* bytes of the current response as received */
  buf body; /* its body, de-chunked */
  size_t pos;
  bool close_after;
} http_client;

static int http_connect(http_client *c, sp_error *err) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
  if (inet_pton(AF_INET, c->host, &sa.sin_addr) != 1)
    return sp_fail(err, SP_EINVAL, "bad IPv4 address \"%s\"", c->host);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return sp_fail(err, SP_EIO, "socket: %s", strerror(errno));
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    int e = errno;
    close(fd);
    return sp_fail(err, SP_ECONNECT, "could not connect to \"%s:%d\": %s", c->host, c->port, strerror(e));
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->fd = fd;
  return SP_OK;
}

static void http_disconnect(http_client *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
}

static int send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads more bytes into c->raw; 0 on EOF, -1 on error, else the count. */
static ssize_t recv_some(http_client *c) {
  if (buf_reserve(&c->raw, 65536) != SP_OK) return -1;
  for (;;) {
    ssize_t r = recv(c->fd, c->raw.p + c->raw.len, c->raw.cap - c->raw.len - 1, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r > 0) {
      c->raw.len += (size_t)r;
      c->raw.p[c->raw.len] = '\0';
    }
    return r;
  }
}

/* Makes sure c->raw holds at least `upto` bytes. */
static int recv_until(http_client *c, size_t upto, sp_error *err) {
  while (c->raw.len < upto)
    if (recv_some(c) <= 0) return sp_fail(err, SP_EIO, "connection closed in the middle of a response");
  return SP_OK;
}

/* Offset just past the next CRLF at or after c->pos, reading more as needed. */
static int find_line_end(http_client *c, size_t *out, sp_error *err) {
  for (;;) {
    const char *p = c->raw.len > c->pos ? memmem(c->raw.p + c->pos, c->raw.len - c->pos, "\r\n", 2) : NULL;
    if (p) {
      *out = (size_t)(p - c->raw.p) + 2;
      return SP_OK;
    }
    if (recv_some(c) <= 0) return sp_fail(err, SP_EIO, "connection closed in the middle of a chunked body");
  }
}

static int read_chunked(http_client *c, sp_error *err) {
  for (;;) {
    size_t eol;
    SP_TRY(find_line_end(c, &eol, err));
    size_t size = strtoul(c->raw.p + c->pos, NULL, 16);
    c->pos = eol;
    if (size == 0) break;
    SP_TRY(recv_until(c, c->pos + size + 2, err));
    if (buf_add(&c->body, c->raw.p + c->pos, size) != SP_OK) return sp_fail(err, SP_ENOMEM, "out of memory");
    c->pos += size + 2;
  }
  for (;;) { /* trailers, up to the empty line */
    size_t eol;
    SP_TRY(find_line_end(c, &eol, err));
    bool empty = eol == c->pos + 2;
    c->pos = eol;
    if (empty) return SP_OK;
  }
}

/* Value of header `name` in the header block [p, end), copied into out; false when absent. */
static bool header_value(const char *p, const char *end, const char *name, char *out, size_t n) {
  size_t len = strlen(name);
  for (const char *line = p; line < end;) {
    const char *eol = memmem(line, (size_t)(end - line), "\r\n", 2);
    if (!eol) eol = end;
    if ((size_t)(eol - line) > len && strncasecmp(line, name, len) == 0 && line[len] == ':') {
      const char *v = line + len + 1;
      while (v < eol && *v == ' ') v++;
      snprintf(out, n, "%.*s", (int)(eol - v), v);
      return true;
    }
    line = eol + 2;
  }
  return false;
}

/* Reads one whole response. Returns SP_ECONNECT when the server closed before sending anything (a stale
 * keep-alive connection: the caller retries once on a new one). */
static int read_response(http_client *c, int *status, sp_error *err) {
  c->raw.len = c->body.len = c->pos = 0;
  const char *hend;
  while (!(hend = c->raw.len ? memmem(c->raw.p, c->raw.len, "\r\n\r\n", 4) : NULL)) {
    ssize_t r = recv_some(c);
    if (r <= 0)
      return c->raw.len == 0 ? sp_fail(err, SP_ECONNECT, "connection closed")
                             : sp_fail(err, SP_EIO, "connection closed in the middle of the headers");
  }
  if (sscanf(c->raw.p, "HTTP/%*d.%*d %d", status) != 1) return sp_fail(err, SP_EIO, "malformed HTTP status line");
  size_t head = (size_t)(hend - c->raw.p) + 4;
  char v[128];
  c->close_after = header_value(c->raw.p, hend, "Connection", v, sizeof v) && strcasestr(v, "close");
  c->pos = head;
  if (header_value(c->raw.p, hend, "Transfer-Encoding", v, sizeof v) && strcasestr(v, "chunked"))
    return read_chunked(c, err);
  if (header_value(c->raw.p, hend, "Content-Length", v, sizeof v)) {
    size_t n = strtoull(v, NULL, 10);
    SP_TRY(recv_until(c, head + n, err));
    return buf_add(&c->body, c->raw.p + head, n) == SP_OK ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  }
  while (recv_some(c) > 0) {} /* no length: the body ends with the connection */
  c->close_after = true;
  return buf_add(&c->body, c->raw.p + head, c->raw.len - head) == SP_OK ? SP_OK
                                                                        : sp_fail(err, SP_ENOMEM, "out of memory");
}

/* Sends one request and reads the whole response into c->body; *status gets the HTTP status. */
static int http_request(http_client *c, const char *method, const char *path, const char *body, int *status,
                        sp_error *err) {
  size_t blen = body ? strlen(body) : 0;
  buf req = {0};
  char head[1024];
  int n = snprintf(head, sizeof head,
                   "%s %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: spicec-bench\r\nContent-Type: text/plain\r\n"
                   "Accept: application/json\r\nCache-Control: no-cache\r\nContent-Length: %zu\r\n\r\n",
                   method, path, c->host, c->port, blen);
  if (buf_add(&req, head, (size_t)n) != SP_OK || buf_add(&req, body ? body : "", blen) != SP_OK) {
    free(req.p);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  int rc = SP_ECONNECT;
  for (int attempt = 0; attempt < 2 && rc == SP_ECONNECT; attempt++) {
    if (c->fd < 0 && (rc = http_connect(c, err)) != SP_OK) break;
    rc = send_all(c->fd, req.p, req.len) == 0 ? read_response(c, status, err) : SP_ECONNECT;
    if (rc != SP_OK || c->close_after) http_disconnect(c);
  }
  if (rc == SP_ECONNECT && err && err->code != SP_ECONNECT)
    sp_fail(err, SP_ECONNECT, "could not send a request to \"%s:%d\"", c->host, c->port);
  free(req.p);
  return rc;
}

/* ---- the queries file -------------------------------------------------------------------------------------- */

typedef struct query {
  char name[64];
  buf sql; /* with {table} placeholders */
} query;

static void trim_sql(buf *b) {
  while (b->len && (b->p[b->len - 1] == '\n' || b->p[b->len - 1] == ' ' || b->p[b->len - 1] == ';'))
    b->p[--b->len] = '\0';
}

/* Keeps a message on one table line: newlines become spaces, '|' (a markdown cell border) becomes '/'. */
static void one_line(char *s) {
  for (; *s; s++)
    if (*s == '\n' || *s == '\r' || *s == '\t') *s = ' ';
    else if (*s == '|') *s = '/';
}

/* Parses "-- name: <id>" headed blocks; other comment lines are skipped. */
static int load_queries(const char *path, const char *match, query *qs, int *out_n, sp_error *err) {
  FILE *f = fopen(path, "r");
  if (!f) return sp_fail(err, SP_ENOTFOUND, "could not open queries file \"%s\": %s", path, strerror(errno));
  char line[4096];
  int n = 0;
  query *cur = NULL;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "-- name:", 8) == 0) {
      if (n == MAX_QUERIES) break;
      cur = &qs[n++];
      memset(cur, 0, sizeof *cur);
      sscanf(line + 8, " %63s", cur->name);
    } else if (cur && strncmp(line, "--", 2) != 0 && buf_add(&cur->sql, line, strlen(line)) != SP_OK) {
      fclose(f);
      return sp_fail(err, SP_ENOMEM, "out of memory");
    }
  }
  fclose(f);
  int kept = 0;
  for (int i = 0; i < n; i++) {
    trim_sql(&qs[i].sql);
    if (qs[i].sql.len && (!match || strstr(qs[i].name, match))) qs[kept++] = qs[i];
    else free(qs[i].sql.p);
  }
  if (kept == 0) return sp_fail(err, SP_EINVAL, "no queries in \"%s\"%s", path, match ? " match" : "");
  *out_n = kept;
  return SP_OK;
}

/* The template with every {table} replaced by table (malloc'd). */
static char *expand(const char *tmpl, const char *table) {
  buf b = {0};
  for (const char *p = tmpl; *p;) {
    const char *hit = strstr(p, "{table}");
    size_t n = hit ? (size_t)(hit - p) : strlen(p);
    if (buf_add(&b, p, n) != SP_OK || (hit && buf_add(&b, table, strlen(table)) != SP_OK)) {
      free(b.p);
      return NULL;
    }
    p += n + (hit ? 7 : 0);
  }
  return b.p ? b.p : strdup("");
}

/* ---- cases: one query on one target ------------------------------------------------------------------------ */

typedef struct target {
  const char *label;   /* "arrow" */
  bool flight;         /* the spicec side goes over Arrow Flight (DoGet) instead of HTTP JSON */
  const char *dataset; /* spiced's table */
  const char *local;   /* the same data in the embedded DuckDB */
} target;

/* --parquet: one file, three datasets made from it. */
static const target TRIPS_TARGETS[] = {
    {"arrow", false, "trips_arrow", "trips"},
    {"duckdb", false, "trips_duckdb", "trips"},
    {"federated", false, "trips_federated", "trips_parquet"},
};
#define MAX_TARGETS (sizeof TRIPS_TARGETS / sizeof TRIPS_TARGETS[0])
/* --tables: one target, the queries name spiced's datasets and the embedded tables alike (TPC-H). */
static target TARGETS[MAX_TARGETS + 1];
static size_t N_TARGETS;

typedef struct bench_case {
  const query *q;
  const target *t;
  char *remote_sql, *local_sql;
  double remote_ms[MAX_REPS], local_ms[MAX_REPS];
  int reps_done;
  double remote_med, local_med, ratio;
  long rows;
  char status[160]; /* "ok", or why the case was not measured or why results differ */
  bool failed;      /* no timing */
} bench_case;

typedef struct bench {
  http_client http;
  sp_flight_client *flight; /* --flight: a second target per query, over Flight */
  duckdb_database db;
  duckdb_connection con;
  bench_case cases[MAX_QUERIES * (MAX_TARGETS + 1)];
  int n_cases;
  long long data_rows;
  double ready_ms, load_ms;
  long spiced_pid;
} bench;

/* ---- comparing spiced's JSON rows with DuckDB's result ------------------------------------------------------ */

static bool parse_number(const char *s, double *out) {
  char *end;
  if (!s || !*s) return false;
  *out = strtod(s, &end);
  return *end == '\0';
}

static bool numbers_close(double a, double b) {
  double scale = fmax(1.0, fmax(fabs(a), fabs(b)));
  return fabs(a - b) <= 1e-6 * scale;
}

/* Same value, allowing for the JSON spelling: numbers within 1e-6 relative (parallel float sums differ in
 * the last bits), decimals as strings, ISO "T" in timestamps. */
static bool value_matches(json_t *jv, const char *dv) {
  if (!dv) return jv == NULL || json_is_null(jv);
  if (!jv || json_is_null(jv)) return false;
  double a, b;
  if (json_is_number(jv)) return parse_number(dv, &b) && numbers_close(json_number_value(jv), b);
  if (json_is_boolean(jv)) return strcmp(dv, json_is_true(jv) ? "true" : "false") == 0;
  if (!json_is_string(jv)) return false;
  const char *js = json_string_value(jv);
  if (parse_number(js, &a) && parse_number(dv, &b)) return numbers_close(a, b);
  size_t n = strlen(js);
  if (n != strlen(dv)) return false;
  for (size_t i = 0; i < n; i++)
    if (js[i] != dv[i] && !(js[i] == 'T' && dv[i] == ' ')) return false;
  return true;
}

/* Compares every row and column; writes the first difference into why. */
static bool results_match(json_t *rows, duckdb_result *res, char *why, size_t n) {
  idx_t nrows = duckdb_row_count(res), ncols = duckdb_column_count(res);
  if (!json_is_array(rows) || json_array_size(rows) != nrows) {
    snprintf(why, n, "row count differs: spiced %zu, duckdb %" PRIu64, json_is_array(rows) ? json_array_size(rows) : 0,
             (uint64_t)nrows);
    return false;
  }
  for (idx_t r = 0; r < nrows; r++)
    for (idx_t c = 0; c < ncols; c++) {
      const char *name = duckdb_column_name(res, c);
      char *dv = duckdb_value_is_null(res, c, r) ? NULL : duckdb_value_varchar(res, c, r);
      json_t *jv = json_object_get(json_array_get(rows, r), name);
      bool same = value_matches(jv, dv);
      if (!same) {
        char *js = jv ? json_dumps(jv, JSON_ENCODE_ANY) : NULL;
        snprintf(why, n, "row %" PRIu64 " column \"%s\" differs: spiced %s, duckdb %s", (uint64_t)r, name,
                 js ? js : "(missing)", dv ? dv : "NULL");
        free(js);
      }
      duckdb_free(dv);
      if (!same) return false;
    }
  return true;
}

/* ---- running one side ----------------------------------------------------------------------------------------- */

/* Over Flight: GetFlightInfo + DoGet, every batch received and decoded (the rows counted, then released). */
static int run_flight(bench *b, bench_case *c, double *ms, sp_error *err) {
  struct ArrowArrayStream st = {0};
  double t0 = now_ms();
  SP_TRY(sp_flight_client_query(b->flight, c->remote_sql, &st, NULL, err));
  long rows = 0;
  int rc = SP_OK;
  for (;;) {
    struct ArrowArray a = {0};
    if (st.get_next(&st, &a) != 0) {
      const char *m = st.get_last_error(&st);
      rc = sp_fail(err, SP_EIO, "flight: %s", m ? m : "stream failed");
      break;
    }
    if (a.release == NULL) break;
    rows += (long)a.length;
    a.release(&a);
  }
  st.release(&st);
  *ms = now_ms() - t0;
  if (rc == SP_OK && rows != c->rows) rc = sp_fail(err, SP_EINVAL, "flight returned %ld rows, duckdb %ld", rows, c->rows);
  return rc;
}

static int run_remote(bench *b, bench_case *c, double *ms, sp_error *err) {
  if (c->t->flight) return run_flight(b, c, ms, err);
  int status = 0;
  double t0 = now_ms();
  SP_TRY(http_request(&b->http, "POST", "/v1/sql", c->remote_sql, &status, err));
  *ms = now_ms() - t0;
  if (status != 200)
    return sp_fail(err, SP_EINVAL, "HTTP %d: %.120s", status, b->http.body.p ? b->http.body.p : "");
  return SP_OK;
}

static int run_local(bench *b, bench_case *c, double *ms, duckdb_result *keep, sp_error *err) {
  duckdb_result res;
  double t0 = now_ms();
  duckdb_state st = duckdb_query(b->con, c->local_sql, &res);
  *ms = now_ms() - t0;
  int rc = st == DuckDBError ? sp_fail(err, SP_EINVAL, "duckdb: %s", duckdb_result_error(&res)) : SP_OK;
  if (rc == SP_OK && keep)
    *keep = res;
  else
    duckdb_destroy_result(&res);
  return rc;
}

/* First run of a case: warms both sides and checks that they return the same rows. */
static void check_case(bench *b, bench_case *c) {
  sp_error err = {0};
  double ms;
  duckdb_result res;
  if (run_local(b, c, &ms, &res, &err) != SP_OK) {
    snprintf(c->status, sizeof c->status, "%s", err.msg);
    c->failed = true;
    return;
  }
  c->rows = (long)duckdb_row_count(&res);
  if (c->t->flight) { /* the values were checked over HTTP; run_flight checks the row count */
    if (run_flight(b, c, &ms, &err) != SP_OK) {
      snprintf(c->status, sizeof c->status, "spiced: %s", err.msg);
      c->failed = true;
    } else {
      snprintf(c->status, sizeof c->status, "ok (rows)");
    }
  } else if (run_remote(b, c, &ms, &err) != SP_OK) {
    snprintf(c->status, sizeof c->status, "spiced: %s", err.msg);
    c->failed = true;
  } else {
    json_error_t jerr;
    json_t *rows = json_loadb(b->http.body.p, b->http.body.len, JSON_DECODE_ANY, &jerr);
    if (!rows)
      snprintf(c->status, sizeof c->status, "spiced returned bad JSON: %s", jerr.text);
    else if (results_match(rows, &res, c->status, sizeof c->status))
      snprintf(c->status, sizeof c->status, "ok");
    json_decref(rows);
  }
  duckdb_destroy_result(&res);
}

/* One timed pair; the side that goes first alternates. */
static void time_case(bench *b, bench_case *c, bool remote_first) {
  sp_error err = {0};
  double r = 0, l = 0;
  int rc;
  if (remote_first) {
    rc = run_remote(b, c, &r, &err);
    if (rc == SP_OK) rc = run_local(b, c, &l, NULL, &err);
  } else {
    rc = run_local(b, c, &l, NULL, &err);
    if (rc == SP_OK) rc = run_remote(b, c, &r, &err);
  }
  if (rc != SP_OK) {
    snprintf(c->status, sizeof c->status, "%s", err.msg);
    c->failed = true;
    return;
  }
  c->remote_ms[c->reps_done] = r;
  c->local_ms[c->reps_done] = l;
  c->reps_done++;
}

/* ---- setup ------------------------------------------------------------------------------------------------------ */

static int wait_ready(bench *b, int timeout_s, sp_error *err) {
  double t0 = now_ms();
  for (;;) {
    int status = 0;
    sp_error ignored = {0};
    if (http_request(&b->http, "GET", "/v1/ready", NULL, &status, &ignored) == SP_OK && status == 200) {
      b->ready_ms = now_ms() - t0;
      return SP_OK;
    }
    if (b->spiced_pid > 0 && !process_alive(b->spiced_pid))
      return sp_fail(err, SP_EIO, "spiced (pid %ld) exited before it was ready", b->spiced_pid);
    if (now_ms() - t0 > timeout_s * 1e3)
      return sp_fail(err, SP_ETIMEDOUT, "spiced was not ready after %d s", timeout_s);
    sleep_ms(100);
  }
}

static int local_exec(bench *b, const char *sql, sp_error *err) {
  duckdb_result res;
  int rc = duckdb_query(b->con, sql, &res) == DuckDBError
               ? sp_fail(err, SP_EINTERNAL, "duckdb: %s", duckdb_result_error(&res))
               : SP_OK;
  if (rc == SP_OK && duckdb_column_count(&res) > 0 && duckdb_row_count(&res) > 0)
    b->data_rows = (long long)duckdb_value_int64(&res, 0, 0);
  duckdb_destroy_result(&res);
  return rc;
}

/* s as a SQL string literal, quotes doubled (malloc'd). */
static char *sql_literal(const char *s) {
  buf b = {0};
  bool ok = buf_add(&b, "'", 1) == SP_OK;
  for (const char *p = s; *p && ok; p++) ok = buf_add(&b, p, 1) == SP_OK && (*p != '\'' || buf_add(&b, p, 1) == SP_OK);
  ok = ok && buf_add(&b, "'", 1) == SP_OK;
  if (!ok) free(b.p);
  return ok ? b.p : NULL;
}

/* The embedded side: `trips` (a DuckDB table) and `trips_parquet` (a view over the file). */
static int load_local(bench *b, const char *parquet, sp_error *err) {
  if (duckdb_open(NULL, &b->db) == DuckDBError || duckdb_connect(b->db, &b->con) == DuckDBError)
    return sp_fail(err, SP_EINTERNAL, "could not open an in-memory duckdb database");
  char *lit = sql_literal(parquet);
  char *sql = lit ? malloc(strlen(lit) + 128) : NULL;
  if (!sql) {
    free(lit);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  double t0 = now_ms();
  sprintf(sql, "CREATE TABLE trips AS SELECT * FROM read_parquet(%s)", lit);
  int rc = local_exec(b, sql, err);
  b->load_ms = now_ms() - t0;
  sprintf(sql, "CREATE VIEW trips_parquet AS SELECT * FROM read_parquet(%s)", lit);
  if (rc == SP_OK) rc = local_exec(b, sql, err);
  if (rc == SP_OK) rc = local_exec(b, "SELECT count(*) FROM trips", err);
  free(sql);
  free(lit);
  return rc;
}

/* The embedded side of --tables: every DIR/<name>.parquet as a DuckDB table <name>. */
static int load_local_tables(bench *b, const char *dir, sp_error *err) {
  if (duckdb_open(NULL, &b->db) == DuckDBError || duckdb_connect(b->db, &b->con) == DuckDBError)
    return sp_fail(err, SP_EINTERNAL, "could not open an in-memory duckdb database");
  DIR *d = opendir(dir);
  if (d == NULL) return sp_fail(err, SP_EIO, "could not open \"%s\": %s", dir, strerror(errno));
  long long total = 0;
  int rc = SP_OK, n = 0;
  double t0 = now_ms();
  for (struct dirent *e; rc == SP_OK && (e = readdir(d)) != NULL;) {
    size_t len = strlen(e->d_name);
    if (len <= 8 || strcmp(e->d_name + len - 8, ".parquet") != 0) continue;
    char path[4096], sql[8192];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    char *lit = sql_literal(path);
    if (lit == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
    if (rc == SP_OK) {
      snprintf(sql, sizeof sql, "CREATE TABLE \"%.*s\" AS SELECT * FROM read_parquet(%s)", (int)(len - 8), e->d_name, lit);
      rc = local_exec(b, sql, err);
    }
    if (rc == SP_OK) {
      snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%.*s\"", (int)(len - 8), e->d_name);
      rc = local_exec(b, sql, err);
      total += b->data_rows;
      n++;
    }
    free(lit);
  }
  closedir(d);
  b->load_ms = now_ms() - t0;
  b->data_rows = total;
  if (rc == SP_OK && n == 0) rc = sp_fail(err, SP_EINVAL, "no .parquet file in \"%s\"", dir);
  return rc;
}

static int make_cases(bench *b, const query *qs, int nq, sp_error *err) {
  for (int i = 0; i < nq; i++)
    for (size_t t = 0; t < N_TARGETS; t++) {
      bench_case *c = &b->cases[b->n_cases++];
      memset(c, 0, sizeof *c);
      c->q = &qs[i];
      c->t = &TARGETS[t];
      c->remote_sql = expand(qs[i].sql.p, TARGETS[t].dataset);
      c->local_sql = expand(qs[i].sql.p, TARGETS[t].local);
      if (!c->remote_sql || !c->local_sql) return sp_fail(err, SP_ENOMEM, "out of memory");
    }
  return SP_OK;
}

/* ---- results ------------------------------------------------------------------------------------------------------ */

static void summarize(bench *b) {
  for (int i = 0; i < b->n_cases; i++) {
    bench_case *c = &b->cases[i];
    one_line(c->status);
    if (c->reps_done == 0) {
      c->failed = true;
      continue;
    }
    c->remote_med = median(c->remote_ms, c->reps_done);
    c->local_med = median(c->local_ms, c->reps_done);
    c->ratio = c->local_med > 0 ? c->remote_med / c->local_med : NAN;
  }
}

/* Geometric mean of the measured ratios of one target (label) or of all (NULL); NAN when none. */
static double geomean(const bench *b, const char *label, int *out_n) {
  double logsum = 0;
  int n = 0;
  for (int i = 0; i < b->n_cases; i++) {
    const bench_case *c = &b->cases[i];
    if (c->failed || !(c->ratio > 0) || (label && strcmp(c->t->label, label) != 0)) continue;
    logsum += log(c->ratio);
    n++;
  }
  *out_n = n;
  return n ? exp(logsum / n) : NAN;
}

static void print_table(const bench *b, FILE *f, bool markdown) {
  const char *fmt_head = markdown ? "| query | target | spicec ms | duckdb ms | ratio | rows | check |\n"
                                    "|---|---|---:|---:|---:|---:|---|\n"
                                  : "%-24s %-10s %10s %10s %7s %6s  %s\n";
  if (markdown)
    fputs(fmt_head, f);
  else
    fprintf(f, fmt_head, "query", "target", "spicec ms", "duckdb ms", "ratio", "rows", "check");
  for (int i = 0; i < b->n_cases; i++) {
    const bench_case *c = &b->cases[i];
    if (c->failed) {
      fprintf(f, markdown ? "| %s | %s | – | – | – | – | %s |\n" : "%-24s %-10s %10s %10s %7s %6s  %s\n", c->q->name,
              c->t->label, markdown ? c->status : "-", "-", "-", "-", markdown ? "" : c->status);
      continue;
    }
    fprintf(f, markdown ? "| %s | %s | %.2f | %.2f | %.3f | %ld | %s |\n" : "%-24s %-10s %10.2f %10.2f %7.3f %6ld  %s\n",
            c->q->name, c->t->label, c->remote_med, c->local_med, c->ratio, c->rows, c->status);
  }
}

static void print_summary(const bench *b, FILE *f, bool markdown) {
  const char *bullet = markdown ? "- " : "";
  fprintf(f, "%sgeometric mean of ratios (spicec / duckdb, goal <= %.2f):", bullet, GOAL_RATIO);
  for (size_t t = 0; t <= N_TARGETS; t++) {
    int n;
    const char *label = t < N_TARGETS ? TARGETS[t].label : NULL;
    double g = geomean(b, label, &n);
    if (n)
      fprintf(f, "%s %s %.3f", t ? "," : "", label ? label : "all", g);
    else
      fprintf(f, "%s %s n/a", t ? "," : "", label ? label : "all");
  }
  int n;
  double g = geomean(b, NULL, &n);
  fprintf(f, " -> %s\n", n == 0 ? "not measured" : g <= GOAL_RATIO ? "goal met" : "goal NOT met");
  fprintf(f, "%sspiced ready after %.0f ms; embedded DuckDB loaded the table in %.0f ms\n", bullet, b->ready_ms,
          b->load_ms);
  if (b->spiced_pid > 0) {
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", b->spiced_pid);
    fprintf(f, "%sspiced peak RSS %.0f MiB; this process (embedded DuckDB) %.0f MiB\n",
            bullet, proc_status_kb(pid, "VmHWM") / 1024.0, proc_status_kb("self", "VmHWM") / 1024.0);
  }
}

static void json_measure(json_t *arr, const char *name, double value, const char *unit, double limit, double ratio,
                         double goal, double baseline) {
  json_t *m = json_object();
  json_object_set_new(m, "name", json_string(name));
  json_object_set_new(m, "value", isnan(value) ? json_null() : json_real(value));
  json_object_set_new(m, "unit", json_string(unit));
  json_object_set_new(m, "limit", isnan(limit) ? json_null() : json_real(limit));
  json_object_set_new(m, "ratio", isnan(ratio) ? json_null() : json_real(ratio));
  json_object_set_new(m, "goal", isnan(goal) ? json_null() : json_real(goal));
  json_object_set_new(m, "met", isnan(goal) || isnan(ratio) ? json_null() : json_boolean(ratio <= goal));
  if (!isnan(baseline)) json_object_set_new(m, "baseline", json_real(baseline));
  json_array_append_new(arr, m);
}

static int write_json(const bench *b, const char *path, int reps, int warmup, sp_error *err) {
  json_t *root = json_object(), *arr = json_array();
  char name[160];
  for (int i = 0; i < b->n_cases; i++) {
    const bench_case *c = &b->cases[i];
    snprintf(name, sizeof name, "%s/%s", c->q->name, c->t->label);
    if (c->failed)
      json_measure(arr, name, NAN, "ms", NAN, NAN, GOAL_RATIO, NAN);
    else
      json_measure(arr, name, c->remote_med, "ms", c->local_med * GOAL_RATIO, c->ratio, GOAL_RATIO, c->local_med);
  }
  for (size_t t = 0; t <= N_TARGETS; t++) {
    int n;
    const char *label = t < N_TARGETS ? TARGETS[t].label : NULL;
    double g = geomean(b, label, &n);
    snprintf(name, sizeof name, "geomean_ratio%s%s", label ? "/" : "", label ? label : "");
    json_measure(arr, name, g, "ratio", GOAL_RATIO, g, GOAL_RATIO, NAN);
  }
  json_measure(arr, "spiced_ready", b->ready_ms, "ms", NAN, NAN, NAN, NAN);
  json_measure(arr, "duckdb_load", b->load_ms, "ms", NAN, NAN, NAN, NAN);
  if (b->spiced_pid > 0) {
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", b->spiced_pid);
    json_measure(arr, "spiced_peak_rss", proc_status_kb(pid, "VmHWM") / 1024.0, "MiB", NAN, NAN, NAN, NAN);
  }
  json_measure(arr, "bench_peak_rss", proc_status_kb("self", "VmHWM") / 1024.0, "MiB", NAN, NAN, NAN, NAN);
  json_object_set_new(root, "rows", json_integer(b->data_rows));
  json_object_set_new(root, "reps", json_integer(reps));
  json_object_set_new(root, "warmup", json_integer(warmup));
  json_object_set_new(root, "duckdb_version", json_string(duckdb_library_version()));
  json_object_set_new(root, "measures", arr);
  int rc = json_dump_file(root, path, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) == 0
               ? SP_OK
               : sp_fail(err, SP_EIO, "could not write \"%s\"", path);
  json_decref(root);
  return rc;
}

static int write_markdown(const bench *b, const char *path, int reps, int warmup, sp_error *err) {
  FILE *f = fopen(path, "w");
  if (!f) return sp_fail(err, SP_EIO, "could not write \"%s\": %s", path, strerror(errno));
  time_t now = time(NULL);
  char when[64];
  strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&now));
  fprintf(f, "# spicec vs embedded DuckDB\n\n%s; %lld rows; median of %d repetition(s) after %d warm-up run(s); DuckDB %s; "
             "%ld cores.\nRatio = spicec (HTTP /v1/sql, JSON) / DuckDB in process. See docs/benchmarks.md.\n\n",
          when, b->data_rows, reps, warmup, duckdb_library_version(), sysconf(_SC_NPROCESSORS_ONLN));
  print_table(b, f, true);
  fputc('\n', f);
  print_summary(b, f, true);
  return fclose(f) == 0 ? SP_OK : sp_fail(err, SP_EIO, "could not write \"%s\"", path);
}

/* ---- main ------------------------------------------------------------------------------------------------------------ */

typedef struct options {
  const char *http, *flight, *parquet, *tables, *label, *queries, *match, *md, *json;
  long pid;
  int wait_ready_s, reps, warmup;
} options;

static int print_free_ports(int n) {
  int fds[16];
  if (n < 1 || n > 16) return 2;
  for (int i = 0; i < n; i++) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fds[i], (struct sockaddr *)&sa, &len) != 0) {
      perror("bench_sql: free port");
      return 1;
    }
    printf("%d\n", ntohs(sa.sin_port));
  }
  for (int i = 0; i < n; i++) close(fds[i]); /* all held until now, so the ports are distinct */
  return 0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: bench_sql --free-ports N\n"
          "       bench_sql --http HOST:PORT --parquet FILE --queries FILE [--pid PID] [--wait-ready SECONDS]\n"
          "                 [--reps N] [--warmup N] [--match SUBSTRING] [--md FILE] [--json FILE]\n"
          "       bench_sql --http HOST:PORT --tables DIR [--label NAME] [--flight HOST:PORT] --queries FILE [the same options]\n");
}

static int parse_options(int argc, char **argv, options *o) {
  *o = (options){.wait_ready_s = 600, .reps = 5, .warmup = 1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) return -1;
    if (strcmp(a, "--http") == 0) o->http = v;
    else if (strcmp(a, "--parquet") == 0) o->parquet = v;
    else if (strcmp(a, "--tables") == 0) o->tables = v;
    else if (strcmp(a, "--label") == 0) o->label = v;
    else if (strcmp(a, "--flight") == 0) o->flight = v;
    else if (strcmp(a, "--queries") == 0) o->queries = v;
    else if (strcmp(a, "--match") == 0) o->match = v;
    else if (strcmp(a, "--md") == 0) o->md = v;
    else if (strcmp(a, "--json") == 0) o->json = v;
    else if (strcmp(a, "--pid") == 0) o->pid = atol(v);
    else if (strcmp(a, "--wait-ready") == 0) o->wait_ready_s = atoi(v);
    else if (strcmp(a, "--reps") == 0) o->reps = atoi(v);
    else if (strcmp(a, "--warmup") == 0) o->warmup = atoi(v);
    else return -1;
    i++;
  }
  if (!o->http || !o->parquet == !o->tables || !o->queries || o->reps < 1 || o->reps > MAX_REPS || o->warmup < 0) return -1;
  return 0;
}

static int set_address(http_client *c, const char *hostport, sp_error *err) {
  const char *colon = strrchr(hostport, ':');
  if (!colon || colon == hostport || (size_t)(colon - hostport) >= sizeof c->host)
    return sp_fail(err, SP_EINVAL, "bad address \"%s\" (want HOST:PORT)", hostport);
  snprintf(c->host, sizeof c->host, "%.*s", (int)(colon - hostport), hostport);
  if (strcmp(c->host, "localhost") == 0) snprintf(c->host, sizeof c->host, "127.0.0.1");
  c->port = atoi(colon + 1);
  c->fd = -1;
  return SP_OK;
}

static void run_all(bench *b, int reps, int warmup) {
  bool tty = isatty(STDERR_FILENO);
  for (int i = 0; i < b->n_cases; i++) {
    if (tty) fprintf(stderr, "\rchecking %d/%d", i + 1, b->n_cases);
    check_case(b, &b->cases[i]);
    for (int w = 1; w < warmup && !b->cases[i].failed; w++) {
      double ms;
      sp_error ignored = {0};
      run_remote(b, &b->cases[i], &ms, &ignored);
      run_local(b, &b->cases[i], &ms, NULL, &ignored);
    }
  }
  for (int r = 0; r < reps; r++) {
    if (tty) fprintf(stderr, "\rrepetition %d/%d  ", r + 1, reps);
    for (int i = 0; i < b->n_cases; i++)
      if (!b->cases[i].failed) time_case(b, &b->cases[i], (r + i) % 2 == 0);
  }
  if (tty) fprintf(stderr, "\r%40s\r", "");
}

static int bench_main(const options *o, sp_error *err) {
  static bench b; /* large: keep it off the stack */
  static query qs[MAX_QUERIES];
  int nq = 0;
  b.spiced_pid = o->pid;
  if (o->tables) {
    static char flight_label[64];
    TARGETS[0] = (target){o->label ? o->label : "arrow", false, "", ""};
    N_TARGETS = 1;
    if (o->flight) {
      snprintf(flight_label, sizeof flight_label, "%s/flight", TARGETS[0].label);
      TARGETS[N_TARGETS++] = (target){flight_label, true, "", ""};
      char endpoint[300];
      snprintf(endpoint, sizeof endpoint, "grpc://%s", o->flight);
      SP_TRY(sp_flight_client_open(endpoint, &b.flight, err));
    }
  } else {
    memcpy(TARGETS, TRIPS_TARGETS, sizeof TRIPS_TARGETS); /* TARGETS has one more slot */
    N_TARGETS = MAX_TARGETS;
  }
  SP_TRY(set_address(&b.http, o->http, err));
  SP_TRY(load_queries(o->queries, o->match, qs, &nq, err));
  SP_TRY(make_cases(&b, qs, nq, err));
  fprintf(stderr, "bench_sql: waiting for spiced at %s to be ready\n", o->http);
  SP_TRY(wait_ready(&b, o->wait_ready_s, err));
  fprintf(stderr, "bench_sql: spiced ready after %.1f s; loading %s into embedded DuckDB\n", b.ready_ms / 1e3,
          o->tables ? o->tables : o->parquet);
  SP_TRY(o->tables ? load_local_tables(&b, o->tables, err) : load_local(&b, o->parquet, err));
  fprintf(stderr, "bench_sql: %d queries x %zu targets, %d warm-up + %d repetitions each\n", nq, N_TARGETS, o->warmup,
          o->reps);
  run_all(&b, o->reps, o->warmup);
  summarize(&b);
  printf("spicec vs embedded DuckDB: %lld rows, median of %d, DuckDB %s\n\n", b.data_rows, o->reps,
         duckdb_library_version());
  print_table(&b, stdout, false);
  putchar('\n');
  print_summary(&b, stdout, false);
  if (o->md) SP_TRY(write_markdown(&b, o->md, o->reps, o->warmup, err));
  if (o->json) SP_TRY(write_json(&b, o->json, o->reps, o->warmup, err));
  http_disconnect(&b.http);
  sp_flight_client_close(b.flight);
  duckdb_disconnect(&b.con);
  duckdb_close(&b.db);
  return SP_OK;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--free-ports") == 0) return print_free_ports(atoi(argv[2]));
  options o;
  if (parse_options(argc, argv, &o) != 0) {
    usage();
    return 2;
  }
  sp_error err = {0};
  if (bench_main(&o, &err) != SP_OK) {
    fprintf(stderr, "bench_sql: %s\n", err.msg);
    return 1;
  }
  return 0;
}
