/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for the Flight protobuf decoders (src/server/flight_proto.c), which read every
 * GetFlightInfo, DoGet, Handshake, DoAction and DoPut request and the Any-wrapped Flight SQL commands.
 * Invariants: no crash, decoded byte ranges lie inside the input, a decoded ticket can be written back inside
 * a FlightInfo, and an unwrapped Flight SQL command re-wraps to an Any that unwraps to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/flight_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(sp_pb_bytes b, const uint8_t *data, size_t size) {
  if (b.len && (b.data < data || b.data + b.len > data + size)) abort();
}

/* The generic decoders and the Flight SQL Any wrapper. */
static void generic(const uint8_t *data, size_t size) {
  sp_pb_msg m;
  if (sp_flight_decode_fields(data, size, &m, NULL) == SP_OK)
    for (int i = 1; i <= SP_PB_MAX_FIELD; i++) inside(m.bytes[i], data, size);
  sp_pb_bytes b;
  for (size_t i = 0; i < 4 && sp_flight_nth_bytes(data, size, 4, i, &b) == SP_OK; i++) inside(b, data, size);
  uint64_t v[8];
  size_t n;
  if (sp_flight_varints(data, size, 1, v, 8, &n, NULL) == SP_OK && n > 8) abort();
  char path[64];
  if (sp_flight_descriptor_path(data, size, path, sizeof path, NULL) == SP_OK && strlen(path) >= sizeof path) abort();
  sp_flight_data fd;
  if (sp_flight_decode_data(data, size, &fd, NULL) == SP_OK) {
    inside(fd.descriptor, data, size);
    inside(fd.header, data, size);
    inside(fd.body, data, size);
    inside(fd.app_metadata, data, size);
  }
  sp_pb_bytes name, value, name2, value2;
  if (!sp_flight_sql_unwrap(data, size, &name, &value)) return;
  inside(name, data, size);
  inside(value, data, size);
  char type[256];
  if (name.len >= sizeof type || memchr(name.data, 0, name.len)) return;
  memcpy(type, name.data, name.len);
  type[name.len] = '\0';
  sp_buf again = {0};
  if (sp_flight_put_sql_any(&again, type, value.data, value.len, NULL) != SP_OK) abort();
  if (!sp_flight_sql_unwrap((const uint8_t *)again.data, again.len, &name2, &value2) || value2.len != value.len ||
      (value.len && memcmp(value2.data, value.data, value.len) != 0))
    abort();
  sp_buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  generic(data, size);
  sp_flight_descriptor d;
  sp_pb_bytes t, payload;
  uint64_t version;
  if (sp_flight_decode_descriptor(data, size, &d, NULL) == SP_OK) inside(d.cmd, data, size);
  if (sp_flight_decode_handshake(data, size, &version, &payload, NULL) == SP_OK) inside(payload, data, size);
  if (sp_flight_decode_ticket(data, size, &t, NULL) == SP_OK) {
    inside(t, data, size);
    sp_buf info = {0};
    if (sp_flight_encode_info(data, size, data, size, t.data, t.len, &info, NULL) != SP_OK) abort();
    sp_buf_free(&info);
  }
  return 0;
}
