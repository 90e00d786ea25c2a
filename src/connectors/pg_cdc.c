/* SPDX-License-Identifier: Apache-2.0
 *
 * PostgreSQL change data capture by logical replication (see pg_cdc.h and docs/connectors/postgres.md).
 *
 * Start: the publication spice_<dataset> (FOR TABLE the dataset's table) is created if absent. With a stored
 * position whose slot still exists, streaming resumes there. Otherwise (first start, memory accelerator, a
 * slot that went away) the slot is (re)created, then the table is loaded with the connector's own binary COPY
 * and pushed as an OVERWRITE stored with the slot's consistent point, and streaming starts at that point.
 * The load's snapshot is later than the slot's start, so the first changes replayed may already be in it:
 * applying by key makes that harmless (a replayed insert or update rewrites the row with the same or a later
 * version, a replayed delete removes a row that is gone). So that readers never see a copy that mixes the
 * load with part of the replay, the first batch after any start covers everything up to the server's WAL
 * position at that time (pg_current_wal_lsn()).
 *
 * Streaming: START_REPLICATION … LOGICAL (proto_version '1'), CopyBoth messages read without blocking;
 * XLogData ('w') payloads go to the pgoutput decoder, keepalives ('k') are answered. Whenever no more data is
 * waiting (or a batch is large), the committed transactions are pushed as one CHANGES update whose position
 * is the end LSN of the last one; only after the sink (the accelerator) committed it is that LSN reported to
 * the server as flushed (standby status update 'r'), so a crash replays it at most, and applying it twice is
 * harmless for the same reason as above. While idle, the flushed position follows the server's, so the slot
 * does not hold WAL that other tables write.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <libpq-fe.h>

#include "connectors/pg_cdc.h"
#include "connectors/pg_conn.h"
#include "connectors/pgoutput.h"
#include "spice/arrow.h"
#include "spice/log.h"

#define CDC_MAX_KW 16
#define CDC_BATCH_ROWS 100000    /* keys per batch before it is pushed even with more data waiting */
#define CDC_STATUS_MS 10000      /* standby status updates at least this often */
#define CDC_POLL_MS 200          /* how often a quiet stream looks at sink->stop */
#define CDC_RELOAD (-1)          /* internal: the table must be loaded again with a new slot */

typedef struct cdc {
  sp_connector *conn;
  sp_update_sink *sink;
  const char *ds;            /* dataset name */
  char slot[64];             /* slot and publication name */
  char *rel, *display;       /* "schema"."table" quoted, and schema.table */
  char *nsp, *relname;
  const char *kw[CDC_MAX_KW + 3], *val[CDC_MAX_KW + 3]; /* + replication, options, the terminator */
  int expand;
  PGconn *pq;                /* plain SQL */
  PGconn *repl;              /* replication protocol */
  pgo_decoder *dec;
  char **key;                /* acceleration.primary_key, split */
  size_t n_key;
  uint64_t confirmed;        /* flushed: committed by the accelerator (or nothing to apply before it) */
  uint64_t received;         /* highest WAL position seen */
  uint64_t server_end;       /* the server's sent position from its last keepalive */
  uint64_t target;           /* the first batch after a start reaches at least this position */
  int caught_up;
  int64_t last_status_ms;
} cdc;

static int64_t now_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---- Connections -------------------------------------------------------------------------------------------- */

/* The connector's connection parameters (as postgres.c reads them); a replication connection adds
 * replication=database and options in the two slots left after them. */
static void build_conninfo(cdc *c) {
  size_t n = sp_pg_conninfo(&c->conn->params, c->kw, c->val, CDC_MAX_KW, &c->expand);
  for (size_t i = n; i < CDC_MAX_KW + 3; i++) c->kw[i] = c->val[i] = NULL;
}

/* libpq's message on one line. */
static void one_line(char *dst, size_t n, const char *msg) {
  size_t o = 0;
  for (const char *s = msg ? msg : ""; *s && o + 1 < n; s++) dst[o++] = *s == '\n' || *s == '\t' ? ' ' : *s;
  while (o > 0 && dst[o - 1] == ' ') o--;
  dst[o] = '\0';
}

/* Formats "could not <what> for dataset "d": <server message>" with a code from the SQLSTATE. */
static int pq_fail(cdc *c, PGconn *pq, PGresult *r, const char *what, sp_error *err) {
  char msg[700];
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  one_line(msg, sizeof msg, r && PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r) : PQerrorMessage(pq));
  int code = SP_EIO;
  if (pq && PQstatus(pq) != CONNECTION_OK) code = SP_ECONNECT;
  else if (state && strcmp(state, "42501") == 0) code = SP_EDENIED;
  else if (state && strcmp(state, "55006") == 0) code = SP_EBUSY; /* slot in use by another process */
  sp_fail(err, code, "could not %s for dataset \"%s\": %s", what, c->ds, msg);
  if (code == SP_EDENIED && err)
    snprintf(err->msg + strlen(err->msg), sizeof err->msg - strlen(err->msg),
             " (refresh_mode: changes needs a role with REPLICATION that owns the table)");
  return code;
}

static int connect_pg(cdc *c, int replication, PGconn **out, sp_error *err) {
  size_t n = 0;
  while (c->kw[n]) n++;
  if (replication) {
    /* pgoutput prints values with the walsender's settings: fix the forms the runtime casts from. */
    c->kw[n] = "replication";
    c->val[n] = "database";
    c->kw[n + 1] = "options";
    c->val[n + 1] = "-c datestyle=ISO -c intervalstyle=postgres -c bytea_output=hex -c extra_float_digits=3 "
                    "-c timezone=UTC";
  }
  PGconn *pq = PQconnectdbParams(c->kw, c->val, c->expand);
  c->kw[n] = c->val[n] = c->kw[n + 1] = c->val[n + 1] = NULL;
  if (pq == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  if (PQstatus(pq) != CONNECTION_OK) {
    char msg[600];
    one_line(msg, sizeof msg, PQerrorMessage(pq));
    PQfinish(pq);
    int code = strstr(msg, "password") ? SP_EUNAUTH : strstr(msg, "replication") ? SP_EDENIED : SP_ECONNECT;
    return sp_fail(err, code, "could not connect to postgres%s for dataset \"%s\": %s%s",
                   replication ? " for replication" : "", c->ds, msg,
                   code == SP_EDENIED ? " (refresh_mode: changes needs a role with the REPLICATION attribute)" : "");
  }
  *out = pq;
  return SP_OK;
}

/* A command or query on the plain connection; *out (may be NULL) receives a tuples result. */
static int run(cdc *c, const char *sql, int n, const char *const *args, PGresult **out, const char *what, sp_error *err) {
  PGresult *r = PQexecParams(c->pq, sql, n, NULL, args, NULL, NULL, 0);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    int rc = pq_fail(c, c->pq, r, what, err);
    PQclear(r);
    return rc;
  }
  if (out) *out = r;
  else PQclear(r);
  return SP_OK;
}

/* ---- Names and set-up --------------------------------------------------------------------------------------- */

/* spice_<dataset> in lower case, letters, digits and underscores only, at most 63 bytes. */
static void slot_name(const char *ds, char *buf, size_t n) {
  size_t o = (size_t)snprintf(buf, n, "spice_");
  for (const char *p = ds; *p && o + 1 < n && o < 63; p++) {
    char ch = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
    buf[o++] = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ? ch : '_';
  }
  buf[o] = '\0';
}

/* acceleration.primary_key ("id", "(a, b)", `"A"`) as column names. */
static int split_key(cdc *c, const char *pk, sp_error *err) {
  if (pk == NULL) return SP_OK;
  const char *p = pk;
  while (*p) {
    while (*p == ' ' || *p == '(' || *p == ',' || *p == ')') p++;
    if (*p == '\0') break;
    const char *start = p;
    if (*p == '"') {
      start = ++p;
      while (*p && *p != '"') p++;
    } else {
      while (*p && *p != ',' && *p != ')' && *p != ' ') p++;
    }
    char **k = realloc(c->key, (c->n_key + 1) * sizeof *k);
    if (k == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
    c->key = k;
    if ((c->key[c->n_key] = strndup(start, (size_t)(p - start))) == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
    c->n_key++;
    if (*p == '"') p++;
  }
  return SP_OK;
}

static char *quote_ident(PGconn *pq, const char *s) {
  char *q = PQescapeIdentifier(pq, s, strlen(s));
  char *d = q ? strdup(q) : NULL;
  PQfreemem(q);
  return d;
}

/* The table of the dataset, resolved like the connector does (to_regclass). */
static int resolve_table(cdc *c, sp_error *err) {
  const char *args[1] = {c->conn->dataset->path ? c->conn->dataset->path : ""};
  PGresult *r;
  SP_TRY(run(c, "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                "ON n.oid = c.relnamespace WHERE c.oid = pg_catalog.to_regclass($1)", 1, args, &r, "resolve the table", err));
  if (PQntuples(r) == 0) {
    PQclear(r);
    return sp_fail(err, SP_ENOTFOUND, "postgres table \"%s\" for dataset \"%s\" does not exist", args[0], c->ds);
  }
  c->nsp = strdup(PQgetvalue(r, 0, 0));
  c->relname = strdup(PQgetvalue(r, 0, 1));
  char *s = quote_ident(c->pq, PQgetvalue(r, 0, 0)), *t = quote_ident(c->pq, PQgetvalue(r, 0, 1));
  PQclear(r);
  size_t m = (s ? strlen(s) : 0) + (t ? strlen(t) : 0) + 2;
  if (s && t && (c->rel = malloc(m)) != NULL) snprintf(c->rel, m, "%s.%s", s, t);
  m = (c->nsp ? strlen(c->nsp) : 0) + (c->relname ? strlen(c->relname) : 0) + 2;
  if (c->nsp && c->relname && (c->display = malloc(m)) != NULL) snprintf(c->display, m, "%s.%s", c->nsp, c->relname);
  free(s);
  free(t);
  return c->rel && c->display ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
}

/* The publication spice_<dataset> for the table: created, or the table added, when missing. */
static int ensure_publication(cdc *c, sp_error *err) {
  const char *args[3] = {c->slot, c->nsp, c->relname};
  PGresult *r;
  char sql[1400];
  SP_TRY(run(c, "SELECT (SELECT count(*) FROM pg_catalog.pg_publication WHERE pubname = $1), "
                "(SELECT count(*) FROM pg_catalog.pg_publication_tables WHERE pubname = $1 AND schemaname = $2 "
                "AND tablename = $3)", 3, args, &r, "read the publications", err));
  int has_pub = atoi(PQgetvalue(r, 0, 0)) > 0, has_table = atoi(PQgetvalue(r, 0, 1)) > 0;
  PQclear(r);
  if (has_table) return SP_OK;
  if (has_pub) snprintf(sql, sizeof sql, "ALTER PUBLICATION \"%s\" ADD TABLE %s", c->slot, c->rel);
  else snprintf(sql, sizeof sql, "CREATE PUBLICATION \"%s\" FOR TABLE %s", c->slot, c->rel);
  SP_TRY(run(c, sql, 0, NULL, NULL, "create the publication", err));
  sp_log_info("dataset \"%s\": publication \"%s\" publishes postgres table \"%s\"", c->ds, c->slot, c->display);
  return SP_OK;
}

/* 1 if the slot exists (as a pgoutput slot of this database), 0 if not. */
static int slot_exists(cdc *c, int *exists, sp_error *err) {
  const char *args[1] = {c->slot};
  PGresult *r;
  SP_TRY(run(c, "SELECT plugin, database = current_database() FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
             1, args, &r, "read the replication slots", err));
  int rc = SP_OK;
  *exists = PQntuples(r) > 0;
  if (*exists && (strcmp(PQgetvalue(r, 0, 0), "pgoutput") != 0 || strcmp(PQgetvalue(r, 0, 1), "t") != 0))
    rc = sp_fail(err, SP_EINVAL, "replication slot \"%s\" for dataset \"%s\" exists but is not a pgoutput slot of this "
                 "database (drop it or rename the dataset)", c->slot, c->ds);
  PQclear(r);
  return rc;
}

/* The walsender of a connection that just closed (ours, or a killed spiced's) keeps the slot active for a
 * moment: wait up to 10 s for it to let go. */
static int wait_inactive(cdc *c, sp_error *err) {
  const char *args[1] = {c->slot};
  for (int i = 0; i < 100 && !*c->sink->stop; i++) {
    PGresult *r;
    SP_TRY(run(c, "SELECT active FROM pg_catalog.pg_replication_slots WHERE slot_name = $1", 1, args, &r,
               "read the replication slots", err));
    int active = PQntuples(r) > 0 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!active) return SP_OK;
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
  }
  return sp_fail(err, SP_EBUSY, "replication slot \"%s\" of dataset \"%s\" is in use by another connection", c->slot, c->ds);
}

static int drop_slot(cdc *c, sp_error *err) {
  const char *args[1] = {c->slot};
  SP_TRY(wait_inactive(c, err));
  return run(c, "SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots "
                "WHERE slot_name = $1", 1, args, NULL, "drop the replication slot", err);
}

/* Creates the slot; *lsn receives its consistent point. */
static int create_slot(cdc *c, uint64_t *lsn, sp_error *err) {
  char sql[200];
  snprintf(sql, sizeof sql, "CREATE_REPLICATION_SLOT \"%s\" LOGICAL pgoutput NOEXPORT_SNAPSHOT", c->slot);
  PGresult *r = PQexec(c->repl, sql);
  int rc = SP_OK;
  if (PQresultStatus(r) != PGRES_TUPLES_OK) rc = pq_fail(c, c->repl, r, "create the replication slot", err);
  else if (PQnfields(r) < 2 || pgo_lsn_parse(PQgetvalue(r, 0, 1), lsn) != 0)
    rc = sp_fail(err, SP_EIO, "unexpected reply to CREATE_REPLICATION_SLOT for dataset \"%s\"", c->ds);
  PQclear(r);
  if (rc == SP_OK) sp_log_info("dataset \"%s\": created replication slot \"%s\"", c->ds, c->slot);
  return rc;
}

/* The server's current WAL position: the first batch after a start reaches it. */
static int current_lsn(cdc *c, uint64_t *out, sp_error *err) {
  PGresult *r;
  SP_TRY(run(c, "SELECT pg_catalog.pg_current_wal_lsn()::text", 0, NULL, &r, "read the WAL position", err));
  int ok = pgo_lsn_parse(PQgetvalue(r, 0, 0), out) == 0;
  PQclear(r);
  return ok ? SP_OK : sp_fail(err, SP_EIO, "unexpected WAL position for dataset \"%s\"", c->ds);
}

/* ---- Loading and pushing ------------------------------------------------------------------------------------ */

/* The whole table as an OVERWRITE stored with position `lsn`. */
static int push_load(cdc *c, uint64_t lsn, sp_error *err) {
  char pos[32];
  pgo_lsn_format(lsn, pos, sizeof pos);
  sp_data_update u = {.type = SP_UPDATE_OVERWRITE, .position = pos};
  SP_TRY(c->conn->module->get_all_data(c->conn, &u.stream, err));
  SP_TRY(c->sink->push(c->sink, &u, err));
  c->confirmed = lsn;
  return SP_OK;
}

/* Standby status update: written = received, flushed = applied = confirmed. */
static int send_status(cdc *c, int reply, sp_error *err) {
  uint8_t m[34];
  int64_t pg_us = (now_ms() - 946684800000LL) * 1000; /* microseconds since 2000-01-01 */
  uint64_t v[4] = {c->received > c->confirmed ? c->received : c->confirmed, c->confirmed, c->confirmed, (uint64_t)pg_us};
  m[0] = 'r';
  for (int i = 0; i < 4; i++)
    for (int b = 0; b < 8; b++) m[1 + 8 * i + b] = (uint8_t)(v[i] >> (56 - 8 * b));
  m[33] = (uint8_t)reply;
  if (PQputCopyData(c->repl, (const char *)m, sizeof m) != 1 || PQflush(c->repl) != 0)
    return pq_fail(c, c->repl, NULL, "send the replication status", err);
  c->last_status_ms = now_ms();
  return SP_OK;
}

/* Pushes the committed changes as one CHANGES update, then confirms its position. */
static int push_changes(cdc *c, sp_error *err) {
  struct ArrowSchema schema;
  struct ArrowArray batch;
  char pos[32];
  uint64_t lsn = pgo_pending_lsn(c->dec);
  size_t n_key;
  SP_TRY(pgo_take(c->dec, &schema, &batch, err));
  const char *const *key = pgo_key(c->dec, &n_key);
  pgo_lsn_format(lsn, pos, sizeof pos);
  sp_data_update u = {.type = SP_UPDATE_CHANGES, .primary_key = key, .n_primary_key = n_key, .position = pos};
  int rc = sp_stream_from_batches(&schema, &batch, 1, &u.stream, err);
  sp_schema_release(&schema);
  SP_TRY(rc);
  SP_TRY(c->sink->push(c->sink, &u, err));
  c->confirmed = lsn;
  return send_status(c, 0, err);
}

/* Caught up with nothing to apply: an update without a stream tells the runtime the stream is live. */
static int push_live(cdc *c, sp_error *err) {
  sp_data_update u = {.type = SP_UPDATE_CHANGES};
  return c->sink->push(c->sink, &u, err);
}

/* ---- Streaming ---------------------------------------------------------------------------------------------- */

static uint64_t get64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

static int on_message(cdc *c, const uint8_t *b, size_t n, sp_error *err) {
  if (n >= 25 && b[0] == 'w') {
    uint64_t start = get64(b + 1);
    if (start > c->received) c->received = start;
    sp_error e = {0};
    int rc = pgo_feed(c->dec, b + 25, n - 25, &e);
    if (rc == SP_ENOTSUP || (rc == SP_OK && pgo_truncated(c->dec))) {
      sp_log_warn("dataset \"%s\": %s; loading postgres table \"%s\" again", c->ds,
                  rc == SP_OK ? "the table was truncated" : e.msg, c->display);
      return CDC_RELOAD;
    }
    return rc == SP_OK ? SP_OK : sp_fail(err, rc, "dataset \"%s\": %s", c->ds, e.msg);
  }
  if (n >= 18 && b[0] == 'k') {
    c->server_end = get64(b + 1);
    return b[17] ? send_status(c, 0, err) : SP_OK;
  }
  return sp_fail(err, SP_EIO, "unexpected replication message for dataset \"%s\"", c->ds);
}

/* Reads every message waiting; *more says a large batch stopped the reading early. */
static int drain(cdc *c, int *more, sp_error *err) {
  *more = 0;
  if (PQconsumeInput(c->repl) == 0) return pq_fail(c, c->repl, NULL, "read the replication stream", err);
  for (;;) {
    char *buf = NULL;
    int n = PQgetCopyData(c->repl, &buf, 1);
    if (n == 0) return SP_OK;
    if (n < 0) {
      PGresult *r = PQgetResult(c->repl);
      int rc = pq_fail(c, c->repl, r, "stream changes", err);
      if (PQresultStatus(r) == PGRES_COMMAND_OK) rc = sp_fail(err, SP_ECONNECT, "the server ended the replication stream of dataset \"%s\"", c->ds);
      PQclear(r);
      return rc;
    }
    int rc = on_message(c, (const uint8_t *)buf, (size_t)n, err);
    PQfreemem(buf);
    if (rc != SP_OK) return rc;
    if (!pgo_in_transaction(c->dec) && pgo_pending_rows(c->dec) >= CDC_BATCH_ROWS) {
      *more = 1;
      return SP_OK;
    }
  }
}

/* After reading: push what is committed, or ask the server where it is while catching up. */
static int settle(cdc *c, int more, sp_error *err) {
  if (pgo_in_transaction(c->dec)) return SP_OK;
  uint64_t pending = pgo_pending_commits(c->dec) ? pgo_pending_lsn(c->dec) : 0;
  if (!c->caught_up && (c->server_end >= c->target || pending >= c->target)) {
    c->caught_up = 1;
    if (pgo_pending_commits(c->dec) == 0) SP_TRY(push_live(c, err));
  }
  if (pgo_pending_commits(c->dec) && (c->caught_up || more)) return push_changes(c, err);
  if (pgo_pending_commits(c->dec) == 0 && c->caught_up && c->server_end > c->confirmed) c->confirmed = c->server_end;
  /* The keepalive it asks for says how far the server is (not more often than every 50 ms: no ping-pong). */
  if (!c->caught_up && !more && now_ms() - c->last_status_ms >= 50) return send_status(c, 1, err);
  return SP_OK;
}

static int start_replication(cdc *c, uint64_t start, sp_error *err) {
  char sql[400], lsn[32];
  pgo_lsn_format(start, lsn, sizeof lsn);
  snprintf(sql, sizeof sql, "START_REPLICATION SLOT \"%s\" LOGICAL %s (proto_version '1', publication_names '\"%s\"')",
           c->slot, lsn, c->slot);
  PGresult *r = PQexec(c->repl, sql);
  int rc = SP_OK;
  if (PQresultStatus(r) != PGRES_COPY_BOTH) {
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    /* A slot dropped meanwhile (42704) or invalidated (55000: WAL removed): load again with a new one. */
    if (state && (strcmp(state, "42704") == 0 || strcmp(state, "55000") == 0)) {
      char msg[600];
      one_line(msg, sizeof msg, PQresultErrorMessage(r));
      sp_log_warn("dataset \"%s\": replication slot \"%s\" cannot be used (%s); loading the table again", c->ds, c->slot, msg);
      rc = CDC_RELOAD;
    } else {
      rc = pq_fail(c, c->repl, r, "start replication", err);
    }
  }
  PQclear(r);
  return rc;
}

static int stream(cdc *c, uint64_t start, sp_error *err) {
  SP_TRY(start_replication(c, start, err));
  char lsn[32];
  pgo_lsn_format(start, lsn, sizeof lsn);
  sp_log_info("dataset \"%s\": streaming changes of postgres table \"%s\" from %s", c->ds, c->display, lsn);
  c->received = c->confirmed = start;
  int rc = SP_OK;
  while (rc == SP_OK && !*c->sink->stop) {
    struct pollfd pfd = {.fd = PQsocket(c->repl), .events = POLLIN};
    int more = 0;
    if (poll(&pfd, 1, CDC_POLL_MS) < 0) continue;
    rc = drain(c, &more, err);
    if (rc == SP_OK) rc = settle(c, more, err);
    if (rc == SP_OK && now_ms() - c->last_status_ms >= CDC_STATUS_MS) rc = send_status(c, 0, err);
  }
  if (rc == SP_OK) {
    send_status(c, 0, NULL);
    return sp_fail(err, SP_ECANCELED, "dataset \"%s\": change stream stopped", c->ds);
  }
  return rc;
}

/* ---- Entry points ------------------------------------------------------------------------------------------- */

/* Where to stream from: the stored position when its slot is still there, else a new slot and a load. */
static int prepare(cdc *c, int resume, uint64_t *start, sp_error *err) {
  int exists;
  SP_TRY(slot_exists(c, &exists, err));
  if (resume && exists) {
    SP_TRY(wait_inactive(c, err)); /* e.g. the walsender of a killed spiced */
    return current_lsn(c, &c->target, err);
  }
  if (resume)
    sp_log_warn("dataset \"%s\": replication slot \"%s\" is gone; loading postgres table \"%s\" again with a new slot",
                c->ds, c->slot, c->display);
  if (exists) SP_TRY(drop_slot(c, err));
  SP_TRY(create_slot(c, start, err));
  SP_TRY(push_load(c, *start, err));
  return current_lsn(c, &c->target, err);
}

/* No acceleration.primary_key: the table's primary key (with REPLICA IDENTITY FULL every column is flagged as
 * identity, so the decoder's own default would key by the whole row). None: the decoder's replica identity. */
static int table_key(cdc *c, sp_error *err) {
  const char *args[2] = {c->nsp, c->relname};
  PGresult *r;
  SP_TRY(run(c, "SELECT a.attname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class t ON t.oid = i.indrelid "
                "JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace JOIN pg_catalog.pg_attribute a "
                "ON a.attrelid = t.oid AND a.attnum = ANY (i.indkey) WHERE i.indisprimary AND n.nspname = $1 "
                "AND t.relname = $2 ORDER BY array_position(i.indkey::int2[], a.attnum)",
             2, args, &r, "read the primary key", err));
  int rc = SP_OK;
  for (int i = 0; rc == SP_OK && i < PQntuples(r); i++) {
    char **k = realloc(c->key, (c->n_key + 1) * sizeof *k);
    if (k == NULL || (k[c->n_key] = strdup(PQgetvalue(r, i, 0))) == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
    if (k) c->key = k;
    if (rc == SP_OK) c->n_key++;
  }
  PQclear(r);
  return rc;
}

static int open_all(cdc *c, sp_error *err) {
  build_conninfo(c);
  SP_TRY(split_key(c, c->conn->dataset->acceleration.primary_key, err));
  SP_TRY(connect_pg(c, 0, &c->pq, err));
  SP_TRY(resolve_table(c, err));
  if (c->n_key == 0) SP_TRY(table_key(c, err));
  SP_TRY(ensure_publication(c, err));
  return SP_OK;
}

/* One replication session: a fresh replication connection and decoder, from `start` or a new load. */
static int session(cdc *c, int resume, uint64_t stored, sp_error *err) {
  uint64_t start = stored;
  c->caught_up = 0;
  c->server_end = 0;
  pgo_decoder_free(c->dec);
  c->dec = NULL;
  if (c->repl) PQfinish(c->repl);
  c->repl = NULL;
  SP_TRY(connect_pg(c, 1, &c->repl, err));
  SP_TRY(pgo_decoder_new((const char *const *)c->key, c->n_key, &c->dec, err));
  SP_TRY(prepare(c, resume, &start, err));
  return stream(c, start, err);
}

static void close_all(cdc *c) {
  pgo_decoder_free(c->dec);
  if (c->repl) PQfinish(c->repl);
  if (c->pq) PQfinish(c->pq);
  for (size_t i = 0; i < c->n_key; i++) free(c->key[i]);
  free(c->key);
  free(c->rel);
  free(c->display);
  free(c->nsp);
  free(c->relname);
}

bool sp_pg_cdc_supported(sp_connector *self) {
  (void)self;
  return true;
}

int sp_pg_cdc_stream(sp_connector *self, sp_update_sink *sink, sp_error *err) {
  cdc c = {.conn = self, .sink = sink, .ds = self->dataset->name};
  slot_name(c.ds, c.slot, sizeof c.slot);
  uint64_t stored = 0;
  int resume = sink->resume_position && *sink->resume_position && pgo_lsn_parse(sink->resume_position, &stored) == 0;
  int rc = open_all(&c, err);
  while (rc == SP_OK || rc == CDC_RELOAD) {
    rc = session(&c, resume, stored, err);
    if (rc == CDC_RELOAD) {
      /* A confirmed position belongs to the old slot: the next session loads again. */
      if (c.repl) PQfinish(c.repl);
      c.repl = NULL;
      int drc = drop_slot(&c, err);
      rc = drc == SP_OK ? CDC_RELOAD : drc;
      resume = 0;
    }
  }
  close_all(&c);
  return rc;
}
