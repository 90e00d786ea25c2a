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

#include "core/pb.h" /* sp_pb_bytes */
#include "spice/buf.h"
#include "spice/error.h"

/* A byte range inside some input (borrowed). */


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

/* ---- Generic pieces, for Flight SQL and the other RPCs --------------------------------------------------- */

#define SP_FLIGHT_SQL_PREFIX "type.googleapis.com/arrow.flight.protocol.sql."
#define SP_PB_MAX_FIELD 8

/* The last value of each field 1..SP_PB_MAX_FIELD of one message (others are skipped). Bit n of `present` says
 * field n was seen; `bytes` holds length-delimited values, `varint` varints. */
typedef struct sp_pb_msg {
  unsigned present;
  sp_pb_bytes bytes[SP_PB_MAX_FIELD + 1];
  uint64_t varint[SP_PB_MAX_FIELD + 1];
} sp_pb_msg;

/* Decodes the fields of any message (Action, the Flight SQL commands, Criteria). SP_EINVAL when malformed. */
int sp_flight_decode_fields(const uint8_t *data, size_t len, sp_pb_msg *out, sp_error *err);
/* The i-th (0-based) length-delimited value of repeated field num; SP_ENOTFOUND past the last. */
int sp_flight_nth_bytes(const uint8_t *data, size_t len, unsigned num, size_t i, sp_pb_bytes *out);
/* The values of repeated varint field num (packed or not), up to max of them into out; *n is how many. */
int sp_flight_varints(const uint8_t *data, size_t len, unsigned num, uint64_t *out, size_t max, size_t *n,
                      sp_error *err);

/* When data is a google.protobuf.Any{type_url, value} whose type_url starts with SP_FLIGHT_SQL_PREFIX, sets
 * *name to the message name after the prefix ("CommandStatementQuery") and *value to the packed message, and
 * returns 1; otherwise 0 (raw SQL, or anything else). Both point into data. */
int sp_flight_sql_unwrap(const uint8_t *data, size_t len, sp_pb_bytes *name, sp_pb_bytes *value);

/* FlightData{flight_descriptor=1, data_header=2, app_metadata=3, data_body=1000} (the DoPut stream). */
typedef struct sp_flight_data {
  sp_pb_bytes descriptor; /* the raw FlightDescriptor message, when present */
  int has_descriptor;
  sp_pb_bytes header, app_metadata, body;
} sp_flight_data;
int sp_flight_decode_data(const uint8_t *data, size_t len, sp_flight_data *out, sp_error *err);

/* Joins the path segments of a FlightDescriptor with '.' into out (n bytes, NUL-terminated). SP_EINVAL when
 * there is none, a segment is empty or holds a NUL, or the result does not fit. */
int sp_flight_descriptor_path(const uint8_t *data, size_t len, char *out, size_t n, sp_error *err);

/* Appends one length-delimited field (num, bytes) to out. */
int sp_flight_put_bytes(sp_buf *out, unsigned num, const void *data, size_t len, sp_error *err);
/* Appends one varint field to out (also for bool and int64, two's complement). */
int sp_flight_put_varint(sp_buf *out, unsigned num, uint64_t v, sp_error *err);
/* Appends Any{type_url = SP_FLIGHT_SQL_PREFIX name, value} to out. */
int sp_flight_put_sql_any(sp_buf *out, const char *name, const void *value, size_t len, sp_error *err);

#endif
