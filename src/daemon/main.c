/* SPDX-License-Identifier: Apache-2.0
 *
 * spiced: loads the spicepod in the current folder (or the path given), starts the datasets and serves the
 * HTTP API. SIGTERM/SIGINT stop it cleanly (a second one exits at once).
 *
 *   spiced [--http ADDR] [--flight ADDR] [--metrics ADDR] [--data-dir DIR] [--log-format text|json] [PATH]
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/sd_notify.h"
#include "server/flight.h"
#include "server/http.h"
#include "spice/log.h"
#include "spice/runtime.h"

#define SPICED_VERSION "0.1.0"

static volatile sig_atomic_t stop_requested, reload_requested;

static void on_hangup(int sig) { reload_requested = 1; }

static void on_signal(int sig) {
  if (stop_requested) _exit(128 + sig); /* second signal: exit at once */
  stop_requested = 1;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The last resort of a shutdown: the servers drain within runtime.shutdown_timeout and then interrupt what is
 * left, so this fires only if something still hangs well past it (a source that ignores cancellation). */
static void *shutdown_watchdog(void *arg) {
  int64_t ms = *(const int64_t *)arg + 15000;
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
  sp_log_error("shutdown did not finish within shutdown_timeout + 15 s; exiting");
  _exit(1);
  return NULL;
}

/* Changes whenever the file is rewritten (nanosecond mtime and size). */
static int64_t file_mtime(const char *path) {
  struct stat st;
  if (path == NULL || stat(path, &st) != 0) return 0;
  return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec + (int64_t)st.st_size;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: spiced [options] [SPICEPOD_PATH]\n"
          "  --http ADDR          HTTP API address (default 127.0.0.1:8090)\n"
          "  --flight ADDR        Arrow Flight address (default 127.0.0.1:50051)\n"
          "  --metrics ADDR       serve Prometheus metrics on ADDR (e.g. 127.0.0.1:9090)\n"
          "  --tls-certificate-file FILE, --tls-key-file FILE   serve HTTPS (PEM files)\n"
          "  --data-dir DIR       folder for file accelerators (default .spice/data)\n"
          "  --log-format FMT     text (default) or json; level from SPICED_LOG (info)\n"
          "  --pods-watcher-enabled  reload the spicepod when its file changes (SIGHUP always reloads)\n"
          "  -v, --verbose        debug logging\n"
          "  --version            print the version\n");
}

int main(int argc, char **argv) {
  int watch_pod = 0;
  /* NULL until a flag sets them: then the spicepod's runtime.http / runtime.flight, then the defaults. */
  const char *http_addr = NULL, *flight_addr = NULL, *pod_path = NULL, *data_dir = NULL, *metrics_addr = NULL;
  sp_http_options http_opts = {0};
  const char *lvl = getenv("SPICED_LOG");
  if (lvl && sp_log_level_parse(lvl) >= 0) sp_log_set_level((sp_log_level)sp_log_level_parse(lvl));
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int has_val = i + 1 < argc;
    if (strcmp(a, "--http") == 0 && has_val) http_addr = argv[++i];
    else if (strcmp(a, "--metrics") == 0 && has_val) metrics_addr = argv[++i];
    else if (strcmp(a, "--tls-certificate-file") == 0 && has_val) http_opts.tls_certificate_file = argv[++i];
    else if (strcmp(a, "--tls-key-file") == 0 && has_val) http_opts.tls_key_file = argv[++i];
    else if (strcmp(a, "--flight") == 0 && has_val) flight_addr = argv[++i];
    else if (strcmp(a, "--open_telemetry") == 0 && has_val) i++;
    else if (strcmp(a, "--data-dir") == 0 && has_val) data_dir = argv[++i];
    else if (strcmp(a, "--log-format") == 0 && has_val) sp_log_set_format(strcmp(argv[++i], "json") == 0 ? SP_LOG_JSON : SP_LOG_TEXT);
    else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) sp_log_set_level(SP_LOG_DEBUG);
    else if (strcmp(a, "--pods-watcher-enabled") == 0) watch_pod = 1;
    else if (strcmp(a, "--repl") == 0) continue;
    else if (strcmp(a, "--version") == 0) { printf("spiced %s\n", SPICED_VERSION); return 0; }
    else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { usage(stdout); return 0; }
    else if (a[0] != '-' && pod_path == NULL) pod_path = a;
    else { fprintf(stderr, "spiced: unknown option %s\n", a); usage(stderr); return 2; }
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sa.sa_handler = on_hangup;
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  sp_error err = {0};
  sp_runtime *rt = NULL;
  sp_runtime_options opts = {.pod_path = pod_path, .data_dir = data_dir};
  if (sp_runtime_create(&opts, &rt, &err) != SP_OK) {
    sp_log_error("%s", err.msg);
    return 1;
  }
  const sp_runtime_spec *spec = &sp_runtime_pod(rt)->runtime;
  if (http_addr == NULL) http_addr = spec->http_addr ? spec->http_addr : "127.0.0.1:8090";
  if (flight_addr == NULL) flight_addr = spec->flight_addr ? spec->flight_addr : "127.0.0.1:50051";
  sp_http_server *http = NULL;
  if (sp_http_start_opts(rt, http_addr, &http_opts, &http, &err) != SP_OK) {
    sp_log_error("could not start the HTTP server on %s: %s", http_addr, err.msg);
    sp_runtime_destroy(rt);
    return 1;
  }
  sp_log_info("spiced %s: spicepod \"%s\", HTTP API on %s://%s", SPICED_VERSION, sp_runtime_pod(rt)->name,
              sp_http_tls(http) ? "https" : "http", http_addr);
  sp_metrics_server *metrics = NULL;
  if (metrics_addr && sp_metrics_start(http, metrics_addr, &metrics, &err) != SP_OK) {
    sp_log_error("could not start the metrics server on %s: %s", metrics_addr, err.msg);
    sp_http_stop(http);
    sp_runtime_destroy(rt);
    return 1;
  }
  if (metrics) sp_log_info("metrics on http://%s/metrics", sp_metrics_endpoint(metrics));
  sp_flight_server *flight = NULL; /* a Flight port that cannot be bound is logged; HTTP keeps serving */
  if (sp_flight_start(rt, http, flight_addr, &flight, &err) != SP_OK) sp_log_error("%s", err.msg);
  else sp_log_info("Arrow Flight on %s", sp_flight_endpoint(flight));
  sp_metrics_set_flight(metrics, flight);
  if (sp_runtime_start(rt, &err) != SP_OK) {
    sp_log_error("%s", err.msg);
    stop_requested = 1;
  }
  sp_sd_notify("READY=1"); /* serving; /v1/ready tells when the datasets have loaded */
  /* SIGHUP, or (with --pods-watcher-enabled) a change of the spicepod file, reloads it. */
  int64_t pod_mtime = file_mtime(sp_runtime_pod(rt)->file);
  while (!stop_requested) {
    struct timespec second = {1, 0};
    nanosleep(&second, NULL);
    int64_t m = watch_pod ? file_mtime(sp_runtime_pod(rt)->file) : pod_mtime;
    if (!reload_requested && m == pod_mtime) continue;
    reload_requested = 0;
    pod_mtime = m;
    int changes = 0;
    sp_sd_notify("RELOADING=1");
    if (sp_runtime_reload(rt, &changes, &err) != SP_OK) sp_log_error("%s", err.msg);
    sp_sd_notify("READY=1");
  }
  int64_t timeout_ms = sp_runtime_pod(rt)->runtime.shutdown_timeout_ms;
  sp_log_info("shutting down (waiting up to %lld ms for work in flight)", (long long)timeout_ms);
  sp_sd_notify("STOPPING=1");
  pthread_t watchdog;
  if (pthread_create(&watchdog, NULL, shutdown_watchdog, &timeout_ms) == 0) pthread_detach(watchdog);
  int64_t started = now_ms();
  sp_metrics_stop(metrics); /* first: it reads the Flight server's counters */
  sp_flight_stop_within(flight, timeout_ms);
  int64_t left = timeout_ms - (now_ms() - started); /* one budget for both servers */
  sp_http_stop_within(http, left > 0 ? left : 0);
  sp_runtime_destroy(rt);
  return 0;
}
