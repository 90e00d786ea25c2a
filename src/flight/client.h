/* SPDX-License-Identifier: Apache-2.0
 *
 * A small Arrow Flight client on gRPC core's C API: one channel per client, one pluck completion queue per call
 * (so calls on one client may run on several threads at once), unary and server-streaming calls, request
 * headers (authorization) and the answer's headers (results-cache-status). Used by the flightsql and spice.ai
 * connectors, the `spice sql` REPL and tools/bench_flight.
 *
 * Queries travel the way the Spice SDKs send them: FlightDescriptor{CMD = the SQL text} for GetSchema and
 * GetFlightInfo, then DoGet on endpoint[0]'s ticket, from the same server. Results are Arrow C streams decoded
 * by the IPC reader (spice/ipc.h) one FlightData message at a time: nothing holds the whole result.
 *
 * Errors name the endpoint (never a password) and map gRPC codes: UNAVAILABLE → SP_ECONNECT (retriable),
 * DEADLINE_EXCEEDED → SP_ETIMEDOUT, UNAUTHENTICATED → SP_EUNAUTH, PERMISSION_DENIED → SP_EDENIED,
 * INVALID_ARGUMENT → SP_EINVAL, NOT_FOUND → SP_ENOTFOUND, UNIMPLEMENTED → SP_ENOTSUP, CANCELLED → SP_ECANCELED,
 * anything else SP_EIO.
 */
#ifndef SP_FLIGHT_CLIENT_H
#define SP_FLIGHT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "spice/arrow_abi.h"
#include "spice/error.h"

typedef struct sp_flight_client sp_flight_client;

/* What the server said about a query's answer, from its response headers. */
typedef struct sp_flight_result_info {
  int cache_hit; /* 1: results-cache-status HIT (or x-cache "Hit from spiceai"); 0: miss; -1: not said */
} sp_flight_result_info;

/* Parses an endpoint: grpc://host:port, grpc+tcp://, http:// (plaintext), grpc+tls://, https:// (TLS with
 * the system's roots), or a bare host:port (plaintext). A missing port is 443 with TLS, 50051 without.
 * Writes the gRPC target ("host:port") into target. SP_EINVAL for other schemes or an empty host. */
int sp_flight_parse_endpoint(const char *endpoint, char *target, size_t target_len, int *tls, sp_error *err);

/* Creates a client for endpoint (copied). No I/O happens here: gRPC connects on the first call. *out is owned
 * by the caller and freed with sp_flight_client_close. */
int sp_flight_client_open(const char *endpoint, sp_flight_client **out, sp_error *err);
/* The same, with TLS verified against the CA certificates in ca_pem (PEM text, copied by gRPC; NULL = the
 * system's roots, or the file named by $GRPC_DEFAULT_SSL_ROOTS_FILE_PATH). ca_pem needs a TLS endpoint:
 * SP_EINVAL with a plaintext one. */
int sp_flight_client_open_ca(const char *endpoint, const char *ca_pem, sp_flight_client **out, sp_error *err);
/* Frees the client. Every stream it returned must have been released first. NULL-safe. */
void sp_flight_client_close(sp_flight_client *c);

/* Adds a header sent with every later call (key lower case, both copied); a key set again is replaced.
 * Not thread-safe against calls in flight: set headers before sharing the client. */
int sp_flight_client_set_header(sp_flight_client *c, const char *key, const char *value, sp_error *err);
/* Flight SQL mode: queries go as CommandStatementQuery (FlightSql.proto, Any-wrapped) instead of the SQL text
 * itself, for servers that only speak Flight SQL. Off by default (the Spice SDKs' way, which spiced takes too). */
void sp_flight_client_set_flight_sql(sp_flight_client *c, int on);
/* Deadline of unary calls (GetSchema, GetFlightInfo, Handshake), in ms; default 60000. */
void sp_flight_client_set_timeout(sp_flight_client *c, int64_t timeout_ms);

/* A flag polled (every 100 ms) while a call waits: once it is non-zero the call is cancelled and fails with
 * SP_ECANCELED (the CLI's Ctrl-C). Borrowed; NULL = none. */
void sp_flight_client_set_cancel_flag(sp_flight_client *c, const volatile int *flag);

/* Flight basic authentication: a Handshake whose request carries `authorization: Basic base64(user:pass)`
 * (strings borrowed). The bearer token the server answers (header `authorization`) is sent with every later
 * call; a server that answers none keeps the Basic header for later calls. SP_EUNAUTH when refused. */
int sp_flight_client_handshake_basic(sp_flight_client *c, const char *user, const char *pass, sp_error *err);

/* The result schema of `sql`, by GetSchema (or GetFlightInfo when the server does not implement it).
 * *out (a struct schema) is owned by the caller. */
int sp_flight_client_schema(sp_flight_client *c, const char *sql, struct ArrowSchema *out, sp_error *err);

/* Runs `sql`: GetFlightInfo, then DoGet of endpoint[0]'s ticket. The call is open when this returns (the
 * Schema message has arrived): *out streams the batches as they come, and info (may be NULL) receives what
 * the response headers said. *out is owned by the caller; releasing it early cancels the call. */
int sp_flight_client_query(sp_flight_client *c, const char *sql, struct ArrowArrayStream *out,
                           sp_flight_result_info *info, sp_error *err);
/* DoGet of one ticket (bytes borrowed), as above. */
int sp_flight_client_do_get(sp_flight_client *c, const void *ticket, size_t len, struct ArrowArrayStream *out,
                            sp_flight_result_info *info, sp_error *err);

/* What the headers of a stream's call said: the initial ones, and after the end of the stream the trailing ones
 * too. SP_EINVAL when stream does not come from this module. */
int sp_flight_stream_info(struct ArrowArrayStream *stream, sp_flight_result_info *out, sp_error *err);

#endif
