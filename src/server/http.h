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

/* Stops accepting connections, waits (up to 30 s) for requests in flight, including streaming responses,
 * to finish, then closes everything. NULL-safe. */
void sp_http_stop(sp_http_server *s);

/* The address actually bound, "127.0.0.1:8090" (borrowed; lives as long as s). */
const char *sp_http_endpoint(const sp_http_server *s);

/* Sets the row that GET /v1/status shows for component `name` ("flight", "metrics"), replacing any earlier
 * one. `status` is a name such as "Ready" or "Disabled"; `endpoint` is "N/A" when none. Both are copied.
 * Until called, flight and metrics show as {"endpoint":"N/A","status":"Disabled"}. Thread-safe. */
int sp_http_set_component(sp_http_server *s, const char *name, const char *endpoint, const char *status,
                          sp_error *err);

#endif
