/* SPDX-License-Identifier: Apache-2.0
 *
 * Flight SQL (FlightSql.proto) over the Flight server: the Any-wrapped commands of GetFlightInfo/GetSchema and
 * DoGet, and prepared statements.
 *
 * CommandStatementQuery: the ticket is Any{TicketStatementQuery{statement_handle = the SQL}} (no server state).
 * Catalog commands: the ticket is the command itself. Prepared statements live in a per-server list (at most
 * MAX_PREPARED; the oldest is dropped past that) under an opaque handle "\x01spicec-ps:<n>"; DoPut binds the
 * parameters of the first row of the batch it receives (columns "$1", "$2", … or bare numbers bind
 * positionally, any other name binds $name), and GetFlightInfo/DoGet of CommandPreparedStatementQuery run the
 * statement with them. A handle without that prefix is taken as SQL text, as Spice does.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/flight_batch.h"
#include "server/flight_int.h"
#include "spice/arrow.h"
#include "spice/ipc.h"
#include "spice/log.h"

#define HANDLE_PREFIX "\x01spicec-ps:"
#define MAX_PREPARED 1024
#define MAX_PARAMS 64

typedef struct fl_stmt {
  char *sql;
  sp_value *params; /* names and strings are owned (malloc'd) */
  size_t n_params;
} fl_stmt;

struct fl_prepared {
  fl_prepared *next;
  uint64_t id;
  fl_stmt st;
};

static bool name_is(sp_pb_bytes name, const char *s) {
  return strlen(s) == name.len && memcmp(s, name.data, name.len) == 0;
}

static void unimplemented(fl_call *c, sp_pb_bytes name) {
  char msg[300];
  snprintf(msg, sizeof msg, "%.*s is not implemented", (int)(name.len > 200 ? 200 : name.len), (const char *)name.data);
  sp__flight_status(c, GRPC_STATUS_UNIMPLEMENTED, msg);
}

/* ---- Statements ----------------------------------------------------------------------------------------- */

static void params_free(sp_value *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free((char *)p[i].name);
    if (p[i].type == SP_VALUE_STRING) free((char *)p[i].v.s);
  }
  free(p);
}

static void stmt_free(fl_stmt *st) {
  free(st->sql);
  params_free(st->params, st->n_params);
  memset(st, 0, sizeof *st);
}

static int params_copy(const sp_value *src, size_t n, sp_value **out, sp_error *err) {
  *out = NULL;
  if (n == 0) return SP_OK;
  sp_value *p = calloc(n, sizeof *p);
  bool oom = p == NULL;
  for (size_t i = 0; !oom && i < n; i++) {
    p[i] = src[i];
    p[i].name = src[i].name ? strdup(src[i].name) : NULL;
    if (src[i].type == SP_VALUE_STRING) p[i].v.s = strdup(src[i].v.s);
    oom = (src[i].name && !p[i].name) || (src[i].type == SP_VALUE_STRING && !p[i].v.s);
    if (oom) p[i].type = SP_VALUE_NULL, n = i + 1;
  }
  if (!oom) {
    *out = p;
    return SP_OK;
  }
  if (p) params_free(p, n);
  return sp_fail(err, SP_ENOMEM, "flight: out of memory copying parameters");
}

static int stmt_copy(const fl_stmt *src, fl_stmt *dst, sp_error *err) {
  memset(dst, 0, sizeof *dst);
  dst->sql = strdup(src->sql);
  if (dst->sql == NULL) return sp_fail(err, SP_ENOMEM, "flight: out of memory");
  int rc = params_copy(src->params, src->n_params, &dst->params, err);
  if (rc != SP_OK) stmt_free(dst);
  else dst->n_params = src->n_params;
  return rc;
}

/* The id of a handle we made, or 0 when the handle is not ours (then it is SQL text). */
static uint64_t handle_id(sp_pb_bytes h) {
  size_t pl = sizeof HANDLE_PREFIX - 1;
  if (h.len <= pl || h.len > pl + 20 || memcmp(h.data, HANDLE_PREFIX, pl) != 0) return 0;
  uint64_t id = 0;
  for (size_t i = pl; i < h.len; i++) {
    if (h.data[i] < '0' || h.data[i] > '9') return 0;
    id = id * 10 + (uint64_t)(h.data[i] - '0');
  }
  return id;
}

static size_t handle_make(uint64_t id, char *out, size_t n) {
  return (size_t)snprintf(out, n, HANDLE_PREFIX "%" PRIu64, id);
}

/* Registers st (taken, even on failure) and returns its id; drops the oldest statement past MAX_PREPARED. */
static uint64_t registry_add(sp_flight_server *s, fl_stmt *st) {
  fl_prepared *p = calloc(1, sizeof *p), *drop = NULL;
  if (p == NULL) {
    stmt_free(st);
    return 0;
  }
  p->st = *st;
  memset(st, 0, sizeof *st);
  pthread_mutex_lock(&s->ps_mu);
  p->id = ++s->next_handle;
  p->next = s->prepared;
  s->prepared = p;
  if (++s->n_prepared > MAX_PREPARED) {
    fl_prepared **pp = &s->prepared;
    while ((*pp)->next) pp = &(*pp)->next;
    drop = *pp;
    *pp = NULL;
    s->n_prepared--;
  }
  uint64_t id = p->id;
  pthread_mutex_unlock(&s->ps_mu);
  if (drop) {
    sp_log_debug("flight: more than %d prepared statements; dropping the oldest", MAX_PREPARED);
    stmt_free(&drop->st);
    free(drop);
  }
  return id;
}

/* Finds id (call with ps_mu held). */
static fl_prepared **registry_find(sp_flight_server *s, uint64_t id) {
  fl_prepared **pp = &s->prepared;
  while (*pp && (*pp)->id != id) pp = &(*pp)->next;
  return pp;
}

/* A copy of the statement a handle stands for (a registered one, or SQL text). */
static int resolve(sp_flight_server *s, sp_pb_bytes handle, fl_stmt *out, sp_error *err) {
  uint64_t id = handle_id(handle);
  if (id == 0) {
    memset(out, 0, sizeof *out);
    return sp__flight_sql_text(handle, &out->sql, err);
  }
  pthread_mutex_lock(&s->ps_mu);
  fl_prepared *p = *registry_find(s, id);
  int rc = p ? stmt_copy(&p->st, out, err)
             : sp_fail(err, SP_EINVAL, "prepared statement %" PRIu64 " does not exist (closed, or never created)", id);
  pthread_mutex_unlock(&s->ps_mu);
  return rc;
}

void sp__flight_sql_free_all(sp_flight_server *s) {
  for (fl_prepared *p = s->prepared, *next; p; p = next) {
    next = p->next;
    stmt_free(&p->st);
    free(p);
  }
  s->prepared = NULL;
  s->n_prepared = 0;
}

/* ---- GetFlightInfo, GetSchema, DoGet ------------------------------------------------------------------- */

static void describe_stmt(fl_call *c, const fl_stmt *st, const sp_buf *ticket) {
  sp_error err = {0};
  struct ArrowSchema schema = {0};
  sp_buf ipc = {0};
  sp_query_request req = {.sql = st->sql, .params = st->params, .n_params = st->n_params};
  int rc = sp__flight_query_schema(c->srv, &req, &schema, &err);
  if (rc == SP_OK) rc = sp__flight_schema_ipc(&schema, &ipc, &err);
  sp_schema_release(&schema);
  if (rc == SP_OK) sp__flight_describe_reply(c, &ipc, (const uint8_t *)ticket->data, ticket->len);
  else sp__flight_error(c, &err);
  sp_buf_free(&ipc);
}

/* Decodes field 1 (the query or the handle) of a command; SP_EINVAL when absent. */
static int field1(sp_pb_bytes value, const char *what, sp_pb_bytes *out, sp_error *err) {
  sp_pb_msg m;
  SP_TRY(sp_flight_decode_fields(value.data, value.len, &m, err));
  if (!(m.present & 2u)) return sp_fail(err, SP_EINVAL, "%s: field 1 is missing", what);
  *out = m.bytes[1];
  return SP_OK;
}

static void describe_query(fl_call *c, sp_pb_bytes value) {
  sp_error err = {0};
  sp_pb_bytes q;
  fl_stmt st = {0};
  sp_buf inner = {0}, ticket = {0};
  int rc = field1(value, "CommandStatementQuery", &q, &err);
  if (rc == SP_OK) rc = sp__flight_sql_text(q, &st.sql, &err);
  if (rc == SP_OK) rc = sp_flight_put_bytes(&inner, 1, q.data, q.len, &err);
  if (rc == SP_OK) rc = sp_flight_put_sql_any(&ticket, "TicketStatementQuery", inner.data, inner.len, &err);
  if (rc == SP_OK) describe_stmt(c, &st, &ticket);
  else sp__flight_error(c, &err);
  stmt_free(&st);
  sp_buf_free(&inner);
  sp_buf_free(&ticket);
}

static void describe_prepared(fl_call *c, sp_pb_bytes name, sp_pb_bytes value) {
  sp_error err = {0};
  sp_pb_bytes h;
  fl_stmt st = {0};
  sp_buf ticket = {0};
  int rc = field1(value, "CommandPreparedStatementQuery", &h, &err);
  if (rc == SP_OK) rc = resolve(c->srv, h, &st, &err);
  if (rc == SP_OK) rc = sp_flight_put_sql_any(&ticket, "CommandPreparedStatementQuery", value.data, value.len, &err);
  (void)name;
  if (rc == SP_OK) describe_stmt(c, &st, &ticket);
  else sp__flight_error(c, &err);
  stmt_free(&st);
  sp_buf_free(&ticket);
}

static void describe_meta(fl_call *c, sp_pb_bytes name, sp_pb_bytes value) {
  sp_error err = {0};
  struct ArrowSchema schema = {0};
  sp_buf ipc = {0}, ticket = {0};
  char type[64];
  snprintf(type, sizeof type, "%.*s", (int)name.len, (const char *)name.data);
  int rc = name_is(name, "CommandGetSqlInfo") ? sp__flight_sqlinfo_schema(&ipc, &err)
                                              : sp__flight_meta_schema(name, value, &schema, &err);
  if (rc == SP_OK && schema.release) rc = sp__flight_schema_ipc(&schema, &ipc, &err);
  if (rc == SP_OK) rc = sp_flight_put_sql_any(&ticket, type, value.data, value.len, &err);
  sp_schema_release(&schema);
  if (rc == SP_OK) sp__flight_describe_reply(c, &ipc, (const uint8_t *)ticket.data, ticket.len);
  else sp__flight_error(c, &err);
  sp_buf_free(&ipc);
  sp_buf_free(&ticket);
}

void sp__flight_sql_describe(fl_call *c, sp_pb_bytes name, sp_pb_bytes value) {
  if (name_is(name, "CommandStatementQuery")) describe_query(c, value);
  else if (name_is(name, "CommandPreparedStatementQuery")) describe_prepared(c, name, value);
  else if (sp__flight_meta_known(name) || name_is(name, "CommandGetSqlInfo")) describe_meta(c, name, value);
  else unimplemented(c, name);
}

static void get_stmt(fl_call *c, sp_pb_bytes handle, bool is_handle) {
  sp_error err = {0};
  fl_stmt st = {0};
  int rc = is_handle ? resolve(c->srv, handle, &st, &err) : sp__flight_sql_text(handle, &st.sql, &err);
  sp_query_request req = {.sql = st.sql, .params = st.params, .n_params = st.n_params};
  if (rc == SP_OK) sp__flight_serve_query(c, &req);
  else sp__flight_error(c, &err);
  stmt_free(&st);
}

void sp__flight_sql_get(fl_call *c, sp_pb_bytes name, sp_pb_bytes value) {
  sp_error err = {0};
  sp_pb_bytes f;
  bool query = name_is(name, "TicketStatementQuery") || name_is(name, "CommandStatementQuery");
  if (query || name_is(name, "CommandPreparedStatementQuery")) {
    if (field1(value, "ticket", &f, &err) != SP_OK) sp__flight_error(c, &err);
    else get_stmt(c, f, !query);
    return;
  }
  if (name_is(name, "CommandGetSqlInfo")) {
    sp__flight_sqlinfo_get(c, value);
    return;
  }
  if (!sp__flight_meta_known(name)) {
    unimplemented(c, name);
    return;
  }
  struct ArrowArrayStream st = {0};
  if (sp__flight_meta_run(c->srv, name, value, &st, &err) != SP_OK) sp__flight_error(c, &err);
  else sp__flight_serve_stream(c, &st);
}

/* ---- CreatePreparedStatement, ClosePreparedStatement ----------------------------------------------------- */

/* The action body's message: Any{<expected>} as the spec says, or the bare message. */
static sp_pb_bytes action_message(sp_pb_bytes body, const char *expected) {
  sp_pb_bytes name, value;
  if (sp_flight_sql_unwrap(body.data, body.len, &name, &value) && name_is(name, expected)) return value;
  return body;
}

/* Placeholder names of sql in order of first use: "$1" for $1 and for the n-th '?', "$name" for $name.
 * Quoted text, comments and dollar-quoted strings are skipped. */
static size_t scan_params(const char *p, char names[][64], size_t max) {
  size_t n = 0, anon = 0;
  while (*p && n < max) {
    char name[64] = "";
    if (*p == '\'' || *p == '"') {
      char q = *p++;
      while (*p && !(*p == q && p[1] != q)) p += (*p == q) ? 2 : 1;
      if (*p) p++;
      continue;
    }
    if (p[0] == '-' && p[1] == '-') {
      p += strcspn(p, "\n");
      continue;
    }
    if (p[0] == '/' && p[1] == '*') {
      const char *e = strstr(p + 2, "*/");
      p = e ? e + 2 : p + strlen(p);
      continue;
    }
    if (*p == '?') snprintf(name, sizeof name, "$%zu", ++anon), p++;
    else if (*p == '$') {
      size_t len = strspn(p + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
      if (p[1 + len] == '$') { /* $tag$ … $tag$ */
        char tag[80];
        snprintf(tag, sizeof tag, "%.*s", (int)(len + 2 > 79 ? 79 : len + 2), p);
        const char *e = strstr(p + len + 2, tag);
        p = e ? e + strlen(tag) : p + strlen(p);
        continue;
      }
      if (len > 0 && len < 60) snprintf(name, sizeof name, "$%.*s", (int)len, p + 1);
      p += 1 + len;
    } else {
      p++;
    }
    bool seen = name[0] == '\0';
    for (size_t i = 0; !seen && i < n; i++) seen = strcmp(names[i], name) == 0;
    if (!seen) memcpy(names[n++], name, sizeof name);
  }
  return n;
}

/* The IPC schema of the parameters: one nullable field per placeholder, type Null (bound values decide). */
static int param_schema(const char *sql, sp_buf *out, sp_error *err) {
  char names[MAX_PARAMS][64];
  size_t n = scan_params(sql, names, MAX_PARAMS);
  if (n == 0) return SP_OK;
  fl_colspec spec[MAX_PARAMS];
  for (size_t i = 0; i < n; i++) spec[i] = (fl_colspec){names[i], "n", true};
  struct ArrowSchema schema = {0};
  SP_TRY(fl_schema_make(spec, n, &schema, err));
  int rc = sp__flight_schema_ipc(&schema, out, err);
  sp_schema_release(&schema);
  return rc;
}

/* ActionCreatePreparedStatementResult{handle, dataset_schema, parameter_schema} for st (not yet registered). */
static int create_result(fl_call *c, fl_stmt *st, sp_buf *res, sp_error *err) {
  struct ArrowSchema schema = {0};
  sp_buf dataset = {0}, params = {0};
  sp_query_request req = {.sql = st->sql};
  int rc = sp_runtime_query_schema(c->srv->rt, &req, &schema, err);
  if (rc == SP_OK) rc = sp__flight_schema_ipc(&schema, &dataset, err);
  else if (rc == SP_ENOTSUP) rc = SP_OK; /* result types depend on the parameters: known once bound */
  sp_schema_release(&schema);
  if (rc == SP_OK) rc = param_schema(st->sql, &params, err);
  if (rc == SP_OK) {
    char handle[64];
    uint64_t id = registry_add(c->srv, st);
    size_t hl = handle_make(id, handle, sizeof handle);
    rc = id ? sp_flight_put_bytes(res, 1, handle, hl, err) : sp_fail(err, SP_ENOMEM, "flight: out of memory");
  }
  if (rc == SP_OK && dataset.len) rc = sp_flight_put_bytes(res, 2, dataset.data, dataset.len, err);
  if (rc == SP_OK && params.len) rc = sp_flight_put_bytes(res, 3, params.data, params.len, err);
  sp_buf_free(&dataset);
  sp_buf_free(&params);
  return rc;
}

/* Sends one Result{body} and ends the call. */
static void send_result(fl_call *c, const sp_buf *body) {
  sp_error err = {0};
  sp_buf msg = {0};
  if (body->len == 0 || sp_flight_put_bytes(&msg, 1, body->data, body->len, &err) == SP_OK)
    sp__flight_send_buf(c, msg.data, msg.len, GRPC_STATUS_OK);
  else sp__flight_error(c, &err);
  sp_buf_free(&msg);
}

void sp__flight_sql_create_prepared(fl_call *c, sp_pb_bytes body) {
  sp_error err = {0};
  sp_pb_bytes q;
  fl_stmt st = {0};
  sp_buf res = {0}, any = {0};
  sp_pb_bytes msg = action_message(body, "ActionCreatePreparedStatementRequest");
  int rc = field1(msg, "ActionCreatePreparedStatementRequest", &q, &err);
  if (rc == SP_OK) rc = sp__flight_sql_text(q, &st.sql, &err);
  if (rc == SP_OK) rc = create_result(c, &st, &res, &err);
  if (rc == SP_OK) rc = sp_flight_put_sql_any(&any, "ActionCreatePreparedStatementResult", res.data, res.len, &err);
  if (rc == SP_OK) send_result(c, &any);
  else sp__flight_error(c, &err);
  stmt_free(&st);
  sp_buf_free(&res);
  sp_buf_free(&any);
}

void sp__flight_sql_close_prepared(fl_call *c, sp_pb_bytes body) {
  sp_error err = {0};
  sp_pb_bytes h;
  sp_pb_bytes msg = action_message(body, "ActionClosePreparedStatementRequest");
  if (field1(msg, "ActionClosePreparedStatementRequest", &h, &err) != SP_OK) {
    sp__flight_error(c, &err);
    return;
  }
  fl_prepared *p = NULL;
  uint64_t id = handle_id(h);
  sp_flight_server *s = c->srv;
  pthread_mutex_lock(&s->ps_mu);
  fl_prepared **pp = id ? registry_find(s, id) : NULL;
  if (pp && *pp) {
    p = *pp;
    *pp = p->next;
    s->n_prepared--;
  }
  pthread_mutex_unlock(&s->ps_mu);
  if (p) {
    stmt_free(&p->st);
    free(p);
  }
  sp_buf empty = {0};
  send_result(c, &empty);
}

/* ---- DoPut: binding parameters ------------------------------------------------------------------------- */

/* Positional when the column is "$<digits>", "<digits>" or unnamed; else named (a leading '$' dropped). */
static const char *param_name(const char *n) {
  if (n == NULL || *n == '\0') return NULL;
  const char *d = n[0] == '$' ? n + 1 : n;
  return *d && strspn(d, "0123456789") == strlen(d) ? NULL : d;
}

static int param_string(sp_value *v, const char *s, size_t len, sp_error *err) {
  char *copy = malloc(len + 1);
  if (copy == NULL) return sp_fail(err, SP_ENOMEM, "flight: out of memory binding a parameter");
  if (len) memcpy(copy, s, len);
  copy[len] = '\0';
  v->type = SP_VALUE_STRING;
  v->v.s = copy;
  return SP_OK;
}

/* Days since 1970-01-01 → "YYYY-MM-DD" (proleptic Gregorian; Howard Hinnant's civil_from_days). */
static void civil(int64_t z, char *out, size_t n) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097, doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365, y = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
  snprintf(out, n, "%04" PRId64 "-%02" PRId64 "-%02" PRId64, y + (m <= 2), m, d);
}

static int param_temporal(sp_value *v, const sp_arrow_typeinfo *ti, const void *buf, int64_t j, sp_error *err) {
  char text[64];
  if (ti->type == SP_ARROW_DATE32) {
    civil(((const int32_t *)buf)[j], text, sizeof text);
    return param_string(v, text, strlen(text), err);
  }
  static const int64_t per_sec[] = {1, 1000, 1000000, 1000000000};
  int64_t t = ((const int64_t *)buf)[j], ps = per_sec[ti->unit];
  int64_t secs = t / ps - (t % ps < 0), frac = t - secs * ps;
  int64_t days = secs / 86400 - (secs % 86400 < 0), sod = secs - days * 86400;
  civil(days, text, sizeof text);
  size_t k = strlen(text);
  snprintf(text + k, sizeof text - k, " %02d:%02d:%02d.%06" PRId64, (int)(sod / 3600), (int)(sod / 60 % 60),
           (int)(sod % 60), frac * 1000000 / ps);
  return param_string(v, text, strlen(text), err);
}

/* Row `row` of column a (type f) as a parameter value. */
static int param_value(const struct ArrowSchema *f, const struct ArrowArray *a, int64_t row, sp_value *v,
                       sp_error *err) {
  sp_arrow_typeinfo ti;
  sp_arrow_parse_format(f->format, &ti);
  v->type = SP_VALUE_NULL;
  if (ti.type == SP_ARROW_NA || sp_array_is_null(a, row)) return SP_OK;
  int64_t j = a->offset + row;
  const void *b1 = a->n_buffers > 1 ? a->buffers[1] : NULL;
  if (f->dictionary && a->dictionary) { /* the value is the dictionary's entry at this index */
    sp_value idx;
    struct ArrowSchema plain = *f;
    plain.dictionary = NULL;
    SP_TRY(param_value(&plain, a, row, &idx, err));
    if (idx.type != SP_VALUE_INT || idx.v.i < 0 || idx.v.i >= a->dictionary->length)
      return sp_fail(err, SP_EINVAL, "parameter \"%s\": bad dictionary index", f->name ? f->name : "");
    return param_value(f->dictionary, a->dictionary, idx.v.i, v, err);
  }
  switch (ti.type) {
  case SP_ARROW_BOOL: v->type = SP_VALUE_BOOL, v->v.b = (((const uint8_t *)b1)[j >> 3] >> (j & 7)) & 1; return SP_OK;
  case SP_ARROW_INT8: v->type = SP_VALUE_INT, v->v.i = ((const int8_t *)b1)[j]; return SP_OK;
  case SP_ARROW_INT16: v->type = SP_VALUE_INT, v->v.i = ((const int16_t *)b1)[j]; return SP_OK;
  case SP_ARROW_INT32: v->type = SP_VALUE_INT, v->v.i = ((const int32_t *)b1)[j]; return SP_OK;
  case SP_ARROW_INT64: v->type = SP_VALUE_INT, v->v.i = ((const int64_t *)b1)[j]; return SP_OK;
  case SP_ARROW_UINT8: v->type = SP_VALUE_INT, v->v.i = ((const uint8_t *)b1)[j]; return SP_OK;
  case SP_ARROW_UINT16: v->type = SP_VALUE_INT, v->v.i = ((const uint16_t *)b1)[j]; return SP_OK;
  case SP_ARROW_UINT32: v->type = SP_VALUE_INT, v->v.i = ((const uint32_t *)b1)[j]; return SP_OK;
  case SP_ARROW_UINT64: {
    uint64_t u = ((const uint64_t *)b1)[j];
    if (u <= INT64_MAX) v->type = SP_VALUE_INT, v->v.i = (int64_t)u;
    else v->type = SP_VALUE_DOUBLE, v->v.d = (double)u;
    return SP_OK;
  }
  case SP_ARROW_FLOAT: v->type = SP_VALUE_DOUBLE, v->v.d = ((const float *)b1)[j]; return SP_OK;
  case SP_ARROW_DOUBLE: v->type = SP_VALUE_DOUBLE, v->v.d = ((const double *)b1)[j]; return SP_OK;
  case SP_ARROW_UTF8: {
    const int32_t *o = b1;
    size_t len = (size_t)(o[j + 1] - o[j]);
    return param_string(v, len ? (const char *)a->buffers[2] + o[j] : "", len, err);
  }
  case SP_ARROW_LARGE_UTF8: {
    const int64_t *o = b1;
    size_t len = (size_t)(o[j + 1] - o[j]);
    return param_string(v, len ? (const char *)a->buffers[2] + o[j] : "", len, err);
  }
  case SP_ARROW_DATE32:
  case SP_ARROW_TIMESTAMP: return param_temporal(v, &ti, b1, j, err);
  default:
    return sp_fail(err, SP_EINVAL, "parameter \"%s\": type %s cannot be bound", f->name ? f->name : "", f->format);
  }
}

/* The parameters of row 0 of batch (schema: its struct schema) into st, replacing earlier ones. */
static int bind_row(fl_stmt *st, const struct ArrowSchema *schema, const struct ArrowArray *batch, sp_error *err) {
  if (batch->length > 1)
    return sp_fail(err, SP_EINVAL, "prepared statement: %" PRId64 " parameter rows were sent; a query binds one",
                   batch->length);
  size_t n = batch->length == 1 ? (size_t)batch->n_children : 0;
  sp_value *p = n ? calloc(n, sizeof *p) : NULL;
  if (n && p == NULL) return sp_fail(err, SP_ENOMEM, "flight: out of memory binding parameters");
  int rc = SP_OK;
  for (size_t i = 0; i < n && rc == SP_OK; i++) {
    const char *name = param_name(schema->children[i]->name);
    p[i].name = name ? strdup(name) : NULL;
    if (name && !p[i].name) rc = sp_fail(err, SP_ENOMEM, "flight: out of memory binding parameters");
    else rc = param_value(schema->children[i], batch->children[i], 0, &p[i], err);
  }
  if (rc != SP_OK) {
    params_free(p, n);
    return rc;
  }
  params_free(st->params, st->n_params);
  st->params = p;
  st->n_params = n;
  return SP_OK;
}

/* Feeds one FlightData's IPC message to the reader; a record batch is bound into st. */
static int bind_message(sp_ipc_reader *r, const sp_flight_data *d, fl_stmt *st, sp_error *err) {
  if (d->header.len == 0) return SP_OK; /* metadata-only message */
  sp_ipc_msg_type type;
  struct ArrowArray batch = {0};
  SP_TRY(sp_ipc_reader_message(r, d->header.data, d->header.len, d->body.data, d->body.len, &type, &batch, err));
  if (type != SP_IPC_RECORD_BATCH) return SP_OK;
  struct ArrowSchema schema = {0};
  int rc = sp_ipc_reader_schema(r, &schema, err);
  if (rc == SP_OK) rc = bind_row(st, &schema, &batch, err);
  sp_schema_release(&schema);
  batch.release(&batch);
  return rc;
}

/* Reads the rest of the DoPut stream into st. */
static int bind_stream(fl_call *c, const sp_flight_data *first, fl_stmt *st, sp_error *err) {
  sp_ipc_reader *r = NULL;
  SP_TRY(sp_ipc_reader_create(&r, err));
  int rc = bind_message(r, first, st, err);
  for (;;) {
    grpc_byte_buffer *in = NULL;
    if (!sp__flight_recv(c, &in)) {
      rc = sp_fail(err, SP_ECANCELED, "DoPut: the client went away");
      break;
    }
    if (in == NULL) break;
    grpc_slice sl = sp__flight_request(in);
    grpc_byte_buffer_destroy(in);
    sp_flight_data d;
    if (rc == SP_OK) rc = sp_flight_decode_data(GRPC_SLICE_START_PTR(sl), GRPC_SLICE_LENGTH(sl), &d, err);
    if (rc == SP_OK) rc = bind_message(r, &d, st, err);
    grpc_slice_unref(sl);
  }
  sp_ipc_reader_destroy(r);
  return rc;
}

/* Stores the bound statement under its handle (a new one when the handle was SQL text); *id is it. */
static int bind_store(sp_flight_server *s, uint64_t id, fl_stmt *st, uint64_t *out_id, sp_error *err) {
  if (id == 0) {
    *out_id = registry_add(s, st);
    return *out_id ? SP_OK : sp_fail(err, SP_ENOMEM, "flight: out of memory");
  }
  pthread_mutex_lock(&s->ps_mu);
  fl_prepared *p = *registry_find(s, id);
  if (p) {
    params_free(p->st.params, p->st.n_params);
    p->st.params = st->params;
    p->st.n_params = st->n_params;
    st->params = NULL;
    st->n_params = 0;
  }
  pthread_mutex_unlock(&s->ps_mu);
  *out_id = id;
  return p ? SP_OK : sp_fail(err, SP_EINVAL, "prepared statement %" PRIu64 " does not exist (closed, or never created)", id);
}

void sp__flight_sql_bind(fl_call *c, sp_pb_bytes handle, const sp_flight_data *first) {
  sp_error err = {0};
  fl_stmt st = {0};
  uint64_t id = 0;
  char h[64];
  sp_buf result = {0}, put = {0};
  int rc = resolve(c->srv, handle, &st, &err);
  if (rc == SP_OK) rc = bind_stream(c, first, &st, &err);
  if (rc == SP_ECANCELED) {
    stmt_free(&st);
    return;
  }
  if (rc == SP_OK) rc = bind_store(c->srv, handle_id(handle), &st, &id, &err);
  /* PutResult{app_metadata = DoPutPreparedStatementResult{prepared_statement_handle}} */
  if (rc == SP_OK) rc = sp_flight_put_bytes(&result, 1, h, handle_make(id, h, sizeof h), &err);
  if (rc == SP_OK) rc = sp_flight_put_bytes(&put, 1, result.data, result.len, &err);
  if (rc == SP_OK) sp__flight_send_buf(c, put.data, put.len, GRPC_STATUS_OK);
  else sp__flight_error(c, &err);
  stmt_free(&st);
  sp_buf_free(&result);
  sp_buf_free(&put);
}
