/* SPDX-License-Identifier: Apache-2.0
 *
 * Arrow Flight server (`spiced --flight ADDR`, docs/flight.md), on the gRPC core C API. This first slice
 * serves what the Spice.ai SDKs send for a plain SQL query: Handshake (accepted, empty answer),
 * GetFlightInfo and GetSchema (descriptor cmd = raw SQL) and DoGet(ticket = raw SQL). Every other RPC answers UNIMPLEMENTED
 * with its name.
 */
#ifndef SP_SERVER_FLIGHT_H
#define SP_SERVER_FLIGHT_H

#include "server/http.h"
#include "spice/error.h"
#include "spice/runtime.h"

typedef struct sp_flight_server sp_flight_server;

/* Starts serving on addr ("127.0.0.1:50051"; port 0 picks one). rt is borrowed and must outlive the server;
 * http (borrowed, NULL allowed) gets the "flight" component marked Ready in /v1/status. *out is owned by the
 * caller and freed with sp_flight_stop. */
int sp_flight_start(sp_runtime *rt, sp_http_server *http, const char *addr, sp_flight_server **out,
                    sp_error *err);
/* The address served ("127.0.0.1:50051", the real port when 0 was asked; borrowed). */
const char *sp_flight_endpoint(const sp_flight_server *s);
/* Cancels the calls in flight, waits for their threads, and frees everything. NULL-safe. */
void sp_flight_stop(sp_flight_server *s);

#endif
