/* SPDX-License-Identifier: Apache-2.0
 *
 * Arrow Flight server on the gRPC core C API (see flight.h, docs/flight.md; the pattern follows the field notes
 * in shared/reference/flight-notes.md §3).
 *
 * Threads: one event-loop thread drains the completion queue; every accepted call gets its own worker thread,
 * which runs the query and writes the answer with blocking helpers (call_batch starts one batch and waits for
 * the event loop to report its completion). So a slow query never stalls other calls, and a DoGet stream has
 * exactly one write in flight at a time: the next batch is encoded only once the client took the previous one
 * (HTTP/2 flow control), which is the client's pace.
 *
 * Lifetimes: a call context is created with its request and freed by its worker, after the worker's last batch
 * and the call's RECV_CLOSE_ON_SERVER (which completes when the call is over, or cancelled) have completed.
 * Shutdown: grpc_server_shutdown_and_notify + cancel_all_calls make every pending operation complete (failed);
 * the event loop keeps running until the shutdown tag arrived and no worker is left, then drains the queue.
 */
#include "server/flight.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/flight_proto.h"
#include "server/format.h"
#include "spice/arrow_abi.h"
#include "spice/ipc.h"
#include "spice/log.h"

/* grpc-js clients (the Spice SDKs) refuse messages over 4 MiB and cannot raise the limit: stay well below. */
#define FLIGHT_MAX_MESSAGE ((size_t)4 << 20)
#define FLIGHT_TARGET_MESSAGE ((size_t)3 << 20)
#define SERVICE "/arrow.flight.protocol.FlightService/"

enum { M_HANDSHAKE, M_GET_FLIGHT_INFO, M_GET_SCHEMA, M_DO_GET, M_COUNT, M_UNREGISTERED = M_COUNT };

static const char *const method_names[M_COUNT] = {"Handshake", "GetFlightInfo", "GetSchema", "DoGet"};

typedef struct fl_tag {
  void (*fn)(struct fl_tag *tag, int ok);
} fl_tag;

typedef struct fl_call fl_call;

struct sp_flight_server {
  sp_runtime *rt;
  grpc_server *server;
  grpc_completion_queue *cq;
  void *methods[M_COUNT];
  pthread_t loop;
  int loop_started;
  fl_tag shutdown_tag;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int workers;      /* call threads alive */
  int shutting;     /* no more re-arming */
  int shutdown_done;
  int cq_closing;
  char endpoint[128];
};

struct fl_call {
  sp_flight_server *srv;
  int method;
  grpc_call *call;
  gpr_timespec deadline;
  grpc_metadata_array md;
  grpc_call_details details; /* unregistered calls only */
  grpc_byte_buffer *payload; /* the request, for unary-request methods */
  fl_tag new_tag, op_tag, close_tag;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int op_done, op_ok, closed, cancelled;
};

static int arm(sp_flight_server *s, int method);

/* ---- Completions ---------------------------------------------------------------------------------------- */

#define CALL_OF(tag, member) ((fl_call *)(void *)((char *)(tag) - offsetof(fl_call, member)))

static void on_op(fl_tag *tag, int ok) {
  fl_call *c = CALL_OF(tag, op_tag);
  pthread_mutex_lock(&c->mu);
  c->op_done = 1;
  c->op_ok = ok;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static void on_close(fl_tag *tag, int ok) {
  (void)ok;
  fl_call *c = CALL_OF(tag, close_tag);
  pthread_mutex_lock(&c->mu);
  c->closed = 1;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static void on_shutdown(fl_tag *tag, int ok) {
  (void)ok;
  sp_flight_server *s = (sp_flight_server *)(void *)((char *)tag - offsetof(sp_flight_server, shutdown_tag));
  pthread_mutex_lock(&s->mu);
  s->shutdown_done = 1;
  pthread_mutex_unlock(&s->mu);
}

static void call_free(fl_call *c) {
  if (c->call) grpc_call_unref(c->call);
  if (c->payload) grpc_byte_buffer_destroy(c->payload);
  grpc_metadata_array_destroy(&c->md);
  grpc_call_details_destroy(&c->details);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
  free(c);
}

/* ---- Blocking helpers for worker threads ---------------------------------------------------------------- */

/* Starts one batch and waits for it; returns its success (0 when the client went away or the call was
 * cancelled). */
static int call_batch(fl_call *c, const grpc_op *ops, size_t n) {
  pthread_mutex_lock(&c->mu);
  c->op_done = 0;
  pthread_mutex_unlock(&c->mu);
  if (grpc_call_start_batch(c->call, ops, n, &c->op_tag, NULL) != GRPC_CALL_OK) return 0;
  pthread_mutex_lock(&c->mu);
  while (!c->op_done) pthread_cond_wait(&c->cv, &c->mu);
  int ok = c->op_ok;
  pthread_mutex_unlock(&c->mu);
  return ok;
}

static grpc_status_code status_of(int code) {
  switch (code) {
  case SP_OK: return GRPC_STATUS_OK;
  case SP_EINVAL: return GRPC_STATUS_INVALID_ARGUMENT;
  case SP_ENOTFOUND: return GRPC_STATUS_NOT_FOUND;
  case SP_EDENIED: return GRPC_STATUS_PERMISSION_DENIED;
  case SP_EUNAUTH: return GRPC_STATUS_UNAUTHENTICATED;
  case SP_EBUSY: return GRPC_STATUS_UNAVAILABLE;
  case SP_ETIMEDOUT: return GRPC_STATUS_DEADLINE_EXCEEDED;
  case SP_ECANCELED: return GRPC_STATUS_CANCELLED;
  case SP_ENOTSUP: return GRPC_STATUS_UNIMPLEMENTED;
  default: return GRPC_STATUS_INTERNAL;
  }
}

/* Sends one message (the slices are borrowed; the byte buffer takes its own refs), with the initial metadata
 * first when `initial`, and the status too when `status` >= 0. */
static int send_msg(fl_call *c, grpc_slice *slices, size_t n, int initial, int status) {
  grpc_op ops[3];
  memset(ops, 0, sizeof ops);
  size_t k = 0;
  if (initial) ops[k++].op = GRPC_OP_SEND_INITIAL_METADATA;
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(slices, n);
  ops[k].op = GRPC_OP_SEND_MESSAGE;
  ops[k++].data.send_message.send_message = bb;
  grpc_slice empty = grpc_empty_slice();
  if (status >= 0) {
    ops[k].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[k].data.send_status_from_server.status = (grpc_status_code)status;
    ops[k++].data.send_status_from_server.status_details = &empty;
  }
  int ok = call_batch(c, ops, k);
  grpc_byte_buffer_destroy(bb);
  return ok;
}

/* Ends the call with a status and message (copied). */
static void send_status(fl_call *c, int initial, grpc_status_code code, const char *msg) {
  grpc_op ops[2];
  memset(ops, 0, sizeof ops);
  size_t k = 0;
  if (initial) ops[k++].op = GRPC_OP_SEND_INITIAL_METADATA;
  grpc_slice details = grpc_slice_from_copied_string(msg ? msg : "");
  ops[k].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[k].data.send_status_from_server.status = code;
  ops[k++].data.send_status_from_server.status_details = &details;
  call_batch(c, ops, k);
  grpc_slice_unref(details);
}

/* The engine reports an unknown table as a binder error (SP_EINVAL, DuckDB's "Catalog Error: Table with name
 * x does not exist!"); Flight clients expect NOT_FOUND for it. */
static grpc_status_code error_status(const sp_error *err) {
  static const char unknown_table[] = "Catalog Error: Table with name ";
  if (err->code == SP_EINVAL && strncmp(err->msg, unknown_table, sizeof unknown_table - 1) == 0 &&
      strstr(err->msg, "does not exist"))
    return GRPC_STATUS_NOT_FOUND;
  return status_of(err->code);
}

static void send_error(fl_call *c, int initial, const sp_error *err) {
  sp_log_debug("flight %s: %s", c->method < M_COUNT ? method_names[c->method] : "call", err->msg);
  send_status(c, initial, error_status(err), err->msg);
}

/* The request message as one contiguous slice (caller unrefs). */
static grpc_slice request_bytes(grpc_byte_buffer *bb) {
  grpc_byte_buffer_reader rd;
  if (bb == NULL || !grpc_byte_buffer_reader_init(&rd, bb)) return grpc_empty_slice();
  grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
  grpc_byte_buffer_reader_destroy(&rd);
  return s;
}

/* ---- Queries -------------------------------------------------------------------------------------------- */

/* Runs sql (len bytes, not NUL-terminated) into *stream. */
static int run_query(sp_flight_server *s, const uint8_t *sql, size_t len, struct ArrowArrayStream *stream,
                     sp_error *err) {
  if (len == 0) return sp_fail(err, SP_EINVAL, "flight: the query is empty");
  if (memchr(sql, '\0', len)) return sp_fail(err, SP_EINVAL, "flight: the query contains a NUL byte");
  char *text = malloc(len + 1);
  if (text == NULL) return sp_fail(err, SP_ENOMEM, "flight: out of memory");
  memcpy(text, sql, len);
  text[len] = '\0';
  sp_query_request req = {.sql = text};
  memset(stream, 0, sizeof *stream);
  int rc = sp_runtime_query(s->rt, &req, stream, err);
  free(text);
  return rc;
}

static int stream_error(struct ArrowArrayStream *st, int rc, sp_error *err) {
  const char *m = st->get_last_error ? st->get_last_error(st) : NULL;
  return sp_fail(err, SP_EINVAL, "%s", m && *m ? m : strerror(rc));
}

/* The result schema of sql: from the prepared statement (nothing runs), or, when its types depend on
 * parameters, from the start of a run. */
static int result_schema(sp_flight_server *s, sp_pb_bytes sql, struct ArrowSchema *schema, sp_error *err) {
  if (sql.len == 0) return sp_fail(err, SP_EINVAL, "flight: the query is empty");
  if (memchr(sql.data, '\0', sql.len)) return sp_fail(err, SP_EINVAL, "flight: the query contains a NUL byte");
  char *text = malloc(sql.len + 1);
  if (text == NULL) return sp_fail(err, SP_ENOMEM, "flight: out of memory");
  memcpy(text, sql.data, sql.len);
  text[sql.len] = '\0';
  sp_query_request req = {.sql = text};
  int rc = sp_runtime_query_schema(s->rt, &req, schema, err);
  free(text);
  if (rc != SP_ENOTSUP) return rc;
  struct ArrowArrayStream st;
  SP_TRY(run_query(s, sql.data, sql.len, &st, err));
  rc = st.get_schema(&st, schema);
  if (rc != 0) rc = stream_error(&st, rc, err);
  st.release(&st);
  return rc;
}

/* The encapsulated IPC Schema message of a query's result, appended to out. */
static int plan_schema(sp_flight_server *s, sp_pb_bytes sql, sp_buf *out, sp_error *err) {
  struct ArrowSchema schema = {0};
  int rc = result_schema(s, sql, &schema, err);
  sp_ipc_writer *w = NULL;
  if (rc == SP_OK) rc = sp_ipc_writer_create(&schema, &w, err);
  if (rc == SP_OK) rc = sp_ipc_write_schema(w, out, err);
  sp_ipc_writer_destroy(w);
  if (schema.release) schema.release(&schema);
  return rc;
}

/* GetFlightInfo and GetSchema: plans the SQL of a CMD descriptor and answers FlightInfo or SchemaResult. */
static void do_describe(fl_call *c) {
  sp_error err = {0};
  grpc_slice req = request_bytes(c->payload);
  const uint8_t *p = GRPC_SLICE_START_PTR(req);
  size_t n = GRPC_SLICE_LENGTH(req);
  sp_flight_descriptor d;
  sp_buf schema = {0}, info = {0};
  int rc = sp_flight_decode_descriptor(p, n, &d, &err);
  if (rc == SP_OK && d.type != SP_FLIGHT_DESC_CMD)
    rc = sp_fail(&err, SP_EINVAL, "%s: only CMD descriptors holding SQL are supported", method_names[c->method]);
  if (rc == SP_OK) rc = plan_schema(c->srv, d.cmd, &schema, &err);
  if (rc == SP_OK && c->method == M_GET_SCHEMA)
    rc = sp_flight_encode_schema_result((const uint8_t *)schema.data, schema.len, &info, &err);
  else if (rc == SP_OK)
    rc = sp_flight_encode_info((const uint8_t *)schema.data, schema.len, p, n, d.cmd.data, d.cmd.len, &info, &err);
  if (rc == SP_OK) {
    grpc_slice out = grpc_slice_from_copied_buffer(info.data, info.len);
    send_msg(c, &out, 1, 1, GRPC_STATUS_OK);
    grpc_slice_unref(out);
  } else {
    send_error(c, 1, &err);
  }
  sp_buf_free(&schema);
  sp_buf_free(&info);
  grpc_slice_unref(req);
}

/* Sends the frames of the last write as FlightData messages; 0 when the client went away. */
static int send_frames(fl_call *c, sp_ipc_writer *w, const sp_buf *buf, sp_buf *prefix, int *initial) {
  size_t n;
  const sp_ipc_frame *fr = sp_ipc_writer_frames(w, &n);
  for (size_t i = 0; i < n; i++) {
    prefix->len = 0;
    const uint8_t *base = (const uint8_t *)buf->data;
    if (sp_flight_encode_data_prefix(base + fr[i].header_off, fr[i].header_len, fr[i].body_len, prefix, NULL))
      return 0;
    grpc_slice sl[2];
    sl[0] = grpc_slice_from_copied_buffer(prefix->data, prefix->len);
    sl[1] = grpc_slice_from_copied_buffer((const char *)base + fr[i].body_off, fr[i].body_len);
    int ok = send_msg(c, sl, fr[i].body_len ? 2 : 1, *initial, -1);
    *initial = 0;
    grpc_slice_unref(sl[0]);
    grpc_slice_unref(sl[1]);
    if (!ok) return 0;
  }
  return 1;
}

/* Frames bytes written by the last call on w. */
static size_t frames_size(sp_ipc_writer *w) {
  size_t n, total = 0;
  const sp_ipc_frame *fr = sp_ipc_writer_frames(w, &n);
  for (size_t i = 0; i < n; i++) total += fr[i].header_len + fr[i].body_len + 32;
  return total;
}

/* Streams one batch as slices of at most *rows rows whose messages stay under the limit (adapting *rows).
 * Returns SP_OK, an error, or SP_ECANCELED when the client went away. */
static int stream_batch(fl_call *c, sp_ipc_writer *w, const struct ArrowArray *batch, sp_buf *buf, sp_buf *prefix,
                        int64_t *rows, int *initial, sp_error *err) {
  int64_t off = 0;
  while (off < batch->length) {
    int64_t take = batch->length - off < *rows ? batch->length - off : *rows;
    struct ArrowArray slice = *batch; /* shallow: only offset and length differ, the writer compacts */
    slice.offset = batch->offset + off;
    slice.length = take;
    buf->len = 0;
    SP_TRY(sp_ipc_write_batch(w, &slice, buf, err));
    size_t size = frames_size(w);
    if (size > FLIGHT_MAX_MESSAGE - 4096 && take > 1) {
      int64_t fit = (int64_t)((double)take * (double)FLIGHT_TARGET_MESSAGE / (double)size);
      *rows = fit > 0 ? fit : 1;
      continue; /* retry this range with fewer rows */
    }
    if (!send_frames(c, w, buf, prefix, initial)) return sp_fail(err, SP_ECANCELED, "DoGet: the client went away");
    off += take;
  }
  return SP_OK;
}

static int stream_result(fl_call *c, struct ArrowArrayStream *st, int *initial, sp_error *err) {
  struct ArrowSchema schema = {0};
  int rc = st->get_schema(st, &schema);
  if (rc != 0) return stream_error(st, rc, err);
  sp_ipc_writer *w = NULL;
  sp_buf buf = {0}, prefix = {0};
  rc = sp_ipc_writer_create(&schema, &w, err);
  schema.release(&schema);
  if (rc == SP_OK) rc = sp_ipc_write_schema(w, &buf, err);
  if (rc == SP_OK && !send_frames(c, w, &buf, &prefix, initial))
    rc = sp_fail(err, SP_ECANCELED, "DoGet: the client went away");
  int64_t rows = INT64_MAX;
  while (rc == SP_OK) {
    struct ArrowArray batch = {0};
    int e = st->get_next(st, &batch);
    if (e != 0) {
      rc = stream_error(st, e, err);
      break;
    }
    if (batch.release == NULL) break; /* end */
    rc = stream_batch(c, w, &batch, &buf, &prefix, &rows, initial, err);
    batch.release(&batch);
  }
  sp_ipc_writer_destroy(w);
  sp_buf_free(&buf);
  sp_buf_free(&prefix);
  return rc;
}

static void do_get(fl_call *c) {
  sp_error err = {0};
  grpc_slice req = request_bytes(c->payload);
  sp_pb_bytes ticket;
  struct ArrowArrayStream st = {0};
  int initial = 1;
  int rc = sp_flight_decode_ticket(GRPC_SLICE_START_PTR(req), GRPC_SLICE_LENGTH(req), &ticket, &err);
  if (rc == SP_OK) rc = run_query(c->srv, ticket.data, ticket.len, &st, &err);
  if (rc == SP_OK) {
    rc = stream_result(c, &st, &initial, &err);
    st.release(&st);
  }
  if (rc == SP_OK) send_status(c, initial, GRPC_STATUS_OK, "");
  else if (rc != SP_ECANCELED) send_error(c, initial, &err);
  else send_status(c, 0, GRPC_STATUS_CANCELLED, err.msg); /* fails quietly when the call is gone */
  grpc_slice_unref(req);
}

/* Bidi: answers each HandshakeRequest with an empty HandshakeResponse until the client half-closes. No
 * authentication yet: every client is accepted. */
static void do_handshake(fl_call *c) {
  grpc_op ops[2];
  memset(ops, 0, sizeof ops);
  grpc_byte_buffer *in = NULL;
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_RECV_MESSAGE;
  ops[1].data.recv_message.recv_message = &in;
  if (!call_batch(c, ops, 2)) return;
  while (in != NULL) {
    sp_error err = {0};
    grpc_slice req = request_bytes(in);
    grpc_byte_buffer_destroy(in);
    in = NULL;
    uint64_t version;
    sp_pb_bytes payload;
    int rc = sp_flight_decode_handshake(GRPC_SLICE_START_PTR(req), GRPC_SLICE_LENGTH(req), &version, &payload,
                                        &err);
    grpc_slice_unref(req);
    if (rc != SP_OK) {
      send_error(c, 0, &err);
      return;
    }
    sp_buf resp = {0};
    if (sp_flight_encode_handshake(version, NULL, 0, &resp, &err) != SP_OK) {
      send_error(c, 0, &err);
      return;
    }
    grpc_slice out = grpc_slice_from_copied_buffer(resp.data ? resp.data : "", resp.len);
    sp_buf_free(&resp);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&out, 1);
    grpc_slice_unref(out);
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_MESSAGE;
    ops[0].data.send_message.send_message = bb;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &in;
    int ok = call_batch(c, ops, 2);
    grpc_byte_buffer_destroy(bb);
    if (!ok) {
      if (in) grpc_byte_buffer_destroy(in);
      return;
    }
  }
  send_status(c, 0, GRPC_STATUS_OK, "");
}

static void do_unimplemented(fl_call *c) {
  const char *path = "";
  size_t len = 0;
  if (c->method == M_UNREGISTERED) {
    path = (const char *)GRPC_SLICE_START_PTR(c->details.method);
    len = GRPC_SLICE_LENGTH(c->details.method);
    if (len > strlen(SERVICE) && memcmp(path, SERVICE, strlen(SERVICE)) == 0) {
      path += strlen(SERVICE);
      len -= strlen(SERVICE);
    }
  }
  char msg[300];
  snprintf(msg, sizeof msg, "%.*s is not implemented", (int)(len > 200 ? 200 : len), path);
  sp_log_debug("flight: %s", msg);
  send_status(c, 1, GRPC_STATUS_UNIMPLEMENTED, msg);
}

/* ---- Call threads --------------------------------------------------------------------------------------- */

static void *call_main(void *arg) {
  fl_call *c = arg;
  sp_flight_server *s = c->srv;
  switch (c->method) {
  case M_HANDSHAKE: do_handshake(c); break;
  case M_GET_FLIGHT_INFO:
  case M_GET_SCHEMA: do_describe(c); break;
  case M_DO_GET: do_get(c); break;
  default: do_unimplemented(c); break;
  }
  pthread_mutex_lock(&c->mu);
  while (!c->closed) pthread_cond_wait(&c->cv, &c->mu);
  pthread_mutex_unlock(&c->mu);
  call_free(c);
  pthread_mutex_lock(&s->mu);
  s->workers--;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

/* A new call arrived (event-loop thread): re-arm its method, anchor its lifetime on RECV_CLOSE_ON_SERVER,
 * and hand it to a thread. */
static void on_new_call(fl_tag *tag, int ok) {
  fl_call *c = CALL_OF(tag, new_tag);
  sp_flight_server *s = c->srv;
  pthread_mutex_lock(&s->mu);
  int shutting = s->shutting;
  pthread_mutex_unlock(&s->mu);
  if (!ok) { /* shutdown: no call came */
    call_free(c);
    return;
  }
  if (!shutting && arm(s, c->method) != SP_OK) sp_log_error("flight: could not wait for further calls");
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  op.data.recv_close_on_server.cancelled = &c->cancelled;
  if (grpc_call_start_batch(c->call, &op, 1, &c->close_tag, NULL) != GRPC_CALL_OK) c->closed = 1;
  pthread_mutex_lock(&s->mu);
  s->workers++;
  pthread_mutex_unlock(&s->mu);
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&t, &attr, call_main, c) != 0) {
    sp_log_error("flight: could not start a call thread");
    call_main(c); /* answers on this thread rather than leaking the call */
  }
  pthread_attr_destroy(&attr);
}

/* Waits for the next call of `method` (one outstanding request per method). */
static int arm(sp_flight_server *s, int method) {
  fl_call *c = calloc(1, sizeof *c);
  if (c == NULL) return SP_ENOMEM;
  c->srv = s;
  c->method = method;
  c->new_tag.fn = on_new_call;
  c->op_tag.fn = on_op;
  c->close_tag.fn = on_close;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  grpc_metadata_array_init(&c->md);
  grpc_call_details_init(&c->details);
  grpc_call_error e;
  if (method == M_UNREGISTERED)
    e = grpc_server_request_call(s->server, &c->call, &c->details, &c->md, s->cq, s->cq, &c->new_tag);
  else
    e = grpc_server_request_registered_call(s->server, s->methods[method], &c->call, &c->deadline, &c->md,
                                            method == M_HANDSHAKE ? NULL : &c->payload, s->cq, s->cq,
                                            &c->new_tag);
  if (e != GRPC_CALL_OK) {
    call_free(c);
    return SP_EINTERNAL;
  }
  return SP_OK;
}

/* ---- Event loop, start, stop ---------------------------------------------------------------------------- */

static int loop_done(sp_flight_server *s) {
  pthread_mutex_lock(&s->mu);
  int done = s->shutdown_done && s->workers == 0;
  pthread_mutex_unlock(&s->mu);
  return done;
}

static void *loop_main(void *arg) {
  sp_flight_server *s = arg;
  for (;;) {
    gpr_timespec t = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(200, GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_next(s->cq, t, NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
    if (ev.type == GRPC_OP_COMPLETE) ((fl_tag *)ev.tag)->fn(ev.tag, ev.success);
    if (!s->cq_closing && loop_done(s)) {
      s->cq_closing = 1;
      grpc_completion_queue_shutdown(s->cq); /* then drains until GRPC_QUEUE_SHUTDOWN */
    }
  }
  return NULL;
}

const char *sp_flight_endpoint(const sp_flight_server *s) {
  return s->endpoint;
}

static void destroy(sp_flight_server *s) {
  if (s->server) grpc_server_destroy(s->server);
  if (s->cq) grpc_completion_queue_destroy(s->cq);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s);
  grpc_shutdown_blocking(); /* nothing of gRPC outlives the server (leak checkers) */
}

/* Binds addr; returns the port or 0. */
static int bind_port(sp_flight_server *s, const char *addr) {
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  int port = grpc_server_add_http2_port(s->server, addr, creds);
  grpc_server_credentials_release(creds);
  return port;
}

static void set_endpoint(sp_flight_server *s, const char *addr, int port) {
  const char *colon = strrchr(addr, ':');
  int host_len = colon ? (int)(colon - addr) : (int)strlen(addr);
  snprintf(s->endpoint, sizeof s->endpoint, "%.*s:%d", host_len, addr, port);
}

int sp_flight_start(sp_runtime *rt, sp_http_server *http, const char *addr, sp_flight_server **out,
                    sp_error *err) {
  *out = NULL;
  sp_flight_server *s = calloc(1, sizeof *s);
  if (s == NULL) return sp_fail(err, SP_ENOMEM, "flight server: out of memory");
  grpc_init();
  s->rt = rt;
  s->shutdown_tag.fn = on_shutdown;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  /* gRPC binds with SO_REUSEPORT by default, so a second spiced would silently share the port: refuse. */
  grpc_arg arg[2] = {
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, .value.integer = -1},
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0},
  };
  grpc_channel_args args = {.num_args = 2, .args = arg};
  s->server = grpc_server_create(&args, NULL);
  s->cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(s->server, s->cq, NULL);
  char path[128];
  for (int m = 0; m < M_COUNT; m++) {
    snprintf(path, sizeof path, SERVICE "%s", method_names[m]);
    s->methods[m] = grpc_server_register_method(s->server, path, NULL,
                                                m == M_HANDSHAKE ? GRPC_SRM_PAYLOAD_NONE
                                                                 : GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
  }
  int port = bind_port(s, addr);
  if (port == 0) {
    destroy(s);
    return sp_fail(err, SP_EIO, "flight server: cannot listen on %s", addr);
  }
  set_endpoint(s, addr, port);
  grpc_server_start(s->server);
  int rc = SP_OK;
  for (int m = 0; m <= M_UNREGISTERED && rc == SP_OK; m++) rc = arm(s, m);
  if (rc == SP_OK && pthread_create(&s->loop, NULL, loop_main, s) == 0) s->loop_started = 1;
  if (!s->loop_started) {
    sp_flight_stop(s);
    return sp_fail(err, SP_EINTERNAL, "flight server: could not start");
  }
  if (http) sp_http_set_component(http, "flight", s->endpoint, "Ready", NULL);
  *out = s;
  return SP_OK;
}

void sp_flight_stop(sp_flight_server *s) {
  if (s == NULL) return;
  pthread_mutex_lock(&s->mu);
  s->shutting = 1;
  pthread_mutex_unlock(&s->mu);
  grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
  grpc_server_cancel_all_calls(s->server);
  if (s->loop_started) {
    pthread_join(s->loop, NULL);
  } else { /* nothing runs the queue: drain it here */
    grpc_completion_queue_shutdown(s->cq);
    for (;;) {
      grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
      if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
      if (ev.type == GRPC_OP_COMPLETE) ((fl_tag *)ev.tag)->fn(ev.tag, ev.success);
    }
  }
  destroy(s);
}
