/* SPDX-License-Identifier: Apache-2.0
 *
 * The Flight client (src/flight/): its protobuf codec against the server's (each side decodes what the other
 * encodes), endpoint parsing, and calls against a real in-process Flight server over loopback: schemas,
 * streamed results across many batches, server errors mapped to codes, a stream released early, an endpoint
 * where nothing listens, and the flightsql / spice.ai connectors' scan with the filter applied by the remote.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "flight/client.h"
#include "flight/wire.h"
#include "server/flight.h"
#include "server/flight_proto.h"
#include "spice/arrow.h"
#include "spice/connector.h"
#include "spice/runtime.h"

/* ---- Codec ------------------------------------------------------------------------------------------------ */

static void test_descriptor_decodes_on_the_server(void **state) {
  (void)state;
  sp_buf b = {0};
  const char *sql = "SELECT 'é', 1";
  assert_int_equal(sp_flw_encode_descriptor_cmd(sql, strlen(sql), &b, NULL), SP_OK);
  sp_flight_descriptor d;
  assert_int_equal(sp_flight_decode_descriptor((const uint8_t *)b.data, b.len, &d, NULL), SP_OK);
  assert_int_equal(d.type, SP_FLIGHT_DESC_CMD);
  assert_int_equal(d.cmd.len, strlen(sql));
  assert_memory_equal(d.cmd.data, sql, strlen(sql));
  b.len = 0;
  assert_int_equal(sp_flw_encode_ticket("q:x", 3, &b, NULL), SP_OK);
  sp_pb_bytes t;
  assert_int_equal(sp_flight_decode_ticket((const uint8_t *)b.data, b.len, &t, NULL), SP_OK);
  assert_int_equal(t.len, 3);
  assert_memory_equal(t.data, "q:x", 3);
  b.len = 0;
  assert_int_equal(sp_flw_encode_handshake(7, "pay", 3, &b, NULL), SP_OK);
  uint64_t version;
  sp_pb_bytes payload;
  assert_int_equal(sp_flight_decode_handshake((const uint8_t *)b.data, b.len, &version, &payload, NULL), SP_OK);
  assert_int_equal(version, 7);
  assert_memory_equal(payload.data, "pay", 3);
  sp_buf_free(&b);
}

static void test_statement_query_unwraps_on_the_server(void **state) {
  (void)state;
  sp_buf b = {0};
  const char *sql = "SELECT 1 AS one";
  assert_int_equal(sp_flw_encode_statement_query(sql, strlen(sql), &b, NULL), SP_OK);
  sp_pb_bytes name, value;
  assert_int_equal(sp_flight_sql_unwrap((const uint8_t *)b.data, b.len, &name, &value), 1);
  assert_int_equal(name.len, strlen("CommandStatementQuery"));
  assert_memory_equal(name.data, "CommandStatementQuery", name.len);
  sp_pb_msg m;
  assert_int_equal(sp_flight_decode_fields(value.data, value.len, &m, NULL), SP_OK);
  assert_true(m.present & (1u << 1)); /* CommandStatementQuery.query */
  assert_int_equal(m.bytes[1].len, strlen(sql));
  assert_memory_equal(m.bytes[1].data, sql, strlen(sql));
  sp_buf_free(&b);
}

static void test_server_info_decodes_on_the_client(void **state) {
  (void)state;
  sp_buf b = {0};
  const uint8_t schema[] = {0xff, 0xff, 0xff, 0xff, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
  const uint8_t desc[] = {0x08, 0x02, 0x12, 0x01, 'x'};
  assert_int_equal(sp_flight_encode_info(schema, sizeof schema, desc, sizeof desc, (const uint8_t *)"tick", 4, &b, NULL),
                   SP_OK);
  sp_flw_info info;
  assert_int_equal(sp_flw_decode_info((const uint8_t *)b.data, b.len, &info, NULL), SP_OK);
  assert_int_equal(info.schema.len, sizeof schema);
  assert_memory_equal(info.schema.data, schema, sizeof schema);
  assert_int_equal(info.n_endpoints, 1);
  assert_int_equal(info.n_locations, 0);
  assert_int_equal(info.ticket.len, 4);
  assert_memory_equal(info.ticket.data, "tick", 4);
  assert_int_equal(info.total_records, -1);
  b.len = 0;
  assert_int_equal(sp_flight_encode_schema_result(schema, sizeof schema, &b, NULL), SP_OK);
  sp_flw_bytes s;
  assert_int_equal(sp_flw_decode_schema_result((const uint8_t *)b.data, b.len, &s, NULL), SP_OK);
  assert_int_equal(s.len, sizeof schema);
  sp_buf_free(&b);
}

static void test_flight_data_prefix_and_body(void **state) {
  (void)state;
  sp_buf b = {0};
  const uint8_t header[] = {10, 20, 30}, body[] = {1, 2, 3, 4, 5};
  assert_int_equal(sp_flight_encode_data_prefix(header, sizeof header, sizeof body, &b, NULL), SP_OK);
  assert_int_equal(sp_buf_append(&b, body, sizeof body), SP_OK);
  sp_flw_data d;
  assert_int_equal(sp_flw_decode_data((const uint8_t *)b.data, b.len, &d, NULL), SP_OK);
  assert_int_equal(d.header.len, 3);
  assert_memory_equal(d.header.data, header, 3);
  assert_int_equal(d.body.len, 5);
  assert_memory_equal(d.body.data, body, 5);
  assert_int_equal(d.app_metadata.len, 0);
  sp_buf_free(&b);
}

static void test_malformed_answers_are_refused(void **state) {
  (void)state;
  sp_error err = {0};
  sp_flw_info info;
  sp_flw_data d;
  sp_flw_bytes s;
  const uint8_t truncated[] = {0x0a, 0x05, 1, 2};      /* field 1, 5 bytes announced, 2 present */
  const uint8_t wrong_wire[] = {0x18, 0x01};           /* field 3 (endpoint) as a varint */
  const uint8_t long_varint[] = {0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  const uint8_t field_zero[] = {0x02, 0x00};
  assert_int_equal(sp_flw_decode_info(truncated, sizeof truncated, &info, &err), SP_EINVAL);
  assert_non_null(strstr(err.msg, "malformed"));
  assert_int_equal(sp_flw_decode_info(wrong_wire, sizeof wrong_wire, &info, &err), SP_EINVAL);
  assert_non_null(strstr(err.msg, "wire type"));
  assert_int_equal(sp_flw_decode_info(long_varint, sizeof long_varint, &info, &err), SP_EINVAL);
  assert_int_equal(sp_flw_decode_data(field_zero, sizeof field_zero, &d, &err), SP_EINVAL);
  assert_int_equal(sp_flw_decode_schema_result(truncated, sizeof truncated, &s, &err), SP_EINVAL);
  /* An endpoint whose ticket is malformed fails the whole answer. */
  const uint8_t bad_ticket[] = {0x1a, 0x04, 0x0a, 0x02, 0x0a, 0x09};
  assert_int_equal(sp_flw_decode_info(bad_ticket, sizeof bad_ticket, &info, &err), SP_EINVAL);
  /* Unknown fields of every wire type are skipped. */
  const uint8_t unknown[] = {0x28, 0x05, 0x31, 1, 2, 3, 4, 5, 6, 7, 8, 0x3d, 1, 2, 3, 4, 0x42, 0x01, 'z'};
  assert_int_equal(sp_flw_decode_data(unknown, sizeof unknown, &d, &err), SP_OK);
  assert_int_equal(d.header.len, 0);
}

static void test_endpoints(void **state) {
  (void)state;
  char t[256];
  int tls = -1;
  sp_error err = {0};
  assert_int_equal(sp_flight_parse_endpoint("grpc://127.0.0.1:50051", t, sizeof t, &tls, &err), SP_OK);
  assert_string_equal(t, "127.0.0.1:50051");
  assert_int_equal(tls, 0);
  assert_int_equal(sp_flight_parse_endpoint("grpc+tls://flight.example.com", t, sizeof t, &tls, &err), SP_OK);
  assert_string_equal(t, "flight.example.com:443");
  assert_int_equal(tls, 1);
  assert_int_equal(sp_flight_parse_endpoint("https://flight.spiceai.io/", t, sizeof t, &tls, &err), SP_OK);
  assert_string_equal(t, "flight.spiceai.io:443");
  assert_int_equal(sp_flight_parse_endpoint("http://localhost", t, sizeof t, &tls, &err), SP_OK);
  assert_string_equal(t, "localhost:50051");
  assert_int_equal(tls, 0);
  assert_int_equal(sp_flight_parse_endpoint("[::1]:9000", t, sizeof t, &tls, &err), SP_OK);
  assert_string_equal(t, "[::1]:9000");
  assert_int_equal(sp_flight_parse_endpoint("[::1]", t, sizeof t, &tls, &err), SP_OK);
  assert_string_equal(t, "[::1]:50051");
  assert_int_equal(sp_flight_parse_endpoint("ftp://x:1", t, sizeof t, &tls, &err), SP_EINVAL);
  assert_non_null(strstr(err.msg, "ftp://x:1"));
  assert_int_equal(sp_flight_parse_endpoint("grpc://", t, sizeof t, &tls, &err), SP_EINVAL);
  assert_int_equal(sp_flight_parse_endpoint("", t, sizeof t, &tls, &err), SP_EINVAL);
}

/* ---- Against a real server -------------------------------------------------------------------------------- */

#define ROWS 100000

static char tmpdir[256], oldcwd[1024];
static sp_runtime *rt;
static sp_flight_server *srv;
static char endpoint[160];

static const char POD[] = "version: v1\nkind: Spicepod\nname: t\ndatasets:\n"
                          "  - from: file:data.csv\n    name: items\n    acceleration:\n      enabled: true\n";

static int server_up(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/spicec-flc-XXXXXX");
  if (mkdtemp(tmpdir) == NULL || getcwd(oldcwd, sizeof oldcwd) == NULL || chdir(tmpdir) != 0) return -1;
  FILE *f = fopen("data.csv", "w");
  fprintf(f, "id,name,score\n");
  for (int i = 1; i <= ROWS; i++) fprintf(f, "%d,n%d,%d.5\n", i, i % 10, i % 7);
  fclose(f);
  f = fopen("spicepod.yaml", "w");
  fputs(POD, f);
  fclose(f);
  sp_error err = {0};
  sp_runtime_options o = {0};
  if (sp_runtime_create(&o, &rt, &err) != SP_OK || sp_runtime_start(rt, &err) != SP_OK) return -1;
  for (int i = 0; i < 400 && !sp_runtime_ready(rt); i++) usleep(50000);
  if (!sp_runtime_ready(rt) || sp_flight_start(rt, NULL, "127.0.0.1:0", &srv, &err) != SP_OK) return -1;
  snprintf(endpoint, sizeof endpoint, "grpc://%s", sp_flight_endpoint(srv));
  return 0;
}

static int server_down(void **state) {
  (void)state;
  char cmd[400];
  sp_flight_stop(srv);
  sp_runtime_destroy(rt);
  if (chdir(oldcwd) != 0) return -1;
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  return system(cmd);
}

static void test_schema(void **state) {
  (void)state;
  sp_flight_client *c;
  sp_error err = {0};
  assert_int_equal(sp_flight_client_open(endpoint, &c, &err), SP_OK);
  struct ArrowSchema s;
  assert_int_equal(sp_flight_client_schema(c, "SELECT id, name AS label FROM items", &s, &err), SP_OK);
  assert_int_equal(s.n_children, 2);
  assert_string_equal(s.children[0]->name, "id");
  assert_string_equal(s.children[1]->name, "label");
  assert_string_equal(s.children[1]->format, "u");
  s.release(&s);
  sp_flight_client_close(c);
}

/* Streams every row (many FlightData messages) and checks the sum of ids and the row count. */
static void test_query_streams_every_row(void **state) {
  (void)state;
  sp_flight_client *c;
  sp_error err = {0};
  assert_int_equal(sp_flight_client_open(endpoint, &c, &err), SP_OK);
  struct ArrowArrayStream st;
  sp_flight_result_info info;
  assert_int_equal(sp_flight_client_query(c, "SELECT id::BIGINT AS id, name FROM items", &st, &info, &err), SP_OK);
  struct ArrowSchema s;
  assert_int_equal(st.get_schema(&st, &s), 0);
  assert_string_equal(s.children[0]->format, "l");
  s.release(&s);
  int64_t rows = 0, sum = 0, batches = 0;
  for (;;) {
    struct ArrowArray a;
    assert_int_equal(st.get_next(&st, &a), 0);
    if (a.release == NULL) break;
    const struct ArrowArray *id = a.children[0];
    for (int64_t i = 0; i < id->length; i++) sum += ((const int64_t *)id->buffers[1])[id->offset + i];
    rows += a.length;
    batches++;
    a.release(&a);
  }
  assert_int_equal(rows, ROWS);
  assert_int_equal(sum, (int64_t)ROWS * (ROWS + 1) / 2);
  assert_true(batches > 1);
  assert_int_equal(sp_flight_stream_info(&st, &info, &err), SP_OK);
  st.release(&st);
  sp_flight_client_close(c);
}

static void test_server_errors_map_to_codes(void **state) {
  (void)state;
  sp_flight_client *c;
  sp_error err = {0};
  struct ArrowArrayStream st;
  assert_int_equal(sp_flight_client_open(endpoint, &c, &err), SP_OK);
  assert_int_equal(sp_flight_client_query(c, "SELEC nonsense", &st, NULL, &err), SP_EINVAL);
  assert_non_null(strstr(err.msg, endpoint));
  assert_non_null(strstr(err.msg, "INVALID_ARGUMENT"));
  int rc = sp_flight_client_query(c, "SELECT * FROM no_such_table", &st, NULL, &err);
  assert_true(rc == SP_ENOTFOUND || rc == SP_EINVAL);
  assert_non_null(strstr(err.msg, "no_such_table"));
  struct ArrowSchema s;
  assert_int_equal(sp_flight_client_schema(c, "SELEC 1", &s, &err), SP_EINVAL);
  sp_flight_client_close(c);
}

/* Flight SQL mode: the same query as a CommandStatementQuery gives the same rows. */
static void test_flight_sql_mode(void **state) {
  (void)state;
  sp_flight_client *c;
  sp_error err = {0};
  assert_int_equal(sp_flight_client_open(endpoint, &c, &err), SP_OK);
  sp_flight_client_set_flight_sql(c, 1);
  struct ArrowSchema s;
  assert_int_equal(sp_flight_client_schema(c, "SELECT id, name FROM items WHERE id < 0", &s, &err), SP_OK);
  assert_int_equal(s.n_children, 2);
  assert_string_equal(s.children[1]->name, "name");
  s.release(&s);
  struct ArrowArrayStream st;
  assert_int_equal(sp_flight_client_query(c, "SELECT sum(id)::BIGINT AS total FROM items WHERE id <= 10", &st, NULL, &err),
                   SP_OK);
  struct ArrowArray a;
  assert_int_equal(st.get_next(&st, &a), 0);
  assert_non_null(a.release);
  assert_int_equal(((const int64_t *)a.children[0]->buffers[1])[a.children[0]->offset], 55);
  a.release(&a);
  st.release(&st);
  assert_int_equal(sp_flight_client_query(c, "SELEC nonsense", &st, NULL, &err), SP_EINVAL);
  sp_flight_client_close(c);
}

/* Releasing a stream after its first batch cancels the call; the client and server stay usable. */
static void test_release_mid_stream(void **state) {
  (void)state;
  sp_flight_client *c;
  sp_error err = {0};
  assert_int_equal(sp_flight_client_open(endpoint, &c, &err), SP_OK);
  for (int round = 0; round < 3; round++) {
    struct ArrowArrayStream st;
    assert_int_equal(sp_flight_client_query(c, "SELECT * FROM items", &st, NULL, &err), SP_OK);
    struct ArrowArray a;
    assert_int_equal(st.get_next(&st, &a), 0);
    assert_non_null(a.release);
    a.release(&a);
    st.release(&st);
  }
  struct ArrowSchema s;
  assert_int_equal(sp_flight_client_schema(c, "SELECT 1 AS one", &s, &err), SP_OK);
  s.release(&s);
  sp_flight_client_close(c);
}

static void test_nothing_listening_is_econnect(void **state) {
  (void)state;
  sp_flight_client *c;
  sp_error err = {0};
  /* Port 1 on loopback: nothing listens there (and an unprivileged test cannot bind it). */
  assert_int_equal(sp_flight_client_open("grpc://127.0.0.1:1", &c, &err), SP_OK);
  struct ArrowSchema s;
  assert_int_equal(sp_flight_client_schema(c, "SELECT 1", &s, &err), SP_ECONNECT);
  assert_non_null(strstr(err.msg, "could not connect to flight endpoint \"grpc://127.0.0.1:1\""));
  struct ArrowArrayStream st;
  assert_int_equal(sp_flight_client_query(c, "SELECT 1", &st, NULL, &err), SP_ECONNECT);
  sp_flight_client_close(c);
}

static void test_handshake_then_query(void **state) {
  (void)state;
  sp_flight_client *c;
  sp_error err = {0};
  assert_int_equal(sp_flight_client_open(endpoint, &c, &err), SP_OK);
  int rc = sp_flight_client_handshake_basic(c, "user", "secret-password", &err);
  if (rc != SP_OK) { /* a server with API keys refuses: the message must not show the password */
    assert_int_equal(rc, SP_EUNAUTH);
    assert_null(strstr(err.msg, "secret-password"));
  } else {
    struct ArrowSchema s;
    assert_int_equal(sp_flight_client_schema(c, "SELECT 2 AS two", &s, &err), SP_OK);
    s.release(&s);
  }
  sp_flight_client_close(c);
}

/* ---- The connectors --------------------------------------------------------------------------------------- */

extern const sp_connector_module sp_connector_flightsql, sp_connector_spice_ai;

typedef struct conn_box {
  sp_dataset_spec spec;
  sp_connector *c;
} conn_box;

static int open_connector(const sp_connector_module *m, const char *path, const char *ep, conn_box *box, sp_error *err) {
  memset(box, 0, sizeof *box);
  box->spec.name = "remote_items";
  box->spec.path = (char *)path;
  sp_params raw = {0};
  char key[64];
  snprintf(key, sizeof key, "%s_endpoint", m->prefix);
  sp_params_set(&raw, key, ep, 0, 0);
  int rc = sp_connector_instance_create(m, &box->spec, &raw, NULL, NULL, &box->c, err);
  sp_params_free(&raw);
  return rc;
}

static void close_connector(conn_box *box) { sp_connector_instance_close(box->c); }

/* A scan whose filter the remote applies: called directly (no engine to filter again), only matching rows
 * come back, in the projected columns. */
static void test_connector_scan_pushes_filter(void **state) {
  (void)state;
  conn_box box;
  sp_error err = {0};
  if (open_connector(&sp_connector_flightsql, "items", endpoint, &box, &err) != SP_OK) fail_msg("%s", err.msg);
  struct ArrowSchema s;
  assert_int_equal(box.c->module->get_schema(box.c, &s, &err), SP_OK);
  assert_int_equal(s.n_children, 3);
  s.release(&s);
  const char *cols[] = {"name", "id"};
  sp_scan scan = {.columns = cols, .n_columns = 2, .limit = -1,
                  .filter_query = "SELECT * FROM remote_items WHERE id <= 20 AND name = 'n3'"};
  struct ArrowArrayStream st;
  assert_int_equal(box.c->module->scan(box.c, &scan, &st, &err), SP_OK);
  int64_t rows = 0;
  struct ArrowArray a;
  while (st.get_next(&st, &a) == 0 && a.release) {
    assert_int_equal(a.n_children, 2);
    for (int64_t i = 0; i < a.length; i++) {
      int64_t id = ((const int64_t *)a.children[1]->buffers[1])[a.children[1]->offset + i];
      assert_true(id == 3 || id == 13);
    }
    rows += a.length;
    a.release(&a);
  }
  st.release(&st);
  assert_int_equal(rows, 2);
  sp_scan limited = {.limit = 7};
  assert_int_equal(box.c->module->scan(box.c, &limited, &st, &err), SP_OK);
  rows = 0;
  while (st.get_next(&st, &a) == 0 && a.release) rows += a.length, a.release(&a);
  st.release(&st);
  assert_int_equal(rows, 7);
  close_connector(&box);
}

static void test_connector_open_errors(void **state) {
  (void)state;
  conn_box box;
  sp_error err = {0};
  assert_int_equal(open_connector(&sp_connector_spice_ai, "spice.ai/no_such_table", endpoint, &box, &err), SP_ENOTFOUND);
  assert_non_null(strstr(err.msg, "no_such_table"));
  assert_int_equal(open_connector(&sp_connector_spice_ai, "items", "grpc://127.0.0.1:1", &box, &err), SP_ECONNECT);
  assert_int_equal(open_connector(&sp_connector_flightsql, "a/b", endpoint, &box, &err), SP_EINVAL);
  assert_int_equal(open_connector(&sp_connector_flightsql, "a..b", endpoint, &box, &err), SP_EINVAL);
  /* The org/app/datasets path form names the table after "datasets/". */
  assert_int_equal(open_connector(&sp_connector_spice_ai, "spice.ai/org/app/datasets/items", endpoint, &box, &err), SP_OK);
  close_connector(&box);
}

int main(void) {
  const struct CMUnitTest codec[] = {
      cmocka_unit_test(test_descriptor_decodes_on_the_server),
      cmocka_unit_test(test_statement_query_unwraps_on_the_server),
      cmocka_unit_test(test_server_info_decodes_on_the_client),
      cmocka_unit_test(test_flight_data_prefix_and_body),
      cmocka_unit_test(test_malformed_answers_are_refused),
      cmocka_unit_test(test_endpoints),
  };
  const struct CMUnitTest live[] = {
      cmocka_unit_test(test_schema),
      cmocka_unit_test(test_query_streams_every_row),
      cmocka_unit_test(test_server_errors_map_to_codes),
      cmocka_unit_test(test_flight_sql_mode),
      cmocka_unit_test(test_release_mid_stream),
      cmocka_unit_test(test_nothing_listening_is_econnect),
      cmocka_unit_test(test_handshake_then_query),
      cmocka_unit_test(test_connector_scan_pushes_filter),
      cmocka_unit_test(test_connector_open_errors),
  };
  int failed = cmocka_run_group_tests_name("flight client codec", codec, NULL, NULL);
  return failed + cmocka_run_group_tests_name("flight client live", live, server_up, server_down);
}
