/* SPDX-License-Identifier: Apache-2.0
 *
 * DoAction and ListActions (CreatePreparedStatement, ClosePreparedStatement, refresh), ListFlights (one
 * FlightInfo per dataset) and the DoPut dispatch (prepared-statement parameters: flight_sql.c; appends:
 * flight_put.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/flight_int.h"
#include "spice/log.h"
#include "spice/sqltext.h"

static const struct {
  const char *type, *description;
} actions[] = {
    {"CreatePreparedStatement", "Creates a reusable prepared statement resource on the server.\n"
                                "Request Message: ActionCreatePreparedStatementRequest\n"
                                "Response Message: ActionCreatePreparedStatementResult"},
    {"ClosePreparedStatement", "Closes a reusable prepared statement resource on the server.\n"
                               "Request Message: ActionClosePreparedStatementRequest\n"
                               "Response Message: N/A"},
    {"refresh", "Refreshes the accelerated dataset named by the body (UTF-8).\n"
                "Response Message: one Result whose body is the JSON {\"message\": ...}"},
};

void sp__flight_list_actions(fl_call *c) {
  sp_error err = {0};
  sp_buf msg = {0};
  for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
    msg.len = 0;
    int rc = sp_flight_put_bytes(&msg, 1, actions[i].type, strlen(actions[i].type), &err);
    if (rc == SP_OK) rc = sp_flight_put_bytes(&msg, 2, actions[i].description, strlen(actions[i].description), &err);
    if (rc != SP_OK) {
      sp__flight_error(c, &err);
      sp_buf_free(&msg);
      return;
    }
    if (!sp__flight_send_buf(c, msg.data, msg.len, -1)) break;
  }
  sp_buf_free(&msg);
  sp__flight_status(c, GRPC_STATUS_OK, "");
}

/* The refresh action: body = the dataset's name; answers Result{body = {"message": "..."}} like the HTTP API. */
static void refresh(fl_call *c, sp_pb_bytes body) {
  sp_error err = {0};
  char name[256], canonical[256], json[700];
  if (body.len == 0 || body.len >= sizeof name || memchr(body.data, '\0', body.len)) {
    sp_fail(&err, SP_EINVAL, "refresh: the action body must be a dataset name");
    sp__flight_error(c, &err);
    return;
  }
  memcpy(name, body.data, body.len);
  name[body.len] = '\0';
  if (sp_runtime_refresh(c->srv->rt, name, NULL, canonical, &err) != SP_OK) {
    sp__flight_error(c, &err);
    return;
  }
  snprintf(json, sizeof json, "{\"message\":\"Dataset refresh triggered for %s.\"}", canonical);
  sp_buf msg = {0};
  if (sp_flight_put_bytes(&msg, 1, json, strlen(json), &err) == SP_OK)
    sp__flight_send_buf(c, msg.data, msg.len, GRPC_STATUS_OK);
  else sp__flight_error(c, &err);
  sp_buf_free(&msg);
}

void sp__flight_do_action(fl_call *c) {
  sp_error err = {0};
  grpc_slice req = sp__flight_request(c->payload);
  sp_pb_msg m;
  if (sp_flight_decode_fields(GRPC_SLICE_START_PTR(req), GRPC_SLICE_LENGTH(req), &m, &err) != SP_OK) {
    sp__flight_error(c, &err);
    grpc_slice_unref(req);
    return;
  }
  sp_pb_bytes type = m.bytes[1], body = m.bytes[2];
#define IS(s) (type.len == strlen(s) && memcmp(type.data, s, type.len) == 0)
  if (IS("CreatePreparedStatement")) sp__flight_sql_create_prepared(c, body);
  else if (IS("ClosePreparedStatement")) sp__flight_sql_close_prepared(c, body);
  else if (IS("refresh")) refresh(c, body);
  else {
    char msg[300];
    snprintf(msg, sizeof msg, "Unknown action type: %.*s", (int)(type.len > 200 ? 200 : type.len),
             (const char *)type.data);
    sp__flight_status(c, GRPC_STATUS_INVALID_ARGUMENT, msg);
  }
#undef IS
  grpc_slice_unref(req);
}

/* ---- ListFlights ---------------------------------------------------------------------------------------- */

/* FlightInfo of one dataset: descriptor PATH [name], its schema (empty while it cannot be planned), and a
 * ticket that reads it all. */
static int flight_of(sp_flight_server *s, const char *name, sp_buf *out, sp_error *err) {
  char ident[600], sql[700];
  if (sp_sql_ident(ident, sizeof ident, name) != 0) return sp_fail(err, SP_EINVAL, "dataset name too long");
  snprintf(sql, sizeof sql, "SELECT * FROM %s", ident);
  struct ArrowSchema schema = {0};
  sp_buf ipc = {0}, desc = {0};
  sp_query_request req = {.sql = sql};
  int rc = sp_runtime_query_schema(s->rt, &req, &schema, NULL) == SP_OK ? sp__flight_schema_ipc(&schema, &ipc, err)
                                                                        : SP_OK;
  if (schema.release) schema.release(&schema);
  if (rc == SP_OK) rc = sp_flight_put_varint(&desc, 1, SP_FLIGHT_DESC_PATH, err);
  if (rc == SP_OK) rc = sp_flight_put_bytes(&desc, 3, name, strlen(name), err);
  if (rc == SP_OK)
    rc = sp_flight_encode_info((const uint8_t *)ipc.data, ipc.len, (const uint8_t *)desc.data, desc.len,
                               (const uint8_t *)sql, strlen(sql), out, err);
  sp_buf_free(&ipc);
  sp_buf_free(&desc);
  return rc;
}

void sp__flight_list_flights(fl_call *c) {
  sp_error err = {0};
  sp_dataset_info *d = malloc(sizeof *d);
  sp_buf info = {0};
  int rc = d ? SP_OK : sp_fail(&err, SP_ENOMEM, "flight: out of memory");
  size_t n = sp_runtime_dataset_count(c->srv->rt);
  for (size_t i = 0; rc == SP_OK && i < n; i++) {
    if (sp_runtime_dataset_info(c->srv->rt, i, d) != SP_OK) continue;
    info.len = 0;
    rc = flight_of(c->srv, d->name, &info, &err);
    if (rc == SP_OK && !sp__flight_send_buf(c, info.data, info.len, -1)) rc = SP_ECANCELED;
  }
  free(d);
  sp_buf_free(&info);
  if (rc == SP_OK) sp__flight_status(c, GRPC_STATUS_OK, "");
  else if (rc != SP_ECANCELED) sp__flight_error(c, &err);
}

/* ---- DoPut ---------------------------------------------------------------------------------------------- */

static bool is_name(sp_pb_bytes name, const char *s) {
  return name.len == strlen(s) && memcmp(name.data, s, name.len) == 0;
}

/* CommandStatementIngest{table = 2, schema = 3}: the dataset "schema.table" or "table". */
static void put_ingest(fl_call *c, sp_pb_bytes value, const sp_flight_data *first) {
  sp_error err = {0};
  sp_pb_msg m;
  char name[600];
  if (sp_flight_decode_fields(value.data, value.len, &m, &err) != SP_OK) {
    sp__flight_error(c, &err);
    return;
  }
  sp_pb_bytes t = m.bytes[2], sch = m.bytes[3];
  if (t.len == 0 || t.len > 255 || sch.len > 255 || memchr(t.data, 0, t.len) || (sch.len && memchr(sch.data, 0, sch.len))) {
    sp__flight_status(c, GRPC_STATUS_INVALID_ARGUMENT, "CommandStatementIngest: a table name is required");
    return;
  }
  if (sch.len) snprintf(name, sizeof name, "%.*s.%.*s", (int)sch.len, (const char *)sch.data, (int)t.len, (const char *)t.data);
  else snprintf(name, sizeof name, "%.*s", (int)t.len, (const char *)t.data);
  sp__flight_put_append(c, name, true, first);
}

static void put_command(fl_call *c, sp_pb_bytes name, sp_pb_bytes value, const sp_flight_data *first) {
  sp_error err = {0};
  sp_pb_msg m;
  if (is_name(name, "CommandStatementIngest")) {
    put_ingest(c, value, first);
  } else if (!is_name(name, "CommandPreparedStatementQuery")) {
    char msg[300];
    snprintf(msg, sizeof msg, "DoPut %.*s is not implemented", (int)(name.len > 200 ? 200 : name.len),
             (const char *)name.data);
    sp__flight_status(c, GRPC_STATUS_UNIMPLEMENTED, msg);
  } else if (sp_flight_decode_fields(value.data, value.len, &m, &err) == SP_OK) {
    sp__flight_sql_bind(c, m.bytes[1], first);
  } else {
    sp__flight_error(c, &err);
  }
}

static void put_dispatch(fl_call *c, const sp_flight_data *first) {
  sp_error err = {0};
  sp_flight_descriptor d;
  sp_pb_bytes name, value;
  char path[600];
  if (!first->has_descriptor) {
    sp__flight_status(c, GRPC_STATUS_INVALID_ARGUMENT, "DoPut: the first message has no flight descriptor");
    return;
  }
  const uint8_t *dp = first->descriptor.data;
  size_t dn = first->descriptor.len;
  if (sp_flight_decode_descriptor(dp, dn, &d, &err) != SP_OK) {
    sp__flight_error(c, &err);
  } else if (d.type == SP_FLIGHT_DESC_CMD && sp_flight_sql_unwrap(d.cmd.data, d.cmd.len, &name, &value)) {
    put_command(c, name, value, first);
  } else if (d.type != SP_FLIGHT_DESC_PATH) {
    sp__flight_status(c, GRPC_STATUS_INVALID_ARGUMENT,
                      "DoPut: the descriptor must be a PATH naming a dataset, or a Flight SQL command");
  } else if (sp_flight_descriptor_path(dp, dn, path, sizeof path, &err) != SP_OK) {
    sp__flight_error(c, &err);
  } else {
    sp__flight_put_append(c, path, false, first);
  }
}

void sp__flight_do_put(fl_call *c) {
  sp_error err = {0};
  grpc_byte_buffer *in = NULL;
  if (!sp__flight_recv(c, &in)) return;
  if (in == NULL) {
    sp__flight_status(c, GRPC_STATUS_INVALID_ARGUMENT, "DoPut: no message was sent");
    return;
  }
  grpc_slice sl = sp__flight_request(in);
  grpc_byte_buffer_destroy(in);
  sp_flight_data first;
  if (sp_flight_decode_data(GRPC_SLICE_START_PTR(sl), GRPC_SLICE_LENGTH(sl), &first, &err) != SP_OK)
    sp__flight_error(c, &err);
  else put_dispatch(c, &first);
  grpc_slice_unref(sl);
}
