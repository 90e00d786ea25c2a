/* SPDX-License-Identifier: Apache-2.0
 *
 * spicepod.yaml, parsed once into typed, validated structs (spice-compat §1). Errors name the file, line,
 * column, the key and what was expected:
 *   spicepod.yaml:12:7: unknown key "refresh_intervall" in acceleration of dataset "trips"
 *   (did you mean "refresh_check_interval"?)
 * `${store:key}` references in params are resolved at load time.
 *
 * Everything in an sp_pod is owned by it and freed by sp_pod_free.
 */
#ifndef SPICE_POD_H
#define SPICE_POD_H

#include <stdbool.h>
#include <stdint.h>

#include "spice/error.h"
#include "spice/params.h"

typedef enum sp_dataset_mode { SP_MODE_READ = 0, SP_MODE_READ_WRITE } sp_dataset_mode;
typedef enum sp_refresh_mode {
  SP_REFRESH_FULL = 0,
  SP_REFRESH_APPEND,
  SP_REFRESH_CHANGES,
  SP_REFRESH_DISABLED,
  SP_REFRESH_CACHING /* [1.x] HTTP connector: each distinct request is a cache entry */
} sp_refresh_mode;
typedef enum sp_accel_mode { SP_ACCEL_MEMORY = 0, SP_ACCEL_FILE } sp_accel_mode;

typedef struct sp_acceleration_spec {
  bool present;                   /* an acceleration block was written */
  bool enabled;                   /* default true when the block is present */
  char *engine;                   /* lower case; default "arrow"; "postgresql" normalised to "postgres" */
  sp_accel_mode mode;             /* default memory */
  sp_refresh_mode refresh_mode;   /* default full */
  bool refresh_mode_set;          /* refresh_mode was written explicitly */
  int64_t refresh_check_interval_ms; /* -1: none (load once) */
  char *refresh_sql;              /* NULL: none */
  int64_t refresh_data_window_ms; /* -1: none */
  int64_t refresh_append_overlap_ms; /* -1: none */
  bool refresh_retry_enabled;     /* default true */
  int64_t refresh_retry_max_attempts; /* -1: unlimited */
  bool refresh_jitter_enabled;    /* default false */
  int64_t refresh_jitter_max_ms;  /* -1: 10 % of the interval */
  char *on_zero_results;          /* "return_empty" (default) | "use_source" */
  char *primary_key;              /* NULL: none */
  sp_params params;               /* engine params, raw (validated by the runtime against the engine) */
  int line, col;
  /* Retention (spice-compat §3.7). */
  bool retention_check_enabled;   /* default false */
  int64_t retention_period_ms;    /* -1: none */
  int64_t retention_check_interval_ms; /* -1: none */
  char *retention_sql;            /* NULL: none */
  char *refresh_on_startup;       /* "auto" (default) | "always" */
  sp_params indexes;              /* colref ("col" or "(a, b)") -> "enabled" | "unique" */
  sp_params on_conflict;          /* colref -> "drop" | "upsert" */
} sp_acceleration_spec;

typedef struct sp_dataset_spec {
  char *from;           /* as written */
  char *connector;      /* left of the first ':' ("file", "postgres"); "sink" when from is empty */
  char *path;           /* right of the first ':' ("data/trips.parquet"); "" when none */
  char *name;
  char *description;    /* NULL: none */
  sp_dataset_mode mode;
  bool replication_enabled;
  char *time_column;    /* NULL: none */
  char *time_format;    /* NULL: none */
  char *ready_state;    /* "on_load" (default) | "on_registration" */
  sp_params params;     /* connector params, raw, ${..} resolved */
  sp_acceleration_spec acceleration;
  char *view_sql;       /* an accelerated view: its SQL (connector "view", from "view:<name>"); NULL otherwise */
  int line, col;
} sp_dataset_spec;

typedef struct sp_view_spec {
  char *name;
  char *sql;
  char *description;
  sp_dataset_spec *accelerated; /* a view with acceleration enabled: the dataset that materialises it; or NULL */
  int line, col;
} sp_view_spec;

typedef struct sp_runtime_spec {
  char *http_addr;    /* NULL: default / flags */
  char *flight_addr;  /* NULL: default / flags */
  bool results_cache_enabled;
  int64_t shutdown_timeout_ms; /* runtime.shutdown_timeout: how long SIGTERM waits for work in flight (30 s) */
  int64_t query_timeout_ms;    /* runtime.query.timeout: user queries end after this long; 0 = never (default) */
  sp_params params;   /* runtime.params */
} sp_runtime_spec;

typedef struct sp_pod {
  char *file;         /* path as given */
  char *dir;          /* folder holding the file: relative paths in datasets resolve against the CWD, as in Spice */
  char *version;      /* "v1beta1" | "v1" */
  char *kind;         /* "Spicepod" */
  char *name;
  sp_dataset_spec *datasets;
  size_t n_datasets;
  sp_view_spec *views;
  size_t n_views;
  sp_runtime_spec runtime;
  char *json;         /* the whole spicepod as a JSON object (secrets left as written), for /v1/spicepods */
} sp_pod;

/* Loads and validates the spicepod at `path` (a file, or a folder holding spicepod.yaml / spicepod.yml).
 * `secrets` (borrowed, may be NULL) resolves ${store:key}; the stores a `secrets:` section lists are added to
 * it (sp_secrets_add_store), so pass a fresh one per load. NULL: a temporary default `env` store for the
 * pod's folder is used. On success *out is owned by the caller. */
int sp_pod_load(const char *path, sp_secrets *secrets, sp_pod **out, sp_error *err);
/* Same, from a string; `file` is used in messages and its folder for `sql_ref` and .env files (NULL:
 * "spicepod.yaml" in the current folder). Uses no global state: safe to call from several threads. */
int sp_pod_parse(const char *yaml, size_t len, const char *file, sp_secrets *secrets, sp_pod **out, sp_error *err);
void sp_pod_free(sp_pod *pod);

const char *sp_refresh_mode_name(sp_refresh_mode m);
int sp_refresh_mode_parse(const char *s, sp_refresh_mode *out);

#endif
