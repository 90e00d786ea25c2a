/* SPDX-License-Identifier: Apache-2.0
 *
 * Arrow Flight client on gRPC core (client.h). The pattern is the field notes' minimal client
 * (shared/reference/flight-notes.md §3): each call has its own pluck completion queue and waits for each of its
 * batches in turn, so a call needs no event-loop thread and calls on one channel never share state.
 *
 * Lifetimes: a call is created with its queue and ends with call_end(), which unrefs the call (cancelling it
 * when its status was not received), then shuts the queue down and drains it. Header slices are static slices
 * over the client's strings, which outlive every call.
 */
#include "flight/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "flight/wire.h"
#include "spice/arrow.h"
#include "spice/buf.h"
#include "spice/ipc.h"

#define SERVICE "/arrow.flight.protocol.FlightService/"
#define MAX_HEADERS 16

struct sp_flight_client {
  grpc_channel *channel;
  char *endpoint; /* as the user wrote it, for messages */
  char *keys[MAX_HEADERS], *values[MAX_HEADERS];
  size_t n_headers;
  int64_t timeout_ms;
  const volatile int *cancel; /* see sp_flight_client_set_cancel_flag */
  int flight_sql;             /* see sp_flight_client_set_flight_sql */
};

/* ---- Endpoints and channels ------------------------------------------------------------------------------- */

int sp_flight_parse_endpoint(const char *endpoint, char *target, size_t target_len, int *tls, sp_error *err) {
  static const struct { const char *scheme; int tls; } schemes[] = {
      {"grpc://", 0}, {"grpc+tcp://", 0}, {"http://", 0}, {"grpc+tls://", 1}, {"https://", 1}};
  const char *rest = endpoint ? endpoint : "";
  int secure = 0;
  for (size_t i = 0; i < sizeof schemes / sizeof *schemes; i++) {
    size_t n = strlen(schemes[i].scheme);
    if (strncasecmp(rest, schemes[i].scheme, n) == 0) {
      rest += n;
      secure = schemes[i].tls;
      break;
    }
  }
  if (strstr(rest, "://") != NULL)
    return sp_fail(err, SP_EINVAL, "flight endpoint \"%s\": the scheme is not grpc, grpc+tls, http or https", endpoint);
  size_t len = strcspn(rest, "/");
  if (len == 0 || rest[0] == ':')
    return sp_fail(err, SP_EINVAL, "flight endpoint \"%s\" has no host", endpoint ? endpoint : "");
  /* A port is there unless the last ':' is inside an IPv6 literal's brackets (or there is no ':'). */
  const char *colon = memrchr(rest, ':', len), *bracket = memrchr(rest, ']', len);
  int has_port = colon != NULL && (bracket == NULL || colon > bracket);
  int n = has_port ? snprintf(target, target_len, "%.*s", (int)len, rest)
                   : snprintf(target, target_len, "%.*s:%d", (int)len, rest, secure ? 443 : 50051);
  if (n < 0 || (size_t)n >= target_len) return sp_fail(err, SP_EINVAL, "flight endpoint \"%s\" is too long", endpoint);
  *tls = secure;
  return SP_OK;
}

static grpc_channel *make_channel(const char *target, int tls, const char *ca_pem) {
  /* Reconnect backoff is capped low: a source that comes back is used within a second or two, not the two
   * minutes gRPC's default backoff may wait. Received messages have no size cap (Flight batches can be big). */
  grpc_arg args[] = {
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, .value.integer = -1},
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, .value.integer = 1000},
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, .value.integer = 100},
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, .value.integer = 100},
      {.type = GRPC_ARG_STRING, .key = GRPC_ARG_PRIMARY_USER_AGENT_STRING, .value.string = "spicec"},
  };
  grpc_channel_args ca = {.num_args = sizeof args / sizeof *args, .args = args};
  grpc_channel_credentials *creds = tls ? grpc_ssl_credentials_create(ca_pem, NULL, NULL, NULL)
                                        : grpc_insecure_credentials_create();
  if (creds == NULL) return NULL;
  grpc_channel *ch = grpc_channel_create(target, creds, &ca);
  grpc_channel_credentials_release(creds);
  return ch;
}

int sp_flight_client_open(const char *endpoint, sp_flight_client **out, sp_error *err) {
  return sp_flight_client_open_ca(endpoint, NULL, out, err);
}

int sp_flight_client_open_ca(const char *endpoint, const char *ca_pem, sp_flight_client **out, sp_error *err) {
  char target[512];
  int tls = 0;
  SP_TRY(sp_flight_parse_endpoint(endpoint, target, sizeof target, &tls, err));
  if (ca_pem && !tls)
    return sp_fail(err, SP_EINVAL, "flight endpoint \"%s\" is not TLS (grpc+tls://), but a CA certificate was given",
                   endpoint);
  sp_flight_client *c = calloc(1, sizeof *c);
  if (c == NULL || (c->endpoint = strdup(endpoint)) == NULL) {
    free(c);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  c->timeout_ms = 60000;
  grpc_init();
  if ((c->channel = make_channel(target, tls, ca_pem)) == NULL) {
    sp_flight_client_close(c);
    return sp_fail(err, SP_EINTERNAL, "could not create a gRPC channel to flight endpoint \"%s\"", endpoint);
  }
  *out = c;
  return SP_OK;
}

void sp_flight_client_close(sp_flight_client *c) {
  if (c == NULL) return;
  if (c->channel) grpc_channel_destroy(c->channel);
  for (size_t i = 0; i < c->n_headers; i++) {
    free(c->keys[i]);
    free(c->values[i]);
  }
  free(c->endpoint);
  free(c);
  grpc_shutdown();
}

int sp_flight_client_set_header(sp_flight_client *c, const char *key, const char *value, sp_error *err) {
  size_t i = 0;
  while (i < c->n_headers && strcmp(c->keys[i], key) != 0) i++;
  if (i == MAX_HEADERS) return sp_fail(err, SP_EINVAL, "too many flight headers");
  char *v = strdup(value), *k = i < c->n_headers ? c->keys[i] : strdup(key);
  if (v == NULL || k == NULL) {
    free(v);
    if (i == c->n_headers) free(k);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  if (i < c->n_headers) free(c->values[i]);
  else c->n_headers++;
  c->keys[i] = k;
  c->values[i] = v;
  return SP_OK;
}

void sp_flight_client_set_timeout(sp_flight_client *c, int64_t timeout_ms) {
  c->timeout_ms = timeout_ms > 0 ? timeout_ms : 60000;
}

void sp_flight_client_set_flight_sql(sp_flight_client *c, int on) { c->flight_sql = on; }

void sp_flight_client_set_cancel_flag(sp_flight_client *c, const volatile int *flag) { c->cancel = flag; }

/* ---- Calls ------------------------------------------------------------------------------------------------ */

typedef struct fc_call {
  sp_flight_client *c;
  const char *method; /* "DoGet", for messages */
  grpc_call *call;
  grpc_completion_queue *cq;
  grpc_metadata send_md[MAX_HEADERS];
  grpc_metadata_array initial, trailing;
  grpc_status_code status;
  grpc_slice details;
  int have_status;
} fc_call;

static gpr_timespec deadline_in(int64_t ms) {
  if (ms <= 0) return gpr_inf_future(GPR_CLOCK_REALTIME);
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* Starts a call of `method` (a static string) with a deadline ms from now (0: none). */
static int call_begin(sp_flight_client *c, const char *method, int64_t ms, fc_call *k, sp_error *err) {
  char path[96];
  memset(k, 0, sizeof *k);
  k->c = c;
  k->method = method;
  snprintf(path, sizeof path, SERVICE "%s", method);
  grpc_metadata_array_init(&k->initial);
  grpc_metadata_array_init(&k->trailing);
  k->details = grpc_empty_slice();
  if ((k->cq = grpc_completion_queue_create_for_pluck(NULL)) == NULL)
    return sp_fail(err, SP_EINTERNAL, "could not create a gRPC completion queue");
  grpc_slice m = grpc_slice_from_copied_string(path);
  k->call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, k->cq, m, NULL, deadline_in(ms), NULL);
  grpc_slice_unref(m);
  if (k->call == NULL) return sp_fail(err, SP_EINTERNAL, "could not start a flight %s call", method);
  for (size_t i = 0; i < c->n_headers; i++) {
    k->send_md[i].key = grpc_slice_from_static_string(c->keys[i]);
    k->send_md[i].value = grpc_slice_from_static_string(c->values[i]);
  }
  return SP_OK;
}

/* Runs one batch and waits for it; 1 when every op succeeded. With a cancel flag the wait wakes up every
 * 100 ms to look at it; a cancelled call's batch then completes (failed) and its status says CANCELLED. */
static int call_wait(fc_call *k, grpc_op *ops, size_t n) {
  if (grpc_call_start_batch(k->call, ops, n, k, NULL) != GRPC_CALL_OK) return 0;
  int cancelled = 0;
  for (;;) {
    gpr_timespec until = k->c->cancel ? deadline_in(100) : gpr_inf_future(GPR_CLOCK_REALTIME);
    grpc_event ev = grpc_completion_queue_pluck(k->cq, k, until, NULL);
    if (ev.type != GRPC_QUEUE_TIMEOUT) return ev.type == GRPC_OP_COMPLETE && ev.success;
    if (!cancelled && *k->c->cancel) {
      grpc_call_cancel(k->call, NULL);
      cancelled = 1;
    }
  }
}

static void call_end(fc_call *k) {
  if (k->call) {
    if (!k->have_status) grpc_call_cancel(k->call, NULL);
    grpc_call_unref(k->call);
  }
  if (k->cq) {
    grpc_completion_queue_shutdown(k->cq);
    while (grpc_completion_queue_pluck(k->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(k->cq);
  }
  grpc_metadata_array_destroy(&k->initial);
  grpc_metadata_array_destroy(&k->trailing);
  grpc_slice_unref(k->details);
  memset(k, 0, sizeof *k);
}

static grpc_op op_recv_status(fc_call *k) {
  grpc_op op = {.op = GRPC_OP_RECV_STATUS_ON_CLIENT};
  op.data.recv_status_on_client.trailing_metadata = &k->trailing;
  op.data.recv_status_on_client.status = &k->status;
  op.data.recv_status_on_client.status_details = &k->details;
  return op;
}

static const char *code_name(grpc_status_code s) {
  static const char *const names[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                      "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
                                      "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  return (unsigned)s < sizeof names / sizeof *names ? names[s] : "UNKNOWN";
}

static sp_status map_code(grpc_status_code s) {
  switch (s) {
  case GRPC_STATUS_OK: return SP_OK;
  case GRPC_STATUS_UNAVAILABLE: return SP_ECONNECT;
  case GRPC_STATUS_DEADLINE_EXCEEDED: return SP_ETIMEDOUT;
  case GRPC_STATUS_UNAUTHENTICATED: return SP_EUNAUTH;
  case GRPC_STATUS_PERMISSION_DENIED: return SP_EDENIED;
  case GRPC_STATUS_INVALID_ARGUMENT: return SP_EINVAL;
  case GRPC_STATUS_NOT_FOUND: return SP_ENOTFOUND;
  case GRPC_STATUS_UNIMPLEMENTED: return SP_ENOTSUP;
  case GRPC_STATUS_CANCELLED: return SP_ECANCELED;
  default: return SP_EIO;
  }
}

/* The call's status as an sp_status, receiving it first when needed; the message names the endpoint. */
static int call_status(fc_call *k, sp_error *err) {
  if (!k->have_status) {
    grpc_op op = op_recv_status(k);
    if (!call_wait(k, &op, 1)) return sp_fail(err, SP_EIO, "flight %s to \"%s\": no status received", k->method, k->c->endpoint);
    k->have_status = 1;
  }
  sp_status code = map_code(k->status);
  if (code == SP_OK) return SP_OK;
  int len = (int)GRPC_SLICE_LENGTH(k->details);
  const char *msg = (const char *)GRPC_SLICE_START_PTR(k->details);
  if (code == SP_ECONNECT)
    return sp_fail(err, code, "could not connect to flight endpoint \"%s\": %.*s", k->c->endpoint, len, msg);
  return sp_fail(err, code, "flight endpoint \"%s\" answered %s with %s: %.*s", k->c->endpoint, k->method,
                 code_name(k->status), len, msg);
}

static grpc_byte_buffer *buffer_of(const sp_buf *b) {
  grpc_slice s = grpc_slice_from_copied_buffer(b->data ? b->data : "", b->len);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  return bb;
}

/* The bytes of a received message as one slice (copied only when gRPC holds several). */
static grpc_slice slice_of(grpc_byte_buffer *bb) {
  grpc_byte_buffer_reader r;
  if (!grpc_byte_buffer_reader_init(&r, bb)) return grpc_empty_slice();
  grpc_slice s = grpc_byte_buffer_reader_readall(&r);
  grpc_byte_buffer_reader_destroy(&r);
  return s;
}

/* A unary call: sends req, receives one answer into *reply (a slice the caller unrefs). */
static int unary(sp_flight_client *c, const char *method, const sp_buf *req, grpc_slice *reply, fc_call *k,
                 sp_error *err) {
  SP_TRY(call_begin(c, method, c->timeout_ms, k, err));
  grpc_byte_buffer *send = buffer_of(req), *recv = NULL;
  grpc_op ops[6] = {{.op = GRPC_OP_SEND_INITIAL_METADATA}, {.op = GRPC_OP_SEND_MESSAGE},
                    {.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT}, {.op = GRPC_OP_RECV_INITIAL_METADATA},
                    {.op = GRPC_OP_RECV_MESSAGE}, op_recv_status(k)};
  ops[0].data.send_initial_metadata.count = c->n_headers;
  ops[0].data.send_initial_metadata.metadata = k->send_md;
  ops[1].data.send_message.send_message = send;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &k->initial;
  ops[4].data.recv_message.recv_message = &recv;
  int ok = call_wait(k, ops, 6);
  grpc_byte_buffer_destroy(send);
  if (ok) k->have_status = 1;
  int rc = ok ? call_status(k, err)
              : sp_fail(err, SP_ECONNECT, "flight %s to \"%s\" failed", method, c->endpoint);
  if (rc == SP_OK && recv == NULL)
    rc = sp_fail(err, SP_EIO, "flight endpoint \"%s\" sent no answer to %s", c->endpoint, method);
  if (rc == SP_OK) *reply = slice_of(recv);
  if (recv) grpc_byte_buffer_destroy(recv);
  return rc;
}

/* ---- Metadata --------------------------------------------------------------------------------------------- */

static int md_find(const grpc_metadata_array *md, const char *key, char *buf, size_t n) {
  size_t klen = strlen(key);
  for (size_t i = 0; i < md->count; i++) {
    const grpc_metadata *m = &md->metadata[i];
    if (GRPC_SLICE_LENGTH(m->key) != klen || strncasecmp((const char *)GRPC_SLICE_START_PTR(m->key), key, klen) != 0)
      continue;
    size_t vlen = GRPC_SLICE_LENGTH(m->value);
    if (vlen >= n) vlen = n - 1;
    memcpy(buf, GRPC_SLICE_START_PTR(m->value), vlen);
    buf[vlen] = '\0';
    return 1;
  }
  return 0;
}

/* results-cache-status (Spice 1.x) first, then the older x-cache. */
static void cache_status(const grpc_metadata_array *md, sp_flight_result_info *info) {
  char v[64];
  if (md_find(md, "results-cache-status", v, sizeof v)) info->cache_hit = strcasecmp(v, "HIT") == 0;
  else if (md_find(md, "x-cache", v, sizeof v)) info->cache_hit = strncasecmp(v, "hit", 3) == 0;
}

/* ---- Handshake -------------------------------------------------------------------------------------------- */

static char *base64(const char *s) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t n = strlen(s), o = 0;
  char *out = malloc(4 * ((n + 2) / 3) + 1);
  if (out == NULL) return NULL;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)(unsigned char)s[i] << 16;
    if (i + 1 < n) v |= (uint32_t)(unsigned char)s[i + 1] << 8;
    if (i + 2 < n) v |= (unsigned char)s[i + 2];
    out[o++] = tab[v >> 18 & 63];
    out[o++] = tab[v >> 12 & 63];
    out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
    out[o++] = i + 2 < n ? tab[v & 63] : '=';
  }
  out[o] = '\0';
  return out;
}

static int set_basic(sp_flight_client *c, const char *user, const char *pass, sp_error *err) {
  size_t n = strlen(user) + strlen(pass) + 2;
  char *plain = malloc(n), *enc = NULL, *hdr = NULL;
  if (plain) snprintf(plain, n, "%s:%s", user, pass);
  if (plain) enc = base64(plain);
  if (enc && (hdr = malloc(strlen(enc) + 7)) != NULL) sprintf(hdr, "Basic %s", enc);
  if (plain) memset(plain, 0, n);
  free(plain);
  free(enc);
  int rc = hdr ? sp_flight_client_set_header(c, "authorization", hdr, err) : sp_fail(err, SP_ENOMEM, "out of memory");
  free(hdr);
  return rc;
}

int sp_flight_client_handshake_basic(sp_flight_client *c, const char *user, const char *pass, sp_error *err) {
  SP_TRY(set_basic(c, user ? user : "", pass ? pass : "", err));
  sp_buf req = {0};
  fc_call k = {0};
  grpc_slice reply = grpc_empty_slice();
  int rc = sp_flw_encode_handshake(0, NULL, 0, &req, err);
  if (rc == SP_OK) rc = unary(c, "Handshake", &req, &reply, &k, err);
  char bearer[4096];
  if (rc == SP_OK && (md_find(&k.initial, "authorization", bearer, sizeof bearer) ||
                      md_find(&k.trailing, "authorization", bearer, sizeof bearer)) &&
      strncasecmp(bearer, "Bearer ", 7) == 0)
    rc = sp_flight_client_set_header(c, "authorization", bearer, err);
  if (rc == SP_EUNAUTH) /* the server's message may be terse: say what was refused, without the password */
    sp_error_prefix(err, "authentication as \"%s\" refused", user ? user : "");
  grpc_slice_unref(reply);
  call_end(&k);
  sp_buf_free(&req);
  return rc;
}

/* ---- Schemas ---------------------------------------------------------------------------------------------- */

/* An encapsulated IPC Schema message into an Arrow schema. */
static int decode_schema(sp_flight_client *c, const uint8_t *data, size_t len, struct ArrowSchema *out, sp_error *err) {
  sp_ipc_reader *r;
  SP_TRY(sp_ipc_reader_create(&r, err));
  size_t used;
  sp_ipc_msg_type type;
  struct ArrowArray none = {0};
  int rc = sp_ipc_reader_next(r, data, len, &used, &type, &none, err);
  if (rc == SP_OK && type != SP_IPC_SCHEMA)
    rc = sp_fail(err, SP_EIO, "flight endpoint \"%s\" sent a schema that is not an IPC Schema message", c->endpoint);
  if (rc == SP_OK) rc = sp_ipc_reader_schema(r, out, err);
  sp_ipc_reader_destroy(r);
  return rc;
}

/* The FlightDescriptor of a query: its cmd is the SQL text, or a Flight SQL statement command. */
static int descriptor_of(const sp_flight_client *c, const char *sql, sp_buf *out, sp_error *err) {
  if (!c->flight_sql) return sp_flw_encode_descriptor_cmd(sql, strlen(sql), out, err);
  sp_buf cmd = {0};
  int rc = sp_flw_encode_statement_query(sql, strlen(sql), &cmd, err);
  if (rc == SP_OK) rc = sp_flw_encode_descriptor_cmd(cmd.data, cmd.len, out, err);
  sp_buf_free(&cmd);
  return rc;
}

/* GetFlightInfo for a CMD descriptor holding sql: *info borrows from *reply (unref it). */
static int flight_info(sp_flight_client *c, const char *sql, grpc_slice *reply, sp_flw_info *info, sp_error *err) {
  sp_buf req = {0};
  fc_call k = {0};
  int rc = descriptor_of(c, sql, &req, err);
  if (rc == SP_OK) rc = unary(c, "GetFlightInfo", &req, reply, &k, err);
  call_end(&k);
  sp_buf_free(&req);
  if (rc == SP_OK) rc = sp_flw_decode_info(GRPC_SLICE_START_PTR(*reply), GRPC_SLICE_LENGTH(*reply), info, err);
  if (rc == SP_OK && info->n_endpoints == 0)
    rc = sp_fail(err, SP_EIO, "flight endpoint \"%s\" answered GetFlightInfo without an endpoint", c->endpoint);
  if (rc == SP_OK && info->n_locations > 0) /* a location elsewhere is not followed: say so rather than guess */
    rc = sp_fail(err, SP_ENOTSUP, "flight endpoint \"%s\" serves the result from another location", c->endpoint);
  if (rc != SP_OK) grpc_slice_unref(*reply), *reply = grpc_empty_slice();
  return rc;
}

int sp_flight_client_schema(sp_flight_client *c, const char *sql, struct ArrowSchema *out, sp_error *err) {
  sp_buf req = {0};
  fc_call k = {0};
  grpc_slice reply = grpc_empty_slice();
  sp_flw_bytes schema = {0};
  int rc = descriptor_of(c, sql, &req, err);
  if (rc == SP_OK) rc = unary(c, "GetSchema", &req, &reply, &k, err);
  call_end(&k);
  sp_buf_free(&req);
  if (rc == SP_ENOTSUP) { /* older servers: the schema of the FlightInfo */
    sp_flw_info info;
    grpc_slice_unref(reply);
    rc = flight_info(c, sql, &reply, &info, err);
    schema = info.schema;
  } else if (rc == SP_OK) {
    rc = sp_flw_decode_schema_result(GRPC_SLICE_START_PTR(reply), GRPC_SLICE_LENGTH(reply), &schema, err);
  }
  if (rc == SP_OK) rc = decode_schema(c, schema.data, schema.len, out, err);
  grpc_slice_unref(reply);
  return rc;
}

/* ---- DoGet streams ---------------------------------------------------------------------------------------- */

typedef struct fc_stream {
  fc_call k;
  sp_ipc_reader *reader;
  struct ArrowSchema schema;
  int done;
  sp_buf msg; /* the last FlightData received, reused: a fresh block per message costs more than the copy */
  char error[sizeof(((sp_error *)0)->msg)];
} fc_stream;

static int errno_of(int rc) { return rc == SP_ENOMEM ? ENOMEM : rc == SP_EINVAL ? EINVAL : EIO; }

/* The bytes of a received message, copied into s->msg slice by slice. */
static int flatten(fc_stream *s, grpc_byte_buffer *bb, sp_error *err) {
  grpc_byte_buffer_reader r;
  grpc_slice sl;
  s->msg.len = 0;
  if (!grpc_byte_buffer_reader_init(&r, bb)) return sp_fail(err, SP_EIO, "could not read a flight message");
  int rc = SP_OK;
  while (grpc_byte_buffer_reader_next(&r, &sl)) {
    if (rc == SP_OK && sp_buf_append(&s->msg, GRPC_SLICE_START_PTR(sl), GRPC_SLICE_LENGTH(sl)) != SP_OK)
      rc = sp_fail(err, SP_ENOMEM, "out of memory receiving a flight message");
    grpc_slice_unref(sl);
  }
  grpc_byte_buffer_reader_destroy(&r);
  return rc;
}

/* Receives the next FlightData into s->msg; *end is set at the end of the stream (the status then says how
 * it ended). */
static int recv_data(fc_stream *s, int *end, sp_error *err) {
  grpc_byte_buffer *bb = NULL;
  grpc_op op = {.op = GRPC_OP_RECV_MESSAGE};
  op.data.recv_message.recv_message = &bb;
  *end = 0;
  if (!call_wait(&s->k, &op, 1) || bb == NULL) {
    *end = 1;
    int rc = call_status(&s->k, err);
    if (rc == SP_OK && bb == NULL) return SP_OK;
    if (bb) grpc_byte_buffer_destroy(bb);
    return rc == SP_OK ? sp_fail(err, SP_EIO, "flight stream from \"%s\" broke off", s->k.c->endpoint) : rc;
  }
  int rc = flatten(s, bb, err);
  grpc_byte_buffer_destroy(bb);
  return rc;
}

/* Decodes messages until a record batch (*got = 1) or the end of the stream (*got = 0). */
static int next_batch(fc_stream *s, struct ArrowArray *out, int *got, sp_error *err) {
  *got = 0;
  while (!s->done) {
    int end;
    SP_TRY(recv_data(s, &end, err));
    if (end) {
      s->done = 1;
      break;
    }
    sp_flw_data d;
    sp_ipc_msg_type type = SP_IPC_EOS;
    int rc = sp_flw_decode_data((const uint8_t *)s->msg.data, s->msg.len, &d, err);
    if (rc == SP_OK && d.header.len > 0) /* a message with only app_metadata carries no data */
      rc = sp_ipc_reader_message(s->reader, d.header.data, d.header.len, d.body.data, d.body.len, &type, out, err);
    if (rc != SP_OK) return rc;
    if (type == SP_IPC_RECORD_BATCH) {
      *got = 1;
      return SP_OK;
    }
  }
  return SP_OK;
}

static int stream_get_schema(struct ArrowArrayStream *st, struct ArrowSchema *out) {
  fc_stream *s = st->private_data;
  sp_error err = {0};
  if (sp_schema_copy(out, &s->schema, &err) == SP_OK) return 0;
  snprintf(s->error, sizeof s->error, "%s", err.msg);
  return ENOMEM;
}

static int stream_get_next(struct ArrowArrayStream *st, struct ArrowArray *out) {
  fc_stream *s = st->private_data;
  sp_error err = {0};
  int got = 0, rc = next_batch(s, out, &got, &err);
  if (rc != SP_OK) {
    snprintf(s->error, sizeof s->error, "%s", err.msg);
    s->done = 1;
    return errno_of(rc);
  }
  if (!got) out->release = NULL;
  return 0;
}

static const char *stream_last_error(struct ArrowArrayStream *st) {
  fc_stream *s = st->private_data;
  return s->error[0] ? s->error : NULL;
}

static void stream_free(fc_stream *s) {
  call_end(&s->k);
  sp_buf_free(&s->msg);
  sp_ipc_reader_destroy(s->reader);
  sp_schema_release(&s->schema);
  free(s);
}

static void stream_release(struct ArrowArrayStream *st) {
  stream_free(st->private_data);
  st->release = NULL;
}

/* Sends the ticket and reads the Schema message. */
static int do_get_start(fc_stream *s, const void *ticket, size_t len, sp_error *err) {
  sp_flight_client *c = s->k.c;
  sp_buf req = {0};
  SP_TRY(sp_flw_encode_ticket(ticket, len, &req, err));
  grpc_byte_buffer *send = buffer_of(&req);
  sp_buf_free(&req);
  grpc_op ops[4] = {{.op = GRPC_OP_SEND_INITIAL_METADATA}, {.op = GRPC_OP_SEND_MESSAGE},
                    {.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT}, {.op = GRPC_OP_RECV_INITIAL_METADATA}};
  ops[0].data.send_initial_metadata.count = c->n_headers;
  ops[0].data.send_initial_metadata.metadata = s->k.send_md;
  ops[1].data.send_message.send_message = send;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->k.initial;
  int ok = call_wait(&s->k, ops, 4);
  grpc_byte_buffer_destroy(send);
  if (!ok) {
    int rc = call_status(&s->k, err);
    return rc != SP_OK ? rc : sp_fail(err, SP_EIO, "flight DoGet to \"%s\" failed", c->endpoint);
  }
  int end;
  SP_TRY(recv_data(s, &end, err));
  if (end) return sp_fail(err, SP_EIO, "flight endpoint \"%s\" ended DoGet without a schema", c->endpoint);
  sp_flw_data d;
  sp_ipc_msg_type type = SP_IPC_EOS;
  struct ArrowArray none = {0};
  int rc = sp_flw_decode_data((const uint8_t *)s->msg.data, s->msg.len, &d, err);
  if (rc == SP_OK)
    rc = sp_ipc_reader_message(s->reader, d.header.data, d.header.len, d.body.data, d.body.len, &type, &none, err);
  if (rc == SP_OK && type != SP_IPC_SCHEMA) {
    sp_array_release(&none);
    rc = sp_fail(err, SP_EIO, "flight endpoint \"%s\" began DoGet without a schema", c->endpoint);
  }
  return rc == SP_OK ? sp_ipc_reader_schema(s->reader, &s->schema, err) : rc;
}

int sp_flight_client_do_get(sp_flight_client *c, const void *ticket, size_t len, struct ArrowArrayStream *out,
                            sp_flight_result_info *info, sp_error *err) {
  fc_stream *s = calloc(1, sizeof *s);
  if (s == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  int rc = sp_ipc_reader_create(&s->reader, err);
  if (rc == SP_OK) rc = call_begin(c, "DoGet", 0, &s->k, err);
  if (rc == SP_OK) rc = do_get_start(s, ticket, len, err);
  if (rc != SP_OK) {
    stream_free(s);
    return rc;
  }
  if (info) {
    info->cache_hit = -1;
    cache_status(&s->k.initial, info);
  }
  *out = (struct ArrowArrayStream){.get_schema = stream_get_schema, .get_next = stream_get_next,
                                   .get_last_error = stream_last_error, .release = stream_release,
                                   .private_data = s};
  return SP_OK;
}

int sp_flight_client_query(sp_flight_client *c, const char *sql, struct ArrowArrayStream *out,
                           sp_flight_result_info *info, sp_error *err) {
  grpc_slice reply = grpc_empty_slice();
  sp_flw_info fi;
  int rc = flight_info(c, sql, &reply, &fi, err);
  if (rc == SP_OK) rc = sp_flight_client_do_get(c, fi.ticket.data, fi.ticket.len, out, info, err);
  grpc_slice_unref(reply);
  return rc;
}

int sp_flight_stream_info(struct ArrowArrayStream *stream, sp_flight_result_info *out, sp_error *err) {
  if (stream == NULL || stream->get_next != stream_get_next)
    return sp_fail(err, SP_EINVAL, "not a flight stream");
  fc_stream *s = stream->private_data;
  sp_flight_result_info info = {.cache_hit = -1};
  cache_status(&s->k.initial, &info);
  if (s->k.have_status && info.cache_hit < 0) cache_status(&s->k.trailing, &info);
  *out = info;
  return SP_OK;
}
