/* SPDX-License-Identifier: Apache-2.0
 *
 * Protobuf wire format for the client's Flight messages (wire.h), read with the shared reader (core/pb.h).
 */
#include "flight/wire.h"

#include <string.h>

/* ---- Writing -------------------------------------------------------------------------------------------- */

static int put_varint(sp_buf *out, uint64_t v) {
  uint8_t b[10];
  size_t n = 0;
  do {
    b[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
  return sp_buf_append(out, b, n);
}

static int put_bytes(sp_buf *out, unsigned field, const void *p, size_t len) {
  if (put_varint(out, (uint64_t)field << 3 | 2) != SP_OK || put_varint(out, len) != SP_OK) return SP_ENOMEM;
  return sp_buf_append(out, p, len);
}

static int oom(sp_error *err) { return sp_fail(err, SP_ENOMEM, "out of memory encoding a flight request"); }

int sp_flw_encode_descriptor_cmd(const void *cmd, size_t len, sp_buf *out, sp_error *err) {
  if (put_varint(out, 1 << 3 | 0) != SP_OK || put_varint(out, 2) != SP_OK || put_bytes(out, 2, cmd, len) != SP_OK)
    return oom(err);
  return SP_OK;
}

int sp_flw_encode_statement_query(const char *sql, size_t len, sp_buf *out, sp_error *err) {
  static const char type_url[] = "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery";
  sp_buf cmd = {0};
  int rc = put_bytes(&cmd, 1, sql, len);
  if (rc == SP_OK) rc = put_bytes(out, 1, type_url, sizeof type_url - 1);
  if (rc == SP_OK) rc = put_bytes(out, 2, cmd.data ? cmd.data : "", cmd.len);
  sp_buf_free(&cmd);
  return rc == SP_OK ? SP_OK : oom(err);
}

int sp_flw_encode_ticket(const void *ticket, size_t len, sp_buf *out, sp_error *err) {
  return put_bytes(out, 1, ticket, len) == SP_OK ? SP_OK : oom(err);
}

int sp_flw_encode_handshake(uint64_t version, const void *payload, size_t len, sp_buf *out, sp_error *err) {
  if (version && (put_varint(out, 1 << 3 | 0) != SP_OK || put_varint(out, version) != SP_OK)) return oom(err);
  if (len && put_bytes(out, 2, payload, len) != SP_OK) return oom(err);
  return SP_OK;
}

/* ---- Reading -------------------------------------------------------------------------------------------- */


/* A known field with the wrong wire type is malformed; an unknown one is skipped. */
static int wrong_wire(const char *what, const sp_pb_field *f, sp_error *err) {
  return sp_fail(err, SP_EINVAL, "%s: field %u has the wrong wire type", what, (unsigned)f->num);
}

static int malformed(const char *what, sp_error *err) {
  return sp_fail(err, SP_EINVAL, "%s: malformed protobuf", what);
}

/* Ticket{ticket=1} inside an endpoint. */
static int decode_ticket(sp_flw_bytes in, sp_flw_bytes *out, sp_error *err) {
  sp_pb_reader r = {in.data, in.data + in.len};
  sp_pb_field f;
  while (r.p < r.end) {
    if (sp_pb_next(&r, &f) != 0) return malformed("flight ticket", err);
    if (f.num == 1 && f.wire != 2) return wrong_wire("flight ticket", &f, err);
    if (f.num == 1) *out = f.bytes;
  }
  return SP_OK;
}

/* FlightEndpoint{ticket=1, location=2, expiration_time=3, app_metadata=4}. */
static int decode_endpoint(sp_flw_bytes in, sp_flw_info *out, sp_error *err) {
  sp_pb_reader r = {in.data, in.data + in.len};
  sp_pb_field f;
  while (r.p < r.end) {
    if (sp_pb_next(&r, &f) != 0) return malformed("flight endpoint", err);
    if ((f.num == 1 || f.num == 2) && f.wire != 2) return wrong_wire("flight endpoint", &f, err);
    if (f.num == 1) SP_TRY(decode_ticket(f.bytes, &out->ticket, err));
    else if (f.num == 2) out->n_locations++;
  }
  return SP_OK;
}

int sp_flw_decode_info(const uint8_t *data, size_t len, sp_flw_info *out, sp_error *err) {
  sp_flw_info info = {.total_records = -1};
  sp_pb_reader r = {data, data + len};
  sp_pb_field f;
  while (r.p < r.end) {
    if (sp_pb_next(&r, &f) != 0) return malformed("flight info", err);
    if ((f.num == 1 || f.num == 2 || f.num == 3) && f.wire != 2) return wrong_wire("flight info", &f, err);
    if (f.num == 4 && f.wire != 0) return wrong_wire("flight info", &f, err);
    if (f.num == 1) info.schema = f.bytes;
    else if (f.num == 3 && info.n_endpoints++ == 0) SP_TRY(decode_endpoint(f.bytes, &info, err));
    else if (f.num == 4) info.total_records = (int64_t)f.varint;
  }
  *out = info;
  return SP_OK;
}

int sp_flw_decode_schema_result(const uint8_t *data, size_t len, sp_flw_bytes *out, sp_error *err) {
  sp_flw_bytes schema = {0};
  sp_pb_reader r = {data, data + len};
  sp_pb_field f;
  while (r.p < r.end) {
    if (sp_pb_next(&r, &f) != 0) return malformed("flight schema result", err);
    if (f.num == 1 && f.wire != 2) return wrong_wire("flight schema result", &f, err);
    if (f.num == 1) schema = f.bytes;
  }
  *out = schema;
  return SP_OK;
}

int sp_flw_decode_data(const uint8_t *data, size_t len, sp_flw_data *out, sp_error *err) {
  sp_flw_data d;
  memset(&d, 0, sizeof d);
  sp_pb_reader r = {data, data + len};
  sp_pb_field f;
  while (r.p < r.end) {
    if (sp_pb_next(&r, &f) != 0) return malformed("flight data", err);
    int known = f.num == 1 || f.num == 2 || f.num == 3 || f.num == 1000;
    if (known && f.wire != 2) return wrong_wire("flight data", &f, err);
    if (f.num == 2) d.header = f.bytes;
    else if (f.num == 3) d.app_metadata = f.bytes;
    else if (f.num == 1000) d.body = f.bytes;
  }
  *out = d;
  return SP_OK;
}
