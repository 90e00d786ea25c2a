/* SPDX-License-Identifier: Apache-2.0
 *
 * The hand-written Flight protobuf codec (src/server/flight_proto.c): the bytes the Spice SDK really sends
 * (flight-notes §6), round trips of what the server writes, and malformed input refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "server/flight_proto.h"

static void test_descriptor_from_sdk(void **state) {
  (void)state;
  /* FlightDescriptor{type=CMD, cmd="SELECT 1"}, as captured from @spiceai/spice 3.2.0 */
  static const uint8_t req[] = {0x08, 0x02, 0x12, 0x08, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1'};
  sp_flight_descriptor d;
  sp_error err = {0};
  assert_int_equal(sp_flight_decode_descriptor(req, sizeof req, &d, &err), SP_OK);
  assert_int_equal(d.type, SP_FLIGHT_DESC_CMD);
  assert_int_equal(d.cmd.len, 8);
  assert_memory_equal(d.cmd.data, "SELECT 1", 8);
  assert_int_equal(d.n_path, 0);
}

static void test_unknown_fields_skipped(void **state) {
  (void)state;
  /* field 9 varint, field 10 fixed64, field 11 fixed32, field 12 bytes, then the ticket */
  static const uint8_t req[] = {0x48, 0x96, 0x01, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5d, 1, 2, 3, 4,
                                0x62, 0x01, 0xaa, 0x0a, 0x02, 'h', 'i'};
  sp_pb_bytes t;
  assert_int_equal(sp_flight_decode_ticket(req, sizeof req, &t, NULL), SP_OK);
  assert_int_equal(t.len, 2);
  assert_memory_equal(t.data, "hi", 2);
}

static void test_malformed_refused(void **state) {
  (void)state;
  sp_flight_descriptor d;
  sp_pb_bytes t;
  sp_error err = {0};
  static const uint8_t lying_len[] = {0x12, 0x7f, 0x01};
  assert_int_equal(sp_flight_decode_descriptor(lying_len, sizeof lying_len, &d, &err), SP_EINVAL);
  assert_string_equal(err.msg, "flight descriptor: malformed protobuf");
  static const uint8_t endless_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  assert_int_equal(sp_flight_decode_descriptor(endless_varint, sizeof endless_varint, &d, NULL), SP_EINVAL);
  static const uint8_t wrong_wire[] = {0x08 | 2, 0x00}; /* type as bytes */
  assert_int_equal(sp_flight_decode_descriptor(wrong_wire, sizeof wrong_wire, &d, &err), SP_EINVAL);
  assert_string_equal(err.msg, "flight descriptor: field 1 has the wrong wire type");
  static const uint8_t field_zero[] = {0x02, 0x00};
  assert_int_equal(sp_flight_decode_ticket(field_zero, sizeof field_zero, &t, NULL), SP_EINVAL);
  static const uint8_t group[] = {0x0b};
  assert_int_equal(sp_flight_decode_ticket(group, sizeof group, &t, NULL), SP_EINVAL);
  static const uint8_t short_fixed[] = {0x51, 1, 2};
  assert_int_equal(sp_flight_decode_ticket(short_fixed, sizeof short_fixed, &t, NULL), SP_EINVAL);
}

/* Reads one length-delimited field at *p (key must match), returns its bytes and advances. */
static const uint8_t *ld(const uint8_t **p, uint8_t key, size_t *len) {
  assert_int_equal(**p, key);
  (*p)++;
  size_t n = 0;
  int shift = 0;
  while (**p & 0x80) n |= (size_t)(*(*p)++ & 0x7f) << shift, shift += 7;
  n |= (size_t)(*(*p)++) << shift;
  const uint8_t *data = *p;
  *p += n;
  *len = n;
  return data;
}

static void test_flight_info_layout(void **state) {
  (void)state;
  sp_buf out = {0};
  static const uint8_t desc[] = {0x08, 0x02, 0x12, 0x01, 'q'};
  assert_int_equal(sp_flight_encode_info((const uint8_t *)"SCHEMA", 6, desc, sizeof desc, (const uint8_t *)"q", 1,
                                         &out, NULL), SP_OK);
  const uint8_t *p = (const uint8_t *)out.data, *end = p + out.len;
  size_t n;
  assert_memory_equal(ld(&p, 0x0a, &n), "SCHEMA", 6);
  assert_memory_equal(ld(&p, 0x12, &n), desc, sizeof desc);
  const uint8_t *ep = ld(&p, 0x1a, &n); /* FlightEndpoint{ticket=Ticket{ticket="q"}} */
  assert_int_equal(n, 5);
  const uint8_t *tk = ld(&ep, 0x0a, &n);
  sp_pb_bytes t;
  assert_int_equal(sp_flight_decode_ticket(tk, n, &t, NULL), SP_OK);
  assert_memory_equal(t.data, "q", 1);
  /* total_records and total_bytes: -1 as 10-byte varints */
  static const uint8_t minus_one[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  assert_int_equal(*p++, 0x20);
  assert_memory_equal(p, minus_one, 10);
  p += 10;
  assert_int_equal(*p++, 0x28);
  assert_memory_equal(p, minus_one, 10);
  p += 10;
  assert_ptr_equal(p, end);
  sp_buf_free(&out);
}

static void test_flight_data_prefix(void **state) {
  (void)state;
  sp_buf out = {0};
  assert_int_equal(sp_flight_encode_data_prefix((const uint8_t *)"HDR", 3, 300, &out, NULL), SP_OK);
  /* data_header (field 2), then the key of data_body (field 1000, wire 2 = 0xc2 0x3e) and varint 300 */
  static const uint8_t want[] = {0x12, 0x03, 'H', 'D', 'R', 0xc2, 0x3e, 0xac, 0x02};
  assert_int_equal(out.len, sizeof want);
  assert_memory_equal(out.data, want, sizeof want);
  out.len = 0;
  assert_int_equal(sp_flight_encode_data_prefix((const uint8_t *)"HDR", 3, 0, &out, NULL), SP_OK);
  assert_int_equal(out.len, 5); /* no body field at all */
  sp_buf_free(&out);
}

static void test_schema_result(void **state) {
  (void)state;
  sp_buf out = {0};
  assert_int_equal(sp_flight_encode_schema_result((const uint8_t *)"SCH", 3, &out, NULL), SP_OK);
  static const uint8_t want[] = {0x0a, 0x03, 'S', 'C', 'H'};
  assert_int_equal(out.len, sizeof want);
  assert_memory_equal(out.data, want, sizeof want);
  sp_buf_free(&out);
}

static void test_handshake_round_trip(void **state) {
  (void)state;
  sp_buf out = {0};
  assert_int_equal(sp_flight_encode_handshake(1, (const uint8_t *)"tok", 3, &out, NULL), SP_OK);
  uint64_t v;
  sp_pb_bytes payload;
  assert_int_equal(sp_flight_decode_handshake((const uint8_t *)out.data, out.len, &v, &payload, NULL), SP_OK);
  assert_int_equal(v, 1);
  assert_int_equal(payload.len, 3);
  assert_memory_equal(payload.data, "tok", 3);
  sp_buf_free(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_descriptor_from_sdk), cmocka_unit_test(test_unknown_fields_skipped),
      cmocka_unit_test(test_malformed_refused),   cmocka_unit_test(test_flight_info_layout),
      cmocka_unit_test(test_flight_data_prefix),  cmocka_unit_test(test_handshake_round_trip),
      cmocka_unit_test(test_schema_result),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
