/* SPDX-License-Identifier: Apache-2.0
 *
 * DoPut appends (docs/flight.md): a PATH descriptor naming a `mode: read_write` dataset, or a Flight SQL
 * CommandStatementIngest naming it, followed by the Arrow IPC stream of the rows. The rows go through
 * sp_runtime_insert, the write path of SQL INSERT (source first, then the accelerated copy), as a stream that
 * pulls the client's next FlightData only when the runtime asks for the next batch, so a large upload is never
 * held whole in memory. The answer comes once the write is complete: one empty PutResult per batch for a
 * PATH put (as Spice answers), or one PutResult{app_metadata = DoPutUpdateResult{record_count}} for an ingest.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/flight_int.h"
#include "spice/arrow.h"
#include "spice/ipc.h"
#include "spice/log.h"

typedef struct put_stream {
  fl_call *c;
  sp_ipc_reader *r;
  struct ArrowArray pending; /* a batch that came with the first message */
  int64_t batches;
  bool gone;                 /* the client went away mid-stream */
  char error[512];
} put_stream;

/* Decodes one FlightData's message; *got is set when it was a record batch. */
static int feed(put_stream *p, const sp_flight_data *d, struct ArrowArray *out, bool *got, sp_error *err) {
  *got = false;
  if (d->header.len == 0) return SP_OK;
  sp_ipc_msg_type type;
  SP_TRY(sp_ipc_reader_message(p->r, d->header.data, d->header.len, d->body.data, d->body.len, &type, out, err));
  *got = type == SP_IPC_RECORD_BATCH;
  return SP_OK;
}

static int ps_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  put_stream *p = s->private_data;
  sp_error err = {0};
  if (sp_ipc_reader_schema(p->r, out, &err) == SP_OK) return 0;
  snprintf(p->error, sizeof p->error, "%s", err.msg);
  return EINVAL;
}

/* The next batch: the one that came first, else the client's next messages until a record batch or the end. */
static int ps_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  put_stream *p = s->private_data;
  memset(out, 0, sizeof *out);
  if (p->pending.release) {
    sp_array_move(out, &p->pending);
    p->batches++;
    return 0;
  }
  for (;;) {
    grpc_byte_buffer *in = NULL;
    if (!sp__flight_recv(p->c, &in)) {
      p->gone = true;
      snprintf(p->error, sizeof p->error, "DoPut: the client went away");
      return ECANCELED;
    }
    if (in == NULL) return 0; /* half-closed: the end (out->release stays NULL) */
    grpc_slice sl = sp__flight_request(in);
    grpc_byte_buffer_destroy(in);
    sp_error err = {0};
    sp_flight_data d;
    bool got = false;
    int rc = sp_flight_decode_data(GRPC_SLICE_START_PTR(sl), GRPC_SLICE_LENGTH(sl), &d, &err);
    if (rc == SP_OK) rc = feed(p, &d, out, &got, &err);
    grpc_slice_unref(sl);
    if (rc != SP_OK) {
      snprintf(p->error, sizeof p->error, "%s", err.msg);
      return EINVAL;
    }
    if (got) {
      p->batches++;
      return 0;
    }
  }
}

static const char *ps_last_error(struct ArrowArrayStream *s) {
  put_stream *p = s->private_data;
  return p->error;
}

static void ps_release(struct ArrowArrayStream *s) {
  put_stream *p = s->private_data;
  if (p->pending.release) p->pending.release(&p->pending);
  sp_ipc_reader_destroy(p->r);
  p->r = NULL;
  s->release = NULL;
}

/* Reads the messages until the schema (it must come first, usually with the descriptor). */
static int read_schema(put_stream *p, const sp_flight_data *first, sp_error *err) {
  bool got;
  SP_TRY(feed(p, first, &p->pending, &got, err));
  struct ArrowSchema probe = {0};
  if (sp_ipc_reader_schema(p->r, &probe, NULL) == SP_OK) {
    sp_schema_release(&probe);
    return SP_OK;
  }
  /* The schema came without the descriptor: read on until the first batch (the schema comes before it), and
   * keep that batch for the write. */
  struct ArrowArrayStream s = {.private_data = p};
  struct ArrowArray batch;
  int e = ps_get_next(&s, &batch);
  if (e != 0) return sp_fail(err, p->gone ? SP_ECANCELED : SP_EINVAL, "%s", p->error);
  if (batch.release) {
    sp_array_move(&p->pending, &batch);
    p->batches--; /* counted again when the write takes it */
  }
  if (sp_ipc_reader_schema(p->r, &probe, err) != SP_OK) return SP_EINVAL;
  sp_schema_release(&probe);
  return SP_OK;
}

static int send_put_results(fl_call *c, int64_t batches, int64_t rows, bool ingest, sp_error *err) {
  sp_buf res = {0}, put = {0};
  int rc = SP_OK;
  if (ingest) { /* PutResult{app_metadata = DoPutUpdateResult{record_count}} */
    rc = sp_flight_put_varint(&res, 1, (uint64_t)rows, err);
    if (rc == SP_OK) rc = sp_flight_put_bytes(&put, 1, res.data, res.len, err);
    if (rc == SP_OK && !sp__flight_send_buf(c, put.data, put.len, -1)) rc = SP_ECANCELED;
  }
  for (int64_t i = 0; !ingest && rc == SP_OK && i < batches; i++)
    if (!sp__flight_send_buf(c, NULL, 0, -1)) rc = SP_ECANCELED;
  sp_buf_free(&res);
  sp_buf_free(&put);
  return rc;
}

void sp__flight_put_append(fl_call *c, const char *dataset, bool ingest, const sp_flight_data *first) {
  sp_error err = {0};
  put_stream *p = calloc(1, sizeof *p);
  int rc = p ? sp_ipc_reader_create(&p->r, &err) : sp_fail(&err, SP_ENOMEM, "flight: out of memory");
  if (p) p->c = c;
  if (rc == SP_OK) rc = read_schema(p, first, &err);
  int64_t rows = 0, batches = 0;
  if (rc == SP_OK) {
    struct ArrowArrayStream s = {.get_schema = ps_get_schema, .get_next = ps_get_next,
                                 .get_last_error = ps_last_error, .release = ps_release, .private_data = p};
    rc = sp_runtime_insert(c->srv->rt, dataset, &s, &rows, &err);
    if (s.release) s.release(&s);
    batches = p->batches;
    if (p->gone) rc = SP_ECANCELED;
  } else if (p) {
    sp_ipc_reader_destroy(p->r);
    if (p->pending.release) p->pending.release(&p->pending);
  }
  free(p);
  if (rc == SP_OK) {
    atomic_fetch_add(&c->srv->writes, 1); /* cached answers end with the write */
    sp_log_debug("flight: DoPut appended %lld rows to %s", (long long)rows, dataset);
    rc = send_put_results(c, batches, rows, ingest, &err);
  }
  if (rc == SP_OK) sp__flight_status(c, GRPC_STATUS_OK, "");
  else if (rc != SP_ECANCELED) sp__flight_error(c, &err);
}
