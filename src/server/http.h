/* SPDX-License-Identifier: Apache-2.0
 *
 * The HTTP API (spice-compat §4, docs/http-api.md): /health, /v1/ready, /v1/sql, /v1/datasets,
 * /v1/status, /v1/spicepods, and the acceleration refresh endpoints. libmicrohttpd with its own thread pool
 * (2 threads per core); query results are streamed batch by batch, never held whole in memory.
 */
#ifndef SPICE_SERVER_HTTP_H
#define SPICE_SERVER_HTTP_H

#include "spice/error.h"
#include "spice/runtime.h"

typedef struct sp_http_server sp_http_server;

/* Starts serving `rt` (borrowed; it must outlive the server) on `addr` ("127.0.0.1:8090", "[::1]:8090",
 * "localhost:8090"; port 0 picks a free port, see sp_http_endpoint). Returns once the socket listens.
 * *out is owned by the caller and released with sp_http_stop. SP_EINVAL for a bad address, SP_EIO when the
 * address cannot be bound (the message names it and says why). */
int sp_http_start(sp_runtime *rt, const char *addr, sp_http_server **out, sp_error *err);

/* Settings from the command line that override the spicepod's (all optional). */
typedef struct sp_http_options {
  const char *tls_certificate_file; /* with tls_key_file: serve HTTPS, in place of runtime.tls */
  const char *tls_key_file;
} sp_http_options;

/* sp_http_start with options (NULL: none). The spicepod's runtime.auth, runtime.results_cache /
 * runtime.caching.sql_results, runtime.cors and runtime.tls are read here (docs/http-api.md). SP_ENOTSUP when
 * TLS is asked for and libmicrohttpd lacks it; SP_EIO when a certificate file cannot be read. */
int sp_http_start_opts(sp_runtime *rt, const char *addr, const sp_http_options *opts, sp_http_server **out,
                       sp_error *err);

/* True when the server speaks HTTPS. */
bool sp_http_tls(const sp_http_server *s);

/* Stops accepting, answers new requests on open connections with 503, waits up to timeout_ms for the requests
 * in flight (streams included), then interrupts the queries still running and frees s. NULL-safe. */
void sp_http_stop_within(sp_http_server *s, int64_t timeout_ms);
/* sp_http_stop_within with Spice's default shutdown_timeout (30 s). */
void sp_http_stop(sp_http_server *s);

/* The address actually bound, "127.0.0.1:8090" (borrowed; lives as long as s). */
const char *sp_http_endpoint(const sp_http_server *s);

/* Sets the row that GET /v1/status shows for component `name` ("flight", "metrics"), replacing any earlier
 * one. `status` is a name such as "Ready" or "Disabled"; `endpoint` is "N/A" when none. Both are copied.
 * Until called, flight and metrics show as {"endpoint":"N/A","status":"Disabled"}. Thread-safe. */
int sp_http_set_component(sp_http_server *s, const char *name, const char *endpoint, const char *status,
                          sp_error *err);

/* The Prometheus endpoint (`spiced --metrics ADDR`, spice-compat §4.5): GET /health answers "OK", any other
 * path the metrics of `http` (borrowed; stop this first) and its runtime in Prometheus text format. It marks
 * the "metrics" component Ready with its address in GET /v1/status. *out is owned by the caller. */
typedef struct sp_metrics_server sp_metrics_server;
int sp_metrics_start(sp_http_server *http, const char *addr, sp_metrics_server **out, sp_error *err);
/* The address actually bound (borrowed). */
const char *sp_metrics_endpoint(const sp_metrics_server *m);
/* NULL-safe. */
void sp_metrics_stop(sp_metrics_server *m);
/* Adds the Flight server's metrics (flight_*_requests, durations) to the scrapes; flight is borrowed and must
 * outlive m (stop m first). NULL-safe for m. */
struct sp_flight_server;
void sp_metrics_set_flight(sp_metrics_server *m, struct sp_flight_server *flight);

#endif
