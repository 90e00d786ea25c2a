/* SPDX-License-Identifier: Apache-2.0
 *
 * The `postgres` connector: a table or view of a PostgreSQL server (`postgres:schema.table` or
 * `postgres:table`, resolved with PostgreSQL's own identifier rules by to_regclass).
 *
 * open() reads the columns from pg_catalog once (domains resolved to their base types, enums and arrays
 * mapped) and fixes the Arrow schema. Loads run `COPY (SELECT cols FROM "s"."t") TO STDOUT (FORMAT binary)`
 * and decode it straight into Arrow (pg_copy.c) while the consumer pulls batches: nothing holds the table.
 * scan() pushes the projection and a limit into that SELECT. Connections come from a small pool of idle
 * ones (connection_pool_size); a pooled connection that turns out dead is replaced once.
 *
 * A server can stop answering without closing anything (a hung host, a dead network path): libpq would wait
 * in a blocking read forever. So every exchange here is asynchronous and waits in steps of at most 100 ms,
 * giving up when the server stayed silent for client_timeout or when the reader's stop flag is set (a
 * federated query past runtime.query.timeout, sp_scan.stop). A connection given up on is closed, never
 * pooled: its half-finished exchange would poison the next user.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "connectors/pg_cdc.h"
#include "connectors/pg_conn.h"
#include "connectors/pg_copy.h"
#include "connectors/pg_filter.h"
#include "connectors/pg_write.h"
#include "duckdb.h"
#include "spice/arrow.h"
#include "spice/connector.h"
#include "spice/duckdb_util.h"
#include "spice/log.h"
#include "spice/sqltext.h"

#define PG_BATCH_ROWS 65536
#define PG_BATCH_BYTES ((size_t)64 << 20)
#define PG_MAX_PARAMS 16
#define PG_MAX_PARTITIONS 64
#define PG_CONNECT_TIMEOUT_MS 10000 /* a whole connection attempt (libpq's connect_timeout, which only its
                                     * blocking connect enforces) */
#define PG_WAIT_STEP_MS 100         /* how often a wait looks at the stop flag */

typedef struct pg_column {
  char *name;
  char *expr;     /* in the SELECT list: "col" or "col"::text */
  char *pg_type;  /* format_type(), for messages and docs */
  pgc_type type;
} pg_column;

typedef struct pg_conn {
  sp_connector base; /* must be first */
  const char *kw[PG_MAX_PARAMS + 1], *val[PG_MAX_PARAMS + 1];
  int expand; /* kw[0] is a connection string */
  char *relation; /* "schema"."table", quoted */
  char *display;  /* schema.table, for messages */
  unsigned oid;   /* the relation's */
  int splittable; /* an ordinary table on PostgreSQL 14 or later: a full load may read ctid ranges in parallel */
  int64_t partitions; /* pg_load_partitions: 0 automatic, 1 one stream, n ranges */
  pg_column *cols;
  size_t n_cols;
  char *server_id; /* "postgres host:port/db user=…": who runs pushed-down queries (never a password) */
  pthread_mutex_t lock; /* guards the pool */
  PGconn **idle;
  size_t n_idle, pool_size;
  int64_t idle_ms; /* client_timeout: the longest silence of the server during an exchange; 0 = none */
} pg_conn;

static const sp_param_spec pg_params[] = {
    SP_PG_CONNECTION_PARAMS
    {"connection_pool_size", SP_PARAM_INT, 0, "10", NULL, "idle connections kept for reuse"},
    {"client_timeout", SP_PARAM_DURATION, 0, "2m", NULL,
     "how long a read waits for the server's next bytes before it fails (a stalled server); 0s: forever"},
    {"unsupported_type_action", SP_PARAM_ENUM, 0, "error", "error|warn|ignore|string",
     "what to do with a column of a type that has no Arrow mapping"},
    {"load_partitions", SP_PARAM_INT, SP_PARAM_PREFIXED, NULL, NULL,
     "ctid ranges a full load of a table reads in parallel: 1 = one stream; absent or 0 = automatic"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

/* ---- Connections ------------------------------------------------------------------------------------------ */

typedef struct kw_list {
  const char **kw, **val;
  size_t n, cap;
} kw_list;

static void add_kw(kw_list *l, const char *k, const char *v) {
  if (v == NULL || l->n >= l->cap) return;
  l->kw[l->n] = k;
  l->val[l->n] = v;
  l->n++;
}

size_t sp_pg_conninfo(const sp_params *p, const char **kw, const char **val, size_t cap, int *expand) {
  kw_list l = {kw, val, 0, cap};
  const char *cs = sp_params_get(p, "pg_connection_string");
  *expand = cs && *cs;
  if (*expand) {
    add_kw(&l, "dbname", cs);
  } else {
    add_kw(&l, "host", sp_params_get(p, "pg_host"));
    add_kw(&l, "port", sp_params_get(p, "pg_port"));
    add_kw(&l, "dbname", sp_params_get(p, "pg_db"));
    add_kw(&l, "user", sp_params_get(p, "pg_user"));
    add_kw(&l, "password", sp_params_get(p, "pg_pass"));
  }
  /* Explicit TLS params apply on top of a connection string too. */
  add_kw(&l, "sslmode", sp_params_get(p, "pg_sslmode"));
  add_kw(&l, "sslrootcert", sp_params_get(p, "pg_sslrootcert"));
  add_kw(&l, "client_encoding", "UTF8");
  add_kw(&l, "application_name", "spicec");
  add_kw(&l, "connect_timeout", "10");
  return l.n;
}

static void build_conninfo(pg_conn *c) {
  size_t n = sp_pg_conninfo(&c->base.params, c->kw, c->val, PG_MAX_PARAMS, &c->expand);
  c->kw[n] = c->val[n] = NULL;
}

/* libpq's message on one line, without its trailing newline. */
static void one_line(char *dst, size_t n, const char *msg) {
  size_t o = 0;
  for (const char *s = msg ? msg : ""; *s && o + 1 < n; s++) {
    if (*s == '\n' || *s == '\t') {
      if (s[1] == '\0') break;
      if (o && dst[o - 1] != ' ') dst[o++] = ' ';
      continue;
    }
    dst[o++] = *s;
  }
  dst[o] = '\0';
}

/* "host:port" as libpq resolved it (also for connection strings), never a password. */
static void server_name(PGconn *pq, const pg_conn *c, char *buf, size_t n) {
  const char *h = pq ? PQhost(pq) : NULL, *p = pq ? PQport(pq) : NULL;
  if (h == NULL || *h == '\0') h = sp_params_get(&c->base.params, "pg_host");
  if (p == NULL || *p == '\0') p = sp_params_get(&c->base.params, "pg_port");
  snprintf(buf, n, "%s:%s", h && *h ? h : "localhost", p && *p ? p : "5432");
}

/* ---- Waiting on the server ------------------------------------------------------------------------------- */

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One exchange's patience: the server may stay silent for idle_ms at most (0: forever), and the wait ends as
 * soon as *stop (borrowed, may be NULL) is set. */
typedef struct pg_wait {
  volatile int *stop;
  int64_t idle_ms, silent_until;
} pg_wait;

static pg_wait wait_begin(const pg_conn *c, volatile int *stop) {
  return (pg_wait){.stop = stop, .idle_ms = c->idle_ms, .silent_until = mono_ms() + c->idle_ms};
}

/* The server sent something: its silence starts again. */
static void wait_heard(pg_wait *w) { w->silent_until = mono_ms() + w->idle_ms; }

/* Waits up to PG_WAIT_STEP_MS for `events` on the connection's socket; the caller then looks at the
 * connection again. SP_ECANCELED once *stop is set, SP_ETIMEDOUT once the server was silent for idle_ms. */
static int wait_socket(const pg_conn *c, PGconn *pq, pg_wait *w, short events, sp_error *err) {
  if (w->stop && __atomic_load_n(w->stop, __ATOMIC_ACQUIRE))
    return sp_fail(err, SP_ECANCELED, "the read was stopped (query timeout or shutdown)");
  int64_t left = w->silent_until - mono_ms();
  if (w->idle_ms > 0 && left <= 0) {
    char server[512];
    server_name(pq, c, server, sizeof server);
    return sp_fail(err, SP_ETIMEDOUT, "postgres server \"%s\" sent nothing for %lld ms (client_timeout)", server,
                   (long long)w->idle_ms);
  }
  struct pollfd pfd = {.fd = PQsocket(pq), .events = events};
  int n = poll(&pfd, 1, w->idle_ms > 0 && left < PG_WAIT_STEP_MS ? (int)left : PG_WAIT_STEP_MS);
  if (n < 0 && errno != EINTR) return sp_fail(err, SP_EIO, "poll: %s", strerror(errno));
  if (n > 0 && (pfd.revents & POLLIN)) wait_heard(w);
  return SP_OK;
}

/* Reads until a whole result (or the end of the results) is in, so that PQgetResult does not block. A broken
 * connection is left for PQgetResult to report. */
static int await_result(const pg_conn *c, PGconn *pq, pg_wait *w, sp_error *err) {
  while (PQisBusy(pq)) {
    SP_TRY(wait_socket(c, pq, w, POLLIN, err));
    if (PQconsumeInput(pq) == 0) break;
  }
  return SP_OK;
}

/* After a PQsend…: the last result, as PQexec gives it (a COPY state ends the results), owned by the caller;
 * NULL only when libpq had no memory. Gives up as wait_socket does; then the connection is mid-exchange:
 * close it (pool_put does). */
static int results_wait(const pg_conn *c, PGconn *pq, volatile int *stop, PGresult **out, sp_error *err) {
  pg_wait w = wait_begin(c, stop);
  PGresult *last = NULL, *r;
  for (;;) {
    int rc = await_result(c, pq, &w, err);
    if (rc != SP_OK) {
      PQclear(last);
      return rc;
    }
    if ((r = PQgetResult(pq)) == NULL) break;
    PQclear(last);
    last = r;
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COPY_OUT || st == PGRES_COPY_IN || st == PGRES_COPY_BOTH) break;
  }
  *out = last;
  return SP_OK;
}

/* PQexecParams (PQexec when n is 0) that gives up as wait_socket does; see results_wait. */
static int exec_wait(const pg_conn *c, PGconn *pq, const char *sql, int n, const char *const *args,
                     volatile int *stop, PGresult **out, sp_error *err) {
  int sent = n == 0 ? PQsendQuery(pq, sql) : PQsendQueryParams(pq, sql, n, NULL, args, NULL, NULL, 0);
  if (!sent) {
    *out = PQmakeEmptyPGresult(pq, PGRES_FATAL_ERROR); /* PQerrorMessage says why */
    return SP_OK;
  }
  return results_wait(c, pq, stop, out, err);
}

/* Drives PQconnectPoll until connected, in at most PG_CONNECT_TIMEOUT_MS, stopping early on *stop. */
static int connect_poll(PGconn *pq, volatile int *stop, sp_error *err) {
  int64_t until = mono_ms() + PG_CONNECT_TIMEOUT_MS;
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
    if (stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE)) return sp_fail(err, SP_ECANCELED, "canceled");
    int64_t left = until - mono_ms();
    if (left <= 0) return sp_fail(err, SP_ECONNECT, "timeout expired");
    struct pollfd pfd = {.fd = PQsocket(pq), .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
    int n = poll(&pfd, 1, left < PG_WAIT_STEP_MS ? (int)left : PG_WAIT_STEP_MS);
    if (n < 0 && errno != EINTR) return sp_fail(err, SP_EIO, "poll: %s", strerror(errno));
    if (n > 0) st = PQconnectPoll(pq); /* only when ready: libpq takes a writable socket as connected */
  }
  return SP_OK;
}

static int connect_new(pg_conn *c, volatile int *stop, PGconn **out, sp_error *err) {
  const char *ds = c->base.dataset->name;
  if (c->expand) {
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(c->val[0], &perr);
    PQfreemem(perr); /* it may quote the string, which may hold a password */
    if (opts == NULL) return sp_fail(err, SP_EINVAL, "pg_connection_string of dataset \"%s\" is not a valid connection string", ds);
    PQconninfoFree(opts);
  }
  PGconn *pq = PQconnectStartParams(c->kw, c->val, c->expand);
  if (pq == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  sp_error werr = {0};
  int rc = PQstatus(pq) == CONNECTION_BAD ? SP_OK : connect_poll(pq, stop, &werr);
  if (rc == SP_OK && PQstatus(pq) == CONNECTION_OK) {
    *out = pq;
    return SP_OK;
  }
  char server[512], msg[600];
  server_name(pq, c, server, sizeof server);
  if (rc != SP_OK) {
    PQfinish(pq);
    return sp_fail(err, rc, "could not connect to postgres server \"%s\" for dataset \"%s\": %s", server, ds, werr.msg);
  }
  one_line(msg, sizeof msg, PQerrorMessage(pq));
  int code = strstr(msg, "password authentication failed") || strstr(msg, "no password supplied") ||
                     PQconnectionNeedsPassword(pq)
                 ? SP_EUNAUTH
                 : SP_ECONNECT;
  PQfinish(pq);
  return sp_fail(err, code, "could not connect to postgres server \"%s\" for dataset \"%s\": %s", server, ds, msg);
}

int sp_pg_connect(const sp_connector *proto, PGconn **out, sp_error *err) {
  pg_conn c;
  memset(&c, 0, sizeof c);
  c.base = *proto; /* params borrowed: build_conninfo only points at their strings */
  build_conninfo(&c);
  return connect_new(&c, NULL, out, err);
}

/* A connection from the pool, or a new one (whose making stops early on *stop, which may be NULL). *pooled
 * says which (a pooled one may have died meanwhile). */
static int pool_get(pg_conn *c, volatile int *stop, PGconn **out, int *pooled, sp_error *err) {
  PGconn *pq = NULL;
  pthread_mutex_lock(&c->lock);
  while (pq == NULL && c->n_idle > 0) {
    pq = c->idle[--c->n_idle];
    if (PQstatus(pq) != CONNECTION_OK) {
      PQfinish(pq);
      pq = NULL;
    }
  }
  pthread_mutex_unlock(&c->lock);
  *pooled = pq != NULL;
  if (pq) {
    *out = pq;
    return SP_OK;
  }
  return connect_new(c, stop, out, err);
}

/* Returns a healthy, idle connection to the pool; closes anything else. */
static void pool_put(pg_conn *c, PGconn *pq) {
  if (pq == NULL) return;
  if (PQstatus(pq) == CONNECTION_OK && PQtransactionStatus(pq) == PQTRANS_IDLE) {
    pthread_mutex_lock(&c->lock);
    if (c->n_idle < c->pool_size) {
      c->idle[c->n_idle++] = pq;
      pq = NULL;
    }
    pthread_mutex_unlock(&c->lock);
  }
  if (pq) PQfinish(pq);
}

/* ---- Catalog ---------------------------------------------------------------------------------------------- */

static int map_base_oid(Oid oid, int typmod, pgc_type *t) {
  memset(t, 0, sizeof *t);
  switch (oid) {
  case 16: t->kind = PGC_BOOL; return 1;
  case 17: t->kind = PGC_BYTEA; return 1;
  case 18: case 19: case 25: case 114: case 1043: t->kind = PGC_TEXT; return 1; /* "char", name, text, json, varchar */
  case 1042: t->kind = PGC_BPCHAR; return 1;
  case 20: t->kind = PGC_INT8; return 1;
  case 21: t->kind = PGC_INT2; return 1;
  case 23: t->kind = PGC_INT4; return 1;
  case 26: t->kind = PGC_OID; return 1;
  case 700: t->kind = PGC_FLOAT4; return 1;
  case 701: t->kind = PGC_FLOAT8; return 1;
  case 1082: t->kind = PGC_DATE; return 1;
  case 1083: t->kind = PGC_TIME; return 1;
  case 1114: t->kind = PGC_TIMESTAMP; return 1;
  case 1184: t->kind = PGC_TIMESTAMPTZ; return 1;
  case 1186: t->kind = PGC_INTERVAL; return 1;
  case 2950: t->kind = PGC_UUID; return 1;
  case 3802: t->kind = PGC_JSONB; return 1;
  case 1700: {
    /* typmod = ((precision << 16) | (scale & 0x7ff)) + 4; scale may be negative since PostgreSQL 15 */
    int p = typmod >= 4 ? ((typmod - 4) >> 16) & 0xffff : 0, s = typmod >= 4 ? (typmod - 4) & 0x7ff : 0;
    if (s & 0x400) s -= 0x800;
    if (typmod < 4 || p > 38 || p < 1 || s < 0 || s > p) {
      t->kind = PGC_NUMERIC_TEXT;
    } else {
      t->kind = PGC_NUMERIC;
      t->precision = p;
      t->scale = s;
    }
    return 1;
  }
  default: return 0;
  }
}

/* Maps a type oid: built-in types, domains (to their base), enums (to text), arrays of those (to lists).
 * Returns 1 when mapped, 0 when not, or -(status) on a query failure. */
static int map_type(const pg_conn *c, PGconn *pq, Oid oid, int typmod, int depth, pgc_type *t, sp_error *err) {
  if (map_base_oid(oid, typmod, t)) return 1;
  if (depth > 8) return 0;
  char oid_s[16];
  snprintf(oid_s, sizeof oid_s, "%u", oid);
  const char *args[1] = {oid_s};
  PGresult *r;
  int rc = exec_wait(c, pq, "SELECT typtype, typcategory, typelem, typbasetype, typtypmod FROM pg_catalog.pg_type "
                            "WHERE oid = $1::oid", 1, args, NULL, &r, err);
  if (rc != SP_OK) return -rc;
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
    char msg[600];
    one_line(msg, sizeof msg, PQerrorMessage(pq));
    PQclear(r);
    return -sp_fail(err, SP_EIO, "could not read type %u: %s", oid, msg);
  }
  char typtype = PQgetvalue(r, 0, 0)[0], cat = PQgetvalue(r, 0, 1)[0];
  Oid elem = (Oid)strtoul(PQgetvalue(r, 0, 2), NULL, 10), base = (Oid)strtoul(PQgetvalue(r, 0, 3), NULL, 10);
  int base_mod = atoi(PQgetvalue(r, 0, 4));
  PQclear(r);
  if (typtype == 'd') return map_type(c, pq, base, base_mod, depth + 1, t, err);
  if (typtype == 'e') {
    memset(t, 0, sizeof *t);
    t->kind = PGC_TEXT;
    return 1;
  }
  if (cat == 'A' && elem != 0 && depth == 0) {
    pgc_type e;
    int m = map_type(c, pq, elem, typmod, depth + 1, &e, err);
    if (m <= 0 || e.kind == PGC_LIST) return m;
    memset(t, 0, sizeof *t);
    t->kind = PGC_LIST;
    t->elem = e.kind;
    t->elem_precision = e.precision;
    t->elem_scale = e.scale;
    return 1;
  }
  return 0;
}

static char *quote_ident_dup(PGconn *pq, const char *s) {
  char *q = PQescapeIdentifier(pq, s, strlen(s));
  char *d = q ? strdup(q) : NULL;
  PQfreemem(q);
  return d;
}

/* Finds the relation named by the dataset path; SP_ENOTFOUND when it does not exist. */
static int find_relation(pg_conn *c, PGconn *pq, char *oid_out, size_t n, sp_error *err) {
  const char *path = c->base.dataset->path, *ds = c->base.dataset->name;
  if (path == NULL || *path == '\0') return sp_fail(err, SP_EINVAL, "from: postgres: needs a table name (dataset \"%s\")", ds);
  const char *args[1] = {path};
  PGresult *r;
  SP_TRY(exec_wait(c, pq, "SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                          "ON n.oid = c.relnamespace WHERE c.oid = pg_catalog.to_regclass($1)",
                   1, args, NULL, &r, err));
  int rc = SP_OK;
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    char msg[600];
    one_line(msg, sizeof msg, PQerrorMessage(pq));
    rc = sp_fail(err, SP_EINVAL, "invalid postgres table name \"%s\" for dataset \"%s\": %s", path, ds, msg);
  } else if (PQntuples(r) == 0) {
    rc = sp_fail(err, SP_ENOTFOUND, "postgres table \"%s\" for dataset \"%s\" does not exist", path, ds);
  } else {
    snprintf(oid_out, n, "%s", PQgetvalue(r, 0, 0));
    c->oid = (unsigned)strtoul(PQgetvalue(r, 0, 0), NULL, 10);
    /* Views, materialized views (LOCK TABLE refuses them), foreign and partitioned tables have no blocks of
     * their own to split; servers before 14 have no TID range scan. */
    c->splittable = PQgetvalue(r, 0, 3)[0] == 'r' && PQserverVersion(pq) >= 140000;
    char *s = quote_ident_dup(pq, PQgetvalue(r, 0, 1)), *t = quote_ident_dup(pq, PQgetvalue(r, 0, 2));
    size_t m = (s ? strlen(s) : 0) + (t ? strlen(t) : 0) + 2;
    c->relation = s && t ? malloc(m) : NULL;
    if (c->relation) snprintf(c->relation, m, "%s.%s", s, t);
    m = strlen(PQgetvalue(r, 0, 1)) + strlen(PQgetvalue(r, 0, 2)) + 2;
    c->display = malloc(m);
    if (c->display) snprintf(c->display, m, "%s.%s", PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2));
    free(s);
    free(t);
    if (c->relation == NULL || c->display == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  }
  PQclear(r);
  return rc;
}

/* Adds column i of the catalog result, or skips / fails it per unsupported_type_action. */
static int add_column(pg_conn *c, PGconn *pq, PGresult *r, int i, sp_error *err) {
  const char *name = PQgetvalue(r, i, 0), *tname = PQgetvalue(r, i, 3);
  const char *action = sp_params_get(&c->base.params, "unsupported_type_action");
  pg_column *col = &c->cols[c->n_cols];
  int m = map_type(c, pq, (Oid)strtoul(PQgetvalue(r, i, 1), NULL, 10), atoi(PQgetvalue(r, i, 2)), 0, &col->type, err);
  if (m < 0) return -m;
  int as_text = 0;
  if (m == 0) {
    if (action == NULL || strcasecmp(action, "error") == 0)
      return sp_fail(err, SP_ENOTSUP,
                     "column \"%s\" of postgres table \"%s\" has unsupported type %s (dataset \"%s\"; set "
                     "unsupported_type_action: string, warn or ignore)",
                     name, c->display, tname, c->base.dataset->name);
    if (strcasecmp(action, "string") != 0) {
      if (strcasecmp(action, "warn") == 0)
        sp_log_warn("dataset \"%s\": column \"%s\" of postgres table \"%s\" has unsupported type %s; skipped",
                    c->base.dataset->name, name, c->display, tname);
      return SP_OK;
    }
    memset(&col->type, 0, sizeof col->type);
    col->type.kind = PGC_TEXT;
    as_text = 1;
  }
  char *q = quote_ident_dup(pq, name);
  col->name = strdup(name);
  col->pg_type = strdup(tname);
  col->expr = q ? malloc(strlen(q) + 8) : NULL;
  if (col->expr) sprintf(col->expr, "%s%s", q, as_text ? "::text" : "");
  free(q);
  c->n_cols++;
  if (col->name == NULL || col->pg_type == NULL || col->expr == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  return SP_OK;
}

static int read_columns(pg_conn *c, PGconn *pq, sp_error *err) {
  char oid[32];
  SP_TRY(find_relation(c, pq, oid, sizeof oid, err));
  const char *args[1] = {oid};
  PGresult *r;
  SP_TRY(exec_wait(c, pq, "SELECT a.attname, a.atttypid, a.atttypmod, pg_catalog.format_type(a.atttypid, a.atttypmod) "
                          "FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1::oid AND a.attnum > 0 "
                          "AND NOT a.attisdropped ORDER BY a.attnum",
                   1, args, NULL, &r, err));
  int rc = SP_OK;
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    char msg[600];
    one_line(msg, sizeof msg, PQerrorMessage(pq));
    rc = sp_fail(err, SP_EIO, "could not read the columns of postgres table \"%s\" for dataset \"%s\": %s", c->display, c->base.dataset->name, msg);
  } else if ((c->cols = calloc((size_t)PQntuples(r) + 1, sizeof *c->cols)) == NULL) {
    rc = sp_fail(err, SP_ENOMEM, "out of memory");
  }
  for (int i = 0; rc == SP_OK && i < PQntuples(r); i++) rc = add_column(c, pq, r, i, err);
  PQclear(r);
  if (rc == SP_OK && c->n_cols == 0)
    rc = sp_fail(err, SP_EINVAL, "postgres table \"%s\" for dataset \"%s\" has no columns spicec can read", c->display,
                 c->base.dataset->name);
  return rc;
}

static int describe_server(pg_conn *c, PGconn *pq, sp_error *err) {
  const char *h = PQhost(pq), *p = PQport(pq), *d = PQdb(pq), *u = PQuser(pq);
  size_t n = strlen(h ? h : "") + strlen(p ? p : "") + strlen(d ? d : "") + strlen(u ? u : "") + 32;
  if ((c->server_id = malloc(n)) == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  snprintf(c->server_id, n, "postgres %s:%s/%s user=%s", h ? h : "", p ? p : "", d ? d : "", u ? u : "");
  return SP_OK;
}

static void pg_close(sp_connector *self) {
  pg_conn *c = (pg_conn *)self;
  for (size_t i = 0; i < c->n_idle; i++) PQfinish(c->idle[i]);
  free(c->idle);
  for (size_t i = 0; i < c->n_cols; i++) {
    free(c->cols[i].name);
    free(c->cols[i].expr);
    free(c->cols[i].pg_type);
  }
  free(c->cols);
  free(c->relation);
  free(c->display);
  free(c->server_id);
  if (c->pool_size) pthread_mutex_destroy(&c->lock);
}

static int pg_open(sp_connector *self, sp_error *err) {
  pg_conn *c = (pg_conn *)self;
  c->partitions = sp_params_get_int(&self->params, "pg_load_partitions", 0);
  if (c->partitions < 0 || c->partitions > PG_MAX_PARTITIONS)
    return sp_fail(err, SP_EINVAL, "pg_load_partitions of dataset \"%s\" must be from 0 (automatic) to %d, not %lld",
                   self->dataset->name, PG_MAX_PARTITIONS, (long long)c->partitions);
  int64_t pool = sp_params_get_int(&self->params, "connection_pool_size", 10);
  c->pool_size = pool < 1 ? 1 : pool > 1000 ? 1000 : (size_t)pool;
  if ((c->idle = calloc(c->pool_size, sizeof *c->idle)) == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  pthread_mutex_init(&c->lock, NULL);
  c->idle_ms = sp_params_get_duration_ms(&self->params, "client_timeout", 120000);
  build_conninfo(c);
  PGconn *pq;
  int pooled, rc = pool_get(c, NULL, &pq, &pooled, err);
  if (rc == SP_OK) {
    rc = read_columns(c, pq, err);
    if (rc == SP_OK) rc = describe_server(c, pq, err);
    pool_put(c, pq);
  }
  if (rc != SP_OK) pg_close(self);
  return rc;
}

/* ---- Streams ---------------------------------------------------------------------------------------------- */

/* A load in flight. Each worker reads one COPY on its own connection and decodes it into batches on its own
 * thread while the consumer works on the previous ones (the decoding overlaps the accelerator's work). A load
 * has one worker, or one per ctid range for a parallel load (below). The workers share one queue of PG_QUEUE
 * batches per worker, so memory stays bounded by about (PG_QUEUE + 1) batches per worker. */
#define PG_QUEUE 2

struct pg_stream;

typedef struct pg_worker {
  struct pg_stream *s;
  PGconn *pq;        /* NULL once the COPY is over and the connection went back to the pool */
  pgc_decoder *dec;
  int in_txn;        /* the COPY runs in a transaction of the load's own, committed after it */
  int finished;      /* the COPY ended cleanly (worker's) */
  size_t wire;       /* COPY bytes in the batch being built (worker's) */
  pg_wait wait;      /* the worker's patience with the server (client_timeout, the reader's stop flag) */
  pthread_t thread;
  int has_thread;
} pg_worker;

typedef struct pg_stream {
  pg_conn *c;
  pgc_type *types;
  const char **names;
  char *name_buf;    /* names of a pushed-down query's columns (owned), or NULL */
  size_t n;
  pg_worker *w;
  size_t n_w;
  volatile int *query_stop; /* sp_scan.stop (borrowed for the life of the stream), or NULL */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct ArrowArray *queue; /* q_cap = PG_QUEUE * n_w slots */
  size_t q_cap, q_head, q_count;
  size_t running;    /* workers still producing: the stream ends when none is and the queue is empty */
  int stop;          /* the consumer released the stream, or a worker failed: every worker stops */
  int failed;        /* errno-style code of the first worker that failed, else 0 */
  char error[1024];
} pg_stream;

static int stream_schema(struct ArrowArrayStream *st, struct ArrowSchema *out) {
  pg_stream *s = st->private_data;
  sp_error err = {0};
  if (pgc_schema(s->types, s->names, s->n, out, &err) != SP_OK) return 12; /* ENOMEM */
  return 0;
}

/* Commits the load's own transaction. */
static int commit_load(pg_worker *w, sp_error *err) {
  PGresult *r;
  SP_TRY(exec_wait(w->s->c, w->pq, "COMMIT", 0, NULL, w->wait.stop, &r, err));
  int rc = SP_OK;
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    char msg[600];
    one_line(msg, sizeof msg, PQerrorMessage(w->pq));
    rc = sp_fail(err, SP_EIO, "%s", msg);
  }
  PQclear(r);
  return rc;
}

/* Ends the COPY: the command's result must be a success (and the load's own transaction commit), then the
 * connection goes back to the pool. */
static int finish_copy(pg_worker *w, sp_error *err) {
  const pg_conn *c = w->s->c;
  PGresult *r;
  int rc = SP_OK, failed = 0;
  while (rc == SP_OK && (rc = await_result(c, w->pq, &w->wait, err)) == SP_OK && (r = PQgetResult(w->pq)) != NULL) {
    if (!failed && PQresultStatus(r) != PGRES_COMMAND_OK) {
      char msg[600];
      one_line(msg, sizeof msg, PQresultErrorMessage(r));
      failed = sp_fail(err, SP_EIO, "%s", msg);
    }
    PQclear(r);
  }
  if (rc == SP_OK) rc = failed;
  if (rc == SP_OK) rc = pgc_end(w->dec, err);
  if (rc == SP_OK && w->in_txn) rc = commit_load(w, err);
  if (rc == SP_OK) {
    pool_put(w->s->c, w->pq);
    w->pq = NULL;
    w->finished = 1;
  }
  return rc;
}

static int stopped(pg_stream *s) {
  pthread_mutex_lock(&s->mu);
  int v = s->stop;
  pthread_mutex_unlock(&s->mu);
  return v;
}

/* Waits up to PG_WAIT_STEP_MS for more COPY data, so that a released stream is noticed; fails when the
 * server stays silent for client_timeout or the reader stops. */
static int wait_data(pg_worker *w, sp_error *err) {
  SP_TRY(wait_socket(w->s->c, w->pq, &w->wait, POLLIN, err));
  if (PQconsumeInput(w->pq) == 0) {
    char msg[600];
    one_line(msg, sizeof msg, PQerrorMessage(w->pq));
    return sp_fail(err, SP_ECONNECT, "%s", msg);
  }
  return SP_OK;
}

/* Reads COPY data until a batch is full or the COPY ends. */
static int fill(pg_worker *w, sp_error *err) {
  wait_heard(&w->wait); /* the time spent handing over the last batch is not the server's silence */
  /* Batch size by rows, and by the COPY bytes received (a close, O(1) stand-in for the Arrow bytes). */
  while (!w->finished && pgc_pending_rows(w->dec) < PG_BATCH_ROWS && w->wire < PG_BATCH_BYTES) {
    char *buf = NULL;
    int n = PQgetCopyData(w->pq, &buf, 1);
    if (n > 0) {
      int rc = pgc_feed(w->dec, (const uint8_t *)buf, (size_t)n, err);
      w->wire += (size_t)n;
      PQfreemem(buf);
      SP_TRY(rc);
    } else if (n == 0) {
      if (stopped(w->s)) return sp_fail(err, SP_ECANCELED, "canceled");
      SP_TRY(wait_data(w, err));
    } else if (n == -1) {
      SP_TRY(finish_copy(w, err));
    } else {
      char msg[600];
      one_line(msg, sizeof msg, PQerrorMessage(w->pq));
      return sp_fail(err, PQstatus(w->pq) == CONNECTION_BAD ? SP_ECONNECT : SP_EIO, "%s", msg);
    }
  }
  return SP_OK;
}

/* Queues a batch, waiting for room; returns 0 when the stream was stopped meanwhile. */
static int enqueue(pg_stream *s, struct ArrowArray *a) {
  pthread_mutex_lock(&s->mu);
  while (s->q_count == s->q_cap && !s->stop) pthread_cond_wait(&s->cv, &s->mu);
  int ok = !s->stop;
  if (ok) {
    s->queue[(s->q_head + s->q_count) % s->q_cap] = *a;
    s->q_count++;
    pthread_cond_broadcast(&s->cv);
  }
  pthread_mutex_unlock(&s->mu);
  if (!ok) a->release(a);
  return ok;
}

/* A worker's end: the first failure is the stream's, and stops the other workers. */
static void worker_done(pg_worker *w, int rc, const sp_error *err) {
  pg_stream *s = w->s;
  pthread_mutex_lock(&s->mu);
  /* A stop of the stream's own (a release, another worker's failure) is no failure; the reader's stop flag is. */
  if (rc != SP_OK && !(rc == SP_ECANCELED && s->stop) && !s->failed) {
    snprintf(s->error, sizeof s->error, "could not read postgres table \"%s\" for dataset \"%s\": %s", s->c->display,
             s->c->base.dataset->name, err->msg);
    s->failed = rc == SP_ENOMEM ? ENOMEM : rc == SP_ETIMEDOUT ? ETIMEDOUT : rc == SP_ECANCELED ? ECANCELED : EIO;
    s->stop = 1;
  }
  s->running--;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static void *producer(void *arg) {
  pg_worker *w = arg;
  sp_error err = {0};
  int rc = SP_OK;
  while (rc == SP_OK) {
    rc = fill(w, &err);
    if (rc != SP_OK || pgc_pending_rows(w->dec) == 0) break;
    struct ArrowArray a;
    rc = pgc_finish_batch(w->dec, &a, &err);
    w->wire = 0;
    if (rc == SP_OK && !enqueue(w->s, &a)) break;
  }
  worker_done(w, rc, &err);
  return NULL;
}

/* A failure is reported at once: the batches still queued would be thrown away with the load. */
static int stream_next(struct ArrowArrayStream *st, struct ArrowArray *out) {
  pg_stream *s = st->private_data;
  int rc = 0;
  pthread_mutex_lock(&s->mu);
  while (s->q_count == 0 && s->running > 0 && !s->failed) pthread_cond_wait(&s->cv, &s->mu);
  if (s->failed) {
    rc = s->failed;
  } else if (s->q_count > 0) {
    *out = s->queue[s->q_head];
    s->q_head = (s->q_head + 1) % s->q_cap;
    s->q_count--;
    pthread_cond_broadcast(&s->cv);
  } else {
    memset(out, 0, sizeof *out); /* end of stream */
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

static const char *stream_error(struct ArrowArrayStream *st) {
  pg_stream *s = st->private_data;
  pthread_mutex_lock(&s->mu);
  const char *e = s->failed ? s->error : NULL;
  pthread_mutex_unlock(&s->mu);
  return e;
}

static void stream_free(pg_stream *s) {
  pthread_mutex_lock(&s->mu);
  s->stop = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  for (size_t i = 0; i < s->n_w; i++)
    if (s->w[i].has_thread) pthread_join(s->w[i].thread, NULL);
  for (size_t i = 0; i < s->q_count; i++) sp_array_release(&s->queue[(s->q_head + i) % s->q_cap]);
  for (size_t i = 0; i < s->n_w; i++) {
    /* A COPY left half-read, or a transaction left open: closing the connection makes the server end it. */
    if (s->w[i].pq) PQfinish(s->w[i].pq);
    pgc_decoder_free(s->w[i].dec);
  }
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s->queue);
  free(s->w);
  free(s->types);
  free(s->names);
  free(s->name_buf);
  free(s);
}

static void stream_release(struct ArrowArrayStream *st) {
  if (st->release == NULL) return;
  stream_free(st->private_data);
  st->release = NULL;
}

/* A stream of columns idx[0..n) — or, with idx NULL, of columns typed types[i] and named names[i] (borrowed;
 * the names must outlive the stream) — with n_w workers, each with its decoder and no connection yet; *out
 * is freed with stream_free. */
static int stream_new(pg_conn *c, const size_t *idx, const pgc_type *types, const char *const *names, size_t n,
                      size_t n_w, pg_stream **out, sp_error *err) {
  pg_stream *s = calloc(1, sizeof *s);
  if (s == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  s->c = c;
  s->n = n;
  s->n_w = n_w;
  s->q_cap = PG_QUEUE * n_w;
  s->types = calloc(n ? n : 1, sizeof *s->types);
  s->names = calloc(n ? n : 1, sizeof *s->names);
  s->w = calloc(n_w, sizeof *s->w);
  s->queue = calloc(s->q_cap, sizeof *s->queue);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  int rc = s->types && s->names && s->w && s->queue ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0; rc == SP_OK && i < n; i++) {
    s->types[i] = idx ? c->cols[idx[i]].type : types[i];
    s->names[i] = idx ? c->cols[idx[i]].name : names[i];
  }
  for (size_t i = 0; rc == SP_OK && i < n_w; i++) {
    s->w[i].s = s;
    rc = pgc_decoder_new(s->types, n, &s->w[i].dec, err);
  }
  if (rc != SP_OK) {
    if (s->w == NULL) s->n_w = 0;
    stream_free(s);
    return rc;
  }
  *out = s;
  return SP_OK;
}

/* Starts every worker's thread (their COPYs are running) and hands the stream out as *out. Takes s: on a
 * failure it is freed. */
static int stream_start(pg_stream *s, struct ArrowArrayStream *out, sp_error *err) {
  int rc = SP_OK;
  for (size_t i = 0; rc == SP_OK && i < s->n_w; i++) {
    s->w[i].wait = wait_begin(s->c, s->query_stop);
    pthread_mutex_lock(&s->mu);
    s->running++;
    pthread_mutex_unlock(&s->mu);
    s->w[i].has_thread = pthread_create(&s->w[i].thread, NULL, producer, &s->w[i]) == 0;
    if (!s->w[i].has_thread) {
      pthread_mutex_lock(&s->mu);
      s->running--;
      pthread_mutex_unlock(&s->mu);
      rc = sp_fail(err, SP_ENOMEM, "could not start a reader thread for dataset \"%s\"", s->c->base.dataset->name);
    }
  }
  if (rc != SP_OK) {
    stream_free(s);
    return rc;
  }
  memset(out, 0, sizeof *out);
  out->get_schema = stream_schema;
  out->get_next = stream_next;
  out->get_last_error = stream_error;
  out->release = stream_release;
  out->private_data = s;
  return SP_OK;
}

/* COPY (SELECT <cols> FROM <relation> [WHERE …] [LIMIT n]) TO STDOUT (FORMAT binary). Owned by the caller. */
static char *copy_sql(const pg_conn *c, const size_t *idx, size_t n, const char *where, int64_t limit) {
  const char **exprs = malloc((n ? n : 1) * sizeof *exprs);
  if (exprs == NULL) return NULL;
  for (size_t i = 0; i < n; i++) exprs[i] = c->cols[idx[i]].expr;
  char *select = sp_sql_select(exprs, n, c->relation, where, limit);
  free(exprs);
  size_t cap = select ? strlen(select) + 64 : 0;
  char *sql = select ? malloc(cap) : NULL;
  if (sql) snprintf(sql, cap, "COPY (%s) TO STDOUT (FORMAT binary)", select);
  free(select);
  return sql;
}

/* The error of a statement that did not give `want` on pq, naming the table; *dead says whether the
 * connection is gone. */
static int read_fail(pg_conn *c, PGconn *pq, int *dead, sp_error *err) {
  char msg[600];
  one_line(msg, sizeof msg, PQerrorMessage(pq));
  *dead = PQstatus(pq) == CONNECTION_BAD;
  return sp_fail(err, *dead ? SP_ECONNECT : SP_EIO, "could not read postgres table \"%s\" for dataset \"%s\": %s",
                 c->display, c->base.dataset->name, msg);
}

/* Runs `sql` on a pooled connection until it gives `want`, retrying once on a fresh connection if the pooled
 * one had died. On success *out is the connection (the caller's) and *res, when not NULL, the result (the
 * caller's, PQclear); on a failure the connection is closed — also when the server did not answer
 * (client_timeout, *stop, which may be NULL). */
static int pool_exec(pg_conn *c, const char *sql, ExecStatusType want, volatile int *stop, PGconn **out, PGresult **res,
                     sp_error *err) {
  for (int attempt = 0;; attempt++) {
    PGconn *pq;
    PGresult *r;
    int pooled, dead;
    sp_error werr = {0};
    SP_TRY(pool_get(c, stop, &pq, &pooled, err));
    if (exec_wait(c, pq, sql, 0, NULL, stop, &r, &werr) != SP_OK) {
      PQfinish(pq);
      return sp_fail(err, werr.code, "could not read postgres table \"%s\" for dataset \"%s\": %s", c->display,
                     c->base.dataset->name, werr.msg);
    }
    if (PQresultStatus(r) == want) {
      if (res) *res = r;
      else PQclear(r);
      *out = pq;
      return SP_OK;
    }
    PQclear(r);
    int rc = read_fail(c, pq, &dead, err);
    PQfinish(pq);
    if (!(dead && pooled && attempt == 0)) return rc;
  }
}

/* Starts the COPY `sql` on a pooled connection (*out, the caller's). */
static int start_copy(pg_conn *c, const char *sql, volatile int *stop, PGconn **out, sp_error *err) {
  return pool_exec(c, sql, PGRES_COPY_OUT, stop, out, NULL, err);
}

/* Starts the COPY of columns idx (n of them) [WHERE where] [LIMIT limit] and its reader thread; *stop (borrowed
 * for the life of the stream, may be NULL) is sp_scan.stop. */
static int open_stream(pg_conn *c, const size_t *idx, size_t n, const char *where, int64_t limit, volatile int *stop,
                       struct ArrowArrayStream *out, sp_error *err) {
  pg_stream *s = NULL;
  SP_TRY(stream_new(c, idx, NULL, NULL, n, 1, &s, err));
  s->query_stop = stop;
  char *sql = copy_sql(c, idx, n, where, limit);
  if (sql == NULL) {
    stream_free(s);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  sp_log_debug("dataset \"%s\": %s", c->base.dataset->name, sql);
  int rc = start_copy(c, sql, stop, &s->w[0].pq, err);
  free(sql);
  if (rc != SP_OK) {
    stream_free(s);
    return rc;
  }
  return stream_start(s, out, err);
}

/* ---- Parallel loads --------------------------------------------------------------------------------------- */

/* A full load of a large table reads k ranges of its blocks at once, one COPY per connection and a worker
 * thread each: a single stream is bound by the one server backend that runs its COPY (one core). The ranges
 * need no key: PostgreSQL 14 and later read `ctid >= '(a,0)' AND ctid < '(b,0)'` with a TID range scan, which
 * visits only those blocks. All ranges read one snapshot, as pg_dump --jobs does: the first connection begins
 * a REPEATABLE READ transaction, locks the table (so that nothing rewrites it under the snapshot) and exports
 * its snapshot, which the others import before their COPY. The first range has no lower bound and the last
 * none above, so together they cover every block however the table changed since it was measured. */
#define PG_AUTO_PARTITIONS 4
#define PG_AUTO_MIN_BLOCKS 8192 /* automatic ranges are at least 64 MB (of 8 kB blocks) each */
#define PG_BEGIN "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"

/* How many ranges to read: pg_load_partitions, or automatically as many as there are cores to decode them
 * (at most PG_AUTO_PARTITIONS and connection_pool_size) when each gets PG_AUTO_MIN_BLOCKS. */
static size_t range_count(const pg_conn *c, int64_t blocks) {
  int64_t k = c->partitions;
  if (k == 0) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    k = PG_AUTO_PARTITIONS;
    if (cores > 0 && cores < k) k = cores;
    if ((int64_t)c->pool_size < k) k = (int64_t)c->pool_size;
    if (blocks / PG_AUTO_MIN_BLOCKS < k) k = blocks / PG_AUTO_MIN_BLOCKS;
  }
  if (blocks < k) k = blocks;
  return k < 1 ? 1 : (size_t)k;
}

/* The table's size in blocks, read on a pooled connection that is kept as *lead (the caller's). */
static int table_blocks(pg_conn *c, PGconn **lead, int64_t *blocks, sp_error *err) {
  char sql[160];
  PGresult *r;
  snprintf(sql, sizeof sql, "SELECT pg_catalog.pg_relation_size(%u::oid) / pg_catalog.current_setting('block_size')::int8",
           c->oid);
  SP_TRY(pool_exec(c, sql, PGRES_TUPLES_OK, NULL, lead, &r, err));
  *blocks = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
  PQclear(r);
  return SP_OK;
}

/* Runs `sql` on worker i's connection until it gives `want`, waiting as exec_wait does; *out (may be NULL) is
 * the result, the caller's. */
static int worker_exec(pg_stream *s, size_t i, const char *sql, ExecStatusType want, PGresult **out, sp_error *err) {
  PGresult *r;
  sp_error werr = {0};
  int dead;
  if (exec_wait(s->c, s->w[i].pq, sql, 0, NULL, NULL, &r, &werr) != SP_OK)
    return sp_fail(err, werr.code, "could not read postgres table \"%s\" for dataset \"%s\": %s", s->c->display,
                   s->c->base.dataset->name, werr.msg);
  if (PQresultStatus(r) != want) {
    PQclear(r);
    return read_fail(s->c, s->w[i].pq, &dead, err);
  }
  if (out) *out = r;
  else PQclear(r);
  return SP_OK;
}

/* Worker 0 (on the lead connection) begins the load's transaction and exports its snapshot; the others begin
 * theirs on pooled connections with that snapshot. */
static int share_snapshot(pg_stream *s, sp_error *err) {
  pg_conn *c = s->c;
  size_t m = strlen(c->relation) + 160;
  char *sql = malloc(m), *id = NULL;
  if (sql == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  snprintf(sql, m, PG_BEGIN "; LOCK TABLE %s IN ACCESS SHARE MODE; SELECT pg_catalog.pg_export_snapshot()", c->relation);
  PGresult *r = NULL;
  s->w[0].in_txn = 1;
  int dead, rc = worker_exec(s, 0, sql, PGRES_TUPLES_OK, &r, err);
  if (rc == SP_OK && PQntuples(r) != 1) rc = read_fail(c, s->w[0].pq, &dead, err);
  if (rc == SP_OK && (id = PQescapeLiteral(s->w[0].pq, PQgetvalue(r, 0, 0), strlen(PQgetvalue(r, 0, 0)))) == NULL)
    rc = sp_fail(err, SP_ENOMEM, "out of memory");
  PQclear(r);
  if (rc == SP_OK) snprintf(sql, m, PG_BEGIN "; SET TRANSACTION SNAPSHOT %s", id);
  for (size_t i = 1; rc == SP_OK && i < s->n_w; i++) {
    rc = pool_exec(c, sql, PGRES_COMMAND_OK, NULL, &s->w[i].pq, NULL, err);
    s->w[i].in_txn = 1;
  }
  PQfreemem(id);
  free(sql);
  return rc;
}

/* Starts worker i's COPY of range i of k over `blocks` blocks. */
static int start_range(pg_stream *s, size_t i, int64_t blocks, const size_t *idx, sp_error *err) {
  int64_t k = (int64_t)s->n_w, lo = blocks * (int64_t)i / k, hi = blocks * ((int64_t)i + 1) / k;
  char where[128];
  if (i == 0) snprintf(where, sizeof where, "ctid < '(%lld,0)'::tid", (long long)hi);
  else if (i + 1 == s->n_w) snprintf(where, sizeof where, "ctid >= '(%lld,0)'::tid", (long long)lo);
  else snprintf(where, sizeof where, "ctid >= '(%lld,0)'::tid AND ctid < '(%lld,0)'::tid", (long long)lo, (long long)hi);
  char *sql = copy_sql(s->c, idx, s->n, where, -1);
  if (sql == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  sp_log_debug("dataset \"%s\": %s", s->c->base.dataset->name, sql);
  int rc = worker_exec(s, i, sql, PGRES_COPY_OUT, NULL, err);
  free(sql);
  return rc;
}

/* The whole table (columns idx[0..n)), in ctid ranges read in parallel when it is large enough (or
 * pg_load_partitions says so), else in one stream. */
static int open_parallel(pg_conn *c, const size_t *idx, size_t n, struct ArrowArrayStream *out, sp_error *err) {
  PGconn *lead;
  int64_t blocks;
  SP_TRY(table_blocks(c, &lead, &blocks, err));
  size_t k = range_count(c, blocks);
  pg_stream *s = NULL;
  int rc = k > 1 ? stream_new(c, idx, NULL, NULL, n, k, &s, err) : SP_OK;
  if (k < 2 || rc != SP_OK) {
    pool_put(c, lead);
    return rc == SP_OK ? open_stream(c, idx, n, NULL, -1, NULL, out, err) : rc;
  }
  s->w[0].pq = lead;
  rc = share_snapshot(s, err);
  for (size_t i = 0; rc == SP_OK && i < k; i++) rc = start_range(s, i, blocks, idx, err);
  if (rc != SP_OK) {
    stream_free(s);
    return rc;
  }
  sp_log_debug("dataset \"%s\": loading postgres table \"%s\" in %zu ctid ranges of %lld blocks", c->base.dataset->name,
               c->display, k, (long long)blocks);
  return stream_start(s, out, err);
}

/* ---- Methods ---------------------------------------------------------------------------------------------- */

static int pg_get_schema(sp_connector *self, struct ArrowSchema *out, sp_error *err) {
  pg_conn *c = (pg_conn *)self;
  pgc_type *types = calloc(c->n_cols, sizeof *types);
  const char **names = calloc(c->n_cols, sizeof *names);
  int rc = types && names ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0; rc == SP_OK && i < c->n_cols; i++) {
    types[i] = c->cols[i].type;
    names[i] = c->cols[i].name;
  }
  if (rc == SP_OK) rc = pgc_schema(types, names, c->n_cols, out, err);
  free(types);
  free(names);
  return rc;
}

static int all_columns(pg_conn *c, size_t **idx, sp_error *err) {
  if ((*idx = calloc(c->n_cols, sizeof **idx)) == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0; i < c->n_cols; i++) (*idx)[i] = i;
  return SP_OK;
}

static int pg_get_all_data(sp_connector *self, struct ArrowArrayStream *out, sp_error *err) {
  pg_conn *c = (pg_conn *)self;
  size_t *idx;
  SP_TRY(all_columns(c, &idx, err));
  int rc = c->splittable && c->partitions != 1 ? open_parallel(c, idx, c->n_cols, out, err)
                                              : open_stream(c, idx, c->n_cols, NULL, -1, NULL, out, err);
  free(idx);
  return rc;
}

/* ---- refresh_sql ------------------------------------------------------------------------------------------ */

/* json_serialize_sql(query), parsed by DuckDB. Owned by the caller. */
static int serialize_sql(pg_conn *c, const char *query, char **out, sp_error *err) {
  char what[400];
  snprintf(what, sizeof what, "the refresh_sql of dataset \"%s\"", c->base.dataset->name);
  return sp_duckdb_serialize_sql(query, what, out, err);
}

typedef struct quote_ctx {
  pg_conn *c;
  PGconn *pq;
} quote_ctx;

/* Columns read as ::text (unsupported_type_action: string) compare differently at the server: refused. */
/* String types a COLLATE clause applies to (json, bytea and the rest have none). */
static int collatable(const char *pg_type) {
  static const char *const prefixes[] = {"text", "character varying", "character", "name", "citext", NULL};
  for (int i = 0; prefixes[i]; i++)
    if (strncmp(pg_type, prefixes[i], strlen(prefixes[i])) == 0) return 1;
  return 0;
}

static const pg_column *comparable_column(void *ctx, const char *name) {
  pg_conn *c = ((quote_ctx *)ctx)->c;
  const pg_column *hit = NULL;
  for (size_t i = 0; i < c->n_cols && hit == NULL; i++)
    if (strcmp(c->cols[i].name, name) == 0) hit = &c->cols[i];
  for (size_t i = 0; i < c->n_cols && hit == NULL; i++)
    if (strcasecmp(c->cols[i].name, name) == 0) hit = &c->cols[i];
  return hit == NULL || strstr(hit->expr, "::text") != NULL ? NULL : hit;
}

static char *quote_column(void *ctx, const char *name) {
  const pg_column *col = comparable_column(ctx, name);
  return col ? strdup(col->expr) : NULL;
}

/* For <, <=, >, >= and BETWEEN. The engine orders strings byte by byte; the server would use the column's
 * collation (en_US sorts 'Banana' after 'apple'), and a row it filtered out could not come back. "C" orders
 * bytes, as the engine does. (Equality needs no COLLATE: collations are deterministic, and indexes still apply.) */
static char *quote_ordered_column(void *ctx, const char *name) {
  const pg_column *col = comparable_column(ctx, name);
  if (col == NULL || !collatable(col->pg_type)) return col ? strdup(col->expr) : NULL;
  size_t n = strlen(col->expr) + sizeof " COLLATE \"C\"" + 2;
  char *out = malloc(n);
  if (out) snprintf(out, n, "(%s COLLATE \"C\")", col->expr);
  return out;
}

static char *quote_literal(void *ctx, const char *s) {
  char *q = PQescapeLiteral(((quote_ctx *)ctx)->pq, s, strlen(s));
  char *d = q ? strdup(q) : NULL;
  PQfreemem(q);
  return d;
}

/* DATE '…' / TIMESTAMP '…' as '…'::date / '…'::timestamp (PostgreSQL parses the same ISO text). */
static char *quote_typed_literal(void *ctx, const char *type, const char *s) {
  char *lit = quote_literal(ctx, s);
  size_t n = lit ? strlen(lit) + sizeof "::timestamp" : 0;
  char *out = lit ? malloc(n) : NULL;
  if (out) snprintf(out, n, "%s::%s", lit, strcmp(type, "DATE") == 0 ? "date" : "timestamp");
  free(lit);
  return out;
}

/* `SELECT * FROM <dataset> WHERE …` parsed by DuckDB and rebuilt as a PostgreSQL condition (pg_filter.c). */
static int where_of(pg_conn *c, const char *query, int some, volatile int *stop, char **where, sp_error *err) {
  char *json = NULL;
  SP_TRY(serialize_sql(c, query, &json, err));
  quote_ctx q = {.c = c};
  int pooled, rc = pool_get(c, stop, &q.pq, &pooled, err);
  if (rc == SP_OK) {
    pgf_ctx cx = {.dataset = c->base.dataset->name, .column = quote_column, .literal = quote_literal, .ctx = &q,
                  .typed_literal = quote_typed_literal, .ordered_column = quote_ordered_column};
    rc = some ? pgf_where_some(json, &cx, where, err) : pgf_where(json, &cx, where, err);
    pool_put(c, q.pq);
  }
  free(json);
  return rc;
}

int sp_pg_where(sp_connector *c, const char *query, char **where, sp_error *err) {
  return where_of((pg_conn *)c, query, 0, NULL, where, err);
}

/* refresh_sql: it must run at the server, or the refresh fails. */
static int refresh_query(pg_conn *c, const char *query, volatile int *stop, struct ArrowArrayStream *out, sp_error *err) {
  char *where = NULL;
  int rc = where_of(c, query, 0, stop, &where, err);
  size_t *idx = NULL;
  if (rc == SP_OK) rc = all_columns(c, &idx, err);
  if (rc == SP_OK) rc = open_stream(c, idx, c->n_cols, where, -1, stop, out, err);
  free(idx);
  free(where);
  return rc;
}

static int pg_scan(sp_connector *self, const sp_scan *scan, struct ArrowArrayStream *out, sp_error *err) {
  pg_conn *c = (pg_conn *)self;
  if (scan->query) return refresh_query(c, scan->query, scan->stop, out, err);
  size_t *idx, n = scan->columns && scan->n_columns ? scan->n_columns : c->n_cols;
  if (scan->columns == NULL || scan->n_columns == 0) {
    SP_TRY(all_columns(c, &idx, err));
  } else {
    if ((idx = calloc(n, sizeof *idx)) == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
      size_t j = 0;
      while (j < c->n_cols && strcmp(c->cols[j].name, scan->columns[i]) != 0) j++;
      if (j == c->n_cols) {
        free(idx);
        return sp_fail(err, SP_EINVAL, "dataset \"%s\" has no column \"%s\"", self->dataset->name, scan->columns[i]);
      }
      idx[i] = j;
    }
  }
  /* The conditions of a federated query that translate go to the server; the others are left to the engine,
   * which applies the whole WHERE clause anyway. */
  char *where = NULL;
  sp_error ferr = {0};
  if (scan->filter_query && where_of(c, scan->filter_query, 1, scan->stop, &where, &ferr) != SP_OK) {
    sp_log_debug("dataset \"%s\": filter not pushed to the server: %s", self->dataset->name, ferr.msg);
    free(where);
    where = NULL;
  }
  int rc = open_stream(c, idx, n, where && *where ? where : NULL, scan->limit, scan->stop, out, err);
  free(where);
  free(idx);
  return rc;
}

/* ---- Write-back (pg_write.c) ------------------------------------------------------------------------------ */

static bool pg_supports_writes(sp_connector *self) {
  (void)self;
  return true;
}

/* Appended rows, in the dataset's column order, go in with one binary COPY FROM STDIN. */
static int pg_add_data(sp_connector *self, sp_data_update *u, sp_error *err) {
  pg_conn *c = (pg_conn *)self;
  const char **names = calloc(c->n_cols + 1, sizeof *names);
  char **quoted = calloc(c->n_cols + 1, sizeof *quoted);
  pgc_type *types = calloc(c->n_cols + 1, sizeof *types);
  int rc = names && quoted && types ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK && u->type != SP_UPDATE_APPEND)
    rc = sp_fail(err, SP_ENOTSUP, "postgres dataset \"%s\" takes appended rows only", self->dataset->name);
  PGconn *pq = NULL;
  int pooled;
  if (rc == SP_OK) rc = pool_get(c, NULL, &pq, &pooled, err);
  for (size_t i = 0; rc == SP_OK && i < c->n_cols; i++) {
    names[i] = c->cols[i].name;
    types[i] = c->cols[i].type;
    if ((quoted[i] = quote_ident_dup(pq, c->cols[i].name)) == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  }
  pgw_target t = {.relation = c->relation, .display = c->display, .dataset = self->dataset->name, .names = names,
                  .quoted = (const char *const *)quoted, .types = types, .n = c->n_cols};
  if (rc == SP_OK) rc = pgw_copy_in(pq, &t, &u->stream, NULL, err);
  sp_stream_release(&u->stream);
  pool_put(c, pq);
  for (size_t i = 0; quoted && i < c->n_cols; i++) free(quoted[i]);
  free(quoted);
  free(names);
  free(types);
  return rc;
}

/* ---- Whole-query pushdown ----------------------------------------------------------------------------------- */

static int pg_remote(sp_connector *self, sp_remote_source *out, sp_error *err) {
  pg_conn *c = (pg_conn *)self;
  (void)err;
  *out = (sp_remote_source){.dialect = SP_DIALECT_POSTGRES, .server = c->server_id, .table = c->relation};
  return SP_OK;
}

/* The result columns of `sql` as the COPY decoder reads them (described by the server, not run). */
static int describe_query(pg_conn *c, PGconn *pq, const char *sql, volatile int *stop, pgc_type **types, size_t *n,
                          sp_error *err) {
  PGresult *r = NULL;
  if (PQsendPrepare(pq, "", sql, 0, NULL)) SP_TRY(results_wait(c, pq, stop, &r, err));
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  r = NULL;
  if (ok && PQsendDescribePrepared(pq, "")) SP_TRY(results_wait(c, pq, stop, &r, err));
  if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
    char msg[600];
    one_line(msg, sizeof msg, PQerrorMessage(pq));
    PQclear(r);
    return sp_fail(err, SP_EINVAL, "postgres refused the query for dataset \"%s\": %s", c->base.dataset->name, msg);
  }
  *n = (size_t)PQnfields(r);
  *types = calloc(*n ? *n : 1, sizeof **types);
  int rc = *types ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0; rc == SP_OK && i < *n; i++) {
    int m = map_type(c, pq, PQftype(r, (int)i), PQfmod(r, (int)i), 0, &(*types)[i], err);
    if (m == 0) rc = sp_fail(err, SP_ENOTSUP, "result column %zu has a type spicec cannot read", i + 1);
    else if (m < 0) rc = -m;
  }
  PQclear(r);
  return rc;
}

static int pg_query(sp_connector *self, const char *sql, const struct ArrowSchema *want, volatile int *stop,
                    struct ArrowArrayStream *out, sp_error *err) {
  pg_conn *c = (pg_conn *)self;
  (void)want; /* the server types its results; the engine casts them */
  PGconn *pq;
  int pooled;
  pgc_type *types = NULL;
  size_t n = 0;
  SP_TRY(pool_get(c, stop, &pq, &pooled, err));
  int rc = describe_query(c, pq, sql, stop, &types, &n, err);
  pool_put(c, pq);
  /* Result columns are matched by position: c1, c2, … */
  const char **names = rc == SP_OK ? calloc(n ? n : 1, sizeof *names) : NULL;
  char *buf = rc == SP_OK ? malloc(n * 24 + 1) : NULL, *copy = rc == SP_OK ? malloc(strlen(sql) + 48) : NULL;
  if (rc == SP_OK && (names == NULL || buf == NULL || copy == NULL)) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0, at = 0; rc == SP_OK && i < n; i++) {
    names[i] = buf + at;
    at += (size_t)sprintf(buf + at, "c%zu", i + 1) + 1;
  }
  pg_stream *s = NULL;
  if (rc == SP_OK) rc = stream_new(c, NULL, types, names, n, 1, &s, err);
  if (rc == SP_OK) {
    s->query_stop = stop;
    s->name_buf = buf;
    buf = NULL;
    sprintf(copy, "COPY (%s) TO STDOUT (FORMAT binary)", sql);
    sp_log_debug("dataset \"%s\": %s", c->base.dataset->name, copy);
    rc = start_copy(c, copy, stop, &s->w[0].pq, err);
    if (rc == SP_OK) rc = stream_start(s, out, err); /* takes s */
    else stream_free(s);
  }
  free(copy);
  free(buf);
  free(names);
  free(types);
  return rc;
}

const sp_connector_module sp_connector_postgres = {
    .abi = SP_CONNECTOR_ABI,
    .name = "postgres",
    .prefix = "pg",
    .params = pg_params,
    .instance_size = sizeof(pg_conn),
    .caps = SP_CONNECTOR_CAP_SCAN_PROJECTION | SP_CONNECTOR_CAP_SCAN_LIMIT,
    .open = pg_open,
    .close = pg_close,
    .get_schema = pg_get_schema,
    .get_all_data = pg_get_all_data,
    .scan = pg_scan,
    .supports_streaming = sp_pg_cdc_supported,
    .stream_updates = sp_pg_cdc_stream,
    .supports_writes = pg_supports_writes,
    .add_data = pg_add_data,
    .remote = pg_remote,
    .query = pg_query,
};
