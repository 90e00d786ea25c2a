/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for the Flight client's decoders (src/flight/wire.c), which read every answer a remote
 * Flight server sends (FlightInfo, SchemaResult, FlightData), and for its endpoint parser (a spicepod value).
 * Invariants: no crash, decoded byte ranges lie inside the input, and a decoded FlightData header and body go
 * through the IPC decoder without a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flight/client.h"
#include "flight/wire.h"
#include "spice/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(sp_flw_bytes b, const uint8_t *data, size_t size) {
  if (b.len && (b.data < data || b.data + b.len > data + size)) abort();
}

static void decode_ipc(const sp_flw_data *d) {
  sp_ipc_reader *r;
  if (sp_ipc_reader_create(&r, NULL) != SP_OK) return;
  sp_ipc_msg_type type;
  struct ArrowArray batch = {0};
  if (sp_ipc_reader_message(r, d->header.data, d->header.len, d->body.data, d->body.len, &type, &batch, NULL) == SP_OK &&
      type == SP_IPC_RECORD_BATCH && batch.release)
    batch.release(&batch);
  sp_ipc_reader_destroy(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sp_flw_info info;
  sp_flw_bytes schema;
  sp_flw_data d;
  if (sp_flw_decode_info(data, size, &info, NULL) == SP_OK) {
    inside(info.schema, data, size);
    inside(info.ticket, data, size);
  }
  if (sp_flw_decode_schema_result(data, size, &schema, NULL) == SP_OK) inside(schema, data, size);
  if (sp_flw_decode_data(data, size, &d, NULL) == SP_OK) {
    inside(d.header, data, size);
    inside(d.body, data, size);
    inside(d.app_metadata, data, size);
    if (d.header.len) decode_ipc(&d);
  }
  char text[256], target[300];
  int tls;
  size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
  memcpy(text, data, n);
  text[n] = '\0';
  if (sp_flight_parse_endpoint(text, target, sizeof target, &tls, NULL) == SP_OK && strlen(target) >= sizeof target)
    abort();
  return 0;
}
