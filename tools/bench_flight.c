/* SPDX-License-Identifier: Apache-2.0
 *
 * bench_flight: Arrow Flight DoGet throughput of spiced, measured by a small C client (the library's Flight
 * client, src/flight/client.h), next to loopback TCP bandwidth measured in the same run, so the ratio says how
 * much of the machine's own ceiling Flight reaches (issue 5: goal >= 2 GB/s and >= 0.5 of TCP). Optionally the
 * same result as HTTP JSON (POST /v1/sql), for comparison.
 *
 *   bench_flight --flight HOST:PORT [--http HOST:PORT] [--rows N] [--sql SQL] [--reps N] [--tcp-bytes N]
 *                [--json FILE]
 *   bench_flight --tcp-only [--tcp-bytes N]
 *
 * Flight: GetFlightInfo + DoGet of `SELECT … FROM range(N)` (default 10 M rows; columns BIGINT, BIGINT,
 * DOUBLE, INTEGER, VARCHAR), every batch decoded into Arrow arrays and released; GB/s counts the Arrow payload
 * received (buffers as sliced), per the best of --reps runs (default 3) after one warm-up run. TCP: one
 * connection over 127.0.0.1 carries --tcp-bytes (default 1 GiB) in 1 MiB writes to a reader thread, timed from
 * the first write until the reader saw the last byte. Output: one line per measure and a last "ratio" line;
 * --json FILE also writes them as one JSON object. Nothing fails on a slow ratio; the exit status is non-zero
 * only when a measure could not run.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "flight/client.h"
#include "spice/arrow.h"

#define CHUNK ((size_t)1 << 20)

typedef struct options {
  const char *flight, *http, *sql, *json;
  int64_t rows, tcp_bytes;
  int reps, tcp_only;
} options;

typedef struct measure {
  double seconds;
  int64_t rows, bytes;
} measure;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double gbps(const measure *m) { return m->seconds > 0 ? (double)m->bytes / 1e9 / m->seconds : 0; }

/* ---- Flight ----------------------------------------------------------------------------------------------- */

static int flight_once(sp_flight_client *c, const char *sql, measure *out, sp_error *err) {
  struct ArrowArrayStream st;
  struct ArrowSchema schema;
  double t0 = now_s();
  SP_TRY(sp_flight_client_query(c, sql, &st, NULL, err));
  measure m = {0};
  int rc = st.get_schema(&st, &schema) == 0 ? SP_OK : sp_fail(err, SP_EIO, "no schema");
  while (rc == SP_OK) {
    struct ArrowArray a;
    if (st.get_next(&st, &a) != 0) {
      rc = sp_fail(err, SP_EIO, "%s", st.get_last_error(&st));
      break;
    }
    if (a.release == NULL) break;
    m.rows += a.length;
    m.bytes += sp_array_payload_bytes(&schema, &a);
    a.release(&a);
  }
  m.seconds = now_s() - t0;
  if (rc == SP_OK) schema.release(&schema);
  st.release(&st);
  if (rc == SP_OK) *out = m;
  return rc;
}

static int bench_flight(const options *o, const char *sql, measure *best, sp_error *err) {
  char endpoint[300];
  snprintf(endpoint, sizeof endpoint, "grpc://%s", o->flight);
  sp_flight_client *c;
  SP_TRY(sp_flight_client_open(endpoint, &c, err));
  measure m;
  int rc = flight_once(c, sql, &m, err); /* warm-up: first connection, DuckDB's first run */
  *best = (measure){0};
  for (int i = 0; rc == SP_OK && i < o->reps; i++)
    if ((rc = flight_once(c, sql, &m, err)) == SP_OK && (best->seconds == 0 || m.seconds < best->seconds)) *best = m;
  sp_flight_client_close(c);
  return rc;
}

/* ---- Loopback TCP ----------------------------------------------------------------------------------------- */

typedef struct tcp_reader {
  int listener;
  int64_t got;
  double done_at;
} tcp_reader;

static void *tcp_read_all(void *arg) {
  tcp_reader *r = arg;
  int fd = accept(r->listener, NULL, NULL);
  char *buf = malloc(CHUNK);
  ssize_t n;
  while (fd >= 0 && buf && (n = read(fd, buf, CHUNK)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    r->got += n;
  }
  r->done_at = now_s();
  free(buf);
  if (fd >= 0) close(fd);
  return NULL;
}

static int tcp_listener(struct sockaddr_in *addr) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  socklen_t len = sizeof *addr;
  *addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd < 0 || bind(fd, (struct sockaddr *)addr, sizeof *addr) != 0 || listen(fd, 1) != 0 ||
      getsockname(fd, (struct sockaddr *)addr, &len) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int bench_tcp(int64_t total, measure *out, sp_error *err) {
  struct sockaddr_in addr;
  tcp_reader r = {.listener = tcp_listener(&addr)};
  pthread_t th;
  if (r.listener < 0) return sp_fail(err, SP_EIO, "could not listen on loopback: %s", strerror(errno));
  if (pthread_create(&th, NULL, tcp_read_all, &r) != 0) {
    close(r.listener);
    return sp_fail(err, SP_EIO, "could not start the reader thread");
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0), rc = SP_OK;
  char *buf = calloc(1, CHUNK);
  double t0 = now_s();
  if (fd < 0 || buf == NULL || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    rc = sp_fail(err, SP_EIO, "could not connect over loopback: %s", strerror(errno));
  } else {
    t0 = now_s();
    for (int64_t sent = 0; rc == SP_OK && sent < total; sent += (int64_t)CHUNK)
      if (write_all(fd, buf, total - sent < (int64_t)CHUNK ? (size_t)(total - sent) : CHUNK) != 0)
        rc = sp_fail(err, SP_EIO, "loopback write failed: %s", strerror(errno));
  }
  if (fd >= 0) close(fd); /* EOF for the reader (also when connect failed, so it stops waiting) */
  if (rc != SP_OK) shutdown(r.listener, SHUT_RDWR);
  pthread_join(th, NULL);
  close(r.listener);
  free(buf);
  if (rc == SP_OK && r.got != total) rc = sp_fail(err, SP_EIO, "loopback reader got %" PRId64 " bytes", r.got);
  if (rc == SP_OK) *out = (measure){.seconds = r.done_at - t0, .bytes = total};
  return rc;
}

/* ---- HTTP JSON -------------------------------------------------------------------------------------------- */

static size_t count_bytes(char *p, size_t size, size_t n, void *ctx) {
  (void)p;
  *(int64_t *)ctx += (int64_t)(size * n);
  return size * n;
}

/* rows: what the same query gave over Flight (the JSON is not parsed here). */
static int bench_http(const options *o, const char *sql, int64_t rows, measure *out, sp_error *err) {
  char url[300];
  snprintf(url, sizeof url, "http://%s/v1/sql", o->http);
  CURL *h = curl_easy_init();
  if (h == NULL) return sp_fail(err, SP_EINTERNAL, "could not create a curl handle");
  struct curl_slist *hdr = curl_slist_append(NULL, "Accept: application/json");
  hdr = curl_slist_append(hdr, "Content-Type: text/plain");
  int64_t bytes = 0;
  long status = 0;
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, sql);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, count_bytes);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &bytes);
  double t0 = now_s();
  CURLcode cc = curl_easy_perform(h);
  double t1 = now_s();
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(hdr);
  curl_easy_cleanup(h);
  if (cc != CURLE_OK || status != 200)
    return sp_fail(err, SP_EIO, "POST %s: %s (HTTP %ld)", url, curl_easy_strerror(cc), status);
  *out = (measure){.seconds = t1 - t0, .bytes = bytes, .rows = rows};
  return SP_OK;
}

/* ---- Main ------------------------------------------------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr, "usage: bench_flight --flight HOST:PORT [--http HOST:PORT] [--rows N] [--sql SQL] [--reps N]\n"
                  "                    [--tcp-bytes N] [--json FILE]\n"
                  "       bench_flight --tcp-only [--tcp-bytes N]\n");
}

static int parse_options(int argc, char **argv, options *o) {
  *o = (options){.rows = 10000000, .tcp_bytes = (int64_t)1 << 30, .reps = 3};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--tcp-only") == 0) {
      o->tcp_only = 1;
      continue;
    }
    if (v == NULL) return -1;
    if (strcmp(a, "--flight") == 0) o->flight = v;
    else if (strcmp(a, "--http") == 0) o->http = v;
    else if (strcmp(a, "--sql") == 0) o->sql = v;
    else if (strcmp(a, "--json") == 0) o->json = v;
    else if (strcmp(a, "--rows") == 0) o->rows = strtoll(v, NULL, 10);
    else if (strcmp(a, "--reps") == 0) o->reps = atoi(v);
    else if (strcmp(a, "--tcp-bytes") == 0) o->tcp_bytes = strtoll(v, NULL, 10);
    else return -1;
    i++;
  }
  return (o->flight || o->tcp_only) && o->rows > 0 && o->reps > 0 && o->tcp_bytes > 0 ? 0 : -1;
}

static void print_measure(FILE *f, const char *name, const measure *m) {
  fprintf(f, "%-8s %12" PRId64 " rows %14" PRId64 " bytes %9.3f s %8.3f GB/s\n", name, m->rows, m->bytes, m->seconds,
          gbps(m));
}

static void write_json(const char *path, const measure *fl, const measure *tcp, const measure *http) {
  FILE *f = fopen(path, "w");
  if (f == NULL) return;
  fprintf(f, "{\"flight\":{\"rows\":%" PRId64 ",\"bytes\":%" PRId64 ",\"seconds\":%.6f,\"gbps\":%.4f},", fl->rows,
          fl->bytes, fl->seconds, gbps(fl));
  fprintf(f, "\"tcp\":{\"bytes\":%" PRId64 ",\"seconds\":%.6f,\"gbps\":%.4f},", tcp->bytes, tcp->seconds, gbps(tcp));
  if (http->seconds > 0)
    fprintf(f, "\"http_json\":{\"rows\":%" PRId64 ",\"bytes\":%" PRId64 ",\"seconds\":%.6f},", http->rows, http->bytes,
            http->seconds);
  fprintf(f, "\"ratio\":%.4f}\n", gbps(tcp) > 0 ? gbps(fl) / gbps(tcp) : 0);
  fclose(f);
}

int main(int argc, char **argv) {
  options o;
  if (parse_options(argc, argv, &o) != 0) {
    usage();
    return 2;
  }
  sp_error err = {0};
  measure fl = {0}, tcp = {0}, http = {0};
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT i AS id, i * 7 AS k, i / 3.0::DOUBLE AS x, (i %% 1000)::INTEGER AS g, 'name-' || (i %% 100) AS s "
           "FROM range(%" PRId64 ") t(i)", o.rows);
  const char *q = o.sql ? o.sql : sql;
  if (!o.tcp_only && bench_flight(&o, q, &fl, &err) != SP_OK) {
    fprintf(stderr, "bench_flight: flight: %s\n", err.msg);
    return 1;
  }
  if (bench_tcp(o.tcp_bytes, &tcp, &err) != SP_OK) {
    fprintf(stderr, "bench_flight: tcp: %s\n", err.msg);
    return 1;
  }
  if (o.http && bench_http(&o, q, o.tcp_only ? 0 : fl.rows, &http, &err) != SP_OK) {
    fprintf(stderr, "bench_flight: http: %s\n", err.msg);
    return 1;
  }
  if (!o.tcp_only) print_measure(stdout, "flight", &fl);
  print_measure(stdout, "tcp", &tcp);
  if (o.http) printf("%-8s %12" PRId64 " rows %14" PRId64 " bytes %9.3f s (JSON text)  %.2fx Flight's time\n", "http",
                     http.rows, http.bytes, http.seconds, fl.seconds > 0 ? http.seconds / fl.seconds : 0);
  if (!o.tcp_only) printf("ratio    flight/tcp = %.3f\n", gbps(&tcp) > 0 ? gbps(&fl) / gbps(&tcp) : 0);
  if (o.json) write_json(o.json, &fl, &tcp, &http);
  return 0;
}
