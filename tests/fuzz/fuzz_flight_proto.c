/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for the Flight protobuf decoders (src/server/flight_proto.c), which read every
 * GetFlightInfo, DoGet and Handshake request. Invariants: no crash, decoded byte ranges lie inside the input,
 * and a decoded ticket can be written back inside a FlightInfo.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/flight_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(sp_pb_bytes b, const uint8_t *data, size_t size) {
  if (b.len && (b.data < data || b.data + b.len > data + size)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
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
