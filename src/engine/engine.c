/* SPDX-License-Identifier: Apache-2.0
 *
 * The serving DuckDB database: creation, the connection pool, the catalog of dataset tables, and the
 * registries (snapshot slots, stream tokens, sources) that the scan table functions read.
 *
 * Design notes: one in-memory database is the catalog. Every dataset is a view by its name over a table
 * expression (an accelerator's table or a scan function), so a refresh never changes what a name means,
 * only what it reads. The sandbox (sp_engine_lock) is database-wide, so internal work needs no file access
 * beyond data_dir: connectors read their sources outside this database.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "engine/classify.h"
#include "engine/engine_int.h"
#include "spice/log.h"
#include "spice/sqltext.h"

int sp_engine_fail_error_data(sp_error *err, sp_status code, duckdb_error_data ed, const char *what) {
  const char *m = ed ? duckdb_error_data_message(ed) : NULL;
  int rc = sp_fail(err, code, "%s%s%s", what ? what : "", what && m ? ": " : "", m ? m : "");
  if (ed) duckdb_destroy_error_data(&ed);
  return rc;
}

void sp_engine_quote_ident(char *buf, size_t n, const char *name, int split_dots) {
  size_t o = 0;
  if (n == 0) return;
  buf[o++] = '"';
  for (const char *p = name; *p && o + 4 < n; p++) {
    if (split_dots && *p == '.') {
      buf[o++] = '"';
      buf[o++] = '.';
      buf[o++] = '"';
    } else {
      if (*p == '"') buf[o++] = '"';
      buf[o++] = *p;
    }
  }
  buf[o++] = '"';
  buf[o < n ? o : n - 1] = '\0';
}

static int run_sql(duckdb_connection c, const char *sql, sp_status code, sp_error *err) {
  duckdb_result r;
  if (duckdb_query(c, sql, &r) == DuckDBError) {
    int rc = sp_fail(err, code, "%s", duckdb_result_error(&r));
    duckdb_destroy_result(&r);
    return rc;
  }
  duckdb_destroy_result(&r);
  return SP_OK;
}

int sp_engine_create(const sp_engine_config *cfg, sp_engine **out, sp_error *err) {
  sp_engine *e = calloc(1, sizeof *e);
  if (e == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  pthread_mutex_init(&e->lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* deadlines are monotonic (timeout.c) */
  pthread_cond_init(&e->watchdog_cv, &ca);
  pthread_condattr_destroy(&ca);
  e->threads = cfg && cfg->threads > 0 ? cfg->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (e->threads < 1) e->threads = 1;
  if (cfg && cfg->data_dir) snprintf(e->data_dir, sizeof e->data_dir, "%s", cfg->data_dir);
  e->next_token = 1;
  e->class_cache = calloc(SP_CLASS_CACHE_SLOTS, sizeof *e->class_cache);

  duckdb_config dc;
  char buf[64], *oerr = NULL;
  duckdb_create_config(&dc);
  snprintf(buf, sizeof buf, "%d", e->threads);
  duckdb_set_config(dc, "threads", buf);
  /* A C table function cannot give DuckDB a batch index, so keeping scan order would force a
   * single-threaded result collector (duckdb-arrow-notes §3). ORDER BY is still honoured. */
  duckdb_set_config(dc, "preserve_insertion_order", "false");
  duckdb_set_config(dc, "autoinstall_known_extensions", "false");
  duckdb_set_config(dc, "autoload_known_extensions", "false");
  duckdb_set_config(dc, "allow_community_extensions", "false");
  if (cfg && cfg->memory_limit_bytes > 0) {
    snprintf(buf, sizeof buf, "%lldB", (long long)cfg->memory_limit_bytes);
    duckdb_set_config(dc, "memory_limit", buf);
  }
  if (duckdb_open_ext(NULL, &e->db, dc, &oerr) == DuckDBError) {
    sp_fail(err, SP_EINTERNAL, "could not open the query engine: %s", oerr ? oerr : "unknown error");
    duckdb_free(oerr);
    duckdb_destroy_config(&dc);
    free(e);
    return SP_EINTERNAL;
  }
  duckdb_destroy_config(&dc);
  if (duckdb_connect(e->db, &e->helper) == DuckDBError ||
      sp_engine_register_scans(e, e->helper, err) != SP_OK) {
    sp_engine_destroy(e);
    return err ? err->code : SP_EINTERNAL;
  }
  if (cfg && cfg->query_timeout_ms > 0) sp_engine_set_query_timeout(e, cfg->query_timeout_ms);
  *out = e;
  return SP_OK;
}

static void slots_free(sp_slot *s) {
  while (s) {
    sp_slot *n = s->next;
    sp_snapshot_unref(s->snap);
    sp_stream_release(&s->stream);
    sp_schema_release(&s->schema);
    free((char *)s->remote.server);
    free((char *)s->remote.table);
    free((char *)s->remote.text_collation);
    sp_schema_release(&s->computable);
    free(s);
    s = n;
  }
}

void sp_engine_destroy(sp_engine *e) {
  if (e == NULL) return;
  sp_engine_watchdog_stop(e);
  for (size_t i = 0; i < e->n_idle; i++) duckdb_disconnect(&e->idle[i]);
  free(e->idle);
  for (size_t i = 0; i < e->n_sessions; i++) sp_engine_session_free(e->idle_sessions[i]);
  free(e->idle_sessions);
  if (e->helper) duckdb_disconnect(&e->helper);
  if (e->db) duckdb_close(&e->db);
  slots_free(e->snapshots);
  slots_free(e->streams);
  slots_free(e->sources);
  slots_free(e->fallbacks);
  sp_engine_class_cache_clear(e);
  free(e->class_cache);
  free(e->writable);
  free(e->allowed_sql);
  free(e->allowed_paths_sql);
  pthread_cond_destroy(&e->watchdog_cv);
  pthread_mutex_destroy(&e->lock);
  free(e);
}

int sp_engine_conn_get(sp_engine *e, duckdb_connection *out, sp_error *err) {
  pthread_mutex_lock(&e->lock);
  if (e->n_idle > 0) {
    *out = e->idle[--e->n_idle];
    pthread_mutex_unlock(&e->lock);
    return SP_OK;
  }
  pthread_mutex_unlock(&e->lock);
  if (duckdb_connect(e->db, out) == DuckDBError) return sp_fail(err, SP_EINTERNAL, "could not open an engine connection");
  return SP_OK;
}

void sp_engine_conn_put(sp_engine *e, duckdb_connection c) {
  pthread_mutex_lock(&e->lock);
  if (e->n_idle == e->cap_idle) {
    size_t nc = e->cap_idle ? e->cap_idle * 2 : 16;
    duckdb_connection *ni = realloc(e->idle, nc * sizeof *ni);
    if (ni == NULL) {
      pthread_mutex_unlock(&e->lock);
      duckdb_disconnect(&c);
      return;
    }
    e->idle = ni;
    e->cap_idle = nc;
  }
  e->idle[e->n_idle++] = c;
  pthread_mutex_unlock(&e->lock);
}

void sp_engine_session_free(sp_session *s) {
  if (s == NULL) return;
  sp_sql_classifier_destroy(s->cls);
  duckdb_disconnect(&s->conn);
  free(s);
}

/* Puts s on the busy list (e->lock held). */
static void busy_link(sp_engine *e, sp_session *s) {
  s->prev_busy = NULL;
  s->next_busy = e->busy;
  if (e->busy) e->busy->prev_busy = s;
  e->busy = s;
}

static void busy_unlink(sp_engine *e, sp_session *s) {
  if (s->prev_busy) s->prev_busy->next_busy = s->next_busy;
  else e->busy = s->next_busy;
  if (s->next_busy) s->next_busy->prev_busy = s->prev_busy;
  s->prev_busy = s->next_busy = NULL;
}

static int session_open(sp_engine *e, sp_session **out, sp_error *err) {
  sp_session *s = calloc(1, sizeof *s);
  if (s == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  if (duckdb_connect(e->db, &s->conn) == DuckDBError) {
    free(s);
    return sp_fail(err, SP_EINTERNAL, "could not open an engine connection");
  }
  duckdb_client_context cc = NULL;
  duckdb_connection_get_client_context(s->conn, &cc);
  s->conn_id = cc ? duckdb_client_context_get_connection_id(cc) : (idx_t)-1;
  duckdb_destroy_client_context(&cc);
  if (sp_sql_classifier_create(s->conn, &s->cls, err) != SP_OK) {
    duckdb_disconnect(&s->conn);
    free(s);
    return err ? err->code : SP_EINTERNAL;
  }
  *out = s;
  return SP_OK;
}

int sp_engine_session_get(sp_engine *e, sp_session **out, sp_error *err) {
  sp_session *s = NULL;
  pthread_mutex_lock(&e->lock);
  if (e->n_sessions > 0) s = e->idle_sessions[--e->n_sessions];
  pthread_mutex_unlock(&e->lock);
  if (s == NULL) SP_TRY(session_open(e, &s, err));
  pthread_mutex_lock(&e->lock);
  busy_link(e, s);
  sp_engine_session_arm(e, s);
  pthread_mutex_unlock(&e->lock);
  *out = s;
  return SP_OK;
}

void sp_engine_session_put(sp_engine *e, sp_session *s) {
  pthread_mutex_lock(&e->lock);
  busy_unlink(e, s);
  if (e->n_sessions == e->cap_sessions) {
    size_t nc = e->cap_sessions ? e->cap_sessions * 2 : 16;
    sp_session **ns = realloc(e->idle_sessions, nc * sizeof *ns);
    if (ns == NULL) {
      pthread_mutex_unlock(&e->lock);
      sp_engine_session_free(s);
      return;
    }
    e->idle_sessions = ns;
    e->cap_sessions = nc;
  }
  e->idle_sessions[e->n_sessions++] = s;
  pthread_mutex_unlock(&e->lock);
}

int sp_engine_interrupt_all(sp_engine *e) {
  int n = 0;
  pthread_mutex_lock(&e->lock);
  for (sp_session *s = e->busy; s != NULL; s = s->next_busy, n++) {
    __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE); /* and the connector reads it waits on */
    duckdb_interrupt(s->conn);
  }
  pthread_mutex_unlock(&e->lock);
  return n;
}

int sp_engine_conn_acquire(sp_engine *e, void **out_conn, sp_error *err) {
  duckdb_connection c;
  SP_TRY(sp_engine_conn_get(e, &c, err));
  *out_conn = (void *)c;
  return SP_OK;
}

void sp_engine_conn_release(sp_engine *e, void *conn) { sp_engine_conn_put(e, (duckdb_connection)conn); }

int sp_engine_exec(sp_engine *e, const char *sql, sp_error *err) {
  duckdb_connection c;
  SP_TRY(sp_engine_conn_get(e, &c, err));
  int rc = run_sql(c, sql, SP_EINTERNAL, err);
  sp_engine_conn_put(e, c);
  return rc;
}

int sp_engine_query_int(sp_engine *e, const char *sql, int64_t *out, sp_error *err) {
  duckdb_connection c;
  duckdb_result r;
  SP_TRY(sp_engine_conn_get(e, &c, err));
  int rc = SP_OK;
  if (duckdb_query(c, sql, &r) == DuckDBError) {
    rc = sp_fail(err, SP_EINTERNAL, "%s", duckdb_result_error(&r));
  } else if (duckdb_row_count(&r) > 0 && duckdb_column_count(&r) > 0) {
    *out = duckdb_value_int64(&r, 0, 0);
  }
  duckdb_destroy_result(&r);
  sp_engine_conn_put(e, c);
  return rc;
}

/* Appends 'item' (quoted; a trailing '/' when dir) to a comma-separated SQL list. */
static int list_append(char **list, const char *item, int dir, sp_error *err) {
  size_t len = strlen(item), old = *list ? strlen(*list) : 0;
  char *with_slash = malloc(len + 2), *lit = NULL, *s = NULL;
  if (with_slash) {
    memcpy(with_slash, item, len + 1);
    if (dir && len && item[len - 1] != '/') memcpy(with_slash + len, "/", 2);
    lit = sp_sql_literal_dup(with_slash);
  }
  if (lit) s = realloc(*list, old + strlen(lit) + 2);
  if (s == NULL) {
    free(with_slash);
    free(lit);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  snprintf(s + old, strlen(lit) + 2, "%s%s", old ? "," : "", lit);
  *list = s;
  free(with_slash);
  free(lit);
  return SP_OK;
}

int sp_engine_allow_directory(sp_engine *e, const char *dir, sp_error *err) {
  if (e->locked) return sp_fail(err, SP_EBUSY, "the engine is already locked");
  return list_append(&e->allowed_sql, dir, 1, err);
}

int sp_engine_allow_path(sp_engine *e, const char *path, bool is_dir, sp_error *err) {
  if (e->locked) return sp_fail(err, SP_EBUSY, "the engine is already locked");
  return is_dir ? list_append(&e->allowed_sql, path, 1, err) : list_append(&e->allowed_paths_sql, path, 0, err);
}

bool sp_engine_locked(sp_engine *e) { return e->locked != 0; }

uint64_t sp_engine_pruned_batches(sp_engine *e) { return __atomic_load_n(&e->pruned_batches, __ATOMIC_RELAXED); }

int sp_engine_lock(sp_engine *e, sp_error *err) {
  /* data_dir holds the file accelerators: their WAL files are created and removed as they commit. */
  if (e->data_dir[0]) SP_TRY(sp_engine_allow_directory(e, e->data_dir, err));
  size_t n = (e->allowed_sql ? strlen(e->allowed_sql) : 0) + (e->allowed_paths_sql ? strlen(e->allowed_paths_sql) : 0) + 512;
  char *sql = malloc(n);
  if (sql == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  snprintf(sql, n,
           "SET autoinstall_known_extensions=false; SET autoload_known_extensions=false;"
           "SET allowed_directories=[%s]; SET allowed_paths=[%s]; SET enable_external_access=false;"
           "SET lock_configuration=true;",
           e->allowed_sql ? e->allowed_sql : "", e->allowed_paths_sql ? e->allowed_paths_sql : "");
  int rc = sp_engine_exec(e, sql, err);
  free(sql);
  if (rc == SP_OK) e->locked = 1;
  return rc;
}

/* ---- Catalog ------------------------------------------------------------------------------------------ */

static int ensure_schema(sp_engine *e, const char *name, sp_error *err) {
  const char *dot = strchr(name, '.');
  if (dot == NULL) return SP_OK;
  char schema[SP_ENGINE_MAX_NAME], q[2 * SP_ENGINE_MAX_NAME + 4], sql[600];
  snprintf(schema, sizeof schema, "%.*s", (int)(dot - name), name);
  sp_engine_quote_ident(q, sizeof q, schema, 0);
  snprintf(sql, sizeof sql, "CREATE SCHEMA IF NOT EXISTS %s", q);
  return sp_engine_exec(e, sql, err);
}

void sp_engine_class_cache_clear(sp_engine *e) {
  pthread_mutex_lock(&e->lock);
  for (size_t i = 0; e->class_cache && i < SP_CLASS_CACHE_SLOTS; i++) {
    free(e->class_cache[i].sql);
    e->class_cache[i].sql = NULL;
  }
  pthread_mutex_unlock(&e->lock);
}

static void set_writable(sp_engine *e, const char *name, int writable) {
  if (writable || sp_engine_is_writable(e, name)) sp_engine_class_cache_clear(e);
  pthread_mutex_lock(&e->lock);
  /* Rebuild the NUL-separated list without `name`, then append it if writable. */
  size_t len = 0, nlen = strlen(name) + 1;
  char *out = malloc(e->writable_len + nlen + 1);
  if (out == NULL) {
    pthread_mutex_unlock(&e->lock);
    return;
  }
  for (const char *p = e->writable; p && *p; p += strlen(p) + 1)
    if (strcasecmp(p, name) != 0) {
      memcpy(out + len, p, strlen(p) + 1);
      len += strlen(p) + 1;
    }
  if (writable) {
    memcpy(out + len, name, nlen);
    len += nlen;
  }
  out[len] = '\0';
  free(e->writable);
  e->writable = out;
  e->writable_len = len;
  pthread_mutex_unlock(&e->lock);
}

int sp_engine_is_writable(sp_engine *e, const char *name) {
  int found = 0;
  pthread_mutex_lock(&e->lock);
  for (const char *p = e->writable; p && *p && !found; p += strlen(p) + 1) found = strcasecmp(p, name) == 0;
  pthread_mutex_unlock(&e->lock);
  return found;
}

int sp_engine_define_table(sp_engine *e, const char *name, const char *table_sql, unsigned flags, sp_error *err) {
  char q[2 * SP_ENGINE_MAX_NAME + 8];
  size_t n = strlen(table_sql) + sizeof q + 64;
  char *sql = malloc(n);
  if (sql == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  sp_engine_quote_ident(q, sizeof q, name, 1);
  snprintf(sql, n, "CREATE OR REPLACE VIEW %s AS SELECT * FROM %s", q, table_sql);
  int rc = ensure_schema(e, name, err);
  if (rc == SP_OK) rc = sp_engine_exec(e, sql, err);
  free(sql);
  if (rc == SP_OK) set_writable(e, name, (flags & SP_TABLE_WRITABLE) != 0);
  return rc;
}

int sp_engine_define_placeholder(sp_engine *e, const char *name, const char *message, sp_error *err) {
  char *msg = sp_sql_literal_dup(message);
  size_t n = msg ? strlen(msg) + 32 : 0;
  char *lit = msg ? malloc(n) : NULL;
  if (lit == NULL) {
    free(msg);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  snprintf(lit, n, "sp_unavailable(%s)", msg);
  free(msg);
  /* DuckDB binds a view as it is created, on this thread: let the placeholder bind just for that. */
  sp_engine_placeholder_mode(1);
  int rc = sp_engine_define_table(e, name, lit, 0, err);
  sp_engine_placeholder_mode(0);
  free(lit);
  return rc;
}

int sp_engine_define_view(sp_engine *e, const char *name, const char *view_sql, sp_error *err) {
  SP_TRY(sp_engine_check_sql(e, view_sql, err));
  char q[2 * SP_ENGINE_MAX_NAME + 8];
  size_t n = strlen(view_sql) + sizeof q + 64;
  char *sql = malloc(n);
  if (sql == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  sp_engine_quote_ident(q, sizeof q, name, 1);
  snprintf(sql, n, "CREATE OR REPLACE VIEW %s AS %s", q, view_sql);
  int rc = ensure_schema(e, name, err);
  if (rc == SP_OK) rc = sp_engine_exec(e, sql, err);
  if (rc != SP_OK) err->code = SP_EINVAL;
  free(sql);
  return rc;
}

int sp_engine_drop_table(sp_engine *e, const char *name, sp_error *err) {
  char q[2 * SP_ENGINE_MAX_NAME + 8], sql[600];
  sp_engine_quote_ident(q, sizeof q, name, 1);
  snprintf(sql, sizeof sql, "DROP VIEW IF EXISTS %s", q);
  set_writable(e, name, 0);
  return sp_engine_exec(e, sql, err);
}

bool sp_engine_has_table(sp_engine *e, const char *name) {
  char q[2 * SP_ENGINE_MAX_NAME + 8], sql[700];
  int64_t n = 0;
  sp_engine_quote_ident(q, sizeof q, name, 1);
  snprintf(sql, sizeof sql, "SELECT count(*) FROM (DESCRIBE SELECT * FROM %s LIMIT 0)", q);
  return sp_engine_query_int(e, sql, &n, NULL) == SP_OK && n > 0;
}

void sp_engine_set_write_hook(sp_engine *e, sp_engine_write_fn fn, void *ctx) {
  e->write_fn = fn;
  e->write_ctx = ctx;
}

/* ---- Registries ---------------------------------------------------------------------------------------- */

static sp_slot **slot_find(sp_slot **head, const char *name) {
  for (sp_slot **p = head; *p; p = &(*p)->next)
    if (strcmp((*p)->name, name) == 0) return p;
  return NULL;
}

int sp_engine_publish_snapshot(sp_engine *e, const char *name, sp_snapshot *snap, sp_error *err) {
  sp_snapshot *old = NULL;
  pthread_mutex_lock(&e->lock);
  sp_slot **p = slot_find(&e->snapshots, name);
  if (p == NULL) {
    sp_slot *s = calloc(1, sizeof *s);
    if (s == NULL) {
      pthread_mutex_unlock(&e->lock);
      return sp_fail(err, SP_ENOMEM, "out of memory");
    }
    snprintf(s->name, sizeof s->name, "%s", name);
    s->next = e->snapshots;
    e->snapshots = s;
    p = &e->snapshots;
  }
  old = (*p)->snap;
  (*p)->snap = sp_snapshot_ref(snap);
  pthread_mutex_unlock(&e->lock);
  sp_snapshot_unref(old); /* queries that pinned it keep it alive until they finish */
  return SP_OK;
}

void sp_engine_remove_snapshot(sp_engine *e, const char *name) {
  pthread_mutex_lock(&e->lock);
  sp_slot **p = slot_find(&e->snapshots, name), *s = p ? *p : NULL;
  if (s) *p = s->next;
  pthread_mutex_unlock(&e->lock);
  if (s) {
    s->next = NULL;
    slots_free(s);
  }
}

sp_snapshot *sp_engine_pin_current(sp_engine *e, const char *name) { return sp_engine_pin_snapshot(e, name); }

/* Pins the current snapshot of a slot (a reference the caller drops), or NULL. */
sp_snapshot *sp_engine_pin_snapshot(sp_engine *e, const char *name) {
  sp_snapshot *s = NULL;
  pthread_mutex_lock(&e->lock);
  sp_slot **p = slot_find(&e->snapshots, name);
  if (p && (*p)->snap) s = sp_snapshot_ref((*p)->snap);
  pthread_mutex_unlock(&e->lock);
  return s;
}

int sp_engine_stream_register(sp_engine *e, struct ArrowArrayStream *stream, uint64_t *out_token, sp_error *err) {
  sp_slot *s = calloc(1, sizeof *s);
  if (s == NULL) {
    sp_stream_release(stream);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  if (stream->get_schema(stream, &s->schema) != 0) {
    const char *m = stream->get_last_error(stream);
    int rc = sp_fail(err, SP_EIO, "%s", m ? m : "could not read the schema of a stream");
    sp_stream_release(stream);
    free(s);
    return rc;
  }
  sp_stream_move(&s->stream, stream);
  pthread_mutex_lock(&e->lock);
  uint64_t token = e->next_token++;
  snprintf(s->name, sizeof s->name, "%llu", (unsigned long long)token);
  s->next = e->streams;
  e->streams = s;
  pthread_mutex_unlock(&e->lock);
  *out_token = token;
  return SP_OK;
}

/* Takes a registered stream out of the registry (the caller owns the slot), or NULL. */
sp_slot *sp_engine_take_stream(sp_engine *e, const char *token) {
  pthread_mutex_lock(&e->lock);
  sp_slot **p = slot_find(&e->streams, token), *s = p ? *p : NULL;
  if (s) *p = s->next;
  pthread_mutex_unlock(&e->lock);
  if (s) s->next = NULL;
  return s;
}

/* Copies the schema of a registered stream without taking it. */
int sp_engine_stream_schema(sp_engine *e, const char *token, struct ArrowSchema *out, sp_error *err) {
  int rc;
  pthread_mutex_lock(&e->lock);
  sp_slot **p = slot_find(&e->streams, token);
  rc = p ? sp_schema_copy(out, &(*p)->schema, err) : sp_fail(err, SP_ENOTFOUND, "no stream %s", token);
  pthread_mutex_unlock(&e->lock);
  return rc;
}

void sp_engine_stream_unregister(sp_engine *e, uint64_t token) {
  char name[32];
  snprintf(name, sizeof name, "%llu", (unsigned long long)token);
  slots_free(sp_engine_take_stream(e, name));
}

int sp_engine_register_source(sp_engine *e, const char *name, const struct ArrowSchema *schema, sp_source_open_fn fn,
                              void *ctx, sp_error *err) {
  sp_slot *s = calloc(1, sizeof *s);
  if (s == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  if (sp_schema_copy(&s->schema, schema, err) != SP_OK) {
    free(s);
    return SP_ENOMEM;
  }
  snprintf(s->name, sizeof s->name, "%s", name);
  s->open = fn;
  s->ctx = ctx;
  sp_engine_unregister_source(e, name);
  pthread_mutex_lock(&e->lock);
  s->next = e->sources;
  e->sources = s;
  pthread_mutex_unlock(&e->lock);
  return SP_OK;
}

int sp_engine_set_zero_results_source(sp_engine *e, const char *name, const char *source_table_sql, sp_error *err) {
  sp_slot *s = calloc(1, sizeof *s);
  if (s == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  snprintf(s->name, sizeof s->name, "%s", name);
  /* A flat name: dots would read as schema.table. */
  size_t o = (size_t)snprintf(s->target, sizeof s->target, "spice_source__");
  for (const char *p = name; *p && o + 1 < sizeof s->target; p++) s->target[o++] = *p == '.' ? '_' : *p;
  s->target[o] = '\0';
  int rc = sp_engine_define_table(e, s->target, source_table_sql, 0, err);
  if (rc != SP_OK) {
    free(s);
    return rc;
  }
  pthread_mutex_lock(&e->lock);
  sp_slot **p = slot_find(&e->fallbacks, name), *old = p ? *p : NULL;
  if (old) *p = old->next;
  s->next = e->fallbacks;
  e->fallbacks = s;
  pthread_mutex_unlock(&e->lock);
  free(old);
  return SP_OK;
}

uint64_t sp_engine_zero_results_fallbacks(sp_engine *e) {
  return __atomic_load_n(&e->zero_results_fallbacks, __ATOMIC_RELAXED);
}

void sp_engine_unregister_source(sp_engine *e, const char *name) {
  pthread_mutex_lock(&e->lock);
  sp_slot **p = slot_find(&e->sources, name), *s = p ? *p : NULL;
  if (s) *p = s->next;
  pthread_mutex_unlock(&e->lock);
  if (s) {
    s->next = NULL;
    slots_free(s);
  }
}

int sp_engine_set_source_remote(sp_engine *e, const char *name, const sp_remote_source *r, sp_error *err) {
  if (r->dialect == SP_DIALECT_NONE || r->server == NULL || r->table == NULL || r->run == NULL)
    return sp_fail(err, SP_EINVAL, "incomplete remote source for \"%s\"", name);
  char *server = strdup(r->server), *table = strdup(r->table);
  char *coll = r->text_collation ? strdup(r->text_collation) : NULL;
  struct ArrowSchema computable = {0};
  if (!server || !table || (r->text_collation && !coll) ||
      (r->computable && sp_schema_copy(&computable, r->computable, NULL) != SP_OK)) {
    free(server);
    free(table);
    free(coll);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  pthread_mutex_lock(&e->lock);
  sp_slot **p = slot_find(&e->sources, name), *s = p ? *p : NULL;
  sp_remote_source old = s ? s->remote : (sp_remote_source){0};
  struct ArrowSchema old_computable = s ? s->computable : (struct ArrowSchema){0};
  if (s) {
    s->remote = (sp_remote_source){.dialect = r->dialect, .server = server, .table = table, .text_collation = coll,
                                   .run = r->run, .ctx = r->ctx};
    s->computable = computable;
    s->remote.computable = computable.release ? &s->computable : NULL;
  }
  pthread_mutex_unlock(&e->lock);
  sp_schema_release(&old_computable);
  if (s == NULL) {
    sp_schema_release(&computable);
    free(server);
    free(table);
    free(coll);
    return sp_fail(err, SP_ENOTFOUND, "no source named \"%s\"", name);
  }
  free((char *)old.server);
  free((char *)old.table);
  free((char *)old.text_collation);
  return SP_OK;
}

/* Looks a source up: copies its schema into *schema (if not NULL) and returns its callback and ctx. */
int sp_engine_find_source(sp_engine *e, const char *name, struct ArrowSchema *schema, sp_source_open_fn *fn,
                          void **ctx, sp_error *err) {
  int rc = SP_OK;
  pthread_mutex_lock(&e->lock);
  sp_slot **p = slot_find(&e->sources, name);
  if (p == NULL) {
    rc = sp_fail(err, SP_ENOTFOUND, "no source named \"%s\"", name);
  } else {
    *fn = (*p)->open;
    *ctx = (*p)->ctx;
    if (schema) rc = sp_schema_copy(schema, &(*p)->schema, err);
  }
  pthread_mutex_unlock(&e->lock);
  return rc;
}
