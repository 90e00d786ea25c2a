/* SPDX-License-Identifier: Apache-2.0
 *
 * Internals of the runtime shared by runtime.c (life cycle, scheduling, API) and refresh.c (what one refresh
 * does). Not for other layers.
 */
#ifndef SPICE_RUNTIME_INT_H
#define SPICE_RUNTIME_INT_H

#include <pthread.h>
#include <stdint.h>

#include "spice/accelerator.h"
#include "spice/connector.h"
#include "spice/runtime.h"
#include "spice/secrets.h"

typedef struct sp_dataset {
  sp_runtime *rt;
  const sp_dataset_spec *spec;     /* borrowed from rt->pod */
  const sp_connector_module *cmod;
  const sp_accelerator_module *amod;
  sp_connector *conn;              /* NULL until opened */
  sp_accelerator *accel;           /* NULL when not accelerated */
  int accelerated;
  char *native_sql;                /* federated: the engine reads the source itself with this expression */
  pthread_t thread;
  int has_thread;
  int stop;                        /* this dataset's task should end (reload removed it); under rt->lock */
  /* Guarded by rt->lock: */
  sp_status_kind status;
  char error[1024];
  int ready_once;
  int file_watch;                  /* acceleration param file_watcher: enabled */
  int registered_ready;            /* ready_state: on_registration, answering from the source until loaded */
  int64_t rows, last_refresh_ms, next_due_ms;
  int64_t next_retention_ms;       /* -1: no retention */
  int attempt;                     /* failed attempts in a row */
  int64_t refresh_errors;          /* failed refreshes since start */
  int64_t last_load_ms;            /* duration of the last successful refresh, -1 none */
  int manual;                      /* a manual refresh is requested */
  int manual_mode;                 /* its refresh_mode override (sp_refresh_mode), -1 = the dataset's */
  char *manual_sql;                /* its refresh_sql override (owned) */
  char *refresh_sql;               /* PATCHed refresh_sql (owned), NULL = the spec's */
  uint64_t generation;             /* completed refreshes, for waiters */
  uint64_t requested, served;      /* manual refreshes asked for / completed (by request number) */
} sp_dataset;

/* A spicepod replaced by a reload: kept until the runtime ends, since datasets that did not change keep
 * pointing into it. */
typedef struct sp_retired_pod {
  sp_pod *pod;
  sp_secrets *secrets;
} sp_retired_pod;

struct sp_runtime {
  sp_pod *pod;
  sp_secrets *secrets;
  char pod_path[4096];
  sp_engine *engine;
  pthread_rwlock_t ds_lock;        /* readers: API calls and view definitions; writer: a reload swapping the array */
  sp_dataset **datasets;           /* replaced by a reload under ds_lock (write); each dataset stays put */
  size_t n;
  sp_retired_pod *retired;
  size_t n_retired;
  char data_dir[4096];
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int stopping;
  uint64_t data_version; /* atomic; see sp_runtime_data_version */
  struct sp_watcher *watcher;
};

/* What one refresh does: the dataset's refresh_sql (or an override), and its mode. */
typedef struct sp_refresh_job {
  const char *refresh_sql;   /* NULL: none */
  sp_refresh_mode mode;      /* full or append */
} sp_refresh_job;

typedef struct sp_watcher sp_watcher;
/* Starts watching the sources of datasets with file_watch set (none: *out = NULL). */
int sp__watcher_start(sp_runtime *rt, sp_dataset *const *datasets, size_t n, sp_watcher **out, sp_error *err);
void sp__watcher_stop(sp_watcher *w); /* NULL-safe */

int64_t sp__now_ms(void);
/* The datasets a spicepod defines: its datasets, then its accelerated views. */
size_t sp__pod_spec_count(const sp_pod *pod);
const sp_dataset_spec *sp__pod_spec(const sp_pod *pod, size_t i);
/* Creates and registers one dataset (nothing fetched); *out is owned by the caller. */
int sp__dataset_create(sp_runtime *rt, const sp_dataset_spec *spec, sp_dataset **out, sp_error *err);
/* Starts its refresh task. */
int sp__dataset_start(sp_dataset *ds, sp_error *err);
/* Ends its refresh task (waits for a refresh in flight). */
void sp__dataset_stop(sp_dataset *ds);
/* Closes its accelerator and connector and frees it; its task must be stopped. NULL-safe. */
void sp__dataset_destroy(sp_dataset *ds);
/* Defines the spicepod's views that do not exist yet (those whose tables exist). */
void sp__define_views(sp_runtime *rt);
int sp__open_connector(sp_dataset *ds, sp_error *err);
/* (Re)defines the dataset's table in the engine from its accelerator or its source. */
int sp__define_dataset_table(sp_dataset *ds, sp_error *err);
/* Deletes the rows older than retention_period from the accelerated copy. */
int sp__dataset_retention(sp_dataset *ds, sp_error *err);
/* One refresh of an accelerated dataset (or the registration of a federated one). */
int sp__dataset_refresh(sp_dataset *ds, const sp_refresh_job *job, sp_error *err);
/* refresh_mode: changes (changes.c): runs the dataset's change stream on a thread of its own and applies
 * what it pushes; called on the dataset's task thread, returns once the dataset or the runtime stops. */
void sp__changes_run(sp_dataset *ds);

/* Writes (write.c): a dataset's write lock, held by a write and by a refresh (not by a change stream, which
 * would hold it for ever), so that a refresh never overlaps a write. */
void sp__dataset_write_lock(sp_dataset *ds);
void sp__dataset_write_unlock(sp_dataset *ds);
/* The engine's write hook (sp_engine_write_fn) for INSERT: ctx is the runtime. */
int sp__write_hook(void *ctx, const char *table, struct ArrowArrayStream *rows, int64_t *out_rows, sp_error *err);

#endif
