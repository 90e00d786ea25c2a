/* SPDX-License-Identifier: Apache-2.0
 *
 * The `sqlite` accelerator: the dataset is a table (named like the dataset) of a SQLite database in WAL mode.
 * `mode: file` keeps it in `sqlite_file` (default <data_dir>/<dataset>.sqlite); `mode: memory` keeps it in a
 * database on tmpfs (/dev/shm when there is one), removed when the dataset closes.
 *
 * Writers and readers. Each database file is opened once per process (sq_file, shared by every dataset that
 * names it): one write connection, whose mutex serialises the refreshes of those datasets, and a pool of read
 * connections. In WAL mode a reader keeps the snapshot its statement started with while a refresh writes, so
 * two datasets on one file never see "database is locked", and busy_timeout covers checkpoints.
 *
 * A full refresh writes a staging table, drops the old one and renames the staging table in ONE transaction
 * (with the checkpoint row: rows, time, Arrow schema), so a query sees the old rows or the new, and a process
 * killed mid-refresh leaves the last committed copy: the next open() finds the checkpoint and serves it.
 * Appends insert in one transaction; primary_key and on_conflict (upsert | drop) become table constraints and
 * ON CONFLICT clauses, `indexes` become indexes.
 *
 * The engine reads the table through sp_source_scan('<dataset>') (sp_engine_register_source): each query opens
 * a stream with only its columns, and the conditions of its WHERE that compare alike in SQLite (integers,
 * doubles, text, booleans, decimals up to 15 digits) run in SQLite, so an index or a selective filter reads
 * only the rows it needs.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "accelerators/sqlite_arrow.h"
#include "spice/accelerator.h"
#include "spice/arrow.h"
#include "spice/buf.h"
#include "spice/engine.h"
#include "spice/log.h"
#include "spice/sqltext.h"

#define SQ_POOL 8
#define SQ_CHECKPOINT "spice_sys_dataset_checkpoint"

/* ---- Files shared by datasets --------------------------------------------------------------------------------- */

typedef struct sq_file {
  struct sq_file *next;
  char path[4096];
  int refs;       /* guarded by files_lock */
  int memory;     /* removed when the last user closes */
  int busy_ms;
  pthread_mutex_t write_lock; /* held for a whole refresh */
  sqlite3 *writer;
  pthread_mutex_t pool_lock;
  sqlite3 *idle[SQ_POOL];
  int n_idle;
} sq_file;

static pthread_mutex_t files_lock = PTHREAD_MUTEX_INITIALIZER;
static sq_file *files;

static int open_conn(sq_file *f, sqlite3 **out, sp_error *err) {
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    sp_fail(err, SP_EIO, "could not open sqlite file \"%s\": %s", f->path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return SP_EIO;
  }
  sqlite3_busy_timeout(db, f->busy_ms);
  *out = db;
  return SP_OK;
}

static void remove_files(const char *path) {
  char p[4200];
  static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
  for (size_t i = 0; i < 4; i++) {
    snprintf(p, sizeof p, "%s%s", path, sfx[i]);
    unlink(p);
  }
}

/* The writer in WAL mode, with the checkpoint table. */
static int init_writer(sq_file *f, sp_error *err) {
  SP_TRY(open_conn(f, &f->writer, err));
  char *msg = NULL;
  int rc = sqlite3_exec(f->writer,
                        /* A refresh writes the whole table into the WAL: keep at most 64 MiB of it after a checkpoint. */
                        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=67108864; "
                        "CREATE TABLE IF NOT EXISTS " SQ_CHECKPOINT
                        " (dataset_name TEXT PRIMARY KEY, rows INTEGER, refreshed_at_ms INTEGER, schema TEXT, stream_position TEXT)",
                        NULL, NULL, &msg);
  /* Files written before change streams have no stream_position: added (an error says it exists already). */
  if (rc == SQLITE_OK) sqlite3_exec(f->writer, "ALTER TABLE " SQ_CHECKPOINT " ADD COLUMN stream_position TEXT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    sp_fail(err, rc == SQLITE_BUSY ? SP_EBUSY : SP_EIO, "could not prepare sqlite file \"%s\": %s", f->path, msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    sqlite3_close(f->writer);
    f->writer = NULL;
    return rc == SQLITE_BUSY ? SP_EBUSY : SP_EIO;
  }
  return SP_OK;
}

static void file_free(sq_file *f) {
  for (int i = 0; i < f->n_idle; i++) sqlite3_close(f->idle[i]);
  sqlite3_close(f->writer);
  if (f->memory) remove_files(f->path);
  pthread_mutex_destroy(&f->write_lock);
  pthread_mutex_destroy(&f->pool_lock);
  free(f);
}

static int file_acquire(const char *path, int memory, int busy_ms, sq_file **out, sp_error *err) {
  pthread_mutex_lock(&files_lock);
  sq_file *f = files;
  while (f && strcmp(f->path, path) != 0) f = f->next;
  if (f) {
    f->refs++;
    pthread_mutex_unlock(&files_lock);
    *out = f;
    return SP_OK;
  }
  int rc = (f = calloc(1, sizeof *f)) ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK) {
    snprintf(f->path, sizeof f->path, "%s", path);
    f->refs = 1;
    f->memory = memory;
    f->busy_ms = busy_ms;
    pthread_mutex_init(&f->write_lock, NULL);
    pthread_mutex_init(&f->pool_lock, NULL);
    if (memory) remove_files(path); /* left by a process that died */
    rc = init_writer(f, err);
    if (rc != SP_OK) file_free(f);
  }
  if (rc == SP_OK) {
    f->next = files;
    files = f;
    *out = f;
  }
  pthread_mutex_unlock(&files_lock);
  return rc;
}

static void file_release(sq_file *f) {
  pthread_mutex_lock(&files_lock);
  int last = --f->refs == 0;
  if (last) {
    sq_file **p = &files;
    while (*p != f) p = &(*p)->next;
    *p = f->next;
  }
  pthread_mutex_unlock(&files_lock);
  if (last) file_free(f);
}

/* A read connection from the pool (or a new one); the caller holds a reference on f. */
static int reader_get(sq_file *f, sqlite3 **out, sp_error *err) {
  pthread_mutex_lock(&f->pool_lock);
  sqlite3 *db = f->n_idle ? f->idle[--f->n_idle] : NULL;
  pthread_mutex_unlock(&f->pool_lock);
  if (db == NULL) {
    SP_TRY(open_conn(f, &db, err));
    sqlite3_exec(db, "PRAGMA query_only=1", NULL, NULL, NULL);
  }
  *out = db;
  return SP_OK;
}

/* sqa_read's `done`: the connection back to the pool, and the stream's reference on the file dropped. */
static void reader_done(void *ctx, sqlite3 *db) {
  sq_file *f = ctx;
  pthread_mutex_lock(&f->pool_lock);
  if (f->n_idle < SQ_POOL) f->idle[f->n_idle++] = db, db = NULL;
  pthread_mutex_unlock(&f->pool_lock);
  sqlite3_close(db);
  file_release(f);
}

/* ---- The accelerator instance -------------------------------------------------------------------------------- */

typedef struct sq_accel {
  sp_accelerator base; /* must be first */
  sq_file *f;
  char *table, *staging; /* quoted */
  pthread_rwlock_t lock; /* guards cols (a refresh may change them while queries open streams) */
  sqa_column *cols;
  size_t n_cols;
  int registered;
  int keep_refresh_time; /* retention rewrites the copy but is not a refresh: the checkpoint keeps its time */
  int64_t rows;          /* rows in the committed copy */
  int64_t rows_read;     /* rows the engine read from SQLite (atomic), for tests and logs */
} sq_accel;

static const sp_param_spec sq_params[] = {
    {"file", SP_PARAM_STRING, SP_PARAM_PREFIXED, NULL, NULL, "database file for mode: file (default .spice/data/<dataset>.sqlite)"},
    {"busy_timeout", SP_PARAM_DURATION, 0, "5000ms", NULL, "how long a statement waits for a lock"},
    {"disable_query_push_down", SP_PARAM_BOOL, 0, "false", NULL, "run every query in the engine, never whole in SQLite"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

static const char *ds_name(const sq_accel *a) { return a->base.dataset->name; }

static int64_t now_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Deep copies of the columns a query reads (all when `columns` is NULL). Caller holds a->lock. */
static int pick_columns(sq_accel *a, const char *const *columns, size_t n_columns, sqa_column **out, size_t *n, sp_error *err) {
  size_t k = columns ? n_columns : a->n_cols;
  sqa_column *pick = calloc(k ? k : 1, sizeof *pick);
  if (pick == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0; i < k; i++) {
    size_t j = columns ? 0 : i;
    while (columns && j < a->n_cols && strcmp(a->cols[j].name, columns[i]) != 0) j++;
    if (j >= a->n_cols) {
      free(pick);
      return sp_fail(err, SP_EINVAL, "dataset \"%s\" has no column \"%s\"", ds_name(a), columns[i]);
    }
    pick[i] = a->cols[j];
  }
  *out = sqa_columns_copy(pick, k);
  free(pick);
  *n = k;
  return *out ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
}

/* Opens the SELECT on a pooled read connection; the stream holds a reference on the file. */
static int open_read(sq_accel *a, const sqa_column *cols, size_t n, const char *where, int64_t limit,
                     struct ArrowArrayStream *out, sp_error *err) {
  char **q = calloc(n ? n : 1, sizeof *q);
  int rc = q ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0; rc == SP_OK && i < n; i++)
    if ((q[i] = sqa_ident(cols[i].name)) == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  static const char *const one[] = {"1"}; /* count(*) reads no column */
  char *sql = rc == SP_OK ? sp_sql_select(n ? (const char *const *)q : one, n ? n : 1, a->table, where, limit) : NULL;
  if (rc == SP_OK && sql == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  sqlite3 *db = NULL;
  if (rc == SP_OK) rc = reader_get(a->f, &db, err);
  if (rc == SP_OK) {
    sp_log_debug("dataset \"%s\": sqlite accelerator: %s", ds_name(a), sql);
    pthread_mutex_lock(&files_lock);
    a->f->refs++; /* dropped by reader_done */
    pthread_mutex_unlock(&files_lock);
    sqa_read_opts o = {.dataset = ds_name(a), .table = ds_name(a), .done = reader_done, .ctx = a->f, .rows_read = &a->rows_read};
    rc = sqa_read(db, sql, cols, n, &o, out, err);
  }
  for (size_t i = 0; q && i < n; i++) free(q[i]);
  free(q);
  free(sql);
  return rc;
}

/* The engine's source callback: SELECT <columns> FROM <table> [WHERE <pushed conditions>] [LIMIT n]. */
static int source_open(void *ctx, const char *const *columns, size_t n_columns, int64_t limit, const char *filter_query,
                       volatile int *stop, struct ArrowArrayStream *out, sp_error *err) {
  (void)stop; /* a local file: nothing to wait on */
  sq_accel *a = ctx;
  sqa_column *cols = NULL;
  size_t n = 0;
  char *where = NULL;
  pthread_rwlock_rdlock(&a->lock);
  int rc = pick_columns(a, columns, n_columns, &cols, &n, err);
  sp_error ferr = {0};
  /* Optional: a condition that does not translate is applied by the engine alone (it re-applies them all). */
  if (rc == SP_OK && filter_query && sqa_where(ds_name(a), a->cols, a->n_cols, filter_query, &where, &ferr) != SP_OK) {
    sp_log_debug("dataset \"%s\": filter not pushed to sqlite: %s", ds_name(a), ferr.msg);
    where = NULL;
  }
  pthread_rwlock_unlock(&a->lock);
  if (rc == SP_OK) rc = open_read(a, cols, n, where, limit, out, err);
  sqa_columns_free(cols, n);
  free(where);
  return rc;
}

/* ---- Schema and checkpoint ------------------------------------------------------------------------------------- */

/* The columns (with their SQL declarations) that store a struct schema. */
static int columns_of(sq_accel *a, const struct ArrowSchema *s, sqa_column **out, sp_error *err) {
  size_t n = (size_t)s->n_children;
  sqa_column *cols = calloc(n ? n : 1, sizeof *cols);
  if (cols == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    char decl[32];
    const char *name = s->children[i]->name ? s->children[i]->name : "";
    if (sqa_map_arrow(s->children[i]->format, &cols[i], decl, sizeof decl, err) != SP_OK) {
      sp_error_prefix(err, "the sqlite accelerator cannot store column \"%s\" of dataset \"%s\"", name, ds_name(a));
      sqa_columns_free(cols, i);
      return SP_ENOTSUP;
    }
    cols[i].name = strdup(name);
    cols[i].decl = strdup(decl);
    if (cols[i].name == NULL || cols[i].decl == NULL) {
      sqa_columns_free(cols, i + 1);
      return sp_fail(err, SP_ENOMEM, "out of memory");
    }
  }
  *out = cols;
  return SP_OK;
}

/* [{"name":…,"format":…}, …]: the Arrow schema kept in the checkpoint row. malloc'd. */
static char *schema_json(const sqa_column *cols, size_t n) {
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < n; i++)
    json_array_append_new(arr, json_pack("{s:s,s:s}", "name", cols[i].name, "format", cols[i].format));
  char *text = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
  json_decref(arr);
  return text;
}

static int columns_from_json(sq_accel *a, const char *text, sqa_column **out, size_t *n, sp_error *err) {
  json_t *arr = json_loads(text ? text : "", 0, NULL);
  size_t k = json_array_size(arr);
  sqa_column *cols = calloc(k ? k : 1, sizeof *cols);
  int rc = json_is_array(arr) && cols ? SP_OK : sp_fail(err, SP_EIO, "dataset \"%s\": the sqlite checkpoint has no valid schema", ds_name(a));
  for (size_t i = 0; rc == SP_OK && i < k; i++) {
    char decl[32];
    const char *name = json_string_value(json_object_get(json_array_get(arr, i), "name"));
    const char *format = json_string_value(json_object_get(json_array_get(arr, i), "format"));
    rc = name && format ? sqa_map_arrow(format, &cols[i], decl, sizeof decl, err) : SP_EIO;
    cols[i].name = strdup(name ? name : "");
    cols[i].decl = strdup(decl);
    if (rc != SP_OK) sp_fail(err, SP_EIO, "dataset \"%s\": the sqlite checkpoint has no valid schema", ds_name(a));
  }
  json_decref(arr);
  if (rc != SP_OK) {
    sqa_columns_free(cols, k);
    return rc;
  }
  *out = cols;
  *n = k;
  return SP_OK;
}

/* Whole-query pushdown: a query that names only datasets of this file runs in SQLite (docs/federation.md). Values
 * are read straight into the types DuckDB planned. */
static int remote_query(void *ctx, const char *sql, const struct ArrowSchema *want, volatile int *stop,
                        struct ArrowArrayStream *out, sp_error *err) {
  (void)stop; /* a local file: nothing to wait on */
  sq_accel *a = ctx;
  size_t n = (size_t)want->n_children;
  sqa_column *cols = calloc(n ? n : 1, sizeof *cols);
  int rc = cols ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0; rc == SP_OK && i < n; i++) {
    char decl[32];
    rc = sqa_map_arrow(want->children[i]->format, &cols[i], decl, sizeof decl, err);
    if (rc == SP_OK && ((cols[i].name = strdup(want->children[i]->name)) == NULL || (cols[i].decl = strdup("")) == NULL))
      rc = sp_fail(err, SP_ENOMEM, "out of memory");
  }
  sqlite3 *db = NULL;
  if (rc == SP_OK) rc = reader_get(a->f, &db, err);
  if (rc == SP_OK) {
    sp_log_debug("dataset \"%s\": sqlite accelerator runs the whole query: %s", ds_name(a), sql);
    pthread_mutex_lock(&files_lock);
    a->f->refs++; /* dropped by reader_done */
    pthread_mutex_unlock(&files_lock);
    sqa_read_opts o = {.dataset = ds_name(a), .table = ds_name(a), .done = reader_done, .ctx = a->f, .rows_read = &a->rows_read};
    rc = sqa_read(db, sql, cols, n, &o, out, err);
  }
  sqa_columns_free(cols, n);
  return rc;
}

/* The columns SQLite stores so that it compares and computes on them as DuckDB does: integers, doubles, text
 * and booleans. Decimals (doubles or text there), dates and timestamps (raw integers) stay with the engine. */
static bool computable(const sqa_column *c) {
  return c->pushable && (c->kind == SQA_INT || c->kind == SQA_UINT || c->kind == SQA_FLOAT || c->kind == SQA_TEXT ||
                         c->kind == SQA_BOOL);
}

static void declare_remote(sq_accel *a) {
  if (sp_params_get_bool(&a->base.params, "disable_query_push_down", false)) return;
  sqa_column *cols = calloc(a->n_cols ? a->n_cols : 1, sizeof *cols);
  size_t n = 0;
  for (size_t i = 0; cols && i < a->n_cols; i++)
    if (computable(&a->cols[i])) cols[n++] = a->cols[i]; /* shallow: only read by sqa_schema below */
  struct ArrowSchema some = {0};
  char server[4200];
  snprintf(server, sizeof server, "sqlite %s", a->f->path);
  sp_remote_source r = {.dialect = SP_DIALECT_SQLITE, .server = server, .table = a->table,
                        .computable = n == a->n_cols ? NULL : &some, .run = remote_query, .ctx = a};
  sp_error err = {0};
  if (cols == NULL || (n < a->n_cols && sqa_schema(cols, n, &some, &err) != SP_OK) ||
      sp_engine_set_source_remote(a->base.engine, ds_name(a), &r, &err) != SP_OK)
    sp_log_warn("dataset \"%s\": whole-query pushdown to sqlite is off: %s", ds_name(a), err.msg[0] ? err.msg : "out of memory");
  sp_schema_release(&some);
  free(cols);
}

static int register_source(sq_accel *a, sp_error *err) {
  struct ArrowSchema s;
  pthread_rwlock_rdlock(&a->lock);
  int rc = sqa_schema(a->cols, a->n_cols, &s, err);
  if (rc == SP_OK) rc = sp_engine_register_source(a->base.engine, ds_name(a), &s, source_open, a, err);
  if (rc == SP_OK) declare_remote(a);
  pthread_rwlock_unlock(&a->lock);
  sp_schema_release(&s);
  if (rc == SP_OK) a->registered = 1;
  return rc;
}

/* The checkpoint row of an earlier run, when its table exists. Caller holds the write lock. */
static int read_checkpoint(sq_accel *a, sp_accel_state *state, sp_error *err) {
  sqlite3_stmt *st = NULL;
  const char *sql = "SELECT c.rows, c.refreshed_at_ms, c.schema FROM " SQ_CHECKPOINT " c JOIN sqlite_master m ON "
                    "m.type = 'table' AND m.name = c.dataset_name WHERE c.dataset_name = ?";
  if (sqlite3_prepare_v2(a->f->writer, sql, -1, &st, NULL) != SQLITE_OK)
    return sp_fail(err, SP_EIO, "could not read sqlite file \"%s\" for dataset \"%s\": %s", a->f->path, ds_name(a),
                   sqlite3_errmsg(a->f->writer));
  sqlite3_bind_text(st, 1, ds_name(a), -1, SQLITE_STATIC);
  int rc = SP_OK;
  if (sqlite3_step(st) == SQLITE_ROW) {
    rc = columns_from_json(a, (const char *)sqlite3_column_text(st, 2), &a->cols, &a->n_cols, err);
    if (rc == SP_OK) {
      state->has_data = true;
      state->rows = a->rows = sqlite3_column_int64(st, 0);
      state->last_refresh_ms = sqlite3_column_int64(st, 1);
    }
  }
  sqlite3_finalize(st);
  return rc;
}

/* ---- Open / close ---------------------------------------------------------------------------------------------- */

/* Memory databases of processes that died (SIGKILL) are removed once per process, so tmpfs does not fill up. */
static void sweep_dead(const char *dir) {
  static int swept;
  if (__atomic_exchange_n(&swept, 1, __ATOMIC_ACQ_REL)) return;
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    int pid = 0;
    char path[4200];
    if (sscanf(e->d_name, "spicec-%d-", &pid) != 1 || pid <= 0 || pid == (int)getpid()) continue;
    if (kill(pid, 0) == 0 || errno != ESRCH) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    unlink(path);
  }
  if (d) closedir(d);
}

/* The same file named two ways (`./x.sqlite`, `x.sqlite`) must share one sq_file: its folder resolved. */
static void canonical(char *path, size_t n) {
  char *slash = strrchr(path, '/'), dir[4096], real[4096];
  if (slash == NULL || slash == path) return;
  snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  if (realpath(dir, real) == NULL) return;
  char base[1024];
  snprintf(base, sizeof base, "%s", slash + 1);
  snprintf(path, n, "%s/%s", real, base);
}

/* mode: file → sqlite_file (relative to the working folder) or <data_dir>/<dataset>.sqlite; memory → tmpfs. */
static void file_path(sq_accel *a, char *buf, size_t n) {
  static unsigned counter;
  const char *file = sp_params_get(&a->base.params, "sqlite_file");
  char safe[256];
  size_t o = 0;
  for (const char *p = ds_name(a); *p && o + 1 < sizeof safe; p++)
    safe[o++] = (char)((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ? *p : '_');
  safe[o] = '\0';
  if (a->base.dataset->acceleration.mode != SP_ACCEL_FILE) {
    struct stat sb;
    const char *dir = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0 ? "/dev/shm" : a->base.data_dir;
    sweep_dead(dir);
    snprintf(buf, n, "%s/spicec-%d-%u-%s.sqlite", dir, (int)getpid(), __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED), safe);
  } else if (file && *file && file[0] != '/') {
    char cwd[2048];
    if (getcwd(cwd, sizeof cwd) == NULL) cwd[0] = '\0';
    snprintf(buf, n, "%s/%s", cwd, file);
  } else if (file && *file) {
    snprintf(buf, n, "%s", file);
  } else {
    snprintf(buf, n, "%s/%s.sqlite", a->base.data_dir, safe);
  }
  canonical(buf, n);
}

static void sq_close(sp_accelerator *self) {
  sq_accel *a = (sq_accel *)self;
  if (a->registered) sp_engine_unregister_source(self->engine, ds_name(a));
  if (a->f) file_release(a->f);
  sqa_columns_free(a->cols, a->n_cols);
  free(a->table);
  free(a->staging);
  pthread_rwlock_destroy(&a->lock);
}

static int sq_open(sp_accelerator *self, sp_accel_state *state, sp_error *err) {
  sq_accel *a = (sq_accel *)self;
  char path[4096], staging[600];
  memset(state, 0, sizeof *state);
  state->rows = state->last_refresh_ms = -1;
  /* The source's fallback scan would take the name this engine serves the dataset under. */
  const char *ozr = self->dataset->acceleration.on_zero_results;
  if (ozr && strcasecmp(ozr, "use_source") == 0)
    return sp_fail(err, SP_EINVAL, "dataset \"%s\": on_zero_results: use_source is not supported by the sqlite engine "
                   "(use return_empty, or another engine)", ds_name(a));
  pthread_rwlock_init(&a->lock, NULL);
  file_path(a, path, sizeof path);
  snprintf(staging, sizeof staging, "%s__spice_staging", ds_name(a));
  a->table = sqa_ident(ds_name(a));
  a->staging = sqa_ident(staging);
  int busy = (int)sp_params_get_duration_ms(&self->params, "busy_timeout", 5000);
  int rc = a->table && a->staging ? file_acquire(path, self->dataset->acceleration.mode != SP_ACCEL_FILE, busy, &a->f, err)
                                  : sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc != SP_OK) {
    sp_error_prefix(err, "dataset \"%s\"", ds_name(a));
  } else {
    pthread_mutex_lock(&a->f->write_lock);
    rc = read_checkpoint(a, state, err);
    pthread_mutex_unlock(&a->f->write_lock);
  }
  if (rc == SP_OK && state->has_data) rc = register_source(a, err);
  if (rc != SP_OK) {
    sq_close(self);
    a->f = NULL, a->cols = NULL, a->n_cols = 0, a->table = a->staging = NULL;
  }
  return rc;
}

/* ---- Writing --------------------------------------------------------------------------------------------------- */

/* The SQL a refresh runs, built from the data's columns and the acceleration's primary_key, on_conflict and
 * indexes. */
typedef struct sq_plan {
  sp_buf create;   /* CREATE TABLE <staging> (…) */
  sp_buf insert;   /* INSERT INTO %s (…) VALUES (…) [ON CONFLICT …]: %s is the target table */
  sp_buf indexes;  /* CREATE [UNIQUE] INDEX …; … on the final table */
} sq_plan;

static void plan_free(sq_plan *p) {
  sp_buf_free(&p->create);
  sp_buf_free(&p->insert);
  sp_buf_free(&p->indexes);
}

static int has_column(const sqa_column *cols, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(cols[i].name, name) == 0) return 1;
  return 0;
}

/* Appends `"a", "b"` for colref `ref` after checking each column exists; `what` names the setting. */
static int add_colref(sq_accel *a, sp_buf *b, const char *ref, const char *what, const sqa_column *cols, size_t n,
                      char ***names_out, size_t *n_out, sp_error *err) {
  char **names;
  size_t k;
  SP_TRY(sqa_colref_parse(ref, &names, &k, err));
  int rc = SP_OK;
  for (size_t i = 0; rc == SP_OK && i < k; i++) {
    char *q = sqa_ident(names[i]);
    if (!has_column(cols, n, names[i]))
      rc = sp_fail(err, SP_EINVAL, "dataset \"%s\": %s names column \"%s\", which the data does not have", ds_name(a), what, names[i]);
    else if (q == NULL || (i && sp_buf_append_str(b, ", ") != SP_OK) || sp_buf_append_str(b, q) != SP_OK)
      rc = sp_fail(err, SP_ENOMEM, "out of memory");
    free(q);
  }
  if (rc == SP_OK && names_out) {
    *names_out = names;
    *n_out = k;
  } else {
    sqa_names_free(names, k);
  }
  return rc;
}

static int plan_create(sq_accel *a, sq_plan *p, const sqa_column *cols, size_t n, sp_error *err) {
  const sp_acceleration_spec *acc = &a->base.dataset->acceleration;
  int rc = sp_buf_append_str(&p->create, "CREATE TABLE ") | sp_buf_append_str(&p->create, a->staging) |
           sp_buf_append_str(&p->create, " (");
  for (size_t i = 0; rc == SP_OK && i < n; i++) {
    char *q = sqa_ident(cols[i].name);
    rc = q ? (i ? sp_buf_append_str(&p->create, ", ") : 0) | sp_buf_append_str(&p->create, q) |
                 sp_buf_append_str(&p->create, " ") | sp_buf_append_str(&p->create, cols[i].decl)
           : SP_ENOMEM;
    free(q);
  }
  if (rc != SP_OK) return sp_fail(err, SP_ENOMEM, "out of memory");
  if (acc->primary_key && *acc->primary_key) {
    sp_buf_append_str(&p->create, ", PRIMARY KEY (");
    SP_TRY(add_colref(a, &p->create, acc->primary_key, "primary_key", cols, n, NULL, NULL, err));
    sp_buf_append_str(&p->create, ")");
  }
  /* An on_conflict target other than the primary key needs a uniqueness of its own. */
  for (size_t i = 0; i < acc->on_conflict.count; i++) {
    const char *ref = acc->on_conflict.items[i].key;
    if (acc->primary_key && strcmp(ref, acc->primary_key) == 0) continue;
    sp_buf_append_str(&p->create, ", UNIQUE (");
    SP_TRY(add_colref(a, &p->create, ref, "on_conflict", cols, n, NULL, NULL, err));
    sp_buf_append_str(&p->create, ")");
  }
  return sp_buf_append_str(&p->create, ")") == SP_OK && sp_buf_cstr(&p->create) ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
}

/* ON CONFLICT (target) DO UPDATE SET c = excluded.c, … for an upsert target; ON CONFLICT DO NOTHING for drop. */
static int plan_conflict(sq_accel *a, sq_plan *p, const sqa_column *cols, size_t n, sp_error *err) {
  const sp_params *oc = &a->base.dataset->acceleration.on_conflict;
  const sp_kv *upsert = NULL;
  for (size_t i = 0; i < oc->count; i++) {
    if (strcasecmp(oc->items[i].value, "upsert") == 0) upsert = &oc->items[i];
    else if (strcasecmp(oc->items[i].value, "drop") != 0)
      return sp_fail(err, SP_EINVAL, "dataset \"%s\": on_conflict for %s is \"%s\" (expected drop or upsert)", ds_name(a),
                     oc->items[i].key, oc->items[i].value);
  }
  if (oc->count == 0) return SP_OK;
  if (upsert == NULL) return sp_buf_append_str(&p->insert, " ON CONFLICT DO NOTHING");
  if (oc->count > 1)
    return sp_fail(err, SP_EINVAL, "dataset \"%s\": on_conflict has several targets; only one is allowed unless all are drop", ds_name(a));
  char **target;
  size_t k, set = 0;
  sp_buf_append_str(&p->insert, " ON CONFLICT (");
  SP_TRY(add_colref(a, &p->insert, upsert->key, "on_conflict", cols, n, &target, &k, err));
  sp_buf_append_str(&p->insert, ") DO UPDATE SET ");
  for (size_t i = 0; i < n; i++) {
    int in_target = 0;
    for (size_t j = 0; j < k; j++) in_target |= strcmp(target[j], cols[i].name) == 0;
    char *q = in_target ? NULL : sqa_ident(cols[i].name);
    if (q) {
      if (set++) sp_buf_append_str(&p->insert, ", ");
      sp_buf_append_str(&p->insert, q);
      sp_buf_append_str(&p->insert, " = excluded.");
      sp_buf_append_str(&p->insert, q);
    }
    free(q);
  }
  sqa_names_free(target, k);
  if (set == 0) { /* every column is the key: nothing to update */
    char *d = strstr(p->insert.data, " DO UPDATE SET ");
    p->insert.len = (size_t)(d - p->insert.data);
    sp_buf_append_str(&p->insert, " DO NOTHING");
  }
  return SP_OK;
}

static int plan_insert(sq_accel *a, sq_plan *p, const sqa_column *cols, size_t n, sp_error *err) {
  int rc = sp_buf_append_str(&p->insert, "INSERT INTO %s (");
  for (size_t i = 0; rc == SP_OK && i < n; i++) {
    char *q = sqa_ident(cols[i].name);
    rc = q ? (i ? sp_buf_append_str(&p->insert, ", ") : 0) | sp_buf_append_str(&p->insert, q) : SP_ENOMEM;
    free(q);
  }
  sp_buf_append_str(&p->insert, ") VALUES (");
  for (size_t i = 0; i < n; i++) sp_buf_append_str(&p->insert, i ? ", ?" : "?");
  sp_buf_append_str(&p->insert, ")");
  if (rc != SP_OK) return sp_fail(err, SP_ENOMEM, "out of memory");
  SP_TRY(plan_conflict(a, p, cols, n, err));
  return sp_buf_cstr(&p->insert) ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
}

/* CREATE [UNIQUE] INDEX "<dataset>__<a>_<b>" ON <table> ("a", "b") per `indexes` entry. */
static int plan_indexes(sq_accel *a, sq_plan *p, const sqa_column *cols, size_t n, sp_error *err) {
  const sp_params *ix = &a->base.dataset->acceleration.indexes;
  for (size_t i = 0; i < ix->count; i++) {
    char name[700], **names;
    size_t k, o = (size_t)snprintf(name, sizeof name, "%s_", ds_name(a));
    int unique = strcasecmp(ix->items[i].value, "unique") == 0;
    SP_TRY(sqa_colref_parse(ix->items[i].key, &names, &k, err));
    for (size_t j = 0; j < k && o < sizeof name; j++) o += (size_t)snprintf(name + o, sizeof name - o, "_%s", names[j]);
    sqa_names_free(names, k);
    char *qn = sqa_ident(name);
    int rc = qn ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
    if (rc == SP_OK) {
      sp_buf_append_str(&p->indexes, unique ? "CREATE UNIQUE INDEX " : "CREATE INDEX ");
      sp_buf_append_str(&p->indexes, qn);
      sp_buf_append_str(&p->indexes, " ON ");
      sp_buf_append_str(&p->indexes, a->table);
      sp_buf_append_str(&p->indexes, " (");
      rc = add_colref(a, &p->indexes, ix->items[i].key, "indexes", cols, n, NULL, NULL, err);
      sp_buf_append_str(&p->indexes, ");");
    }
    free(qn);
    SP_TRY(rc);
  }
  return sp_buf_cstr(&p->indexes) ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
}

static int exec(sqlite3 *db, const char *sql, sp_error *err) {
  char *msg = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
  if (rc == SQLITE_OK) return SP_OK;
  sp_fail(err, rc == SQLITE_BUSY ? SP_EBUSY : SP_EIO, "%s", msg ? msg : sqlite3_errstr(rc));
  sqlite3_free(msg);
  return rc == SQLITE_BUSY ? SP_EBUSY : SP_EIO;
}

static int table_exists(sqlite3 *db, const char *name) {
  sqlite3_stmt *st = NULL;
  int found = 0;
  if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    found = sqlite3_step(st) == SQLITE_ROW;
  }
  sqlite3_finalize(st);
  return found;
}

/* An append keeps the table: the data must have its columns. */
static int same_columns(sq_accel *a, const sqa_column *cols, size_t n, sp_error *err) {
  pthread_rwlock_rdlock(&a->lock);
  int same = n == a->n_cols;
  for (size_t i = 0; same && i < n; i++)
    same = strcmp(cols[i].name, a->cols[i].name) == 0 && strcmp(cols[i].format, a->cols[i].format) == 0;
  pthread_rwlock_unlock(&a->lock);
  return same ? SP_OK : sp_fail(err, SP_EINVAL, "dataset \"%s\": the appended data has other columns than the sqlite table", ds_name(a));
}

static int insert_rows(sq_accel *a, const sq_plan *p, const char *target, const sqa_column *cols, size_t n,
                       struct ArrowArrayStream *stream, sp_error *err) {
  sqlite3 *db = a->f->writer;
  size_t len = p->insert.len + strlen(target) + 1;
  char *sql = malloc(len);
  sqlite3_stmt *st = NULL;
  if (sql == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  snprintf(sql, len, p->insert.data, target);
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK ? SP_OK : sp_fail(err, SP_EIO, "%s", sqlite3_errmsg(db));
  free(sql);
  if (rc == SP_OK) rc = sqa_write(db, st, cols, n, stream, NULL, err);
  sqlite3_finalize(st);
  return rc;
}

/* The checkpoint row: rows, refresh time, schema and change-stream position (NULL: none). Retention keeps the
 * time and the position of the copy it rewrites. */
static int write_checkpoint(sq_accel *a, const sqa_column *cols, size_t n, const char *position, int64_t *rows, sp_error *err) {
  sqlite3 *db = a->f->writer;
  sqlite3_stmt *st = NULL;
  char *count = malloc(strlen(a->table) + 32), *schema = schema_json(cols, n);
  int rc = count && schema ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK) {
    sprintf(count, "SELECT count(*) FROM %s", a->table);
    rc = sqlite3_prepare_v2(db, count, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW ? SP_OK
         : sp_fail(err, SP_EIO, "%s", sqlite3_errmsg(db));
    *rows = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  static const char upsert[] =
      "INSERT OR REPLACE INTO " SQ_CHECKPOINT " (dataset_name, rows, refreshed_at_ms, schema, stream_position) VALUES (?1, ?2, "
      "CASE WHEN ?5 THEN (SELECT refreshed_at_ms FROM " SQ_CHECKPOINT " WHERE dataset_name = ?1) ELSE ?3 END, ?4, "
      "CASE WHEN ?5 THEN (SELECT stream_position FROM " SQ_CHECKPOINT " WHERE dataset_name = ?1) ELSE ?6 END)";
  if (rc == SP_OK && sqlite3_prepare_v2(db, upsert, -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, ds_name(a), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, *rows);
    sqlite3_bind_int64(st, 3, now_ms());
    sqlite3_bind_text(st, 4, schema, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, a->keep_refresh_time);
    if (position) sqlite3_bind_text(st, 6, position, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) rc = sp_fail(err, SP_EIO, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
  } else if (rc == SP_OK) {
    rc = sp_fail(err, SP_EIO, "%s", sqlite3_errmsg(db));
  }
  free(count);
  free(schema);
  return rc;
}

/* The whole refresh, in one transaction on the writer. Caller holds the write lock. */
static int write_update(sq_accel *a, sp_data_update *u, const sqa_column *cols, size_t n, int64_t *rows, sp_error *err) {
  sq_plan p = {0};
  sqlite3 *db = a->f->writer;
  int replace = u->type == SP_UPDATE_OVERWRITE || !table_exists(db, ds_name(a));
  int rc = plan_create(a, &p, cols, n, err);
  if (rc == SP_OK) rc = plan_insert(a, &p, cols, n, err);
  if (rc == SP_OK) rc = plan_indexes(a, &p, cols, n, err);
  if (rc == SP_OK && !replace) rc = same_columns(a, cols, n, err);
  if (rc == SP_OK) rc = exec(db, "BEGIN IMMEDIATE", err);
  if (rc != SP_OK) {
    plan_free(&p);
    return rc;
  }
  if (replace) {
    char drop[1300];
    snprintf(drop, sizeof drop, "DROP TABLE IF EXISTS %s", a->staging);
    rc = exec(db, drop, err);
    if (rc == SP_OK) rc = exec(db, p.create.data, err);
  }
  if (rc == SP_OK) rc = insert_rows(a, &p, replace ? a->staging : a->table, cols, n, &u->stream, err);
  if (rc == SP_OK && replace) {
    size_t len = 2 * strlen(a->table) + strlen(a->staging) + 64;
    char *swap = malloc(len);
    if (swap) snprintf(swap, len, "DROP TABLE IF EXISTS %s; ALTER TABLE %s RENAME TO %s", a->table, a->staging, a->table);
    rc = swap ? exec(db, swap, err) : sp_fail(err, SP_ENOMEM, "out of memory");
    free(swap);
    if (rc == SP_OK && p.indexes.len) rc = exec(db, p.indexes.data, err);
  }
  if (rc == SP_OK) rc = write_checkpoint(a, cols, n, u->position, rows, err);
  if (rc == SP_OK) rc = exec(db, "COMMIT", err);
  if (rc != SP_OK) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  plan_free(&p);
  return rc;
}

/* ---- Change streams ---------------------------------------------------------------------------------------- */

/* The "_op" text of row j of a utf8 (or large utf8) array. */
static int op_is_delete(const struct ArrowArray *a, const char *format, int64_t j) {
  int64_t x = j + a->offset, lo, hi;
  if (format[0] == 'U') lo = ((const int64_t *)a->buffers[1])[x], hi = ((const int64_t *)a->buffers[1])[x + 1];
  else lo = ((const int32_t *)a->buffers[1])[x], hi = ((const int32_t *)a->buffers[1])[x + 1];
  return hi - lo == 6 && memcmp((const char *)a->buffers[2] + lo, "delete", 6) == 0;
}

/* DELETE FROM t WHERE "k1" IS ?1 AND …, and INSERT INTO t ("c1", …) VALUES (?, …) for the stream's columns
 * after "_op". key[] receives the stream column of each key. */
static int change_statements(sq_accel *a, const sp_data_update *u, const struct ArrowSchema *s, size_t *key, sqlite3_stmt **del,
                             sqlite3_stmt **ins, sp_error *err) {
  sp_buf d = {0}, in = {0}, vals = {0};
  int rc = SP_OK;
  sp_buf_append_str(&d, "DELETE FROM "), sp_buf_append_str(&d, a->table), sp_buf_append_str(&d, " WHERE ");
  for (size_t k = 0; rc == SP_OK && k < u->n_primary_key; k++) {
    key[k] = 0;
    for (int64_t c = 1; c < s->n_children && !key[k]; c++)
      if (strcmp(s->children[c]->name, u->primary_key[k]) == 0) key[k] = (size_t)c;
    char *q = sqa_ident(u->primary_key[k]);
    if (key[k] == 0) rc = sp_fail(err, SP_EINVAL, "the changes have no key column \"%s\"", u->primary_key[k]);
    else if (q == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
    else sp_buf_append_str(&d, k ? " AND " : ""), sp_buf_append_str(&d, q), sp_buf_append_str(&d, " IS ?");
    free(q);
  }
  sp_buf_append_str(&in, "INSERT INTO "), sp_buf_append_str(&in, a->table), sp_buf_append_str(&in, " (");
  for (int64_t c = 1; rc == SP_OK && c < s->n_children; c++) {
    char *q = sqa_ident(s->children[c]->name);
    if (q == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
    else sp_buf_append_str(&in, c > 1 ? ", " : ""), sp_buf_append_str(&in, q), sp_buf_append_str(&vals, c > 1 ? ", ?" : "?");
    free(q);
  }
  sp_buf_append_str(&in, ") VALUES (");
  if (rc == SP_OK && (sp_buf_append(&in, vals.data, vals.len) != SP_OK || sp_buf_append_str(&in, ")") != SP_OK ||
                      !sp_buf_cstr(&in) || !sp_buf_cstr(&d)))
    rc = sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK && (sqlite3_prepare_v2(a->f->writer, d.data, -1, del, NULL) != SQLITE_OK ||
                      sqlite3_prepare_v2(a->f->writer, in.data, -1, ins, NULL) != SQLITE_OK))
    rc = sp_fail(err, SP_EIO, "%s", sqlite3_errmsg(a->f->writer));
  sp_buf_free(&d), sp_buf_free(&in), sp_buf_free(&vals);
  return rc;
}

static int step_reset(sqlite3 *db, sqlite3_stmt *st, sp_error *err) {
  int rc = sqlite3_step(st) == SQLITE_DONE ? SP_OK : sp_fail(err, SP_EIO, "%s", sqlite3_errmsg(db));
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc;
}

/* One batch of changes: every key deleted, the rows that are not deletions inserted. */
static int change_batch(sq_accel *a, const struct ArrowSchema *s, const sqa_column *in, const struct ArrowArray *b,
                        const size_t *key, size_t n_key, sqlite3_stmt *del, sqlite3_stmt *ins, sp_error *err) {
  sqlite3 *db = a->f->writer;
  int rc = SP_OK;
  for (int64_t j = 0; rc == SP_OK && j < b->length; j++) {
    int64_t row = j + b->offset;
    for (size_t k = 0; rc == SP_OK && k < n_key; k++)
      if (sqa_bind(del, (int)k + 1, b->children[key[k]], &in[key[k]], s->children[key[k]]->format, row) != SQLITE_OK)
        rc = sp_fail(err, SP_EIO, "%s", sqlite3_errmsg(db));
    if (rc == SP_OK) rc = step_reset(db, del, err);
    if (rc != SP_OK || op_is_delete(b->children[0], s->children[0]->format, row)) continue;
    for (int64_t c = 1; rc == SP_OK && c < s->n_children; c++)
      if (sqa_bind(ins, (int)c, b->children[c], &in[c], s->children[c]->format, row) != SQLITE_OK)
        rc = sp_fail(err, SP_EIO, "%s", sqlite3_errmsg(db));
    if (rc == SP_OK) rc = step_reset(db, ins, err);
  }
  return rc;
}

/* Reads the stream of changes into the table (caller: write lock, open transaction). */
static int change_rows(sq_accel *a, sp_data_update *u, const struct ArrowSchema *s, sp_error *err) {
  size_t n = (size_t)s->n_children, *key = calloc(u->n_primary_key ? u->n_primary_key : 1, sizeof *key);
  sqa_column *in = calloc(n ? n : 1, sizeof *in);
  sqlite3_stmt *del = NULL, *ins = NULL;
  int rc = key && in ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t c = 1; rc == SP_OK && c < n; c++) {
    char decl[32];
    rc = sqa_map_arrow(s->children[c]->format, &in[c], decl, sizeof decl, err);
  }
  if (rc == SP_OK) rc = change_statements(a, u, s, key, &del, &ins, err);
  while (rc == SP_OK) {
    struct ArrowArray b = {0};
    if (u->stream.get_next(&u->stream, &b) != 0) {
      const char *m = u->stream.get_last_error(&u->stream);
      rc = sp_fail(err, SP_EIO, "%s", m ? m : "could not read the changes");
    }
    if (rc != SP_OK || b.release == NULL) break;
    rc = change_batch(a, s, in, &b, key, u->n_primary_key, del, ins, err);
    sp_array_release(&b);
  }
  sqlite3_finalize(del);
  sqlite3_finalize(ins);
  free(key);
  free(in);
  return rc;
}

/* SP_UPDATE_CHANGES, in one transaction with the checkpoint row (rows, position): readers and a crash see all of
 * it or none. The columns stay those of the copy. */
static int apply_changes(sq_accel *a, sp_data_update *u, int64_t *rows, sp_error *err) {
  struct ArrowSchema s = {0};
  int rc = SP_OK;
  if (!a->registered) rc = sp_fail(err, SP_EINVAL, "dataset \"%s\": changes arrived before a full load", ds_name(a));
  else if (u->n_primary_key == 0) rc = sp_fail(err, SP_EINVAL, "dataset \"%s\": changes need a primary key", ds_name(a));
  else if (u->stream.get_schema(&u->stream, &s) != 0 || s.n_children < 1 || strcmp(s.children[0]->name, "_op") != 0 ||
           (strcmp(s.children[0]->format, "u") != 0 && strcmp(s.children[0]->format, "U") != 0))
    rc = sp_fail(err, SP_EINVAL, "dataset \"%s\": changes must start with a utf8 column \"_op\"", ds_name(a));
  pthread_mutex_lock(&a->f->write_lock);
  if (rc == SP_OK) rc = exec(a->f->writer, "BEGIN IMMEDIATE", err);
  if (rc == SP_OK) {
    rc = change_rows(a, u, &s, err);
    pthread_rwlock_rdlock(&a->lock);
    if (rc == SP_OK) rc = write_checkpoint(a, a->cols, a->n_cols, u->position, rows, err);
    pthread_rwlock_unlock(&a->lock);
    if (rc == SP_OK) rc = exec(a->f->writer, "COMMIT", err);
    if (rc != SP_OK) sqlite3_exec(a->f->writer, "ROLLBACK", NULL, NULL, NULL);
  }
  pthread_mutex_unlock(&a->f->write_lock);
  sp_schema_release(&s);
  sp_stream_release(&u->stream);
  if (rc == SP_OK) a->rows = *rows;
  else sp_error_prefix(err, "could not apply changes to dataset \"%s\"", ds_name(a));
  return rc;
}

/* The position stored with the last committed update ("" when none). */
static int sq_position(sp_accelerator *self, char *buf, size_t n, sp_error *err) {
  sq_accel *a = (sq_accel *)self;
  sqlite3_stmt *st = NULL;
  (void)err;
  buf[0] = '\0';
  pthread_mutex_lock(&a->f->write_lock);
  if (sqlite3_prepare_v2(a->f->writer, "SELECT stream_position FROM " SQ_CHECKPOINT " WHERE dataset_name = ?", -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, ds_name(a), -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) snprintf(buf, n, "%s", (const char *)sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
  pthread_mutex_unlock(&a->f->write_lock);
  return SP_OK;
}

static int sq_add_data(sp_accelerator *self, sp_data_update *u, int64_t *out_rows, sp_error *err) {
  sq_accel *a = (sq_accel *)self;
  struct ArrowSchema schema = {0};
  sqa_column *cols = NULL;
  size_t n = 0;
  int64_t rows = 0;
  if (u->type == SP_UPDATE_CHANGES) {
    if (u->stream.release == NULL) return SP_OK; /* "the stream is live": nothing to apply */
    SP_TRY(apply_changes(a, u, &rows, err));
    if (out_rows) *out_rows = rows;
    return SP_OK;
  }
  int rc = u->stream.get_schema(&u->stream, &schema) != 0 ? sp_fail(err, SP_EIO, "could not read the schema of the data for dataset \"%s\"", ds_name(a))
                                                           : SP_OK;
  if (rc == SP_OK) rc = columns_of(a, &schema, &cols, err);
  if (rc == SP_OK) n = (size_t)schema.n_children;
  sp_schema_release(&schema);
  if (rc == SP_OK) {
    pthread_mutex_lock(&a->f->write_lock);
    rc = write_update(a, u, cols, n, &rows, err);
    pthread_mutex_unlock(&a->f->write_lock);
    if (rc != SP_OK && rc != SP_ENOTSUP && rc != SP_EINVAL)
      sp_error_prefix(err, "could not write dataset \"%s\" into sqlite file \"%s\"", ds_name(a), a->f->path);
  }
  sp_stream_release(&u->stream);
  if (rc != SP_OK) {
    sqa_columns_free(cols, n);
    return rc;
  }
  pthread_rwlock_wrlock(&a->lock);
  int changed = !a->registered || n != a->n_cols;
  for (size_t i = 0; !changed && i < n; i++)
    changed = strcmp(cols[i].name, a->cols[i].name) != 0 || strcmp(cols[i].format, a->cols[i].format) != 0;
  sqa_columns_free(a->cols, a->n_cols);
  a->cols = cols;
  a->n_cols = n;
  pthread_rwlock_unlock(&a->lock);
  a->rows = rows;
  /* Registering again replaces the source, with a moment in which a query could not find it: only when the
   * columns changed. */
  if (changed) SP_TRY(register_source(a, err));
  if (out_rows) *out_rows = rows;
  return SP_OK;
}

static int sq_table_sql(sp_accelerator *self, char *buf, size_t n, sp_error *err);

/* Retention: the rows for which the condition is not true, read through the engine (which evaluates the
 * runtime's DuckDB expression exactly as written) and written back like a full refresh: atomic for readers,
 * the previous copy intact on failure. */
static int sq_delete_where(sp_accelerator *self, const char *condition, int64_t *out_deleted, sp_error *err) {
  sq_accel *a = (sq_accel *)self;
  char table[700];
  int64_t before = a->rows, after = 0;
  if (!a->registered) {
    if (out_deleted) *out_deleted = 0;
    return SP_OK;
  }
  SP_TRY(sq_table_sql(self, table, sizeof table, err));
  size_t n = strlen(table) + strlen(condition) + 64;
  char *sql = malloc(n);
  if (sql == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  snprintf(sql, n, "SELECT * FROM %s WHERE (%s) IS NOT TRUE", table, condition);
  sp_data_update u = {.type = SP_UPDATE_OVERWRITE};
  int rc = sp_engine_query_internal(self->engine, sql, &u.stream, err);
  free(sql);
  if (rc != SP_OK) return rc;
  a->keep_refresh_time = 1;
  rc = sq_add_data(self, &u, &after, err);
  a->keep_refresh_time = 0;
  if (rc == SP_OK && out_deleted) *out_deleted = before >= 0 ? before - after : -1;
  return rc;
}

static int sq_table_sql(sp_accelerator *self, char *buf, size_t n, sp_error *err) {
  char lit[600];
  if (sp_sql_literal(lit, sizeof lit, self->dataset->name) != 0 || (size_t)snprintf(buf, n, "sp_source_scan(%s)", lit) >= n)
    return sp_fail(err, SP_EINVAL, "buffer too small");
  return SP_OK;
}

const sp_accelerator_module sp_accelerator_sqlite = {
    .abi = SP_ACCELERATOR_ABI,
    .name = "sqlite",
    .prefix = "sqlite",
    .params = sq_params,
    .instance_size = sizeof(sq_accel),
    .caps = SP_ACCEL_CAP_MEMORY | SP_ACCEL_CAP_FILE | SP_ACCEL_CAP_APPEND | SP_ACCEL_CAP_CHANGES,
    .open = sq_open,
    .close = sq_close,
    .add_data = sq_add_data,
    .table_sql = sq_table_sql,
    .delete_where = sq_delete_where,
    .position = sq_position,
};
