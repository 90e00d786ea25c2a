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
 * At most max_workers calls have a thread; one more is answered RESOURCE_EXHAUSTED from the event loop itself.
 *
 * Shutdown: grpc_server_shutdown_and_notify stops new calls and lets the ones in flight finish (up to the
 * runtime's shutdown_timeout); then cancel_all_calls makes every pending operation complete (failed). The
 * event loop keeps running until the shutdown tag arrived and no worker is left, then drains the queue.
 */
#include "server/flight_int.h"
#include "server/http_int.h" /* sp__http_config: the TLS files the HTTP server serves with */

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spice/log.h"

#define DEFAULT_MAX_CALLS 128

const char *const sp__flight_method_names[M_COUNT] = {"Handshake", "ListFlights", "GetFlightInfo", "GetSchema", "DoGet",
                                                      "DoPut",     "DoAction",    "ListActions",   "DoExchange"};

static int arm(sp_flight_server *s, int method);

/* Methods whose single request message comes with the call (the others stream requests: Handshake, DoPut). */
static bool unary_request(int method) {
  return method != M_HANDSHAKE && method != M_DO_PUT && method != M_DO_EXCHANGE;
}

/* ---- Completions ---------------------------------------------------------------------------------------- */

#define CALL_OF(tag, member) ((fl_call *)(void *)((char *)(tag) - offsetof(fl_call, member)))

static void call_free(fl_call *c) {
  if (c->call) grpc_call_unref(c->call);
  if (c->payload) grpc_byte_buffer_destroy(c->payload);
  for (size_t i = 0; i < c->n_out_md; i++) grpc_slice_unref(c->out_md[i].value);
  grpc_metadata_array_destroy(&c->md);
  grpc_call_details_destroy(&c->details);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
  free(c);
}

/* A rejected call has no thread: the event loop frees it once its status batch and its close both completed. */
static void rejected_step(fl_call *c) {
  if (c->op_done && c->closed) call_free(c);
}

static void on_op(fl_tag *tag, int ok) {
  fl_call *c = CALL_OF(tag, op_tag);
  if (c->rejected) {
    c->op_done = 1;
    rejected_step(c);
    return;
  }
  pthread_mutex_lock(&c->mu);
  c->op_done = 1;
  c->op_ok = ok;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static void on_close(fl_tag *tag, int ok) {
  (void)ok;
  fl_call *c = CALL_OF(tag, close_tag);
  if (c->rejected) {
    c->closed = 1;
    rejected_step(c);
    return;
  }
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
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

/* ---- Blocking helpers for worker threads ---------------------------------------------------------------- */

int sp__flight_batch(fl_call *c, grpc_op *ops, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (ops[i].op != GRPC_OP_SEND_INITIAL_METADATA) continue;
    ops[i].data.send_initial_metadata.count = c->n_out_md;
    ops[i].data.send_initial_metadata.metadata = c->n_out_md ? c->out_md : NULL;
    c->initial_sent = 1;
  }
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

void sp__flight_add_md(fl_call *c, const char *key, const char *value) {
  if (c->initial_sent || c->n_out_md == FL_MAX_MD) return;
  grpc_metadata *m = &c->out_md[c->n_out_md++];
  memset(m, 0, sizeof *m);
  m->key = grpc_slice_from_static_string(key);
  m->value = grpc_slice_from_copied_string(value);
}

const char *sp__flight_md(const fl_call *c, const char *key, size_t *len) {
  size_t klen = strlen(key);
  for (size_t i = 0; i < c->md.count; i++) {
    const grpc_slice *k = &c->md.metadata[i].key;
    if (GRPC_SLICE_LENGTH(*k) == klen && memcmp(GRPC_SLICE_START_PTR(*k), key, klen) == 0) {
      *len = GRPC_SLICE_LENGTH(c->md.metadata[i].value);
      return (const char *)GRPC_SLICE_START_PTR(c->md.metadata[i].value);
    }
  }
  *len = 0;
  return NULL;
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

int sp__flight_send(fl_call *c, grpc_slice *slices, size_t n, int status) {
  grpc_op ops[3];
  memset(ops, 0, sizeof ops);
  size_t k = 0;
  if (!c->initial_sent) ops[k++].op = GRPC_OP_SEND_INITIAL_METADATA;
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(slices, n);
  ops[k].op = GRPC_OP_SEND_MESSAGE;
  ops[k++].data.send_message.send_message = bb;
  grpc_slice empty = grpc_empty_slice();
  if (status >= 0) {
    ops[k].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[k].data.send_status_from_server.status = (grpc_status_code)status;
    ops[k++].data.send_status_from_server.status_details = &empty;
  }
  int ok = sp__flight_batch(c, ops, k);
  grpc_byte_buffer_destroy(bb);
  return ok;
}

int sp__flight_send_buf(fl_call *c, const void *data, size_t len, int status) {
  grpc_slice out = grpc_slice_from_copied_buffer(data ? data : "", len);
  int ok = sp__flight_send(c, &out, 1, status);
  grpc_slice_unref(out);
  return ok;
}

void sp__flight_status(fl_call *c, grpc_status_code code, const char *msg) {
  grpc_op ops[2];
  memset(ops, 0, sizeof ops);
  size_t k = 0;
  if (!c->initial_sent) ops[k++].op = GRPC_OP_SEND_INITIAL_METADATA;
  grpc_slice details = grpc_slice_from_copied_string(msg ? msg : "");
  ops[k].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[k].data.send_status_from_server.status = code;
  ops[k++].data.send_status_from_server.status_details = &details;
  sp__flight_batch(c, ops, k);
  grpc_slice_unref(details);
}

/* The engine reports an unknown table as a binder error (SP_EINVAL, DuckDB's "Catalog Error: Table with name
 * x does not exist!"); Flight clients expect NOT_FOUND for it. A dataset still loading (its placeholder's
 * message, also a binder error) is UNAVAILABLE: clients retry that (another spiced federating this one, the
 * SDKs), while INVALID_ARGUMENT tells them the query itself is wrong. */
static grpc_status_code error_status(const sp_error *err) {
  static const char unknown_table[] = "Catalog Error: Table with name ";
  if (err->code == SP_EINVAL && strncmp(err->msg, unknown_table, sizeof unknown_table - 1) == 0 &&
      strstr(err->msg, "does not exist"))
    return GRPC_STATUS_NOT_FOUND;
  if (err->code == SP_EINVAL && (strstr(err->msg, "Acceleration not ready; loading initial data for ") ||
                                 strstr(err->msg, " is not available yet: its source has not been reached")))
    return GRPC_STATUS_UNAVAILABLE;
  return status_of(err->code);
}

void sp__flight_error(fl_call *c, const sp_error *err) {
  sp_log_debug("flight %s: %s", c->method < M_COUNT ? sp__flight_method_names[c->method] : "call", err->msg);
  sp__flight_status(c, error_status(err), err->msg);
}

grpc_slice sp__flight_request(grpc_byte_buffer *bb) {
  grpc_byte_buffer_reader rd;
  if (bb == NULL || !grpc_byte_buffer_reader_init(&rd, bb)) return grpc_empty_slice();
  grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
  grpc_byte_buffer_reader_destroy(&rd);
  return s;
}

int sp__flight_recv(fl_call *c, grpc_byte_buffer **out) {
  grpc_op op;
  memset(&op, 0, sizeof op);
  *out = NULL;
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = out;
  if (sp__flight_batch(c, &op, 1)) return 1;
  if (*out) grpc_byte_buffer_destroy(*out);
  *out = NULL;
  return 0;
}

static void do_unimplemented(fl_call *c) {
  const char *path = "";
  size_t len = 0;
  if (c->method == M_UNREGISTERED) {
    path = (const char *)GRPC_SLICE_START_PTR(c->details.method);
    len = GRPC_SLICE_LENGTH(c->details.method);
    if (len > strlen(FL_SERVICE) && memcmp(path, FL_SERVICE, strlen(FL_SERVICE)) == 0) {
      path += strlen(FL_SERVICE);
      len -= strlen(FL_SERVICE);
    }
  }
  char msg[300];
  snprintf(msg, sizeof msg, "%.*s is not implemented", (int)(len > 200 ? 200 : len), path);
  sp_log_debug("flight: %s", msg);
  sp__flight_status(c, GRPC_STATUS_UNIMPLEMENTED, msg);
}

/* ---- Call threads --------------------------------------------------------------------------------------- */

static void dispatch(fl_call *c) {
  if (c->method != M_HANDSHAKE && c->method != M_UNREGISTERED && !sp__flight_authorized(c)) {
    sp__flight_status(c, GRPC_STATUS_UNAUTHENTICATED, "Access denied. Invalid credentials.");
    return;
  }
  switch (c->method) {
  case M_HANDSHAKE: sp__flight_handshake(c); break;
  case M_LIST_FLIGHTS: sp__flight_list_flights(c); break;
  case M_GET_FLIGHT_INFO:
  case M_GET_SCHEMA: sp__flight_describe(c); break;
  case M_DO_GET: sp__flight_do_get(c); break;
  case M_DO_PUT: sp__flight_do_put(c); break;
  case M_DO_ACTION: sp__flight_do_action(c); break;
  case M_LIST_ACTIONS: sp__flight_list_actions(c); break;
  case M_DO_EXCHANGE: sp__flight_do_exchange(c); break;
  default: do_unimplemented(c); break;
  }
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *call_main(void *arg) {
  fl_call *c = arg;
  sp_flight_server *s = c->srv;
  int64_t started = now_ms();
  dispatch(c);
  if (c->method < M_COUNT) {
    atomic_fetch_add(&s->calls[c->method], 1);
    atomic_fetch_add(&s->call_ms[c->method], (uint_fast64_t)(now_ms() - started));
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

/* Too many calls in flight: answers RESOURCE_EXHAUSTED without a thread (event-loop thread, non-blocking). */
static void reject(fl_call *c) {
  c->rejected = 1;
  atomic_fetch_add(&c->srv->rejected, 1);
  grpc_op ops[2];
  memset(ops, 0, sizeof ops);
  grpc_slice details = grpc_slice_from_static_string("the server is busy: too many Flight calls in flight");
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[1].data.send_status_from_server.status = GRPC_STATUS_RESOURCE_EXHAUSTED;
  ops[1].data.send_status_from_server.status_details = &details;
  if (grpc_call_start_batch(c->call, ops, 2, &c->op_tag, NULL) != GRPC_CALL_OK) c->op_done = 1;
  grpc_slice_unref(details);
  rejected_step(c);
}

/* Counts a worker for c unless the cap is reached; false when it is. */
static bool take_worker(sp_flight_server *s) {
  pthread_mutex_lock(&s->mu);
  bool ok = s->workers < s->max_workers;
  if (ok) s->workers++;
  pthread_mutex_unlock(&s->mu);
  return ok;
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
  if (!take_worker(s)) {
    sp_log_warn("flight: %d calls in flight; refusing one more", s->max_workers);
    reject(c);
    return;
  }
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&t, &attr, call_main, c) != 0) {
    sp_log_error("flight: could not start a call thread");
    pthread_mutex_lock(&s->mu);
    s->workers--;
    pthread_mutex_unlock(&s->mu);
    reject(c);
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
                                            unary_request(method) ? &c->payload : NULL, s->cq, s->cq,
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

/* Spice's metric names (spice-compat §4.5), by method: the request counter and, where Spice has one, the
 * duration. */
static const struct {
  const char *requests, *duration;
} metric_names[M_COUNT] = {
    [M_HANDSHAKE] = {"flight_handshake_requests", "flight_handshake_request_duration_ms"},
    [M_LIST_FLIGHTS] = {"flight_list_flights_requests", NULL},
    [M_GET_FLIGHT_INFO] = {"flight_get_flight_info_requests", "flight_get_flight_info_request_duration_ms"},
    [M_GET_SCHEMA] = {"flight_get_schema_requests", NULL},
    [M_DO_GET] = {"flight_do_get_requests", NULL},
    [M_DO_PUT] = {"flight_do_put_requests", "flight_do_put_duration_ms"},
    [M_DO_ACTION] = {"flight_do_action_requests", "flight_do_action_duration_ms"},
    [M_LIST_ACTIONS] = {"flight_list_actions_requests", "flight_list_actions_duration_ms"},
    [M_DO_EXCHANGE] = {"flight_do_exchange_requests", NULL},
};

static int sample(sp_buf *out, const char *name, const char *suffix, uint64_t v) {
  char line[160];
  int n = snprintf(line, sizeof line, "%s%s %llu\n", name, suffix, (unsigned long long)v);
  return sp_buf_append(out, line, (size_t)n);
}

static int typed(sp_buf *out, const char *name, const char *type) {
  char line[160];
  int n = snprintf(line, sizeof line, "# TYPE %s %s\n", name, type);
  return sp_buf_append(out, line, (size_t)n);
}

static int counter(sp_buf *out, const char *name, uint64_t v) {
  SP_TRY(typed(out, name, "counter"));
  return sample(out, name, "", v);
}

int sp_flight_metrics_render(sp_flight_server *s, sp_buf *out) {
  int rc = SP_OK;
  for (int m = 0; m < M_COUNT && rc == SP_OK; m++) {
    uint64_t calls = atomic_load(&s->calls[m]);
    const char *d = metric_names[m].duration;
    rc = counter(out, metric_names[m].requests, calls);
    if (rc == SP_OK && d) rc = typed(out, d, "summary");
    if (rc == SP_OK && d) rc = sample(out, d, "_sum", atomic_load(&s->call_ms[m]));
    if (rc == SP_OK && d) rc = sample(out, d, "_count", calls);
  }
  if (rc == SP_OK) rc = counter(out, "flight_do_exchange_data_updates_sent", atomic_load(&s->exchange_updates));
  if (rc == SP_OK) rc = counter(out, "flight_calls_rejected", atomic_load(&s->rejected));
  return rc;
}

const char *sp_flight_endpoint(const sp_flight_server *s) {
  return s->endpoint;
}

static void destroy(sp_flight_server *s) {
  if (s->server) grpc_server_destroy(s->server);
  if (s->cq) grpc_completion_queue_destroy(s->cq);
  sp__flight_sql_free_all(s);
  sp_rcache_destroy(s->cache);
  sp_http_config_free(&s->cfg);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->ps_mu);
  free(s);
  grpc_shutdown_blocking(); /* nothing of gRPC outlives the server (leak checkers) */
}

/* Binds addr (TLS with runtime.tls's certificate and key when it is enabled); returns the port or 0. */
static int bind_port(sp_flight_server *s, const char *addr) {
  grpc_ssl_pem_key_cert_pair pair = {.private_key = s->cfg.tls_key_pem, .cert_chain = s->cfg.tls_cert_pem};
  grpc_server_credentials *creds = s->cfg.tls_enabled && pair.private_key && pair.cert_chain
                                       ? grpc_ssl_server_credentials_create(NULL, &pair, 1, 0, NULL)
                                       : grpc_insecure_server_credentials_create();
  int port = grpc_server_add_http2_port(s->server, addr, creds);
  grpc_server_credentials_release(creds);
  return port;
}

static void set_endpoint(sp_flight_server *s, const char *addr, int port) {
  const char *colon = strrchr(addr, ':');
  int host_len = colon ? (int)(colon - addr) : (int)strlen(addr);
  snprintf(s->endpoint, sizeof s->endpoint, "%.*s:%d", host_len, addr, port);
}

/* SPICED_FLIGHT_MAX_CALLS (1..4096) caps the calls served at once; DEFAULT_MAX_CALLS otherwise. */
static int max_calls(void) {
  const char *v = getenv("SPICED_FLIGHT_MAX_CALLS");
  long n = v && *v ? strtol(v, NULL, 10) : 0;
  return n >= 1 && n <= 4096 ? (int)n : DEFAULT_MAX_CALLS;
}

/* runtime.auth and the results cache settings, read the way the HTTP server reads them. */
static int load_settings(sp_flight_server *s, sp_error *err) {
  SP_TRY(sp_http_config_load(sp_runtime_pod(s->rt), &s->cfg, err));
  if (s->cfg.cache_enabled) SP_TRY(sp_rcache_create(s->cfg.cache_max_bytes, s->cfg.cache_ttl_ms, &s->cache, err));
  if (s->cfg.auth_enabled) sp_log_info("Arrow Flight requires an API key (%zu configured)", s->cfg.n_api_keys);
  return SP_OK;
}

/* TLS as the HTTP server serves it: runtime.tls, or the --tls-certificate-file/--tls-key-file of the command
 * line, which take its place for both servers. */
static int tls_from_http(sp_flight_server *s, sp_http_server *http, sp_error *err) {
  const sp_http_config *h = http ? sp__http_config(http) : NULL;
  if (h == NULL || !h->tls_enabled || h->tls_cert_pem == NULL || h->tls_key_pem == NULL) return SP_OK;
  char *cert = strdup(h->tls_cert_pem), *key = strdup(h->tls_key_pem);
  if (cert == NULL || key == NULL) {
    free(cert);
    free(key);
    return sp_fail(err, SP_ENOMEM, "flight server: out of memory");
  }
  free(s->cfg.tls_cert_pem);
  free(s->cfg.tls_key_pem);
  s->cfg.tls_cert_pem = cert;
  s->cfg.tls_key_pem = key;
  s->cfg.tls_enabled = true;
  return SP_OK;
}

static sp_flight_server *server_new(sp_runtime *rt) {
  sp_flight_server *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  grpc_init();
  s->rt = rt;
  s->shutdown_tag.fn = on_shutdown;
  s->max_workers = max_calls();
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  pthread_mutex_init(&s->ps_mu, NULL);
  atomic_init(&s->writes, 0);
  for (int m = 0; m < M_COUNT; m++) atomic_init(&s->calls[m], 0), atomic_init(&s->call_ms[m], 0);
  atomic_init(&s->rejected, 0);
  atomic_init(&s->exchange_updates, 0);
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
    snprintf(path, sizeof path, FL_SERVICE "%s", sp__flight_method_names[m]);
    s->methods[m] = grpc_server_register_method(s->server, path, NULL,
                                                unary_request(m) ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER
                                                                 : GRPC_SRM_PAYLOAD_NONE, 0);
  }
  return s;
}

int sp_flight_start(sp_runtime *rt, sp_http_server *http, const char *addr, sp_flight_server **out,
                    sp_error *err) {
  *out = NULL;
  sp_flight_server *s = server_new(rt);
  if (s == NULL) return sp_fail(err, SP_ENOMEM, "flight server: out of memory");
  int rc = load_settings(s, err);
  if (rc == SP_OK) rc = tls_from_http(s, http, err);
  if (rc != SP_OK) {
    destroy(s);
    return rc;
  }
  bool tls = s->cfg.tls_enabled;
  if (tls) sp_log_info("Arrow Flight uses TLS");
  int port = bind_port(s, addr);
  if (port == 0) {
    destroy(s);
    return sp_fail(err, SP_EIO, "flight server: cannot listen on %s%s", addr,
                   tls ? " (or runtime.tls's certificate and key were refused)" : "");
  }
  set_endpoint(s, addr, port);
  grpc_server_start(s->server);
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

/* Waits until every call in flight has finished (the shutdown tag arrived), at most ms milliseconds. */
static void drain(sp_flight_server *s, int64_t ms) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += (time_t)(ms / 1000);
  until.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&s->mu);
  while (!s->shutdown_done && pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0) {
  }
  int left = s->workers;
  pthread_mutex_unlock(&s->mu);
  if (left) sp_log_info("flight: cancelling %d call(s) still in flight", left);
}

void sp_flight_stop(sp_flight_server *s) {
  sp_flight_stop_within(s, 30000);
}

void sp_flight_stop_within(sp_flight_server *s, int64_t timeout_ms) {
  if (s == NULL) return;
  pthread_mutex_lock(&s->mu);
  s->shutting = 1;
  pthread_mutex_unlock(&s->mu);
  grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
  if (s->loop_started) {
    drain(s, timeout_ms > 0 ? timeout_ms : 0);
    grpc_server_cancel_all_calls(s->server);
    pthread_join(s->loop, NULL);
  } else { /* nothing runs the queue: drain it here */
    grpc_server_cancel_all_calls(s->server);
    grpc_completion_queue_shutdown(s->cq);
    for (;;) {
      grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
      if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
      if (ev.type == GRPC_OP_COMPLETE) ((fl_tag *)ev.tag)->fn(ev.tag, ev.success);
    }
  }
  destroy(s);
}
