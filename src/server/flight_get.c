/* SPDX-License-Identifier: Apache-2.0
 *
 * Flight queries: GetFlightInfo/GetSchema/DoGet for raw SQL (what the Spice SDKs send) and PATH descriptors,
 * the hand-off of Any-wrapped Flight SQL commands to flight_sql.c, and the DoGet streaming every result uses.
 *
 * Streaming: one message is in flight per call. The next batch is encoded only once gRPC took the previous
 * one (HTTP/2 flow control), so a slow client slows the query instead of filling the server's memory. Every
 * message stays under 4 MiB, the receive limit of grpc-js clients.
 *
 * Results cache (results_cache.h, keyed like POST /v1/sql): a complete answer small enough is kept as its
 * FlightData messages ([u32 length][message] each) and replayed on a hit; the initial metadata says
 * `results-cache-status: HIT|MISS|BYPASS` and `x-cache: Hit from spiceai|Miss from spiceai`.
 */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/flight_int.h"
#include "spice/ipc.h"
#include "spice/log.h"
#include "spice/sqltext.h"

/* grpc-js clients (the Spice SDKs) refuse messages over 4 MiB and cannot raise the limit: stay well below. */
#define FLIGHT_MAX_MESSAGE ((size_t)4 << 20)
#define FLIGHT_TARGET_MESSAGE ((size_t)3 << 20)

/* ---- Queries -------------------------------------------------------------------------------------------- */

int sp__flight_sql_text(sp_pb_bytes sql, char **out, sp_error *err) {
  if (sql.len == 0) return sp_fail(err, SP_EINVAL, "flight: the query is empty");
  if (memchr(sql.data, '\0', sql.len)) return sp_fail(err, SP_EINVAL, "flight: the query contains a NUL byte");
  char *text = malloc(sql.len + 1);
  if (text == NULL) return sp_fail(err, SP_ENOMEM, "flight: out of memory");
  memcpy(text, sql.data, sql.len);
  text[sql.len] = '\0';
  *out = text;
  return SP_OK;
}

static int stream_error(struct ArrowArrayStream *st, int rc, sp_error *err) {
  const char *m = st->get_last_error ? st->get_last_error(st) : NULL;
  return sp_fail(err, sp_status_from_errno(rc, SP_EINVAL), "%s", m && *m ? m : strerror(rc));
}

int sp__flight_query_schema(sp_flight_server *s, const sp_query_request *req, struct ArrowSchema *out,
                            sp_error *err) {
  int rc = sp_runtime_query_schema(s->rt, req, out, err);
  if (rc != SP_ENOTSUP) return rc;
  struct ArrowArrayStream st = {0};
  SP_TRY(sp_runtime_query(s->rt, req, &st, err));
  rc = st.get_schema(&st, out);
  if (rc != 0) rc = stream_error(&st, rc, err);
  st.release(&st);
  return rc;
}

int sp__flight_schema_ipc(const struct ArrowSchema *schema, sp_buf *out, sp_error *err) {
  sp_ipc_writer *w = NULL;
  int rc = sp_ipc_writer_create(schema, &w, err);
  if (rc == SP_OK) rc = sp_ipc_write_schema(w, out, err);
  sp_ipc_writer_destroy(w);
  return rc;
}

/* The encapsulated IPC Schema message of sql's result, appended to out. */
static int plan_schema(sp_flight_server *s, const char *sql, sp_buf *out, sp_error *err) {
  struct ArrowSchema schema = {0};
  sp_query_request req = {.sql = sql};
  int rc = sp__flight_query_schema(s, &req, &schema, err);
  if (rc == SP_OK) rc = sp__flight_schema_ipc(&schema, out, err);
  if (schema.release) schema.release(&schema);
  return rc;
}

void sp__flight_describe_reply(fl_call *c, const sp_buf *schema, const uint8_t *ticket, size_t ticket_len) {
  sp_error err = {0};
  sp_buf info = {0};
  grpc_slice req = sp__flight_request(c->payload);
  int rc;
  if (c->method == M_GET_SCHEMA)
    rc = sp_flight_encode_schema_result((const uint8_t *)schema->data, schema->len, &info, &err);
  else
    rc = sp_flight_encode_info((const uint8_t *)schema->data, schema->len, GRPC_SLICE_START_PTR(req),
                               GRPC_SLICE_LENGTH(req), ticket, ticket_len, &info, &err);
  if (rc == SP_OK) sp__flight_send_buf(c, info.data, info.len, GRPC_STATUS_OK);
  else sp__flight_error(c, &err);
  sp_buf_free(&info);
  grpc_slice_unref(req);
}

/* A PATH descriptor names a dataset (segments joined with '.'): its schema, and a ticket that reads it all. */
static int path_query(const uint8_t *desc, size_t len, char **sql, sp_error *err) {
  char name[1024], ident[2100];
  SP_TRY(sp_flight_descriptor_path(desc, len, name, sizeof name, err));
  if (sp_sql_ident(ident, sizeof ident, name) != 0) return sp_fail(err, SP_EINVAL, "flight: the path is too long");
  size_t n = strlen(ident) + 16;
  *sql = malloc(n);
  if (*sql == NULL) return sp_fail(err, SP_ENOMEM, "flight: out of memory");
  snprintf(*sql, n, "SELECT * FROM %s", ident);
  return SP_OK;
}

/* The SQL a CMD (raw SQL) or PATH descriptor stands for (caller frees). */
static int descriptor_sql(const sp_flight_descriptor *d, const uint8_t *p, size_t n, char **sql, sp_error *err) {
  if (d->type == SP_FLIGHT_DESC_CMD) return sp__flight_sql_text(d->cmd, sql, err);
  if (d->type == SP_FLIGHT_DESC_PATH) return path_query(p, n, sql, err);
  return sp_fail(err, SP_EINVAL, "flight descriptor: unknown descriptor type %d", d->type);
}

void sp__flight_describe(fl_call *c) {
  sp_error err = {0};
  grpc_slice req = sp__flight_request(c->payload);
  const uint8_t *p = GRPC_SLICE_START_PTR(req);
  size_t n = GRPC_SLICE_LENGTH(req);
  sp_flight_descriptor d;
  sp_pb_bytes name, value;
  sp_buf schema = {0};
  char *sql = NULL;
  int rc = sp_flight_decode_descriptor(p, n, &d, &err);
  if (rc == SP_OK && d.type == SP_FLIGHT_DESC_CMD && sp_flight_sql_unwrap(d.cmd.data, d.cmd.len, &name, &value)) {
    sp__flight_sql_describe(c, name, value);
    grpc_slice_unref(req);
    return;
  }
  if (rc == SP_OK) rc = descriptor_sql(&d, p, n, &sql, &err);
  if (rc == SP_OK) rc = plan_schema(c->srv, sql, &schema, &err);
  if (rc == SP_OK) sp__flight_describe_reply(c, &schema, (const uint8_t *)sql, strlen(sql));
  else sp__flight_error(c, &err);
  free(sql);
  sp_buf_free(&schema);
  grpc_slice_unref(req);
}

/* ---- Streaming ------------------------------------------------------------------------------------------ */

/* The messages of an answer being kept for the results cache. */
typedef struct capture {
  bool on;
  size_t limit;
  sp_buf buf;
} capture;

static void capture_msg(capture *cap, const sp_buf *prefix, const uint8_t *body, size_t body_len) {
  if (!cap || !cap->on) return;
  uint32_t len = (uint32_t)(prefix->len + body_len);
  if (cap->buf.len + 4 + len > cap->limit || sp_buf_append(&cap->buf, &len, 4) != SP_OK ||
      sp_buf_append(&cap->buf, prefix->data, prefix->len) != SP_OK ||
      sp_buf_append(&cap->buf, body, body_len) != SP_OK) {
    cap->on = false;
    sp_buf_free(&cap->buf);
  }
}

typedef struct streamer {
  fl_call *c;
  sp_ipc_writer *w;
  sp_buf buf, prefix;
  int64_t rows; /* rows per message that fit, learnt as batches go */
  capture *cap;
} streamer;

/* Sends the frames of the last write as FlightData messages; 0 when the client went away. */
static int send_frames(streamer *t) {
  size_t n;
  const sp_ipc_frame *fr = sp_ipc_writer_frames(t->w, &n);
  for (size_t i = 0; i < n; i++) {
    t->prefix.len = 0;
    const uint8_t *base = (const uint8_t *)t->buf.data;
    if (sp_flight_encode_data_prefix(base + fr[i].header_off, fr[i].header_len, fr[i].body_len, &t->prefix, NULL))
      return 0;
    capture_msg(t->cap, &t->prefix, base + fr[i].body_off, fr[i].body_len);
    grpc_slice sl[2];
    sl[0] = grpc_slice_from_copied_buffer(t->prefix.data, t->prefix.len);
    sl[1] = grpc_slice_from_copied_buffer((const char *)base + fr[i].body_off, fr[i].body_len);
    int ok = sp__flight_send(t->c, sl, fr[i].body_len ? 2 : 1, -1);
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

/* Streams one batch as slices of at most t->rows rows whose messages stay under the limit (adapting t->rows).
 * Returns SP_OK, an error, or SP_ECANCELED when the client went away. */
static int stream_batch(streamer *t, const struct ArrowArray *batch, sp_error *err) {
  int64_t off = 0;
  while (off < batch->length) {
    int64_t take = batch->length - off < t->rows ? batch->length - off : t->rows;
    struct ArrowArray slice = *batch; /* shallow: only offset and length differ, the writer compacts */
    slice.offset = batch->offset + off;
    slice.length = take;
    t->buf.len = 0;
    SP_TRY(sp_ipc_write_batch(t->w, &slice, &t->buf, err));
    size_t size = frames_size(t->w);
    if (size > FLIGHT_MAX_MESSAGE - 4096 && take > 1) {
      int64_t fit = (int64_t)((double)take * (double)FLIGHT_TARGET_MESSAGE / (double)size);
      t->rows = fit > 0 ? fit : 1;
      continue; /* retry this range with fewer rows */
    }
    if (!send_frames(t)) return sp_fail(err, SP_ECANCELED, "DoGet: the client went away");
    off += take;
  }
  return SP_OK;
}

static int stream_result(fl_call *c, struct ArrowArrayStream *st, capture *cap, bool send_schema, sp_error *err) {
  struct ArrowSchema schema = {0};
  int rc = st->get_schema(st, &schema);
  if (rc != 0) return stream_error(st, rc, err);
  streamer t = {.c = c, .rows = INT64_MAX, .cap = cap};
  rc = sp_ipc_writer_create(&schema, &t.w, err);
  schema.release(&schema);
  if (rc == SP_OK) rc = sp_ipc_write_schema(t.w, &t.buf, err);
  if (rc == SP_OK && send_schema && !send_frames(&t)) rc = sp_fail(err, SP_ECANCELED, "DoGet: the client went away");
  while (rc == SP_OK) {
    struct ArrowArray batch = {0};
    int e = st->get_next(st, &batch);
    if (e != 0) {
      rc = stream_error(st, e, err);
      break;
    }
    if (batch.release == NULL) break; /* end */
    rc = stream_batch(&t, &batch, err);
    batch.release(&batch);
  }
  sp_ipc_writer_destroy(t.w);
  sp_buf_free(&t.buf);
  sp_buf_free(&t.prefix);
  return rc;
}

static void finish(fl_call *c, int rc, const sp_error *err) {
  if (rc == SP_OK) sp__flight_status(c, GRPC_STATUS_OK, "");
  else if (rc != SP_ECANCELED) sp__flight_error(c, err);
  else sp__flight_status(c, GRPC_STATUS_CANCELLED, err->msg); /* fails quietly when the call is gone */
}

int sp__flight_stream(fl_call *c, struct ArrowArrayStream *st, bool send_schema, sp_error *err) {
  return stream_result(c, st, NULL, send_schema, err);
}

void sp__flight_serve_stream(fl_call *c, struct ArrowArrayStream *st) {
  sp_error err = {0};
  int rc = stream_result(c, st, NULL, true, &err);
  st->release(st);
  finish(c, rc, &err);
}

/* ---- Results cache -------------------------------------------------------------------------------------- */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t cache_version(sp_flight_server *s) {
  return sp_runtime_data_version(s->rt) + atomic_load(&s->writes);
}

/* False while any dataset is loading or refreshing (see http_routes.c: a refresh makes its rows visible a
 * moment before the data version moves, so a hit could be stale in that window). */
static bool data_settled(sp_runtime *rt) {
  sp_dataset_info *d = malloc(sizeof *d);
  if (d == NULL) return false;
  bool settled = true;
  size_t n = sp_runtime_dataset_count(rt);
  for (size_t i = 0; i < n && settled; i++)
    if (sp_runtime_dataset_info(rt, i, d) == SP_OK)
      settled = d->status != SP_STATUS_REFRESHING && d->status != SP_STATUS_INITIALIZING;
  free(d);
  return settled;
}

static bool no_cache_requested(const fl_call *c) {
  size_t n;
  const char *v = sp__flight_md(c, "cache-control", &n);
  if (v == NULL) return false;
  char tmp[128];
  snprintf(tmp, sizeof tmp, "%.*s", (int)(n < sizeof tmp ? n : sizeof tmp - 1), v);
  return strstr(tmp, "no-cache") || strstr(tmp, "no-store");
}

/* Replays a cached answer; false when it is malformed (never, unless memory was corrupted). */
static bool replay(fl_call *c, const sp_buf *hit) {
  size_t pos = 0;
  while (pos + 4 <= hit->len) {
    uint32_t len;
    memcpy(&len, hit->data + pos, 4);
    pos += 4;
    if (len > hit->len - pos) return false;
    if (!sp__flight_send_buf(c, hit->data + pos, len, -1)) return true; /* client gone */
    pos += len;
  }
  sp__flight_status(c, GRPC_STATUS_OK, "");
  return true;
}

typedef enum { CACHE_NONE, CACHE_MISS, CACHE_BYPASS } cache_state;

/* Looks req up; on a hit answers the call and returns true. Otherwise *key holds the key to store under (for
 * MISS and BYPASS) and the metadata says which. */
static bool cache_lookup(fl_call *c, const sp_query_request *req, sp_buf *key, uint64_t *version) {
  sp_flight_server *s = c->srv;
  bool cacheable = false;
  if (s->cache == NULL) return false;
  if (sp_cache_key(req->sql, req->params, req->n_params, 0, key, &cacheable) != SP_OK || !cacheable) {
    sp_buf_free(key);
    return false;
  }
  *version = cache_version(s);
  if (no_cache_requested(c)) {
    sp__flight_add_md(c, "results-cache-status", "BYPASS");
    return false;
  }
  sp_buf hit = {0};
  bool settled = data_settled(s->rt) && cache_version(s) == *version;
  if (settled && sp_rcache_get(s->cache, key->data, key->len, *version, now_ms(), &hit)) {
    sp__flight_add_md(c, "results-cache-status", "HIT");
    sp__flight_add_md(c, "x-cache", "Hit from spiceai");
    bool ok = replay(c, &hit);
    sp_buf_free(&hit);
    sp_buf_free(key);
    if (!ok) sp__flight_status(c, GRPC_STATUS_INTERNAL, "results cache: a stored answer is damaged");
    return true;
  }
  sp__flight_add_md(c, "results-cache-status", "MISS");
  sp__flight_add_md(c, "x-cache", "Miss from spiceai");
  return false;
}

void sp__flight_serve_query(fl_call *c, const sp_query_request *req) {
  sp_flight_server *s = c->srv;
  sp_error err = {0};
  sp_buf key = {0};
  uint64_t version = 0;
  if (cache_lookup(c, req, &key, &version)) return;
  capture cap = {.on = key.len > 0, .limit = key.len ? (size_t)sp_rcache_item_limit(s->cache) : 0};
  struct ArrowArrayStream st = {0};
  int rc = sp_runtime_query(s->rt, req, &st, &err);
  if (rc == SP_OK) {
    rc = stream_result(c, &st, &cap, true, &err);
    st.release(&st);
  }
  if (rc == SP_OK && cap.on &&
      sp_rcache_put(s->cache, key.data, key.len, version, now_ms(), cap.buf.data, cap.buf.len))
    sp_log_debug("results cache: out of memory storing a Flight result");
  /* A write made here ends the cached answers too (the runtime's version follows refreshes). */
  if (key.len == 0 && sp_sql_may_write(req->sql, strlen(req->sql))) atomic_fetch_add(&s->writes, 1);
  sp_buf_free(&cap.buf);
  sp_buf_free(&key);
  finish(c, rc, &err);
}

void sp__flight_do_get(fl_call *c) {
  sp_error err = {0};
  grpc_slice req = sp__flight_request(c->payload);
  sp_pb_bytes ticket, name, value;
  char *sql = NULL;
  int rc = sp_flight_decode_ticket(GRPC_SLICE_START_PTR(req), GRPC_SLICE_LENGTH(req), &ticket, &err);
  if (rc == SP_OK && sp_flight_sql_unwrap(ticket.data, ticket.len, &name, &value)) {
    sp__flight_sql_get(c, name, value);
  } else {
    if (rc == SP_OK) rc = sp__flight_sql_text(ticket, &sql, &err);
    sp_query_request q = {.sql = sql};
    if (rc == SP_OK) sp__flight_serve_query(c, &q);
    else sp__flight_error(c, &err);
  }
  free(sql);
  grpc_slice_unref(req);
}
