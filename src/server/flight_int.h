/* SPDX-License-Identifier: Apache-2.0
 *
 * Internal to src/server/flight*.c: the server and call objects, and the blocking helpers a call's worker
 * thread uses to answer (flight.c: life cycle, threads, auth gate; flight_get.c: plain SQL and result
 * streaming; flight_sql.c: Flight SQL commands and prepared statements; flight_meta.c: catalog commands;
 * flight_sqlinfo.c: CommandGetSqlInfo; flight_actions.c: DoAction, ListActions, ListFlights, DoPut;
 * flight_auth.c: API keys and Handshake; flight_batch.c: small results built row by row).
 */
#ifndef SP_SERVER_FLIGHT_INT_H
#define SP_SERVER_FLIGHT_INT_H

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "server/flight.h"
#include "server/flight_proto.h"
#include "server/http_config.h"
#include "server/results_cache.h"
#include "spice/arrow_abi.h"
#include "spice/engine.h"

#define FL_SERVICE "/arrow.flight.protocol.FlightService/"

enum {
  M_HANDSHAKE,
  M_LIST_FLIGHTS,
  M_GET_FLIGHT_INFO,
  M_GET_SCHEMA,
  M_DO_GET,
  M_DO_PUT,
  M_DO_ACTION,
  M_LIST_ACTIONS,
  M_DO_EXCHANGE,
  M_COUNT,
  M_UNREGISTERED = M_COUNT
};

extern const char *const sp__flight_method_names[M_COUNT];

typedef struct fl_tag {
  void (*fn)(struct fl_tag *tag, int ok);
} fl_tag;

typedef struct fl_prepared fl_prepared; /* flight_sql.c */

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
  int max_workers;  /* calls past this answer RESOURCE_EXHAUSTED */
  int shutting;     /* no more re-arming */
  int shutdown_done;
  int cq_closing;
  char endpoint[128];
  sp_http_config cfg; /* runtime.auth and the results cache settings, as the HTTP server reads them */
  sp_rcache *cache;   /* NULL when the results cache is off */
  atomic_uint_fast64_t writes; /* statements run here that may have written (cache generations) */
  atomic_uint_fast64_t calls[M_COUNT];       /* metrics: calls served, by method */
  atomic_uint_fast64_t call_ms[M_COUNT];     /* metrics: their total duration */
  atomic_uint_fast64_t rejected;             /* metrics: calls refused at the cap */
  atomic_uint_fast64_t exchange_updates;     /* metrics: DoExchange updates sent */
  pthread_mutex_t ps_mu;      /* prepared statements */
  fl_prepared *prepared;      /* a list, newest first */
  size_t n_prepared;
  uint64_t next_handle;
};

/* Initial metadata entries a call sends back (results-cache-status, authorization); at most this many. */
#define FL_MAX_MD 4

typedef struct fl_call {
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
  int rejected; /* answered RESOURCE_EXHAUSTED from the event loop: no thread */
  grpc_metadata out_md[FL_MAX_MD];
  size_t n_out_md;
  int initial_sent;
} fl_call;

/* ---- Answering (flight.c); worker threads only ----------------------------------------------------------- */

/* Starts one batch and waits for it; its success (0 when the client went away or the call was cancelled).
 * SEND_INITIAL_METADATA ops get the call's out_md. */
int sp__flight_batch(fl_call *c, grpc_op *ops, size_t n);
/* Sends one message (slices borrowed), with the initial metadata first if not yet sent, and the status too
 * when status >= 0. 0 when the client went away. */
int sp__flight_send(fl_call *c, grpc_slice *slices, size_t n, int status);
/* sp__flight_send of one contiguous buffer. */
int sp__flight_send_buf(fl_call *c, const void *data, size_t len, int status);
/* Ends the call with a status and message (copied). */
void sp__flight_status(fl_call *c, grpc_status_code code, const char *msg);
/* Ends the call with the status for err (SP_* code mapped; unknown tables NOT_FOUND). */
void sp__flight_error(fl_call *c, const sp_error *err);
/* Adds an initial metadata entry (key a static lower-case string, value copied) before the first send. */
void sp__flight_add_md(fl_call *c, const char *key, const char *value);
/* The value of request metadata `key` (lower case), borrowed from the call, and its length; NULL if absent. */
const char *sp__flight_md(const fl_call *c, const char *key, size_t *len);
/* The request message as one contiguous slice (caller unrefs). */
grpc_slice sp__flight_request(grpc_byte_buffer *bb);
/* Receives the next message of a client stream into *out (NULL when the client half-closed); 0 on failure. */
int sp__flight_recv(fl_call *c, grpc_byte_buffer **out);

/* ---- Queries and streaming (flight_get.c) ---------------------------------------------------------------- */

/* GetFlightInfo and GetSchema (CMD: raw SQL or a Flight SQL command; PATH: a dataset), and DoGet. */
void sp__flight_describe(fl_call *c);
void sp__flight_do_get(fl_call *c);

/* A NUL-terminated copy of bytes that must hold UTF-8 SQL (caller frees); SP_EINVAL when empty or with NUL. */
int sp__flight_sql_text(sp_pb_bytes sql, char **out, sp_error *err);
/* The encapsulated IPC Schema message of `schema`, appended to out. */
int sp__flight_schema_ipc(const struct ArrowSchema *schema, sp_buf *out, sp_error *err);
/* The result schema of a request: prepared only, or when types depend on parameters, from a run. */
int sp__flight_query_schema(sp_flight_server *s, const sp_query_request *req, struct ArrowSchema *out,
                            sp_error *err);
/* Runs req and streams its result as FlightData, consulting and filling the results cache, then ends the
 * call with its status. */
void sp__flight_serve_query(fl_call *c, const sp_query_request *req);
/* Streams `st` (borrowed) as FlightData: the Schema message (when send_schema), then dictionaries and batches.
 * Does not end the call; SP_ECANCELED when the client went away. */
int sp__flight_stream(fl_call *c, struct ArrowArrayStream *st, bool send_schema, sp_error *err);
/* Streams `st` (consumed) as FlightData and ends the call with its status. */
void sp__flight_serve_stream(fl_call *c, struct ArrowArrayStream *st);
/* Answers GetFlightInfo (FlightInfo) or GetSchema (SchemaResult) for the given IPC schema and ticket. */
void sp__flight_describe_reply(fl_call *c, const sp_buf *schema, const uint8_t *ticket, size_t ticket_len);

/* ---- Flight SQL (flight_sql.c, flight_meta.c) ------------------------------------------------------------ */

/* GetFlightInfo/GetSchema of an Any-wrapped Flight SQL command; DoGet of a Flight SQL ticket. */
void sp__flight_sql_describe(fl_call *c, sp_pb_bytes name, sp_pb_bytes value);
void sp__flight_sql_get(fl_call *c, sp_pb_bytes name, sp_pb_bytes value);
/* Prepared statements: CreatePreparedStatement / ClosePreparedStatement bodies, and DoPut parameter binding
 * (header and body pairs of the IPC stream). */
void sp__flight_sql_create_prepared(fl_call *c, sp_pb_bytes body);
void sp__flight_sql_close_prepared(fl_call *c, sp_pb_bytes body);
void sp__flight_sql_bind(fl_call *c, sp_pb_bytes handle, const sp_flight_data *first);
void sp__flight_sql_free_all(sp_flight_server *s);

/* The catalog commands: true when `name` is one; its fixed result schema; its result as a stream. */
bool sp__flight_meta_known(sp_pb_bytes name);
int sp__flight_meta_schema(sp_pb_bytes name, sp_pb_bytes value, struct ArrowSchema *out, sp_error *err);
int sp__flight_meta_run(sp_flight_server *s, sp_pb_bytes name, sp_pb_bytes value, struct ArrowArrayStream *out,
                        sp_error *err);

/* CommandGetSqlInfo (flight_sqlinfo.c): the encapsulated IPC schema of its result; DoGet of the command. */
int sp__flight_sqlinfo_schema(sp_buf *out, sp_error *err);
void sp__flight_sqlinfo_get(fl_call *c, sp_pb_bytes value);

/* ---- Actions, flights, puts (flight_actions.c) ----------------------------------------------------------- */

void sp__flight_do_action(fl_call *c);
void sp__flight_list_actions(fl_call *c);
void sp__flight_list_flights(fl_call *c);
void sp__flight_do_put(fl_call *c);
/* DoExchange: a subscription to a dataset (flight_exchange.c). */
void sp__flight_do_exchange(fl_call *c);
/* DoPut rows appended to `dataset` (flight_put.c); ingest: answer as CommandStatementIngest. */
void sp__flight_put_append(fl_call *c, const char *dataset, bool ingest, const sp_flight_data *first);

/* ---- Auth (flight_auth.c) -------------------------------------------------------------------------------- */

/* True when runtime.auth.api-key is off or the call presents a valid key (authorization: Bearer, or
 * x-api-key). */
bool sp__flight_authorized(const fl_call *c);
void sp__flight_handshake(fl_call *c);

#endif
