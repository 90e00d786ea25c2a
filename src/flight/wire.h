/* SPDX-License-Identifier: Apache-2.0
 *
 * The protobuf messages a Flight *client* writes and reads (apache/arrow format/Flight.proto), by hand like the
 * server's codec (src/server/flight_proto.c), which the client does not include: a connector never depends on
 * the server. Requests: FlightDescriptor{CMD}, Ticket, HandshakeRequest. Answers: FlightInfo (schema and the
 * first endpoint's ticket), SchemaResult, FlightData.
 *
 * The decoders read what a remote server sent: every length is checked, unknown fields are skipped, and
 * malformed input gives SP_EINVAL. Decoded byte ranges point into the caller's input (borrowed).
 */
#ifndef SP_FLIGHT_WIRE_H
#define SP_FLIGHT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "core/pb.h"
#include "spice/buf.h"
#include "spice/error.h"

/* A byte range inside some input (borrowed). */
typedef sp_pb_bytes sp_flw_bytes; /* bytes inside a message (borrowed) */

typedef struct sp_flw_info {
  sp_flw_bytes schema;      /* field 1: encapsulated IPC Schema message (may be empty) */
  sp_flw_bytes ticket;      /* endpoint[0].ticket.ticket */
  size_t n_endpoints;       /* endpoints listed; only the first is read */
  size_t n_locations;       /* locations of endpoint[0]; 0 = fetch from the same server */
  int64_t total_records;    /* -1 when unknown */
} sp_flw_info;

typedef struct sp_flw_data {
  sp_flw_bytes header;      /* field 2: the raw flatbuffer Message */
  sp_flw_bytes body;        /* field 1000 */
  sp_flw_bytes app_metadata; /* field 3 */
} sp_flw_data;

/* Appends FlightDescriptor{type = CMD, cmd} to out. */
int sp_flw_encode_descriptor_cmd(const void *cmd, size_t len, sp_buf *out, sp_error *err);
/* Appends the Flight SQL statement command: Any{type_url = ".../arrow.flight.protocol.sql.CommandStatementQuery",
 * value = CommandStatementQuery{query}} (FlightSql.proto), what a FlightDescriptor's cmd holds. */
int sp_flw_encode_statement_query(const char *sql, size_t len, sp_buf *out, sp_error *err);
/* Appends Ticket{ticket} to out. */
int sp_flw_encode_ticket(const void *ticket, size_t len, sp_buf *out, sp_error *err);
/* Appends HandshakeRequest{protocol_version, payload} to out. */
int sp_flw_encode_handshake(uint64_t version, const void *payload, size_t len, sp_buf *out, sp_error *err);

/* FlightInfo{schema=1, flight_descriptor=2, endpoint=3 {ticket=1 {ticket=1}, location=2}, total_records=4}. */
int sp_flw_decode_info(const uint8_t *data, size_t len, sp_flw_info *out, sp_error *err);
/* SchemaResult{schema=1}. */
int sp_flw_decode_schema_result(const uint8_t *data, size_t len, sp_flw_bytes *out, sp_error *err);
/* FlightData{flight_descriptor=1, data_header=2, app_metadata=3, data_body=1000}. */
int sp_flw_decode_data(const uint8_t *data, size_t len, sp_flw_data *out, sp_error *err);

#endif
