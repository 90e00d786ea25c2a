/* SPDX-License-Identifier: Apache-2.0
 *
 * Arrow Flight and Flight SQL server (`spiced --flight ADDR`, docs/flight.md), on the gRPC core C API:
 * Handshake (basic auth when API keys are on), GetFlightInfo/GetSchema/DoGet for raw SQL, PATH descriptors and
 * Flight SQL commands, prepared statements (DoAction, DoPut binding), DoPut appends, DoExchange subscriptions,
 * ListActions, ListFlights, and the results cache. Other RPCs answer UNIMPLEMENTED with their name.
 */
#ifndef SP_SERVER_FLIGHT_H
#define SP_SERVER_FLIGHT_H

#include <stdint.h>

#include "server/http.h"
#include "spice/buf.h"
#include "spice/error.h"
#include "spice/runtime.h"

typedef struct sp_flight_server sp_flight_server;

/* Starts serving on addr ("127.0.0.1:50051"; port 0 picks one). rt is borrowed and must outlive the server;
 * http (borrowed, NULL allowed) gets the "flight" component marked Ready in /v1/status. *out is owned by the
 * caller and freed with sp_flight_stop. */
int sp_flight_start(sp_runtime *rt, sp_http_server *http, const char *addr, sp_flight_server **out,
                    sp_error *err);
/* Appends the Flight metrics in Prometheus text format to *out, for the metrics endpoint (Spice's names,
 * spice-compat §4.5): flight_<rpc>_requests counters for every RPC served, the duration summaries Spice has
 * (flight_handshake_request_duration_ms, flight_get_flight_info_request_duration_ms, flight_do_put_duration_ms,
 * flight_do_action_duration_ms, flight_list_actions_duration_ms: _sum in ms and _count),
 * flight_do_exchange_data_updates_sent, and flight_calls_rejected (calls refused at the cap). Thread-safe;
 * SP_ENOMEM only. */
int sp_flight_metrics_render(sp_flight_server *s, sp_buf *out);
/* The address served ("127.0.0.1:50051", the real port when 0 was asked; borrowed). */
const char *sp_flight_endpoint(const sp_flight_server *s);
/* Stops taking calls, lets the calls in flight finish for up to timeout_ms, then cancels the rest, waits for
 * their threads, and frees everything. NULL-safe. */
void sp_flight_stop_within(sp_flight_server *s, int64_t timeout_ms);
/* sp_flight_stop_within with Spice's default shutdown_timeout (30 s). */
void sp_flight_stop(sp_flight_server *s);

#endif
