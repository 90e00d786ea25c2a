/* SPDX-License-Identifier: Apache-2.0
 *
 * DoExchange as Spice uses it: a subscription to one dataset. The client's first FlightData names the dataset
 * with a PATH descriptor; the answer is the dataset's current contents (Schema message, then its batches), and
 * after every change of its data (a refresh or a write lands: the runtime's data version moves and the
 * dataset's refresh time or row count changed) a metadata-only FlightData whose app_metadata is
 * {"update":"overwrite","rows":N}, followed by the new contents' batches (same schema, no second Schema
 * message). The stream ends when the client cancels, or with OK when the server shuts down. Further client
 * messages are ignored. The runtime has no change feed, so the worker looks every POLL_MS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "server/flight_int.h"
#include "spice/log.h"
#include "spice/sqltext.h"

#define POLL_MS 100

/* The dataset named `name` (case-insensitively): its info, for change detection. SP_ENOTFOUND otherwise. */
static int find_dataset(sp_runtime *rt, const char *name, sp_dataset_info *out) {
  size_t n = sp_runtime_dataset_count(rt);
  for (size_t i = 0; i < n; i++)
    if (sp_runtime_dataset_info(rt, i, out) == SP_OK && strcasecmp(out->name, name) == 0) return SP_OK;
  return SP_ENOTFOUND;
}

/* Streams the dataset's whole contents (with the Schema message the first time). */
static int send_contents(fl_call *c, const char *name, bool first, sp_error *err) {
  char ident[600], sql[700];
  if (sp_sql_ident(ident, sizeof ident, name) != 0) return sp_fail(err, SP_EINVAL, "dataset name too long");
  snprintf(sql, sizeof sql, "SELECT * FROM %s", ident);
  sp_query_request req = {.sql = sql};
  struct ArrowArrayStream st = {0};
  SP_TRY(sp_runtime_query(c->srv->rt, &req, &st, err));
  int rc = sp__flight_stream(c, &st, first, err);
  st.release(&st);
  return rc;
}

/* Announces an update: FlightData{app_metadata = {"update":"overwrite","rows":N}}. */
static int send_marker(fl_call *c, int64_t rows, sp_error *err) {
  char json[96];
  snprintf(json, sizeof json, "{\"update\":\"overwrite\",\"rows\":%lld}", (long long)rows);
  sp_buf msg = {0};
  SP_TRY(sp_flight_put_bytes(&msg, 3, json, strlen(json), err));
  int ok = sp__flight_send_buf(c, msg.data, msg.len, -1);
  sp_buf_free(&msg);
  return ok ? SP_OK : sp_fail(err, SP_ECANCELED, "DoExchange: the client went away");
}

/* Waits POLL_MS for the call to close; true when the subscription is over (client gone or server stopping). */
static bool wait_tick(fl_call *c) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_nsec += POLL_MS * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&c->mu);
  if (!c->closed) pthread_cond_timedwait(&c->cv, &c->mu, &until);
  bool closed = c->closed;
  pthread_mutex_unlock(&c->mu);
  pthread_mutex_lock(&c->srv->mu);
  bool stopping = c->srv->shutting;
  pthread_mutex_unlock(&c->srv->mu);
  return closed || stopping;
}

static bool changed(const sp_dataset_info *a, const sp_dataset_info *b) {
  return a->last_refresh_ms != b->last_refresh_ms || a->rows != b->rows;
}

/* Sends the contents, then an update after every change, until the call is over. */
static int subscribe(fl_call *c, const char *name, sp_error *err) {
  sp_runtime *rt = c->srv->rt;
  sp_dataset_info *seen = malloc(sizeof *seen), *now = malloc(sizeof *now);
  int rc = seen && now ? find_dataset(rt, name, seen) : sp_fail(err, SP_ENOMEM, "flight: out of memory");
  if (rc == SP_ENOTFOUND) sp_fail(err, rc, "Dataset %s not found", name);
  uint64_t version = sp_runtime_data_version(rt);
  if (rc == SP_OK) rc = send_contents(c, seen->name, true, err);
  while (rc == SP_OK && !wait_tick(c)) {
    uint64_t v = sp_runtime_data_version(rt);
    if (v == version) continue;
    version = v;
    if (find_dataset(rt, name, now) != SP_OK) {
      rc = sp_fail(err, SP_ENOTFOUND, "Dataset %s was removed", name);
      break;
    }
    if (!changed(seen, now)) continue;
    *seen = *now;
    rc = send_marker(c, now->rows, err);
    if (rc == SP_OK) rc = send_contents(c, now->name, false, err);
    if (rc == SP_OK) atomic_fetch_add(&c->srv->exchange_updates, 1);
  }
  free(seen);
  free(now);
  return rc;
}

void sp__flight_do_exchange(fl_call *c) {
  sp_error err = {0};
  grpc_byte_buffer *in = NULL;
  if (!sp__flight_recv(c, &in)) return;
  if (in == NULL) {
    sp__flight_status(c, GRPC_STATUS_INVALID_ARGUMENT, "DoExchange: no message was sent");
    return;
  }
  grpc_slice sl = sp__flight_request(in);
  grpc_byte_buffer_destroy(in);
  sp_flight_data first;
  sp_flight_descriptor d;
  char name[600];
  int rc = sp_flight_decode_data(GRPC_SLICE_START_PTR(sl), GRPC_SLICE_LENGTH(sl), &first, &err);
  if (rc == SP_OK && !first.has_descriptor)
    rc = sp_fail(&err, SP_EINVAL, "DoExchange: the first message must name a dataset with a PATH descriptor");
  if (rc == SP_OK) rc = sp_flight_decode_descriptor(first.descriptor.data, first.descriptor.len, &d, &err);
  if (rc == SP_OK && d.type != SP_FLIGHT_DESC_PATH)
    rc = sp_fail(&err, SP_EINVAL, "DoExchange: the first message must name a dataset with a PATH descriptor");
  if (rc == SP_OK) rc = sp_flight_descriptor_path(first.descriptor.data, first.descriptor.len, name, sizeof name, &err);
  grpc_slice_unref(sl);
  if (rc == SP_OK) rc = subscribe(c, name, &err);
  if (rc == SP_OK) sp__flight_status(c, GRPC_STATUS_OK, "");
  else if (rc != SP_ECANCELED) sp__flight_error(c, &err);
}
