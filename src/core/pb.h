/* SPDX-License-Identifier: Apache-2.0
 *
 * Internal: reading the protobuf wire format, shared by the Flight server's codec (src/server/flight_proto.c)
 * and the Flight client's (src/flight/wire.c). Wire types 0 (varint) and 2 (length-delimited) are read; 1 and 5
 * (fixed 64/32) are skipped; groups (3, 4) are refused: Flight has none. Nothing here allocates.
 */
#ifndef SPICE_CORE_PB_H
#define SPICE_CORE_PB_H

#include <stddef.h>
#include <stdint.h>

/* Bytes inside the message being read (borrowed from it). */
typedef struct sp_pb_bytes {
  const uint8_t *data;
  size_t len;
} sp_pb_bytes;

/* A cursor over a message: [p, end). */
typedef struct sp_pb_reader {
  const uint8_t *p, *end;
} sp_pb_reader;

/* One field: its number, wire type, and for wire type 0 the value, for 2 the bytes (and their length in
 * varint). */
typedef struct sp_pb_field {
  uint64_t num;
  int wire;
  uint64_t varint;
  sp_pb_bytes bytes;
} sp_pb_field;

/* Reads a varint at r (at most 10 bytes). 0, or -1 when truncated or too long. */
int sp_pb_varint(sp_pb_reader *r, uint64_t *v);
/* Reads the next field. 0, or -1 when the message is malformed (field 0, truncated, a group). */
int sp_pb_next(sp_pb_reader *r, sp_pb_field *f);

#endif
