/* SPDX-License-Identifier: Apache-2.0
 *
 * Hand-written protobuf wire format for the Flight messages in flight_proto.h, read with the shared reader
 * (core/pb.h: wire types 0 and 2; 1 and 5 skipped when they appear in fields we ignore).
 */
#include "server/flight_proto.h"

#include <string.h>

/* ---- Reading -------------------------------------------------------------------------------------------- */

int sp_flight_decode_descriptor(const uint8_t *data, size_t len, sp_flight_descriptor *out, sp_error *err) {
  memset(out, 0, sizeof *out);
  sp_pb_reader r = {data, data + len};
  sp_pb_field f;
  while (r.p < r.end) {
    if (sp_pb_next(&r, &f) != 0) return sp_fail(err, SP_EINVAL, "flight descriptor: malformed protobuf");
    if (f.num == 1 && f.wire == 0) out->type = (int)(f.varint & 0x7fffffff);
    else if (f.num == 2 && f.wire == 2) out->cmd = f.bytes;
    else if (f.num == 3 && f.wire == 2) out->n_path++;
    else if (f.num <= 3) return sp_fail(err, SP_EINVAL, "flight descriptor: field %u has the wrong wire type",
                                        (unsigned)f.num);
  }
  return SP_OK;
}

int sp_flight_decode_ticket(const uint8_t *data, size_t len, sp_pb_bytes *out, sp_error *err) {
  out->data = NULL;
  out->len = 0;
  sp_pb_reader r = {data, data + len};
  sp_pb_field f;
  while (r.p < r.end) {
    if (sp_pb_next(&r, &f) != 0) return sp_fail(err, SP_EINVAL, "ticket: malformed protobuf");
    if (f.num == 1 && f.wire == 2) *out = f.bytes;
    else if (f.num == 1) return sp_fail(err, SP_EINVAL, "ticket: field 1 has the wrong wire type");
  }
  return SP_OK;
}

int sp_flight_decode_handshake(const uint8_t *data, size_t len, uint64_t *version, sp_pb_bytes *payload,
                               sp_error *err) {
  *version = 0;
  payload->data = NULL;
  payload->len = 0;
  sp_pb_reader r = {data, data + len};
  sp_pb_field f;
  while (r.p < r.end) {
    if (sp_pb_next(&r, &f) != 0) return sp_fail(err, SP_EINVAL, "handshake request: malformed protobuf");
    if (f.num == 1 && f.wire == 0) *version = f.varint;
    else if (f.num == 2 && f.wire == 2) *payload = f.bytes;
    else if (f.num <= 2) return sp_fail(err, SP_EINVAL, "handshake request: field %u has the wrong wire type",
                                        (unsigned)f.num);
  }
  return SP_OK;
}

/* ---- Writing -------------------------------------------------------------------------------------------- */

static size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

/* Appends a varint; out has room (callers reserve first). */
static void put_varint(sp_buf *out, uint64_t v) {
  uint8_t *p = (uint8_t *)out->data + out->len;
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  out->len = (size_t)((char *)p - out->data);
}

static void put_bytes(sp_buf *out, const void *data, size_t len) {
  if (len) memcpy(out->data + out->len, data, len);
  out->len += len;
}

/* Size of a length-delimited field with a one- or two-byte key. */
static size_t ld_size(uint64_t num, size_t len) {
  return varint_size(num << 3 | 2) + varint_size(len) + len;
}

static void put_ld_head(sp_buf *out, uint64_t num, size_t len) {
  put_varint(out, num << 3 | 2);
  put_varint(out, len);
}

static int reserve(sp_buf *out, size_t n, sp_error *err) {
  return sp_buf_reserve(out, n) ? SP_OK : sp_fail(err, SP_ENOMEM, "flight message: out of memory (%zu bytes)", n);
}

int sp_flight_encode_handshake(uint64_t version, const uint8_t *payload, size_t len, sp_buf *out, sp_error *err) {
  SP_TRY(reserve(out, 1 + 10 + ld_size(2, len), err));
  if (version) {
    put_varint(out, 1 << 3 | 0);
    put_varint(out, version);
  }
  put_ld_head(out, 2, len);
  put_bytes(out, payload, len);
  return SP_OK;
}

int sp_flight_encode_info(const uint8_t *schema, size_t schema_len, const uint8_t *descriptor, size_t desc_len,
                          const uint8_t *ticket, size_t ticket_len, sp_buf *out, sp_error *err) {
  size_t ticket_msg = ld_size(1, ticket_len);   /* Ticket{ticket} */
  size_t endpoint_msg = ld_size(1, ticket_msg); /* FlightEndpoint{ticket} */
  size_t total = ld_size(1, schema_len) + ld_size(2, desc_len) + ld_size(3, endpoint_msg) + 2 * (1 + 10);
  SP_TRY(reserve(out, total, err));
  put_ld_head(out, 1, schema_len);
  put_bytes(out, schema, schema_len);
  put_ld_head(out, 2, desc_len);
  put_bytes(out, descriptor, desc_len);
  put_ld_head(out, 3, endpoint_msg);
  put_ld_head(out, 1, ticket_msg);
  put_ld_head(out, 1, ticket_len);
  put_bytes(out, ticket, ticket_len);
  put_varint(out, 4 << 3 | 0); /* total_records = -1: int64 as a 10-byte varint */
  put_varint(out, UINT64_MAX);
  put_varint(out, 5 << 3 | 0); /* total_bytes = -1 */
  put_varint(out, UINT64_MAX);
  return SP_OK;
}

int sp_flight_encode_schema_result(const uint8_t *schema, size_t len, sp_buf *out, sp_error *err) {
  SP_TRY(reserve(out, ld_size(1, len), err));
  put_ld_head(out, 1, len);
  put_bytes(out, schema, len);
  return SP_OK;
}

int sp_flight_encode_data_prefix(const uint8_t *header, size_t header_len, size_t body_len, sp_buf *out,
                                 sp_error *err) {
  SP_TRY(reserve(out, ld_size(2, header_len) + ld_size(1000, 0) + 10, err));
  put_ld_head(out, 2, header_len);
  put_bytes(out, header, header_len);
  if (body_len > 0) put_ld_head(out, 1000, body_len);
  return SP_OK;
}

/* ---- Generic pieces ------------------------------------------------------------------------------------- */

int sp_flight_decode_fields(const uint8_t *data, size_t len, sp_pb_msg *out, sp_error *err) {
  memset(out, 0, sizeof *out);
  sp_pb_reader r = {data, data + len};
  sp_pb_field f;
  while (r.p < r.end) {
    if (sp_pb_next(&r, &f) != 0) return sp_fail(err, SP_EINVAL, "flight message: malformed protobuf");
    if (f.num > SP_PB_MAX_FIELD) continue;
    out->present |= 1u << f.num;
    if (f.wire == 2) out->bytes[f.num] = f.bytes;
    else if (f.wire == 0) out->varint[f.num] = f.varint;
  }
  return SP_OK;
}

int sp_flight_nth_bytes(const uint8_t *data, size_t len, unsigned num, size_t i, sp_pb_bytes *out) {
  sp_pb_reader r = {data, data + len};
  sp_pb_field f;
  while (r.p < r.end) {
    if (sp_pb_next(&r, &f) != 0) return SP_EINVAL;
    if (f.num == num && f.wire == 2 && i-- == 0) {
      *out = f.bytes;
      return SP_OK;
    }
  }
  return SP_ENOTFOUND;
}

int sp_flight_varints(const uint8_t *data, size_t len, unsigned num, uint64_t *out, size_t max, size_t *n,
                      sp_error *err) {
  *n = 0;
  sp_pb_reader r = {data, data + len};
  sp_pb_field f;
  while (r.p < r.end) {
    if (sp_pb_next(&r, &f) != 0) return sp_fail(err, SP_EINVAL, "flight message: malformed protobuf");
    if (f.num != num) continue;
    if (f.wire == 0) {
      if (*n < max) out[(*n)++] = f.varint;
      continue;
    }
    if (f.wire != 2) return sp_fail(err, SP_EINVAL, "flight message: field %u has the wrong wire type", num);
    sp_pb_reader packed = {f.bytes.data, f.bytes.data + f.bytes.len};
    uint64_t v;
    while (packed.p < packed.end) {
      if (sp_pb_varint(&packed, &v) != 0) return sp_fail(err, SP_EINVAL, "flight message: malformed packed field");
      if (*n < max) out[(*n)++] = v;
    }
  }
  return SP_OK;
}

int sp_flight_sql_unwrap(const uint8_t *data, size_t len, sp_pb_bytes *name, sp_pb_bytes *value) {
  sp_pb_msg m;
  static const char prefix[] = SP_FLIGHT_SQL_PREFIX;
  const size_t plen = sizeof prefix - 1;
  if (sp_flight_decode_fields(data, len, &m, NULL) != SP_OK) return 0;
  if (m.present & ~((1u << 1) | (1u << 2))) return 0; /* an Any has only fields 1 and 2 */
  sp_pb_bytes url = m.bytes[1];
  if (!(m.present & (1u << 1)) || url.len <= plen || memcmp(url.data, prefix, plen) != 0) return 0;
  name->data = url.data + plen;
  name->len = url.len - plen;
  *value = m.bytes[2];
  return 1;
}

int sp_flight_decode_data(const uint8_t *data, size_t len, sp_flight_data *out, sp_error *err) {
  memset(out, 0, sizeof *out);
  sp_pb_reader r = {data, data + len};
  sp_pb_field f;
  while (r.p < r.end) {
    if (sp_pb_next(&r, &f) != 0) return sp_fail(err, SP_EINVAL, "flight data: malformed protobuf");
    int ld = f.wire == 2;
    if (f.num == 1 && ld) {
      out->descriptor = f.bytes;
      out->has_descriptor = 1;
    } else if (f.num == 2 && ld) out->header = f.bytes;
    else if (f.num == 3 && ld) out->app_metadata = f.bytes;
    else if (f.num == 1000 && ld) out->body = f.bytes;
    else if (f.num <= 3 || f.num == 1000)
      return sp_fail(err, SP_EINVAL, "flight data: field %u has the wrong wire type", (unsigned)f.num);
  }
  return SP_OK;
}

int sp_flight_descriptor_path(const uint8_t *data, size_t len, char *out, size_t n, sp_error *err) {
  size_t used = 0, k = 0;
  sp_pb_bytes seg;
  for (; sp_flight_nth_bytes(data, len, 3, k, &seg) == SP_OK; k++) {
    if (seg.len == 0 || memchr(seg.data, '\0', seg.len))
      return sp_fail(err, SP_EINVAL, "flight descriptor: path segment %zu is empty or holds a NUL byte", k + 1);
    if (used + (k > 0) + seg.len + 1 > n) return sp_fail(err, SP_EINVAL, "flight descriptor: the path is too long");
    if (k > 0) out[used++] = '.';
    memcpy(out + used, seg.data, seg.len);
    used += seg.len;
  }
  if (k == 0) return sp_fail(err, SP_EINVAL, "flight descriptor: the path is empty");
  out[used] = '\0';
  return SP_OK;
}

int sp_flight_put_bytes(sp_buf *out, unsigned num, const void *data, size_t len, sp_error *err) {
  SP_TRY(reserve(out, ld_size(num, len), err));
  put_ld_head(out, num, len);
  put_bytes(out, data, len);
  return SP_OK;
}

int sp_flight_put_varint(sp_buf *out, unsigned num, uint64_t v, sp_error *err) {
  SP_TRY(reserve(out, 20, err));
  put_varint(out, (uint64_t)num << 3 | 0);
  put_varint(out, v);
  return SP_OK;
}

int sp_flight_put_sql_any(sp_buf *out, const char *name, const void *value, size_t len, sp_error *err) {
  static const char prefix[] = SP_FLIGHT_SQL_PREFIX;
  size_t url_len = sizeof prefix - 1 + strlen(name);
  SP_TRY(reserve(out, ld_size(1, url_len) + ld_size(2, len), err));
  put_ld_head(out, 1, url_len);
  put_bytes(out, prefix, sizeof prefix - 1);
  put_bytes(out, name, strlen(name));
  put_ld_head(out, 2, len);
  put_bytes(out, value, len);
  return SP_OK;
}
