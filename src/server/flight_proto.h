/* SPDX-License-Identifier: Apache-2.0
 *
 * The few Arrow Flight protobuf messages the Flight server reads and writes (apache/arrow format/Flight.proto),
 * encoded and decoded by hand: FlightDescriptor, Ticket, HandshakeRequest/Response, FlightInfo with one
 * endpoint, SchemaResult, and the prefix of a FlightData message. Hand-written so the build needs no protoc step and the
 * (large) FlightData body goes out as its own slice, never copied into a packed message.
 *
 * Decoders read outside input: every length is checked, unknown fields are skipped (as protobuf requires), and
 * malformed input gives SP_EINVAL. Decoded byte fields point into the caller's input (borrowed).
 */
#ifndef SP_SERVER_FLIGHT_PROTO_H
#define SP_SERVER_FLIGHT_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "spice/buf.h"
#include "spice/error.h"

/* A byte range inside some input (borrowed). */
typedef struct sp_pb_bytes {
  const uint8_t *data;
  size_t len;
} sp_pb_bytes;

enum { SP_FLIGHT_DESC_UNKNOWN = 0, SP_FLIGHT_DESC_PATH = 1, SP_FLIGHT_DESC_CMD = 2 };

typedef struct sp_flight_descriptor {
  int type;        /* SP_FLIGHT_DESC_* (other numbers are kept as sent) */
  sp_pb_bytes cmd; /* field 2 */
  size_t n_path;   /* field 3 is repeated; only counted */
} sp_flight_descriptor;

/* FlightDescriptor{type=1, cmd=2, path=3}. */
int sp_flight_decode_descriptor(const uint8_t *data, size_t len, sp_flight_descriptor *out, sp_error *err);
/* Ticket{ticket=1}: *out is the ticket bytes. */
int sp_flight_decode_ticket(const uint8_t *data, size_t len, sp_pb_bytes *out, sp_error *err);
/* HandshakeRequest{protocol_version=1, payload=2}. */
int sp_flight_decode_handshake(const uint8_t *data, size_t len, uint64_t *version, sp_pb_bytes *payload,
                               sp_error *err);

/* Appends HandshakeResponse{protocol_version, payload} to out. */
int sp_flight_encode_handshake(uint64_t version, const uint8_t *payload, size_t len, sp_buf *out, sp_error *err);
/* Appends FlightInfo{schema, flight_descriptor (the raw bytes the client sent), endpoint[0]{ticket},
 * total_records = -1, total_bytes = -1} to out. schema is the encapsulated IPC Schema message. */
int sp_flight_encode_info(const uint8_t *schema, size_t schema_len, const uint8_t *descriptor, size_t desc_len,
                          const uint8_t *ticket, size_t ticket_len, sp_buf *out, sp_error *err);
/* Appends SchemaResult{schema} to out (schema: the encapsulated IPC Schema message). */
int sp_flight_encode_schema_result(const uint8_t *schema, size_t len, sp_buf *out, sp_error *err);
/* Appends the start of a FlightData message: data_header (field 2) = header, then the tag and length of
 * data_body (field 1000) when body_len > 0. The body bytes themselves follow in the caller's next slice. */
int sp_flight_encode_data_prefix(const uint8_t *header, size_t header_len, size_t body_len, sp_buf *out,
                                 sp_error *err);

#endif
