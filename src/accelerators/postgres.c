/* SPDX-License-Identifier: Apache-2.0
 *
 * The `postgres` accelerator: the dataset's copy is the table "<pg_schema>"."<dataset>" of a PostgreSQL
 * database (acceleration.params pg_host, pg_port, pg_db, pg_user, pg_pass, pg_sslmode, … as for the postgres
 * connector), with a row per dataset in "<pg_schema>".spice_sys_dataset_checkpoint (rows, refresh time, change
 * stream position) written in the same transaction as the data.
 *
 * Reading: an internal instance of the postgres connector pointed at the table, registered with the engine as
 * sp_source_scan('<dataset>'), so each query reads only its columns and sends the conditions of its WHERE and
 * its LIMIT to PostgreSQL (binary COPY decoded into Arrow). The instance is shared by the streams reading it
 * (ref-counted) and replaced when a refresh changes the columns.
 *
 * Writing (pg_write.c's binary COPY encoder): a full refresh creates a staging table, fills it with
 * COPY … FREEZE, drops the old table and renames the staging one, in ONE transaction: readers see the old rows
 * or the new. FREEZE matters: a reader queued behind the swap resolves the new table with a snapshot taken
 * before the swap committed, and frozen rows are visible to it (plain rows would look absent: an empty table).
 * Appends COPY into the table, or with on_conflict into a temporary table and INSERT … ON CONFLICT; change
 * streams delete and insert by primary key. Writers of one table — several spiced replicas sharing the
 * database — are serialised by a transaction-level advisory lock.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include <libpq-fe.h>

#include "accelerators/pg_accel.h"
#include "accelerators/sqlite_arrow.h"
#include "connectors/pg_conn.h"
#include "connectors/pg_write.h"
#include "spice/accelerator.h"
#include "spice/arrow.h"
#include "spice/buf.h"
#include "spice/engine.h"
#include "spice/log.h"
#include "spice/sqltext.h"

extern const sp_connector_module sp_connector_postgres;

#define PGA_CHECKPOINT "spice_sys_dataset_checkpoint"
#define PGA_SETUP_LOCK "7349031, 0" /* advisory lock key for creating the checkpoint table */

/* The internal postgres connector reading the table, kept alive by the streams that use it. */
typedef struct pga_reader {
  sp_connector *conn;
  int refs; /* atomic */
} pga_reader;

typedef struct pga_accel {
  sp_accelerator base;   /* must be first */
  sp_dataset_spec spec;  /* the dataset as the internal connector sees it: path = the table */
  char *schema;          /* pg_schema, unquoted */
  char *relation;        /* "schema"."dataset" */
  char *display;         /* schema.dataset, for messages */
  char *staging;         /* "schema"."<hash>__spice_staging" */
  char *table_name;      /* "dataset" */
  char *checkpoint;      /* "schema".spice_sys_dataset_checkpoint */
  long long lock_key;    /* advisory lock of this table's writers */
  pthread_mutex_t write_lock; /* one write at a time; guards writer */
  PGconn *writer;
  int prepared;          /* the checkpoint table was checked on this writer */
  pthread_mutex_t lock;  /* guards reader and signature */
  pga_reader *reader;
  char *signature;       /* the reader's columns ("name type," …): a new reader only when they change */
} pga_accel;

static const sp_param_spec pga_params[] = {
    SP_PG_CONNECTION_PARAMS
    {"schema", SP_PARAM_STRING, SP_PARAM_PREFIXED, "public", NULL, "schema holding the accelerated tables"},
    {"connection_pool_size", SP_PARAM_INT, 0, "10", NULL, "idle read connections kept for reuse"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

static const char *ds_name(const pga_accel *a) { return a->base.dataset->name; }

static int64_t now_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---- Statements ---------------------------------------------------------------------------------------------- */

/* The server's message on one line. */
static void pq_message(PGconn *pq, const PGresult *r, char *buf, size_t n) {
  const char *m = r ? PQresultErrorMessage(r) : NULL;
  snprintf(buf, n, "%s", m && *m ? m : PQerrorMessage(pq));
  for (char *p = buf; *p; p++)
    if (*p == '\n' || *p == '\t') *p = p[1] ? ' ' : '\0';
}

/* Runs one statement with text parameters (n_params may be 0). A lost connection is SP_ECONNECT (retried), bad
 * data (SQLSTATE classes 22 and 23) SP_EINVAL, a lock not available (NOWAIT) SP_EBUSY, anything else SP_EIO. *out (may be NULL) receives the result. */
static int run_params(PGconn *pq, const char *sql, int n_params, const char *const *params, PGresult **out, sp_error *err) {
  PGresult *r = PQexecParams(pq, sql, n_params, NULL, params, NULL, NULL, 0);
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
    if (out) *out = r;
    else PQclear(r);
    return SP_OK;
  }
  char msg[700];
  pq_message(pq, r, msg, sizeof msg);
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  int code = PQstatus(pq) == CONNECTION_BAD ? SP_ECONNECT
             : state && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0) ? SP_EINVAL
             : state && strcmp(state, "55P03") == 0                                     ? SP_EBUSY /* lock_not_available */
                                                                                        : SP_EIO;
  PQclear(r);
  return sp_fail(err, code, "%s", msg);
}

static int run(PGconn *pq, const char *sql, sp_error *err) { return run_params(pq, sql, 0, NULL, NULL, err); }

/* Runs sql with one %s replaced by arg (a quoted identifier or built SQL, never user text). */
static int runf(PGconn *pq, const char *fmt, const char *arg, sp_error *err) {
  size_t n = strlen(fmt) + strlen(arg) + 1;
  char *sql = malloc(n);
  if (sql == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  snprintf(sql, n, fmt, arg);
  int rc = run(pq, sql, err);
  free(sql);
  return rc;
}

/* Ends a failed transaction; the connection is idle again (or dead, then replaced at the next write). */
static void rollback(PGconn *pq) {
  if (PQtransactionStatus(pq) != PQTRANS_IDLE) PQclear(PQexec(pq, "ROLLBACK"));
}

/* BEGIN and this table's advisory lock: writers of one table (in this process or another) take turns. */
static int begin(pga_accel *a, PGconn *pq, sp_error *err) {
  char sql[96];
  SP_TRY(run(pq, "BEGIN", err));
  snprintf(sql, sizeof sql, "SELECT pg_advisory_xact_lock(%lld)", a->lock_key);
  return run(pq, sql, err);
}

/* ---- Connections ---------------------------------------------------------------------------------------------- */

/* The connector-shaped view of this accelerator's params, for sp_pg_connect and the internal reader. */
static sp_connector proto_of(pga_accel *a) {
  sp_connector proto = {.module = &sp_connector_postgres, .dataset = &a->spec, .params = a->base.params,
                        .engine = a->base.engine};
  return proto;
}

static void quiet(void *arg, const char *message) {
  (void)arg;
  sp_log_debug("postgres accelerator: %s", message);
}

/* The write connection, made again when it was lost. Caller holds write_lock. */
static int writer_get(pga_accel *a, PGconn **out, sp_error *err) {
  if (a->writer && PQstatus(a->writer) != CONNECTION_OK) {
    PQfinish(a->writer);
    a->writer = NULL;
  }
  if (a->writer == NULL) {
    sp_connector proto = proto_of(a);
    a->prepared = 0;
    SP_TRY(sp_pg_connect(&proto, &a->writer, err));
    PQsetNoticeProcessor(a->writer, quiet, NULL); /* "table … does not exist, skipping" and the like */
  }
  *out = a->writer;
  return SP_OK;
}

/* The schema (when missing) and the checkpoint table, once per database however many replicas start at once. */
static int ensure_checkpoint(pga_accel *a, PGconn *pq, sp_error *err) {
  const char *args[1] = {a->schema}, *table[1] = {a->checkpoint};
  PGresult *r = NULL;
  /* Present already: nothing to create, so a replica that only reads needs no CREATE privilege. */
  SP_TRY(run_params(pq, "SELECT pg_catalog.to_regclass($1) IS NOT NULL", 1, table, &r, err));
  int present = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
  PQclear(r);
  r = NULL;
  if (present) return SP_OK;
  char *q = sqa_ident(a->schema);
  int rc = q ? run(pq, "BEGIN", err) : sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK) rc = run(pq, "SELECT pg_advisory_xact_lock(" PGA_SETUP_LOCK ")", err);
  if (rc == SP_OK) rc = run_params(pq, "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1", 1, args, &r, err);
  if (rc == SP_OK && PQntuples(r) == 0) rc = runf(pq, "CREATE SCHEMA %s", q, err);
  if (rc == SP_OK)
    rc = runf(pq, "CREATE TABLE IF NOT EXISTS %s (dataset_name text PRIMARY KEY, rows bigint, refreshed_at_ms bigint, "
              "stream_position text)", a->checkpoint, err);
  if (rc == SP_OK) rc = run(pq, "COMMIT", err);
  if (rc != SP_OK) rollback(pq);
  PQclear(r);
  free(q);
  return rc;
}

/* ---- Reading ------------------------------------------------------------------------------------------------- */

static void reader_unref(pga_reader *r) {
  if (r == NULL || __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  sp_connector_instance_close(r->conn);
  free(r);
}

/* A postgres connector instance over the table (which must exist). */
static int reader_open(pga_accel *a, pga_reader **out, sp_error *err) {
  pga_reader *r = calloc(1, sizeof *r);
  sp_params params = {0};
  if (r == NULL || sp_params_copy(&params, &a->base.params) != SP_OK) {
    free(r);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  int rc = sp_connector_instance_open(&sp_connector_postgres, &a->spec, &params, a->base.engine, &r->conn, err);
  if (rc != SP_OK) {
    free(r);
    return rc;
  }
  r->refs = 1;
  *out = r;
  return SP_OK;
}

/* The current reader with a reference for the caller, or NULL before the first load. */
static pga_reader *reader_pin(pga_accel *a) {
  pthread_mutex_lock(&a->lock);
  pga_reader *r = a->reader;
  if (r) __atomic_add_fetch(&r->refs, 1, __ATOMIC_ACQ_REL);
  pthread_mutex_unlock(&a->lock);
  return r;
}

/* A connector stream that holds its reader until released. */
typedef struct pga_stream {
  struct ArrowArrayStream inner;
  pga_reader *reader;
} pga_stream;

static int ps_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  pga_stream *p = s->private_data;
  return p->inner.get_schema(&p->inner, out);
}

static int ps_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  pga_stream *p = s->private_data;
  return p->inner.get_next(&p->inner, out);
}

static const char *ps_error(struct ArrowArrayStream *s) {
  pga_stream *p = s->private_data;
  return p->inner.get_last_error(&p->inner);
}

static void ps_release(struct ArrowArrayStream *s) {
  if (s->release == NULL) return;
  pga_stream *p = s->private_data;
  sp_stream_release(&p->inner);
  reader_unref(p->reader);
  free(p);
  s->release = NULL;
}

/* The engine's source callback: the connector's scan, with the projection, the WHERE and the limit pushed. */
static int source_open(void *ctx, const char *const *columns, size_t n_columns, int64_t limit, const char *filter_query,
                       volatile int *stop, struct ArrowArrayStream *out, sp_error *err) {
  pga_accel *a = ctx;
  pga_reader *r = reader_pin(a);
  if (r == NULL) return sp_fail(err, SP_ENOTFOUND, "dataset \"%s\" has no postgres copy yet", ds_name(a));
  pga_stream *p = calloc(1, sizeof *p);
  sp_scan scan = {.columns = columns, .n_columns = n_columns, .limit = limit, .filter_query = filter_query, .stop = stop};
  int rc = p ? r->conn->module->scan(r->conn, &scan, &p->inner, err) : sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc != SP_OK) {
    free(p);
    reader_unref(r);
    return rc;
  }
  p->reader = r;
  memset(out, 0, sizeof *out);
  out->get_schema = ps_schema;
  out->get_next = ps_next;
  out->get_last_error = ps_error;
  out->release = ps_release;
  out->private_data = p;
  return SP_OK;
}

/* "name type," for each column of the reader: what the engine's registration depends on. malloc'd. */
static char *signature_of(sp_connector *c, sp_error *err) {
  struct ArrowSchema s;
  if (c->module->get_schema(c, &s, err) != SP_OK) return NULL;
  sp_buf b = {0};
  for (int64_t i = 0; i < s.n_children; i++) {
    sp_buf_append_str(&b, s.children[i]->name ? s.children[i]->name : "");
    sp_buf_append_str(&b, " ");
    sp_buf_append_str(&b, s.children[i]->format);
    sp_buf_append_str(&b, ",");
  }
  sp_schema_release(&s);
  const char *t = sp_buf_cstr(&b);
  char *out = t ? strdup(t) : NULL;
  sp_buf_free(&b);
  if (out == NULL) sp_fail(err, SP_ENOMEM, "out of memory");
  return out;
}

/* Opens a reader over the table as it is now and, when its columns differ from the registered ones (or nothing
 * is registered), registers it with the engine. Otherwise the current reader stays. */
static int reader_refresh(pga_accel *a, sp_error *err) {
  pga_reader *r = NULL;
  /* Another replica's swap between the connector's lookup of the table and its read of the columns makes it
   * see a dropped table: looked up again. */
  int rc = reader_open(a, &r, err);
  for (int attempt = 0; rc != SP_OK && rc != SP_ECONNECT && rc != SP_EUNAUTH && rc != SP_ENOMEM && attempt < 5; attempt++) {
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    rc = reader_open(a, &r, err);
  }
  SP_TRY(rc);
  char *sig = signature_of(r->conn, err);
  if (sig == NULL) {
    reader_unref(r);
    return err ? (int)err->code : SP_ENOMEM;
  }
  pthread_mutex_lock(&a->lock);
  int same = a->signature && strcmp(a->signature, sig) == 0;
  pga_reader *old = same ? r : a->reader;
  if (!same) {
    a->reader = r;
    free(a->signature);
    a->signature = sig;
    sig = NULL;
  }
  pthread_mutex_unlock(&a->lock);
  free(sig);
  reader_unref(old);
  if (same) return SP_OK;
  struct ArrowSchema s;
  SP_TRY(r->conn->module->get_schema(r->conn, &s, err));
  rc = sp_engine_register_source(a->base.engine, ds_name(a), &s, source_open, a, err);
  sp_schema_release(&s);
  return rc;
}

/* ---- Open / close ---------------------------------------------------------------------------------------------- */

static void pga_close(sp_accelerator *self) {
  pga_accel *a = (pga_accel *)self;
  if (a->signature) sp_engine_unregister_source(self->engine, ds_name(a));
  reader_unref(a->reader);
  if (a->writer) PQfinish(a->writer);
  free(a->signature);
  free(a->schema);
  free(a->relation);
  free(a->display);
  free(a->staging);
  free(a->table_name);
  free(a->checkpoint);
  free(a->spec.path);
  pthread_mutex_destroy(&a->write_lock);
  pthread_mutex_destroy(&a->lock);
}

/* "a"."b" (malloc'd) from two unquoted names. */
static char *qualified(const char *schema, const char *name) {
  char *s = sqa_ident(schema), *t = sqa_ident(name), *out = NULL;
  size_t n = s && t ? strlen(s) + strlen(t) + 2 : 0;
  if (n && (out = malloc(n)) != NULL) snprintf(out, n, "%s.%s", s, t);
  free(s);
  free(t);
  return out;
}

/* Names: the table, its staging table (a hash of the dataset's name, so any name fits in 63 bytes), the
 * checkpoint table and the advisory lock key. */
static int names_init(pga_accel *a, sp_error *err) {
  const char *schema = sp_params_get(&a->base.params, "pg_schema");
  if (schema == NULL || *schema == '\0') schema = "public";
  if (strlen(ds_name(a)) > 63 || strlen(schema) > 63)
    return sp_fail(err, SP_EINVAL, "dataset \"%s\": a postgres table name has at most 63 bytes (the dataset name and "
                   "pg_schema are used as they are)", ds_name(a));
  uint64_t h = 1469598103934665603ull;
  for (const char *p = schema; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
  h = (h ^ '.') * 1099511628211ull;
  for (const char *p = ds_name(a); *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
  char staging[64];
  snprintf(staging, sizeof staging, "spice_staging_%016llx", (unsigned long long)h);
  a->lock_key = (long long)(h >> 1);
  a->schema = strdup(schema);
  a->relation = qualified(schema, ds_name(a));
  size_t dn = strlen(schema) + strlen(ds_name(a)) + 2;
  if ((a->display = malloc(dn)) != NULL) snprintf(a->display, dn, "%s.%s", schema, ds_name(a));
  a->staging = qualified(schema, staging);
  a->table_name = sqa_ident(ds_name(a));
  a->checkpoint = qualified(schema, PGA_CHECKPOINT);
  a->spec = *a->base.dataset;
  a->spec.path = a->relation ? strdup(a->relation) : NULL;
  if (!a->schema || !a->relation || !a->display || !a->staging || !a->table_name || !a->checkpoint || !a->spec.path)
    return sp_fail(err, SP_ENOMEM, "out of memory");
  return SP_OK;
}

/* The copy an earlier run (or another replica) committed: the table and its checkpoint row. */
static int read_state(pga_accel *a, PGconn *pq, sp_accel_state *state, sp_error *err) {
  const char *args[2] = {a->relation, ds_name(a)};
  PGresult *r = NULL;
  size_t n = strlen(a->checkpoint) + 200;
  char *sql = malloc(n);
  if (sql == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  snprintf(sql, n, "SELECT pg_catalog.to_regclass($1) IS NOT NULL, (SELECT rows FROM %s WHERE dataset_name = $2), "
           "(SELECT refreshed_at_ms FROM %s WHERE dataset_name = $2)", a->checkpoint, a->checkpoint);
  int rc = run_params(pq, sql, 2, args, &r, err);
  free(sql);
  if (rc == SP_OK && strcmp(PQgetvalue(r, 0, 0), "t") == 0) {
    state->has_data = true;
    state->rows = PQgetisnull(r, 0, 1) ? -1 : strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    state->last_refresh_ms = PQgetisnull(r, 0, 2) ? -1 : strtoll(PQgetvalue(r, 0, 2), NULL, 10);
  }
  PQclear(r);
  return rc;
}

/* Connects, prepares the checkpoint table and reports a committed copy. A server that cannot be reached now is
 * not an error here: the dataset starts without a copy and its refreshes (retried) connect. */
static int pga_open(sp_accelerator *self, sp_accel_state *state, sp_error *err) {
  pga_accel *a = (pga_accel *)self;
  memset(state, 0, sizeof *state);
  state->rows = state->last_refresh_ms = -1;
  /* The source's fallback scan would take the name this engine serves the dataset under. */
  const char *ozr = self->dataset->acceleration.on_zero_results;
  if (ozr && strcasecmp(ozr, "use_source") == 0)
    return sp_fail(err, SP_EINVAL, "dataset \"%s\": on_zero_results: use_source is not supported by the postgres engine "
                   "(use return_empty, or another engine)", ds_name(a));
  pthread_mutex_init(&a->write_lock, NULL);
  pthread_mutex_init(&a->lock, NULL);
  int rc = names_init(a, err);
  PGconn *pq = NULL;
  if (rc == SP_OK) rc = writer_get(a, &pq, err);
  if (rc == SP_OK) rc = ensure_checkpoint(a, pq, err);
  a->prepared = rc == SP_OK;
  if (rc == SP_OK) rc = read_state(a, pq, state, err);
  if (rc == SP_OK && state->has_data) rc = reader_refresh(a, err);
  if (rc == SP_ECONNECT) { /* also when the server went away half-way */
    sp_log_warn("%s; the dataset loads once the server answers", err ? err->msg : "postgres accelerator unreachable");
    memset(state, 0, sizeof *state);
    state->rows = state->last_refresh_ms = -1;
    return SP_OK;
  }
  if (rc != SP_OK) {
    sp_error_prefix(err, "postgres accelerator of dataset \"%s\"", ds_name(a));
    pga_close(self);
    state->has_data = false;
  }
  return rc;
}

/* ---- Writing --------------------------------------------------------------------------------------------------- */

/* What one write needs: the columns of the data and the stream with their values in encodable types. */
typedef struct pga_load {
  pga_column *cols;
  size_t n;
  struct ArrowArrayStream stream;
  uint64_t token; /* the engine stream behind a cast, unregistered at the end; 0: none */
} pga_load;

static void load_free(pga_accel *a, pga_load *l) {
  sp_stream_release(&l->stream);
  if (l->token) sp_engine_stream_unregister(a->base.engine, l->token);
  pga_columns_free(l->cols, l->n);
}

static int columns_from_stream(pga_accel *a, struct ArrowArrayStream *s, pga_column **cols, size_t *n, sp_error *err) {
  struct ArrowSchema schema = {0};
  if (s->get_schema(s, &schema) != 0)
    return sp_fail(err, SP_EIO, "could not read the schema of the data for dataset \"%s\"", ds_name(a));
  int rc = pga_columns_of(&schema, ds_name(a), cols, n, err);
  sp_schema_release(&schema);
  return rc;
}

/* The on_conflict target that a full load deduplicates by (quoted, in *target), when there is exactly one: a
 * full refresh keeps one row per key as an append would (upsert: the last, drop: the first). */
static int dedup_target(pga_accel *a, const pga_load *l, char **target, int *keep_last, sp_error *err) {
  const sp_params *oc = &a->base.dataset->acceleration.on_conflict;
  *target = NULL;
  if (oc->count != 1) return SP_OK;
  *keep_last = strcasecmp(oc->items[0].value, "upsert") == 0;
  return pga_colref(oc->items[0].key, l->cols, l->n, ds_name(a), "on_conflict", target, err);
}

/* The SQL the engine runs over the incoming stream: casts, and deduplication unless it is a change stream. */
static int engine_sql(pga_accel *a, sp_data_update *u, pga_load *l, unsigned long long tok, char **out, sp_error *err) {
  int keep_last = 0;
  char *target = NULL;
  if (u->type != SP_UPDATE_CHANGES) SP_TRY(dedup_target(a, l, &target, &keep_last, err));
  char *sql = pga_cast_sql(l->cols, l->n, tok);
  if (sql && target) {
    char *wrapped = pga_dedup_sql(sql, target, keep_last);
    free(sql);
    sql = wrapped;
  }
  free(target);
  return (*out = sql) ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
}

/* Takes update->stream; types the encoder does not take are cast by the engine first, and a full load with one
 * on_conflict target keeps one row per key. */
static int load_prepare(pga_accel *a, sp_data_update *u, pga_load *l, sp_error *err) {
  memset(l, 0, sizeof *l);
  sp_stream_move(&l->stream, &u->stream);
  SP_TRY(columns_from_stream(a, &l->stream, &l->cols, &l->n, err));
  if (!pga_needs_cast(l->cols, l->n) && (u->type == SP_UPDATE_CHANGES || a->base.dataset->acceleration.on_conflict.count != 1))
    return SP_OK;
  SP_TRY(sp_engine_stream_register(a->base.engine, &l->stream, &l->token, err));
  char *sql = NULL;
  int rc = engine_sql(a, u, l, (unsigned long long)l->token, &sql, err);
  if (rc == SP_OK) rc = sp_engine_query_internal(a->base.engine, sql, &l->stream, err);
  free(sql);
  pga_columns_free(l->cols, l->n);
  l->cols = NULL, l->n = 0;
  if (rc == SP_OK) rc = columns_from_stream(a, &l->stream, &l->cols, &l->n, err);
  if (rc == SP_OK && pga_needs_cast(l->cols, l->n))
    rc = sp_fail(err, SP_EINTERNAL, "dataset \"%s\": the engine's cast left a type the postgres accelerator cannot write", ds_name(a));
  return rc;
}

/* COPY the load's rows into `relation` (FREEZE when it was created in this transaction). */
static int copy_rows(pga_accel *a, PGconn *pq, pga_load *l, const char *relation, int freeze, int64_t *out_rows,
                     sp_error *err) {
  const char **names = calloc(l->n, sizeof *names), **quoted = calloc(l->n, sizeof *quoted);
  pgc_type *types = calloc(l->n, sizeof *types);
  int rc = names && quoted && types ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0; rc == SP_OK && i < l->n; i++) {
    names[i] = l->cols[i].name;
    quoted[i] = l->cols[i].quoted;
    types[i] = l->cols[i].type;
  }
  pgw_target t = {.relation = relation, .display = a->display, .dataset = ds_name(a), .names = names, .quoted = quoted,
                  .types = types, .n = l->n, .freeze = freeze};
  if (rc == SP_OK) rc = pgw_copy_in(pq, &t, &l->stream, out_rows, err);
  free(names);
  free(quoted);
  free(types);
  return rc;
}

/* How a write changed the table's row count. */
typedef struct pga_count {
  int absolute;  /* value is the count (a new table); else the change to the stored count */
  int64_t value;
  int retention; /* a deletion for retention: the refresh time and the stream position stay */
} pga_count;

/* The checkpoint row: the rows now in the table (*rows), the refresh time, the change stream position. A change
 * is applied to the stored count; without one (an older table) the table is counted. */
static int write_checkpoint(pga_accel *a, PGconn *pq, const char *position, pga_count c, int64_t *rows, sp_error *err) {
  char sql[1600], value[32], at[32];
  PGresult *r = NULL;
  snprintf(value, sizeof value, "%lld", (long long)c.value);
  snprintf(at, sizeof at, "%lld", (long long)now_ms());
  const char *args[5] = {ds_name(a), value, at, position, c.retention ? "true" : "false"};
  if (!c.absolute) {
    snprintf(sql, sizeof sql, "UPDATE %s SET rows = rows + $2::bigint, refreshed_at_ms = CASE WHEN $5::boolean THEN "
             "refreshed_at_ms ELSE $3::bigint END, stream_position = CASE WHEN $5::boolean THEN stream_position ELSE "
             "$4::text END WHERE dataset_name = $1 AND rows IS NOT NULL RETURNING rows", a->checkpoint);
    SP_TRY(run_params(pq, sql, 5, args, &r, err));
    int found = PQntuples(r) == 1;
    if (found) *rows = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (found) return SP_OK;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", a->relation);
    SP_TRY(run_params(pq, sql, 0, NULL, &r, err));
    snprintf(value, sizeof value, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
  }
  *rows = strtoll(value, NULL, 10);
  snprintf(sql, sizeof sql, "INSERT INTO %s AS c VALUES ($1, $2::bigint, $3::bigint, $4::text) ON CONFLICT (dataset_name) "
           "DO UPDATE SET rows = EXCLUDED.rows, refreshed_at_ms = CASE WHEN $5::boolean THEN c.refreshed_at_ms ELSE "
           "EXCLUDED.refreshed_at_ms END, stream_position = CASE WHEN $5::boolean THEN c.stream_position ELSE "
           "EXCLUDED.stream_position END", a->checkpoint);
  return run_params(pq, sql, 5, args, NULL, err);
}

/* Runs a DELETE or INSERT and gives the rows it touched. */
static int run_count(PGconn *pq, const char *sql, int64_t *n, sp_error *err) {
  PGresult *r = NULL;
  SP_TRY(run_params(pq, sql, 0, NULL, &r, err));
  const char *t = PQntuples(r) == 1 && PQnfields(r) == 1 ? PQgetvalue(r, 0, 0) : PQcmdTuples(r);
  *n = strtoll(t, NULL, 10);
  PQclear(r);
  return SP_OK;
}

/* The quoted primary key and the other on_conflict targets: keys[0] = primary key (or NULL), then one UNIQUE per
 * other target. *n_keys entries, each malloc'd. */
static int table_keys(pga_accel *a, const pga_load *l, char ***keys, size_t *n_keys, sp_error *err) {
  const sp_acceleration_spec *acc = &a->base.dataset->acceleration;
  char **k = calloc(acc->on_conflict.count + 1, sizeof *k);
  if (k == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  size_t n = 1;
  int rc = acc->primary_key && *acc->primary_key
               ? pga_colref(acc->primary_key, l->cols, l->n, ds_name(a), "primary_key", &k[0], err) : SP_OK;
  for (size_t i = 0; rc == SP_OK && i < acc->on_conflict.count; i++) {
    const char *ref = acc->on_conflict.items[i].key;
    if (acc->primary_key && strcmp(ref, acc->primary_key) == 0) continue;
    rc = pga_colref(ref, l->cols, l->n, ds_name(a), "on_conflict", &k[n++], err);
  }
  *keys = k;
  *n_keys = n;
  return rc;
}

static void keys_free(char **keys, size_t n) {
  for (size_t i = 0; keys && i < n; i++) free(keys[i]);
  free(keys);
}

/* CREATE [UNIQUE] INDEX ON relation for each acceleration.indexes entry (PostgreSQL names them). */
static int create_indexes(pga_accel *a, PGconn *pq, const pga_load *l, const char *relation, sp_error *err) {
  const sp_params *ix = &a->base.dataset->acceleration.indexes;
  for (size_t i = 0; i < ix->count; i++) {
    char *cols = NULL;
    SP_TRY(pga_colref(ix->items[i].key, l->cols, l->n, ds_name(a), "indexes", &cols, err));
    size_t n = strlen(relation) + strlen(cols) + 64;
    char *sql = malloc(n);
    if (sql) snprintf(sql, n, "CREATE %sINDEX ON %s (%s)", strcasecmp(ix->items[i].value, "unique") == 0 ? "UNIQUE " : "",
                      relation, cols);
    int rc = sql ? run(pq, sql, err) : sp_fail(err, SP_ENOMEM, "out of memory");
    free(sql);
    free(cols);
    SP_TRY(rc);
  }
  return SP_OK;
}

static int table_exists(pga_accel *a, PGconn *pq, int *exists, sp_error *err) {
  const char *args[1] = {a->relation};
  PGresult *r = NULL;
  SP_TRY(run_params(pq, "SELECT pg_catalog.to_regclass($1) IS NOT NULL", 1, args, &r, err));
  *exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
  PQclear(r);
  return SP_OK;
}

/* The copy's lock for the swap, taken without queueing: a waiting ACCESS EXCLUSIVE request would hold up every
 * query that arrives behind it for as long as the longest running one takes. NOWAIT attempts for about five
 * seconds, then a plain wait, so a constant stream of overlapping queries cannot starve the refresh. */
static int lock_for_swap(pga_accel *a, PGconn *pq, sp_error *err) {
  int exists = 0;
  SP_TRY(table_exists(a, pq, &exists, err));
  for (int attempt = 0; exists && attempt < 100; attempt++) {
    SP_TRY(run(pq, "SAVEPOINT spice_swap", err));
    int rc = runf(pq, "LOCK TABLE %s IN ACCESS EXCLUSIVE MODE NOWAIT", a->relation, err);
    if (rc == SP_OK) return run(pq, "RELEASE SAVEPOINT spice_swap", err);
    if (rc != SP_EBUSY) return rc;
    SP_TRY(run(pq, "ROLLBACK TO SAVEPOINT spice_swap", err));
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  return exists ? runf(pq, "LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", a->relation, err) : SP_OK;
}

/* Full refresh: staging table, COPY FREEZE, indexes, drop, rename, checkpoint — one transaction. Everything but
 * the drop and the rename happens before the copy's lock is taken. */
static int write_overwrite(pga_accel *a, PGconn *pq, pga_load *l, const char *position, int64_t *rows, sp_error *err) {
  pga_count count = {.absolute = 1};
  char **keys = NULL;
  size_t n_keys = 0;
  int rc = table_keys(a, l, &keys, &n_keys, err);
  char *create = rc == SP_OK ? pga_create_sql(a->staging, l->cols, l->n, (const char *const *)keys, n_keys, 0) : NULL;
  if (rc == SP_OK && create == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK) rc = begin(a, pq, err);
  if (rc == SP_OK) rc = runf(pq, "DROP TABLE IF EXISTS %s", a->staging, err);
  if (rc == SP_OK) rc = run(pq, create, err);
  if (rc == SP_OK) rc = copy_rows(a, pq, l, a->staging, 1, &count.value, err);
  if (rc == SP_OK) rc = create_indexes(a, pq, l, a->staging, err);
  if (rc == SP_OK) rc = lock_for_swap(a, pq, err);
  if (rc == SP_OK) rc = runf(pq, "DROP TABLE IF EXISTS %s", a->relation, err);
  if (rc == SP_OK) {
    size_t n = strlen(a->staging) + strlen(a->table_name) + 32;
    char *sql = malloc(n);
    if (sql) snprintf(sql, n, "ALTER TABLE %s RENAME TO %s", a->staging, a->table_name);
    rc = sql ? run(pq, sql, err) : sp_fail(err, SP_ENOMEM, "out of memory");
    free(sql);
  }
  if (rc == SP_OK) rc = write_checkpoint(a, pq, position, count, rows, err);
  if (rc == SP_OK) rc = run(pq, "COMMIT", err);
  free(create);
  keys_free(keys, n_keys);
  return rc;
}

/* The single on_conflict entry that applies to appends: target and action (NULL when none). */
static int conflict_of(pga_accel *a, const pga_load *l, char **target, const char **action, sp_error *err) {
  const sp_params *oc = &a->base.dataset->acceleration.on_conflict;
  *target = NULL;
  *action = NULL;
  if (oc->count == 0) return SP_OK;
  const sp_kv *pick = &oc->items[0];
  for (size_t i = 0; i < oc->count; i++) {
    if (strcasecmp(oc->items[i].value, "upsert") != 0 && strcasecmp(oc->items[i].value, "drop") != 0)
      return sp_fail(err, SP_EINVAL, "dataset \"%s\": on_conflict for %s is \"%s\" (expected drop or upsert)", ds_name(a),
                     oc->items[i].key, oc->items[i].value);
    if (strcasecmp(oc->items[i].value, "upsert") == 0) pick = &oc->items[i];
  }
  if (oc->count > 1 && strcasecmp(pick->value, "upsert") == 0)
    return sp_fail(err, SP_EINVAL, "dataset \"%s\": on_conflict has several targets; only one is allowed unless all are drop", ds_name(a));
  *action = oc->count > 1 ? "drop" : pick->value;
  /* Several drop targets: DO NOTHING without a target covers every unique constraint. */
  if (oc->count > 1) return SP_OK;
  return pga_colref(pick->key, l->cols, l->n, ds_name(a), "on_conflict", target, err);
}

/* Append: COPY into the table, or with on_conflict through a temporary table and INSERT … ON CONFLICT. */
static int write_append(pga_accel *a, PGconn *pq, pga_load *l, int64_t *rows, sp_error *err) {
  char *target = NULL, *create = NULL, *insert = NULL;
  const char *action = NULL;
  int rc = conflict_of(a, l, &target, &action, err);
  if (rc == SP_OK && action) {
    create = pga_create_sql("spice_load", l->cols, l->n, NULL, 0, 1);
    insert = pga_insert_sql(a->relation, "spice_load", l->cols, l->n, target, action);
    if (insert) { /* only rows that are new change the count: an update's row version has its xmax set */
      size_t n = strlen(insert) + 128;
      char *counted = malloc(n);
      if (counted) snprintf(counted, n, "WITH ins AS (%s RETURNING (xmax = 0) AS fresh) SELECT count(*) FILTER (WHERE fresh) FROM ins", insert);
      free(insert);
      insert = counted;
    }
    if (create == NULL || insert == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  }
  pga_count count = {0};
  if (rc == SP_OK) rc = begin(a, pq, err);
  if (rc == SP_OK && action) {
    rc = run(pq, create, err);
    if (rc == SP_OK) rc = copy_rows(a, pq, l, "spice_load", 0, NULL, err);
    if (rc == SP_OK) rc = run_count(pq, insert, &count.value, err);
  } else if (rc == SP_OK) {
    rc = copy_rows(a, pq, l, a->relation, 0, &count.value, err);
  }
  if (rc == SP_OK) rc = write_checkpoint(a, pq, NULL, count, rows, err);
  if (rc == SP_OK) rc = run(pq, "COMMIT", err);
  free(target);
  free(create);
  free(insert);
  return rc;
}

/* `t."k1" = c."k1" AND …` over the update's primary key. malloc'd. */
static char *key_match(const sp_data_update *u) {
  sp_buf b = {0};
  for (size_t i = 0; i < u->n_primary_key; i++) {
    char *q = sqa_ident(u->primary_key[i]);
    if (q == NULL) break;
    sp_buf_append_str(&b, i ? " AND t." : "t.");
    sp_buf_append_str(&b, q);
    sp_buf_append_str(&b, " = c.");
    sp_buf_append_str(&b, q);
    free(q);
  }
  const char *s = sp_buf_cstr(&b);
  char *out = s ? strdup(s) : NULL;
  sp_buf_free(&b);
  return out;
}

/* Change stream: every key of the batch deleted, the rows that are not deletions inserted, the position stored. */
static int write_changes(pga_accel *a, PGconn *pq, sp_data_update *u, pga_load *l, int64_t *rows, sp_error *err) {
  if (u->n_primary_key == 0) return sp_fail(err, SP_EINVAL, "dataset \"%s\": changes need a primary key", ds_name(a));
  if (l->n < 2 || strcmp(l->cols[0].name, "_op") != 0)
    return sp_fail(err, SP_EINVAL, "dataset \"%s\": changes must start with the \"_op\" column", ds_name(a));
  char *create = pga_create_sql("spice_changes", l->cols, l->n, NULL, 0, 1);
  char *insert = pga_insert_sql(a->relation, "spice_changes WHERE \"_op\" <> 'delete'", l->cols + 1, l->n - 1, NULL, NULL);
  char *match = key_match(u), *del = NULL;
  size_t n = match ? strlen(match) + strlen(a->relation) + 64 : 0;
  if (n && (del = malloc(n)) != NULL) snprintf(del, n, "DELETE FROM %s AS t USING spice_changes AS c WHERE %s", a->relation, match);
  int rc = create && insert && del ? begin(a, pq, err) : sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK) rc = run(pq, create, err);
  int64_t deleted = 0, inserted = 0;
  if (rc == SP_OK) rc = copy_rows(a, pq, l, "spice_changes", 0, NULL, err);
  if (rc == SP_OK) rc = run_count(pq, del, &deleted, err);
  if (rc == SP_OK) rc = run_count(pq, insert, &inserted, err);
  if (rc == SP_OK) rc = write_checkpoint(a, pq, u->position, (pga_count){.value = inserted - deleted}, rows, err);
  if (rc == SP_OK) rc = run(pq, "COMMIT", err);
  free(create);
  free(insert);
  free(match);
  free(del);
  return rc;
}

/* One write on the write connection, in its own transaction. Caller holds write_lock. */
static int write_update(pga_accel *a, sp_data_update *u, pga_load *l, int64_t *rows, sp_error *err) {
  PGconn *pq;
  int exists = 0;
  SP_TRY(writer_get(a, &pq, err));
  int rc = a->prepared ? SP_OK : ensure_checkpoint(a, pq, err);
  a->prepared = rc == SP_OK;
  if (rc == SP_OK && u->type != SP_UPDATE_OVERWRITE) rc = table_exists(a, pq, &exists, err);
  if (rc != SP_OK) return rc;
  if (u->type == SP_UPDATE_CHANGES && exists) rc = write_changes(a, pq, u, l, rows, err);
  else if (u->type == SP_UPDATE_CHANGES) rc = sp_fail(err, SP_EINVAL, "dataset \"%s\": changes arrived before a full load", ds_name(a));
  else if (u->type == SP_UPDATE_APPEND && exists) rc = write_append(a, pq, l, rows, err);
  else rc = write_overwrite(a, pq, l, u->position, rows, err);
  if (rc != SP_OK) rollback(pq);
  return rc;
}

static int add_data(pga_accel *a, sp_data_update *u, int64_t *out_rows, sp_error *err) {
  pga_load l;
  int64_t rows = -1;
  pthread_mutex_lock(&a->write_lock);
  int rc = load_prepare(a, u, &l, err);
  sp_update_type type = u->type;
  if (rc == SP_OK) rc = write_update(a, u, &l, &rows, err);
  load_free(a, &l);
  pthread_mutex_unlock(&a->write_lock);
  /* Only a new table can have other columns. */
  if (rc == SP_OK && (type == SP_UPDATE_OVERWRITE || a->signature == NULL)) rc = reader_refresh(a, err);
  if (rc != SP_OK) {
    if (rc != SP_ENOTSUP && rc != SP_EINVAL) sp_error_prefix(err, "could not write dataset \"%s\" into postgres table \"%s\"", ds_name(a), a->display ? a->display : "");
    return rc;
  }
  if (out_rows) *out_rows = rows;
  return SP_OK;
}

static int pga_add_data(sp_accelerator *self, sp_data_update *u, int64_t *out_rows, sp_error *err) {
  pga_accel *a = (pga_accel *)self;
  if (a->relation == NULL) {
    sp_stream_release(&u->stream);
    return sp_fail(err, SP_EINTERNAL, "postgres accelerator of dataset \"%s\" is not open", ds_name(a));
  }
  return add_data(a, u, out_rows, err);
}

/* ---- Retention, position, table ------------------------------------------------------------------------------------ */

/* The condition (DuckDB SQL over the dataset's columns) is translated into PostgreSQL by the connector's filter
 * translator, then one DELETE and the checkpoint row, in one transaction. */
static int pga_delete_where(sp_accelerator *self, const char *condition, int64_t *out_deleted, sp_error *err) {
  pga_accel *a = (pga_accel *)self;
  pga_reader *r = a->relation ? reader_pin(a) : NULL;
  if (r == NULL) {
    if (out_deleted) *out_deleted = 0;
    return SP_OK;
  }
  char *name = sqa_ident(ds_name(a)), *query = NULL, *where = NULL, *del = NULL;
  size_t n = name ? strlen(name) + strlen(condition) + 32 : 0;
  int rc = n && (query = malloc(n)) != NULL ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK) snprintf(query, n, "SELECT * FROM %s WHERE %s", name, condition);
  sp_error ferr = {0};
  if (rc == SP_OK && sp_pg_where(r->conn, query, &where, &ferr) != SP_OK)
    rc = sp_fail(err, SP_ENOTSUP, "dataset \"%s\": the retention condition cannot run in postgres: %s", ds_name(a), ferr.msg);
  reader_unref(r);
  if (rc == SP_OK && *where == '\0') /* never a DELETE without its condition */
    rc = sp_fail(err, SP_ENOTSUP, "dataset \"%s\": the retention condition translated to nothing", ds_name(a));
  n = where ? strlen(where) + strlen(a->relation) + 32 : 0;
  if (rc == SP_OK && (del = malloc(n)) == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK) snprintf(del, n, "DELETE FROM %s WHERE %s", a->relation, where);
  pthread_mutex_lock(&a->write_lock);
  PGconn *pq = NULL;
  int64_t rows = 0;
  if (rc == SP_OK) rc = writer_get(a, &pq, err);
  if (rc == SP_OK) rc = begin(a, pq, err);
  int64_t deleted = 0;
  if (rc == SP_OK) rc = run_count(pq, del, &deleted, err);
  if (rc == SP_OK) rc = write_checkpoint(a, pq, NULL, (pga_count){.value = -deleted, .retention = 1}, &rows, err);
  if (rc == SP_OK) rc = run(pq, "COMMIT", err);
  if (rc != SP_OK && pq) rollback(pq);
  pthread_mutex_unlock(&a->write_lock);
  if (rc == SP_OK && out_deleted) *out_deleted = deleted;
  free(name);
  free(query);
  free(where);
  free(del);
  return rc;
}

/* The position stored with the last change stream update ("" when none). */
static int pga_position(sp_accelerator *self, char *buf, size_t n, sp_error *err) {
  pga_accel *a = (pga_accel *)self;
  (void)err;
  buf[0] = '\0';
  if (a->relation == NULL) return SP_OK;
  char sql[800];
  const char *args[1] = {ds_name(a)};
  PGresult *r = NULL;
  PGconn *pq;
  snprintf(sql, sizeof sql, "SELECT coalesce(stream_position, '') FROM %s WHERE dataset_name = $1", a->checkpoint);
  pthread_mutex_lock(&a->write_lock);
  if (writer_get(a, &pq, NULL) == SP_OK && run_params(pq, sql, 1, args, &r, NULL) == SP_OK && PQntuples(r) == 1)
    snprintf(buf, n, "%s", PQgetvalue(r, 0, 0));
  pthread_mutex_unlock(&a->write_lock);
  PQclear(r);
  return SP_OK;
}

static int pga_table_sql(sp_accelerator *self, char *buf, size_t n, sp_error *err) {
  char lit[600];
  if (sp_sql_literal(lit, sizeof lit, self->dataset->name) != 0 || (size_t)snprintf(buf, n, "sp_source_scan(%s)", lit) >= n)
    return sp_fail(err, SP_EINVAL, "buffer too small");
  return SP_OK;
}

const sp_accelerator_module sp_accelerator_postgres = {
    .abi = SP_ACCELERATOR_ABI,
    .name = "postgres",
    .prefix = "pg",
    .params = pga_params,
    .instance_size = sizeof(pga_accel),
    .caps = SP_ACCEL_CAP_FILE | SP_ACCEL_CAP_APPEND | SP_ACCEL_CAP_CHANGES,
    .open = pga_open,
    .close = pga_close,
    .add_data = pga_add_data,
    .table_sql = pga_table_sql,
    .delete_where = pga_delete_where,
    .position = pga_position,
};
