/* SPDX-License-Identifier: Apache-2.0
 *
 * The metrics endpoint: a small libmicrohttpd daemon of its own (one thread), so scrapes never queue behind
 * queries on the API's pool. As in Spice, GET /health answers "OK" and every other path the metrics.
 */
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/flight.h"
#include "server/http_int.h"
#include "server/http_metrics.h"
#include "spice/log.h"

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct sp_metrics_server {
  struct MHD_Daemon *daemon;
  sp_http_server *http;
  _Atomic(sp_flight_server *) flight; /* NULL until sp_metrics_set_flight */
  int fd;
  char endpoint[300];
};

static enum MHD_Result text(struct MHD_Connection *c, unsigned code, const char *ctype, char *body, size_t n,
                            enum MHD_ResponseMemoryMode mode) {
  struct MHD_Response *r = MHD_create_response_from_buffer(n, body, mode);
  if (r == NULL) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
  enum MHD_Result ret = MHD_queue_response(c, code, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
  (void)version;
  (void)upload;
  sp_metrics_server *m = cls;
  if (*con_cls == NULL) { /* headers only; bodies are ignored */
    *con_cls = m;
    return MHD_YES;
  }
  if (*upload_size) {
    *upload_size = 0;
    return MHD_YES;
  }
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    return text(c, MHD_HTTP_METHOD_NOT_ALLOWED, SP_HTTP_TEXT, "", 0, MHD_RESPMEM_PERSISTENT);
  if (strcmp(url, "/health") == 0) return text(c, MHD_HTTP_OK, SP_HTTP_TEXT, "OK", 2, MHD_RESPMEM_PERSISTENT);
  sp_buf b = {0};
  sp_rcache *cache = sp__http_cache(m->http);
  int rc = sp_http_metrics_render(sp__http_metrics(m->http), sp__http_runtime(m->http), cache,
                                  sp__http_config(m->http)->cache_max_bytes, &b);
  sp_flight_server *flight = atomic_load(&m->flight);
  if (rc == SP_OK && flight) rc = sp_flight_metrics_render(flight, &b);
  if (rc != SP_OK) {
    sp_buf_free(&b);
    return text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, SP_HTTP_TEXT, "out of memory", 13, MHD_RESPMEM_PERSISTENT);
  }
  return text(c, MHD_HTTP_OK, PROM_CONTENT_TYPE, b.data ? b.data : "", b.len,
              b.data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
  sp_log_debug("metrics: %s", msg);
}

int sp_metrics_start(sp_http_server *http, const char *addr, sp_metrics_server **out, sp_error *err) {
  if (http == NULL || addr == NULL) return sp_fail(err, SP_EINVAL, "sp_metrics_start needs a server and an address");
  sp_metrics_server *m = calloc(1, sizeof *m);
  if (m == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  m->http = http;
  bool v6 = false;
  int rc = sp__http_listen(addr, &m->fd, &v6, err);
  if (rc != SP_OK) {
    free(m);
    return rc;
  }
  sp__http_describe_bound(m->fd, m->endpoint, sizeof m->endpoint);
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
  m->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, m, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                               MHD_OPTION_LISTEN_SOCKET, m->fd, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                               MHD_OPTION_END);
  if (m->daemon == NULL) {
    close(m->fd);
    free(m);
    return sp_fail(err, SP_EIO, "could not start the metrics server on %s", addr);
  }
  sp_http_set_component(http, "metrics", m->endpoint, "Ready", NULL);
  *out = m;
  return SP_OK;
}

const char *sp_metrics_endpoint(const sp_metrics_server *m) { return m->endpoint; }

void sp_metrics_set_flight(sp_metrics_server *m, sp_flight_server *flight) {
  if (m) atomic_store(&m->flight, flight);
}

void sp_metrics_stop(sp_metrics_server *m) {
  if (m == NULL) return;
  sp_http_set_component(m->http, "metrics", "N/A", "Disabled", NULL);
  MHD_stop_daemon(m->daemon); /* closes the listening socket */
  free(m);
}
