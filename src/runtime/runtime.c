/* SPDX-License-Identifier: Apache-2.0
 *
 * The runtime: datasets (connector + accelerator + refresh task), views, and the engine serving them.
 *
 * Each dataset has one refresh thread that loops: wait until due (interval, retry backoff) or a manual
 * trigger, then refresh. One thread per dataset keeps a manual refresh and a scheduled one from ever
 * overlapping, and lets datasets load in parallel at start. A failed refresh keeps the last good copy
 * serving, sets the status to Error and retries with Fibonacci backoff (1 s … 300 s, ±30 % jitter).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "runtime/localpod_link.h"
#include "runtime/registry.h"
#include "runtime/runtime_int.h"
#include "spice/accelerator.h"
#include "spice/arrow.h"
#include "spice/connector.h"
#include "spice/log.h"
#include "spice/runtime.h"
#include "spice/secrets.h"
#include "spice/sqltext.h"

size_t sp__pod_spec_count(const sp_pod *pod) {
  size_t n = pod->n_datasets;
  for (size_t i = 0; i < pod->n_views; i++) n += pod->views[i].accelerated != NULL;
  return n;
}

const sp_dataset_spec *sp__pod_spec(const sp_pod *pod, size_t i) {
  if (i < pod->n_datasets) return &pod->datasets[i];
  i -= pod->n_datasets;
  for (size_t v = 0; v < pod->n_views; v++)
    if (pod->views[v].accelerated && i-- == 0) return pod->views[v].accelerated;
  return NULL;
}

int64_t sp__now_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

const char *sp_status_kind_name(sp_status_kind s) {
  switch (s) {
  case SP_STATUS_INITIALIZING: return "Initializing";
  case SP_STATUS_READY: return "Ready";
  case SP_STATUS_DISABLED: return "Disabled";
  case SP_STATUS_ERROR: return "Error";
  case SP_STATUS_REFRESHING: return "Refreshing";
  case SP_STATUS_SHUTTING_DOWN: return "ShuttingDown";
  }
  return "Unknown";
}

/* A uniform number in [0, 1) from a per-thread generator (refresh threads draw jitter concurrently). */
static double uniform01(void) {
  static __thread unsigned seed;
  if (seed == 0) seed = (unsigned)sp__now_ms() ^ (unsigned)(uintptr_t)&seed;
  return (double)rand_r(&seed) / ((double)RAND_MAX + 1.0);
}

/* Fibonacci backoff from 1 s, capped at 300 s, with ±30 % jitter (spice-compat §3.3). */
static int64_t backoff_ms(int attempt) {
  int64_t a = 1000, b = 1000;
  for (int i = 1; i < attempt && b < 300000; i++) {
    int64_t c = a + b;
    a = b;
    b = c;
  }
  int64_t base = attempt <= 1 ? 1000 : (a > 300000 ? 300000 : a);
  double jitter = 0.7 + 0.6 * uniform01();
  return (int64_t)((double)base * jitter);
}

/* The next refresh after one that just ended: the interval, moved by up to ±refresh_jitter_max (default 10 %
 * of the interval) when jitter is enabled, so that replicas do not hit a source at the same moment. */
static int64_t next_refresh_ms(const sp_dataset *ds, int64_t now) {
  const sp_acceleration_spec *a = &ds->spec->acceleration;
  int64_t iv = a->refresh_check_interval_ms;
  if (!ds->accelerated || iv <= 0) return -1;
  if (!a->refresh_jitter_enabled) return now + iv;
  int64_t max = a->refresh_jitter_max_ms >= 0 ? a->refresh_jitter_max_ms : iv / 10;
  int64_t j = max > 0 ? (int64_t)(uniform01() * (double)max) : 0;
  int64_t next = now + (uniform01() < 0.5 ? iv + j : iv - j);
  return next > now ? next : now;
}

/* ---- Opening modules -------------------------------------------------------------------------------------- */

int sp__open_connector(sp_dataset *ds, sp_error *err) {
  return sp_connector_instance_create(ds->cmod, ds->spec, &ds->spec->params, ds->rt->secrets, ds->rt->engine,
                                      &ds->conn, err);
}

/* Whether the engine's param table has `key` (disable_query_push_down goes to engines that push whole queries). */
static bool engine_reads(const sp_accelerator_module *m, const char *key) {
  for (const sp_param_spec *p = m->params; p && p->name; p++)
    if (strcmp(p->name, key) == 0) return true;
  return false;
}

static int open_accelerator(sp_dataset *ds, sp_accel_state *state, sp_error *err) {
  const sp_acceleration_spec *a = &ds->spec->acceleration;
  char what[300];
  if (a->mode == SP_ACCEL_FILE && !(ds->amod->caps & SP_ACCEL_CAP_FILE))
    return sp_fail(err, SP_EINVAL, "dataset \"%s\": File mode not supported for %s engine", ds->spec->name, ds->amod->name);
  /* Params the runtime itself reads are taken out before the engine's table checks the rest. */
  sp_params engine_params = {0}, params = {0};
  for (size_t i = 0; i < a->params.count; i++) {
    const sp_kv *kv = &a->params.items[i];
    if (strcmp(kv->key, "file_watcher") == 0) ds->file_watch = strcasecmp(kv->value, "enabled") == 0 || strcasecmp(kv->value, "true") == 0;
    else if (strcmp(kv->key, "disable_query_push_down") != 0 || engine_reads(ds->amod, kv->key))
      sp_params_set(&engine_params, kv->key, kv->value, kv->line, kv->col);
  }
  engine_params.file = a->params.file;
  snprintf(what, sizeof what, "acceleration of dataset \"%s\"", ds->spec->name);
  int vrc = sp_params_validate(ds->amod->params, ds->amod->prefix, &engine_params, ds->rt->secrets, what, &params, err);
  sp_params_free(&engine_params);
  SP_TRY(vrc);
  sp_accelerator *acc = calloc(1, ds->amod->instance_size);
  if (acc == NULL) {
    sp_params_free(&params);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  acc->module = ds->amod;
  acc->dataset = ds->spec;
  acc->params = params;
  acc->engine = ds->rt->engine;
  acc->data_dir = ds->rt->data_dir;
  int rc = ds->amod->open(acc, state, err);
  if (rc != SP_OK) {
    sp_params_free(&acc->params);
    free(acc);
    return rc;
  }
  ds->accel = acc;
  return SP_OK;
}

/* ---- Catalog ---------------------------------------------------------------------------------------------- */

/* A federated dataset's scan: the connector's scan (projection pushed, the query's stop flag passed) or
 * get_all_data. */
static int source_open(void *ctx, const char *const *columns, size_t n_columns, int64_t limit,
                       const char *filter_query, volatile int *stop, struct ArrowArrayStream *out, sp_error *err) {
  sp_dataset *ds = ctx;
  if (ds->conn->module->scan) {
    sp_scan scan = {.columns = columns, .n_columns = n_columns, .limit = limit, .filter_query = filter_query,
                    .stop = stop};
    return ds->conn->module->scan(ds->conn, &scan, out, err);
  }
  return ds->conn->module->get_all_data(ds->conn, out, err);
}

static int remote_query(void *ctx, const char *sql, const struct ArrowSchema *want, volatile int *stop,
                        struct ArrowArrayStream *out, sp_error *err) {
  sp_dataset *ds = ctx;
  return ds->cmod->query(ds->conn, sql, want, stop, out, err);
}

/* Whole-query pushdown for a federated dataset whose connector runs SQL (spice/sql_dialect.h). Optional: a
 * connector that cannot describe its server leaves the dataset to per-table scans. */
static void declare_remote(sp_dataset *ds) {
  sp_remote_source r = {0};
  sp_error err = {0};
  if (ds->cmod->remote == NULL || ds->cmod->query == NULL || ds->cmod->remote(ds->conn, &r, &err) != SP_OK) return;
  r.run = remote_query;
  r.ctx = ds;
  if (sp_engine_set_source_remote(ds->rt->engine, ds->spec->name, &r, &err) != SP_OK)
    sp_log_warn("dataset \"%s\": whole-query pushdown is off: %s", ds->spec->name, err.msg);
}

/* The table expression that reads the source itself (federated). */
static int source_table_sql(sp_dataset *ds, char *table_sql, size_t n, sp_error *err) {
  if (ds->native_sql) {
    snprintf(table_sql, n, "%s", ds->native_sql);
    return SP_OK;
  }
  struct ArrowSchema schema;
  SP_TRY(ds->cmod->get_schema(ds->conn, &schema, err));
  int rc = sp_engine_register_source(ds->rt->engine, ds->spec->name, &schema, source_open, ds, err);
  sp_schema_release(&schema);
  SP_TRY(rc);
  if (!ds->accelerated) declare_remote(ds);
  char lit[600];
  if (sp_sql_literal(lit, sizeof lit, ds->spec->name) != 0) return sp_fail(err, SP_EINVAL, "dataset name too long");
  snprintf(table_sql, n, "sp_source_scan(%s)", lit);
  return SP_OK;
}

int sp__define_dataset_table(sp_dataset *ds, sp_error *err) {
  char table_sql[2048];
  unsigned flags = ds->spec->mode == SP_MODE_READ_WRITE ? SP_TABLE_WRITABLE : 0;
  if (ds->accelerated) {
    SP_TRY(ds->amod->table_sql(ds->accel, table_sql, sizeof table_sql, err));
  } else {
    SP_TRY(source_table_sql(ds, table_sql, sizeof table_sql, err));
  }
  return sp_engine_define_table(ds->rt->engine, ds->spec->name, table_sql, flags, err);
}

static int setup_native_scan(sp_dataset *ds);

/* on_zero_results: use_source — a hidden view over the source for queries that find nothing accelerated. */
static void setup_zero_results_source(sp_dataset *ds) {
  char table_sql[2048];
  sp_error err = {0};
  if (setup_native_scan(ds) != SP_OK || ds->conn == NULL || source_table_sql(ds, table_sql, sizeof table_sql, &err) != SP_OK ||
      sp_engine_set_zero_results_source(ds->rt->engine, ds->spec->name, table_sql, &err) != SP_OK)
    sp_log_warn("dataset \"%s\": on_zero_results: use_source is off: %s", ds->spec->name,
                err.msg[0] ? err.msg : "its source cannot be read now");
}

/* ready_state: on_registration — until its first load, an accelerated dataset answers from its source. */
static int serve_from_source(sp_dataset *ds) {
  char table_sql[2048];
  sp_error err = {0};
  if (setup_native_scan(ds) != SP_OK || ds->conn == NULL || source_table_sql(ds, table_sql, sizeof table_sql, &err) != SP_OK ||
      sp_engine_define_table(ds->rt->engine, ds->spec->name, table_sql, 0, &err) != SP_OK) {
    sp_log_warn("dataset \"%s\": cannot answer from its source before the first load: %s", ds->spec->name, err.msg);
    return -1;
  }
  ds->registered_ready = 1;
  return 0;
}

static void define_views_locked(sp_runtime *rt);

/* Views depend on datasets: define each one that is not yet defined once everything it reads exists. */
void sp__define_views(sp_runtime *rt) {
  pthread_rwlock_rdlock(&rt->ds_lock);
  define_views_locked(rt);
  pthread_rwlock_unlock(&rt->ds_lock);
}

static void define_views_locked(sp_runtime *rt) {
  for (size_t i = 0; i < rt->pod->n_views; i++) {
    const sp_view_spec *v = &rt->pod->views[i];
    if (v->accelerated || sp_engine_has_table(rt->engine, v->name)) continue;
    sp_error err = {0};
    if (sp_engine_define_view(rt->engine, v->name, v->sql, &err) == SP_OK)
      sp_log_info("view \"%s\" registered", v->name);
    else
      sp_log_debug("view \"%s\" not registered yet: %s", v->name, err.msg);
  }
}

/* ---- Refresh ---------------------------------------------------------------------------------------------- */

static void refresh_and_schedule(sp_dataset *ds, char *manual_sql, int manual_mode, uint64_t serving) {
  sp_runtime *rt = ds->rt;
  const sp_acceleration_spec *a = &ds->spec->acceleration;
  sp_error err = {0};
  pthread_mutex_lock(&rt->lock);
  const char *sql = manual_sql ? manual_sql : ds->refresh_sql ? ds->refresh_sql : a->refresh_sql;
  char *sql_copy = sql ? strdup(sql) : NULL;
  if (ds->ready_once) ds->status = SP_STATUS_REFRESHING;
  pthread_mutex_unlock(&rt->lock);
  sp_refresh_job job = {.refresh_sql = sql_copy, .mode = manual_mode >= 0 ? (sp_refresh_mode)manual_mode : a->refresh_mode};
  /* The version moves before the swap too: a result cached while the refresh runs is never served after it. */
  __atomic_add_fetch(&rt->data_version, 1, __ATOMIC_RELEASE);
  int64_t started = sp__now_ms();
  int locked = job.mode != SP_REFRESH_CHANGES; /* a write never overlaps a refresh (write.c) */
  if (locked) sp__dataset_write_lock(ds);
  int rc = sp__dataset_refresh(ds, &job, &err);
  if (locked) sp__dataset_write_unlock(ds);
  free(sql_copy);
  pthread_mutex_lock(&rt->lock);
  int64_t now = sp__now_ms();
  if (rc == SP_OK) {
    __atomic_add_fetch(&rt->data_version, 1, __ATOMIC_RELEASE);
    ds->status = SP_STATUS_READY;
    ds->error[0] = '\0';
    ds->ready_once = 1;
    ds->attempt = 0;
    ds->last_refresh_ms = now;
    ds->last_load_ms = now - started;
    ds->next_due_ms = next_refresh_ms(ds, now);
  } else {
    ds->status = SP_STATUS_ERROR;
    snprintf(ds->error, sizeof ds->error, "%s", err.msg);
    ds->attempt++;
    if (ds->accelerated) ds->refresh_errors++;
    int retry = a->refresh_retry_enabled || !ds->accelerated;
    int64_t max = a->refresh_retry_max_attempts;
    int permanent = rc == SP_EINVAL || rc == SP_ENOTSUP || rc == SP_EDENIED;
    if (retry && !permanent && (max < 0 || ds->attempt <= max)) {
      int64_t delay = backoff_ms(ds->attempt);
      ds->next_due_ms = now + delay;
      sp_log_warn("dataset \"%s\": %s (retrying in %.1f s)", ds->spec->name, err.msg, (double)delay / 1000.0);
    } else {
      ds->next_due_ms = next_refresh_ms(ds, now);
      sp_log_error("dataset \"%s\": %s", ds->spec->name, err.msg);
    }
  }
  ds->generation++;
  if (serving > ds->served) ds->served = serving;
  pthread_cond_broadcast(&rt->cond);
  pthread_mutex_unlock(&rt->lock);
  if (rc == SP_OK) sp__define_views(rt);
  sp__localpod_refreshed(ds, rc);
}

/* The earlier of two due times, -1 meaning never. */
static int64_t earliest(int64_t a, int64_t b) { return a < 0 ? b : b < 0 ? a : a < b ? a : b; }

/* Runs retention if it is due; called and returns with rt->lock held. */
static void retention_if_due(sp_dataset *ds) {
  sp_runtime *rt = ds->rt;
  if (ds->next_retention_ms < 0 || sp__now_ms() < ds->next_retention_ms || !ds->ready_once) return;
  ds->next_retention_ms = sp__now_ms() + ds->spec->acceleration.retention_check_interval_ms;
  pthread_mutex_unlock(&rt->lock);
  sp_error err = {0};
  __atomic_add_fetch(&rt->data_version, 1, __ATOMIC_RELEASE);
  if (sp__dataset_retention(ds, &err) != SP_OK) sp_log_warn("[retention] dataset \"%s\": %s", ds->spec->name, err.msg);
  __atomic_add_fetch(&rt->data_version, 1, __ATOMIC_RELEASE);
  pthread_mutex_lock(&rt->lock);
}

static void *dataset_thread(void *arg) {
  sp_dataset *ds = arg;
  sp_runtime *rt = ds->rt;
  if (ds->accelerated && ds->spec->acceleration.refresh_mode == SP_REFRESH_CHANGES) {
    sp__changes_run(ds); /* changes.c: the change stream instead of scheduled refreshes */
    return NULL;
  }
  pthread_mutex_lock(&rt->lock);
  for (;;) {
    while (!rt->stopping && !ds->stop && !ds->manual && (ds->next_due_ms < 0 || sp__now_ms() < ds->next_due_ms)) {
      retention_if_due(ds);
      int64_t due = earliest(ds->next_due_ms, ds->next_retention_ms);
      if (rt->stopping || ds->stop || ds->manual || (ds->next_due_ms >= 0 && sp__now_ms() >= ds->next_due_ms)) break;
      if (due < 0) {
        pthread_cond_wait(&rt->cond, &rt->lock);
      } else {
        struct timespec ts;
        ts.tv_sec = (time_t)(due / 1000);
        ts.tv_nsec = (long)(due % 1000) * 1000000L;
        pthread_cond_timedwait(&rt->cond, &rt->lock, &ts);
      }
    }
    if (rt->stopping || ds->stop) break;
    char *manual_sql = ds->manual ? ds->manual_sql : NULL;
    uint64_t serving = ds->manual ? ds->requested : 0;
    int manual_mode = ds->manual ? ds->manual_mode : -1;
    ds->manual = 0;
    ds->manual_sql = NULL;
    pthread_mutex_unlock(&rt->lock);
    refresh_and_schedule(ds, manual_sql, manual_mode, serving);
    free(manual_sql);
    pthread_mutex_lock(&rt->lock);
  }
  pthread_mutex_unlock(&rt->lock);
  return NULL;
}

/* ---- Life cycle ------------------------------------------------------------------------------------------- */

static int mkdir_p(const char *path) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
      *p = '/';
    }
  return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* A federated dataset whose source DuckDB can open itself is read natively by the engine (full pushdown).
 * Its path must be allowed before the sandbox locks, so the connector is opened now; if that fails (the
 * source is missing), the dataset falls back to connector scans once it loads. */
static int setup_native_scan(sp_dataset *ds) {
  char sql[8800], path[4096];
  sp_error err = {0};
  struct stat st;
  if (ds->cmod->native_scan == NULL || sp__open_connector(ds, &err) != SP_OK) return SP_OK;
  if (ds->cmod->native_scan(ds->conn, sql, sizeof sql, path, sizeof path, &err) != SP_OK) return SP_OK;
  if (stat(path, &st) != 0 || sp_engine_allow_path(ds->rt->engine, path, S_ISDIR(st.st_mode), &err) != SP_OK) return SP_OK;
  ds->native_sql = strdup(sql);
  return SP_OK;
}

static int setup_dataset(sp_runtime *rt, sp_dataset *ds, sp_error *err);
static int setup_accelerator(sp_runtime *rt, sp_dataset *ds, sp_error *err);

int sp__dataset_create(sp_runtime *rt, const sp_dataset_spec *spec, sp_dataset **out, sp_error *err) {
  sp_dataset *ds = calloc(1, sizeof *ds);
  if (ds == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  ds->spec = spec;
  int rc = setup_dataset(rt, ds, err);
  if (rc != SP_OK) {
    sp__dataset_destroy(ds);
    return rc;
  }
  *out = ds;
  return SP_OK;
}

void sp__dataset_stop(sp_dataset *ds) {
  pthread_mutex_lock(&ds->rt->lock);
  ds->stop = 1;
  pthread_cond_broadcast(&ds->rt->cond);
  pthread_mutex_unlock(&ds->rt->lock);
  if (ds->has_thread) pthread_join(ds->thread, NULL);
  ds->has_thread = 0;
}

void sp__dataset_destroy(sp_dataset *ds) {
  if (ds == NULL) return;
  if (ds->accel) {
    ds->amod->close(ds->accel);
    sp_params_free(&ds->accel->params);
    free(ds->accel);
  }
  if (ds->conn && ds->rt && ds->rt->engine) sp_engine_unregister_source(ds->rt->engine, ds->spec->name);
  sp_connector_instance_close(ds->conn);
  free(ds->manual_sql);
  free(ds->refresh_sql);
  free(ds->native_sql);
  free(ds);
}

int sp__dataset_start(sp_dataset *ds, sp_error *err) {
  const sp_acceleration_spec *a = &ds->spec->acceleration;
  int always = a->refresh_on_startup && strcasecmp(a->refresh_on_startup, "always") == 0;
  if (ds->ready_once && ds->accelerated && !always) {
    /* Served from file; refresh only when the interval says so (refresh_on_startup: auto). */
    int64_t iv = a->refresh_check_interval_ms;
    ds->next_due_ms = iv > 0 ? (ds->last_refresh_ms > 0 ? ds->last_refresh_ms + iv : 0) : -1;
  } else if (ds->accelerated && a->refresh_jitter_enabled) {
    /* The first load is spread too (spice-compat §3.2). */
    int64_t iv = a->refresh_check_interval_ms > 0 ? a->refresh_check_interval_ms : 0;
    int64_t max = a->refresh_jitter_max_ms >= 0 ? a->refresh_jitter_max_ms : iv / 10;
    ds->next_due_ms = sp__now_ms() + (max > 0 ? (int64_t)(uniform01() * (double)max) : 0);
  }
  if (ds->accelerated && a->retention_check_enabled && a->retention_check_interval_ms > 0)
    ds->next_retention_ms = sp__now_ms() + a->retention_check_interval_ms;
  if (ds->file_watch && ds->cmod && ds->conn == NULL) {
    sp_error e = {0};
    if (sp__open_connector(ds, &e) != SP_OK) sp_log_warn("%s", e.msg);
  }
  if (pthread_create(&ds->thread, NULL, dataset_thread, ds) != 0)
    return sp_fail(err, SP_EINTERNAL, "could not start the refresh task of dataset \"%s\"", ds->spec->name);
  ds->has_thread = 1;
  return SP_OK;
}

static int setup_dataset(sp_runtime *rt, sp_dataset *ds, sp_error *err) {
  const sp_dataset_spec *spec = ds->spec;
  char names[512];
  ds->rt = rt;
  ds->status = SP_STATUS_INITIALIZING;
  ds->rows = -1;
  ds->last_refresh_ms = -1;
  ds->last_load_ms = -1;
  ds->next_due_ms = 0; /* load now */
  ds->next_retention_ms = -1;
  ds->accelerated = spec->acceleration.present && spec->acceleration.enabled;
  if (spec->view_sql) return setup_accelerator(rt, ds, err); /* an accelerated view: its source is the engine */
  ds->cmod = sp_registry_connector(spec->connector);
  if (ds->cmod == NULL) {
    sp_registry_connector_names(names, sizeof names);
    return sp_fail(err, SP_EINVAL, "dataset \"%s\": unknown data connector \"%s\" (available: %s)", spec->name,
                   spec->connector, names);
  }
  ds->accelerated = spec->acceleration.present && spec->acceleration.enabled;
  if (spec->mode == SP_MODE_READ_WRITE && ds->cmod->supports_writes == NULL)
    return sp_fail(err, SP_EINVAL, "dataset \"%s\": mode read_write is not supported by the %s connector", spec->name,
                   ds->cmod->name);
  if (!ds->accelerated) {
    char msg[512];
    snprintf(msg, sizeof msg, "Dataset %s is not available yet: its source has not been reached", spec->name);
    SP_TRY(sp_engine_define_placeholder(rt->engine, spec->name, msg, err));
    return setup_native_scan(ds);
  }
  return setup_accelerator(rt, ds, err);
}

/* The accelerated part of a dataset's set-up: its engine, storage, and what it serves before loading. */
static int setup_accelerator(sp_runtime *rt, sp_dataset *ds, sp_error *err) {
  const sp_dataset_spec *spec = ds->spec;
  char names[512];
  sp_refresh_mode mode = spec->acceleration.refresh_mode;
  if (mode == SP_REFRESH_CHANGES && (ds->cmod == NULL || ds->cmod->supports_streaming == NULL))
    return sp_fail(err, SP_EINVAL, "dataset \"%s\": refresh_mode: changes needs a change stream, which the %s "
                   "connector does not have (use full or append)", spec->name, ds->cmod ? ds->cmod->name : "view");
  if (mode != SP_REFRESH_FULL && mode != SP_REFRESH_APPEND && mode != SP_REFRESH_CHANGES)
    return sp_fail(err, SP_EINVAL, "dataset \"%s\": refresh_mode: %s is not supported (use full or append)",
                   spec->name, sp_refresh_mode_name(mode));
  ds->amod = sp_registry_accelerator(spec->acceleration.engine);
  if (ds->amod == NULL) {
    sp_registry_accelerator_names(names, sizeof names);
    return sp_fail(err, SP_EINVAL, "dataset \"%s\": unknown acceleration engine \"%s\" (available: %s)", spec->name,
                   spec->acceleration.engine, names);
  }
  sp_accel_state state;
  SP_TRY(open_accelerator(ds, &state, err));
  if (ds->cmod && spec->acceleration.on_zero_results && strcasecmp(spec->acceleration.on_zero_results, "use_source") == 0)
    setup_zero_results_source(ds);
  int on_registration = spec->ready_state && strcasecmp(spec->ready_state, "on_registration") == 0 && ds->cmod;
  if (!state.has_data && !(on_registration && serve_from_source(ds) == 0)) {
    char msg[512];
    snprintf(msg, sizeof msg, "Acceleration not ready; loading initial data for %s", spec->name);
    SP_TRY(sp_engine_define_placeholder(rt->engine, spec->name, msg, err));
  }
  if (state.has_data) {
    /* A file accelerator with committed data serves it before the source is reached. */
    SP_TRY(sp__define_dataset_table(ds, err));
    ds->status = SP_STATUS_READY;
    ds->ready_once = 1;
    ds->rows = state.rows;
    ds->last_refresh_ms = state.last_refresh_ms;
    sp_log_info("dataset \"%s\" serving %lld rows from its file accelerator", spec->name, (long long)state.rows);
  }
  return SP_OK;
}

int sp_runtime_create(const sp_runtime_options *opts, sp_runtime **out, sp_error *err) {
  sp_runtime *rt = calloc(1, sizeof *rt);
  if (rt == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  pthread_mutex_init(&rt->lock, NULL);
  pthread_cond_init(&rt->cond, NULL);
  pthread_rwlock_init(&rt->ds_lock, NULL);
  const char *pod_path = opts && opts->pod_path ? opts->pod_path : ".";
  snprintf(rt->pod_path, sizeof rt->pod_path, "%s", pod_path);
  char cwd[2048];
  if (getcwd(cwd, sizeof cwd) == NULL) cwd[0] = '\0';
  if (opts && opts->data_dir) snprintf(rt->data_dir, sizeof rt->data_dir, "%s", opts->data_dir);
  else snprintf(rt->data_dir, sizeof rt->data_dir, "%s/.spice/data", cwd);
  int rc = sp_secrets_create(NULL, &rt->secrets, err);
  if (rc == SP_OK) rc = sp_pod_load(pod_path, rt->secrets, &rt->pod, err);
  if (rc == SP_OK && mkdir_p(rt->data_dir) != 0)
    rc = sp_fail(err, SP_EIO, "could not create data folder \"%s\": %s", rt->data_dir, strerror(errno));
  sp_engine_config ec = {.threads = opts ? opts->engine_threads : 0, .data_dir = rt->data_dir,
                         .query_timeout_ms = rt->pod ? rt->pod->runtime.query_timeout_ms : 0};
  if (rc == SP_OK) rc = sp_engine_create(&ec, &rt->engine, err);
  size_t total = rc == SP_OK ? sp__pod_spec_count(rt->pod) : 0;
  if (rc == SP_OK) {
    rt->datasets = calloc(total ? total : 1, sizeof *rt->datasets);
    if (rt->datasets == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  }
  for (size_t i = 0; rc == SP_OK && i < total; i++) {
    rc = sp__dataset_create(rt, sp__pod_spec(rt->pod, i), &rt->datasets[i], err);
    if (rc == SP_OK) rt->n++;
  }
  if (rc == SP_OK) sp__define_views(rt);
  if (rc == SP_OK) sp_engine_set_write_hook(rt->engine, sp__write_hook, rt);
  if (rc == SP_OK) rc = sp_engine_lock(rt->engine, err);
  if (rc != SP_OK) {
    sp_runtime_destroy(rt);
    return rc;
  }
  *out = rt;
  return SP_OK;
}

int sp_runtime_start(sp_runtime *rt, sp_error *err) {
  /* Watched sources need their connector open to know their path. */
  for (size_t i = 0; i < rt->n; i++)
    if (rt->datasets[i]->file_watch && rt->datasets[i]->cmod && rt->datasets[i]->conn == NULL) {
      sp_error e = {0};
      if (sp__open_connector(rt->datasets[i], &e) != SP_OK) sp_log_warn("%s", e.msg);
    }
  SP_TRY(sp__watcher_start(rt, rt->datasets, rt->n, &rt->watcher, err));
  for (size_t i = 0; i < rt->n; i++) SP_TRY(sp__dataset_start(rt->datasets[i], err));
  return SP_OK;
}

void sp_runtime_destroy(sp_runtime *rt) {
  if (rt == NULL) return;
  pthread_mutex_lock(&rt->lock);
  rt->stopping = 1;
  pthread_cond_broadcast(&rt->cond);
  pthread_mutex_unlock(&rt->lock);
  sp__watcher_stop(rt->watcher);
  for (size_t i = 0; i < rt->n; i++)
    if (rt->datasets[i]->has_thread) pthread_join(rt->datasets[i]->thread, NULL);
  for (size_t i = 0; i < rt->n; i++) sp__dataset_destroy(rt->datasets[i]);
  sp_engine_destroy(rt->engine);
  free(rt->datasets);
  for (size_t i = 0; i < rt->n_retired; i++) {
    sp_pod_free(rt->retired[i].pod);
    sp_secrets_destroy(rt->retired[i].secrets);
  }
  free(rt->retired);
  sp_pod_free(rt->pod);
  sp_secrets_destroy(rt->secrets);
  pthread_cond_destroy(&rt->cond);
  pthread_mutex_destroy(&rt->lock);
  pthread_rwlock_destroy(&rt->ds_lock);
  free(rt);
}

bool sp_runtime_ready(sp_runtime *rt) {
  bool ready = true;
  pthread_rwlock_rdlock(&rt->ds_lock);
  pthread_mutex_lock(&rt->lock);
  for (size_t i = 0; i < rt->n && ready; i++) ready = rt->datasets[i]->ready_once || rt->datasets[i]->registered_ready;
  pthread_mutex_unlock(&rt->lock);
  pthread_rwlock_unlock(&rt->ds_lock);
  return ready;
}

const sp_pod *sp_runtime_pod(sp_runtime *rt) { return rt->pod; }
uint64_t sp_runtime_data_version(sp_runtime *rt) { return __atomic_load_n(&rt->data_version, __ATOMIC_ACQUIRE); }
sp_engine *sp_runtime_engine(sp_runtime *rt) { return rt->engine; }

int sp_runtime_query_schema(sp_runtime *rt, const sp_query_request *req, struct ArrowSchema *out, sp_error *err) {
  return sp_engine_query_schema(rt->engine, req, out, err);
}

int sp_runtime_query(sp_runtime *rt, const sp_query_request *req, struct ArrowArrayStream *out, sp_error *err) {
  return sp_engine_query(rt->engine, req, out, err);
}

size_t sp_runtime_dataset_count(sp_runtime *rt) {
  pthread_rwlock_rdlock(&rt->ds_lock);
  size_t n = rt->n;
  pthread_rwlock_unlock(&rt->ds_lock);
  return n;
}

static int dataset_info(sp_runtime *rt, size_t i, sp_dataset_info *out);

int sp_runtime_dataset_info(sp_runtime *rt, size_t i, sp_dataset_info *out) {
  pthread_rwlock_rdlock(&rt->ds_lock);
  int rc = dataset_info(rt, i, out);
  pthread_rwlock_unlock(&rt->ds_lock);
  return rc;
}

static int dataset_info(sp_runtime *rt, size_t i, sp_dataset_info *out) {
  if (i >= rt->n) return SP_ENOTFOUND;
  sp_dataset *ds = rt->datasets[i];
  memset(out, 0, sizeof *out);
  snprintf(out->name, sizeof out->name, "%s", ds->spec->name);
  snprintf(out->from, sizeof out->from, "%s", ds->spec->from ? ds->spec->from : "");
  out->acceleration_enabled = ds->accelerated;
  out->replication_enabled = ds->spec->replication_enabled;
  pthread_mutex_lock(&rt->lock);
  out->status = ds->status;
  snprintf(out->error, sizeof out->error, "%s", ds->error);
  out->rows = ds->rows;
  out->last_refresh_ms = ds->last_refresh_ms;
  out->refresh_errors = ds->refresh_errors;
  out->last_load_ms = ds->last_load_ms;
  pthread_mutex_unlock(&rt->lock);
  return SP_OK;
}

static sp_dataset *find_dataset(sp_runtime *rt, const char *name) {
  for (size_t i = 0; i < rt->n; i++)
    if (strcasecmp(rt->datasets[i]->spec->name, name) == 0) return rt->datasets[i];
  return NULL;
}

static int runtime_refresh_locked(sp_runtime *rt, const char *name, const sp_refresh_overrides *ov, char *canonical,
                          sp_error *err) {
  sp_dataset *ds = find_dataset(rt, name);
  if (ds == NULL) return sp_fail(err, SP_ENOTFOUND, "Dataset %s not found", name);
  if (canonical) snprintf(canonical, 256, "%s", ds->spec->name);
  if (!ds->accelerated) return sp_fail(err, SP_EINVAL, "Dataset %s does not have acceleration enabled", ds->spec->name);
  if (ds->spec->acceleration.refresh_mode == SP_REFRESH_CHANGES)
    return sp_fail(err, SP_EINVAL, "Dataset %s is kept up to date by its change stream (refresh_mode: changes) and "
                   "cannot be refreshed on request", ds->spec->name);
  int mode = -1;
  if (ov && ov->refresh_mode) {
    sp_refresh_mode m;
    if (sp_refresh_mode_parse(ov->refresh_mode, &m) != 0 || (m != SP_REFRESH_FULL && m != SP_REFRESH_APPEND))
      return sp_fail(err, SP_EINVAL, "refresh_mode \"%s\" is not supported for dataset %s (supported: full, append)",
                     ov->refresh_mode, ds->spec->name);
    mode = (int)m;
  }
  char *sql = ov && ov->refresh_sql ? strdup(ov->refresh_sql) : NULL;
  pthread_mutex_lock(&rt->lock);
  free(ds->manual_sql);
  ds->manual_sql = sql;
  ds->manual_mode = mode;
  ds->manual = 1;
  ds->requested++;
  pthread_cond_broadcast(&rt->cond);
  pthread_mutex_unlock(&rt->lock);
  return SP_OK;
}

static int runtime_set_refresh_sql_locked(sp_runtime *rt, const char *name, const char *refresh_sql, sp_error *err) {
  sp_dataset *ds = find_dataset(rt, name);
  if (ds == NULL) return sp_fail(err, SP_ENOTFOUND, "Dataset %s not found", name);
  if (refresh_sql == NULL) return SP_OK;
  SP_TRY(sp_engine_check_sql(rt->engine, refresh_sql, err));
  char *copy = strdup(refresh_sql);
  if (copy == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  pthread_mutex_lock(&rt->lock);
  free(ds->refresh_sql);
  ds->refresh_sql = copy;
  pthread_mutex_unlock(&rt->lock);
  return SP_OK;
}

static int runtime_wait_refresh_locked(sp_runtime *rt, const char *name, int64_t timeout_ms, sp_error *err) {
  sp_dataset *ds = find_dataset(rt, name);
  if (ds == NULL) return sp_fail(err, SP_ENOTFOUND, "Dataset %s not found", name);
  int64_t deadline = sp__now_ms() + timeout_ms;
  pthread_mutex_lock(&rt->lock);
  uint64_t gen = ds->generation, target = ds->requested;
  int rc = SP_OK;
  /* With a manual refresh pending, wait for it (it may already have finished); else for the next one. */
  while ((target ? ds->served < target : ds->generation == gen) && rc == SP_OK) {
    struct timespec ts = {.tv_sec = (time_t)(deadline / 1000), .tv_nsec = (long)(deadline % 1000) * 1000000L};
    if (pthread_cond_timedwait(&rt->cond, &rt->lock, &ts) == ETIMEDOUT)
      rc = sp_fail(err, SP_ETIMEDOUT, "dataset %s did not refresh within %lld ms", name, (long long)timeout_ms);
  }
  pthread_mutex_unlock(&rt->lock);
  return rc;
}

int sp_runtime_refresh(sp_runtime *rt, const char *name, const sp_refresh_overrides *ov, char *canonical,
                       sp_error *err) {
  pthread_rwlock_rdlock(&rt->ds_lock);
  int rc = runtime_refresh_locked(rt, name, ov, canonical, err);
  pthread_rwlock_unlock(&rt->ds_lock);
  return rc;
}

int sp_runtime_set_refresh_sql(sp_runtime *rt, const char *name, const char *refresh_sql, sp_error *err) {
  pthread_rwlock_rdlock(&rt->ds_lock);
  int rc = runtime_set_refresh_sql_locked(rt, name, refresh_sql, err);
  pthread_rwlock_unlock(&rt->ds_lock);
  return rc;
}

int sp_runtime_wait_refresh(sp_runtime *rt, const char *name, int64_t timeout_ms, sp_error *err) {
  pthread_rwlock_rdlock(&rt->ds_lock);
  int rc = runtime_wait_refresh_locked(rt, name, timeout_ms, err);
  pthread_rwlock_unlock(&rt->ds_lock);
  return rc;
}
