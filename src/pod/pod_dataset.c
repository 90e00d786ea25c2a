/* SPDX-License-Identifier: Apache-2.0
 *
 * Datasets and their acceleration blocks (spice-compat §1.2, §1.3). Spice rejects unknown keys in both
 * (`deny_unknown_fields`), so a typo here is an error with a suggestion, never a silently ignored setting.
 * Defaults are filled as Spice fills them; cross-field rules (read_write needs replication, arrow has no
 * file mode, retention needs its interval) are checked once every key is read.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pod/pod_int.h"

static const char *const valid_engines = "arrow, duckdb, sqlite, postgres, cayenne, turso";

/* What a dataset's handlers share while its keys are read. */
typedef struct ds_build {
  sp_dataset_spec *ds;
  char owner[320];       /* dataset "trips" */
  yaml_node_t *mode_key; /* for the read_write rule */
  char uta[16];          /* unsupported_type_action, "" when not written */
  yaml_node_t *uta_key;
} ds_build;

typedef struct accel_build {
  sp_acceleration_spec *a;
  yaml_node_t *mode_key, *retention_key;
  bool has_period, has_interval;
} accel_build;

static int oom(pod_ctx *c) { return sp_fail(c->err, SP_ENOMEM, "out of memory"); }

static int set_str(pod_ctx *c, char **dst, const char *s) {
  char *d = strdup(s);
  if (d == NULL) return oom(c);
  free(*dst);
  *dst = d;
  return SP_OK;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Acceleration                                                                                            */
/* ------------------------------------------------------------------------------------------------------ */

static int ac_enabled(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return sp__pod_bool(c, w, k, v, &((accel_build *)o)->a->enabled);
}

/* Engine names are case-insensitive; `postgresql` is an alias. Unknown ones list the valid ones. */
static int ac_engine(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  static const char *const engines[] = {"arrow", "duckdb", "sqlite", "postgres", "cayenne", "turso", NULL};
  sp_acceleration_spec *a = ((accel_build *)o)->a;
  char *name = NULL;
  SP_TRY(sp__pod_string(c, w, k, v, &name));
  for (char *p = name; *p; p++)
    *p = (char)tolower((unsigned char)*p);
  if (strcmp(name, "postgresql") == 0) strcpy(name, "postgres");
  for (int i = 0; engines[i] != NULL; i++) {
    if (strcmp(name, engines[i]) == 0) {
      free(a->engine);
      a->engine = name;
      return SP_OK;
    }
  }
  free(name);
  return sp__pod_fail(c, SP_EINVAL, k, "%s: unknown acceleration engine \"%s\" (valid: %s)", w, sp__pod_text(v),
                      valid_engines);
}

static int ac_mode(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  accel_build *b = o;
  char m[16];
  SP_TRY(sp__pod_enum(c, w, k, v, "memory|file", m, sizeof m));
  b->a->mode = strcmp(m, "file") == 0 ? SP_ACCEL_FILE : SP_ACCEL_MEMORY;
  b->mode_key = k;
  return SP_OK;
}

static int ac_refresh_mode(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  sp_acceleration_spec *a = ((accel_build *)o)->a;
  char m[16];
  SP_TRY(sp__pod_enum(c, w, k, v, "full|append|changes|caching", m, sizeof m));
  sp_refresh_mode_parse(m, &a->refresh_mode);
  a->refresh_mode_set = true;
  return SP_OK;
}

#define AC_DURATION(fn, field)                                                                                         \
  static int fn(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {                                  \
    return sp__pod_duration(c, w, k, v, &((accel_build *)o)->a->field);                                                \
  }
AC_DURATION(ac_interval, refresh_check_interval_ms)
AC_DURATION(ac_window, refresh_data_window_ms)
AC_DURATION(ac_overlap, refresh_append_overlap_ms)
AC_DURATION(ac_jitter_max, refresh_jitter_max_ms)

static int ac_refresh_sql(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return sp__pod_string(c, w, k, v, &((accel_build *)o)->a->refresh_sql);
}

static int ac_retry_enabled(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return sp__pod_bool(c, w, k, v, &((accel_build *)o)->a->refresh_retry_enabled);
}

static int ac_retry_max(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  int64_t n;
  SP_TRY(sp__pod_int(c, w, k, v, &n));
  if (n < 0) return sp__pod_fail(c, SP_EINVAL, k, "%s: \"%s\" must be 0 or more", w, sp__pod_text(k));
  ((accel_build *)o)->a->refresh_retry_max_attempts = n;
  return SP_OK;
}

static int ac_jitter_enabled(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return sp__pod_bool(c, w, k, v, &((accel_build *)o)->a->refresh_jitter_enabled);
}

static int ac_params(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return sp__pod_params(c, w, k, v, true, &((accel_build *)o)->a->params);
}

/* Legacy `engine_secret`: checked, not kept (Spice ignores it too). */
static int ac_engine_secret(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  char *s = NULL;
  int rc = sp__pod_string(c, w, k, v, &s);
  free(s);
  return rc;
}

static int ac_retention_enabled(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  accel_build *b = o;
  b->retention_key = k;
  return sp__pod_bool(c, w, k, v, &b->a->retention_check_enabled);
}

static int ac_retention_period(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  accel_build *b = o;
  b->has_period = true;
  return sp__pod_duration(c, w, k, v, &b->a->retention_period_ms);
}

static int ac_retention_interval(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  accel_build *b = o;
  b->has_interval = true;
  return sp__pod_duration(c, w, k, v, &b->a->retention_check_interval_ms);
}

static int ac_retention_sql(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return sp__pod_string(c, w, k, v, &((accel_build *)o)->a->retention_sql);
}

static int ac_on_zero_results(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  char m[16];
  SP_TRY(sp__pod_enum(c, w, k, v, "return_empty|use_source", m, sizeof m));
  return set_str(c, &((accel_build *)o)->a->on_zero_results, m);
}

static int ac_refresh_on_startup(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  char m[16];
  SP_TRY(sp__pod_enum(c, w, k, v, "auto|always", m, sizeof m));
  return set_str(c, &((accel_build *)o)->a->refresh_on_startup, m);
}

static int ac_ready_state(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  char m[16];
  return sp__pod_enum(c, w, k, v, "on_load|on_registration", m, sizeof m);
}

/* A map colref -> one of `choices` (indexes, on_conflict); values are canonicalised. */
static int colref_map(pod_ctx *c, const char *w, yaml_node_t *k, yaml_node_t *v, const char *choices, sp_params *out) {
  SP_TRY(sp__pod_params(c, w, k, v, false, out));
  if (v == NULL || v->type != YAML_MAPPING_NODE) return SP_OK;
  for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
    yaml_node_t *ik = sp__pod_node(c, p->key), *iv = sp__pod_node(c, p->value);
    char m[16];
    SP_TRY(sp__pod_enum(c, w, ik, iv, choices, m, sizeof m));
    sp_kv *kv = &out->items[p - v->data.mapping.pairs.start];
    SP_TRY(set_str(c, &kv->value, m));
  }
  return SP_OK;
}

static int ac_indexes(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return colref_map(c, w, k, v, "enabled|unique", &((accel_build *)o)->a->indexes);
}

static int ac_on_conflict(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return colref_map(c, w, k, v, "drop|upsert", &((accel_build *)o)->a->on_conflict);
}

/* `primary_key: id`, `primary_key: "(a, b)"` or a list of columns, kept as a colref string. */
static int ac_primary_key(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  sp_acceleration_spec *a = ((accel_build *)o)->a;
  if (v == NULL || v->type != YAML_SEQUENCE_NODE) return sp__pod_string(c, w, k, v, &a->primary_key);
  size_t cap = 3, n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
  for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++)
    cap += strlen(sp__pod_text(sp__pod_node(c, *i))) + 2;
  char *s = malloc(cap);
  if (s == NULL) return oom(c);
  strcpy(s, n == 1 ? "" : "(");
  for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
    yaml_node_t *col = sp__pod_node(c, *i);
    if (col == NULL || col->type != YAML_SCALAR_NODE || sp__pod_is_null(col)) {
      free(s);
      return sp__pod_fail(c, SP_EINVAL, k, "%s: \"primary_key\" must be a column or a list of columns", w);
    }
    if (i > v->data.sequence.items.start) strcat(s, ", ");
    strcat(s, sp__pod_text(col));
  }
  if (n != 1) strcat(s, ")");
  free(a->primary_key);
  a->primary_key = s;
  return SP_OK;
}

static const pod_key accel_keys[] = {
    {"enabled", ac_enabled},
    {"engine", ac_engine},
    {"mode", ac_mode},
    {"refresh_mode", ac_refresh_mode},
    {"refresh_check_interval", ac_interval},
    {"refresh_sql", ac_refresh_sql},
    {"refresh_data_window", ac_window},
    {"refresh_append_overlap", ac_overlap},
    {"refresh_retry_enabled", ac_retry_enabled},
    {"refresh_retry_max_attempts", ac_retry_max},
    {"refresh_jitter_enabled", ac_jitter_enabled},
    {"refresh_jitter_max", ac_jitter_max},
    {"params", ac_params},
    {"engine_secret", ac_engine_secret},
    {"retention_check_enabled", ac_retention_enabled},
    {"retention_period", ac_retention_period},
    {"retention_check_interval", ac_retention_interval},
    {"retention_sql", ac_retention_sql},
    {"on_zero_results", ac_on_zero_results},
    {"indexes", ac_indexes},
    {"primary_key", ac_primary_key},
    {"on_conflict", ac_on_conflict},
    {"refresh_on_startup", ac_refresh_on_startup},
    {"ready_state", ac_ready_state},
    {NULL, NULL},
};

/* The defaults of spice-compat §1.3, also for a dataset without an acceleration block (enabled false). */
static int accel_defaults(pod_ctx *c, sp_acceleration_spec *a, const char *file) {
  a->enabled = false;
  a->mode = SP_ACCEL_MEMORY;
  a->refresh_mode = SP_REFRESH_FULL;
  a->refresh_check_interval_ms = -1;
  a->refresh_data_window_ms = -1;
  a->refresh_append_overlap_ms = -1;
  a->refresh_retry_enabled = true;
  a->refresh_retry_max_attempts = -1;
  a->refresh_jitter_max_ms = -1;
  a->retention_period_ms = -1;
  a->retention_check_interval_ms = -1;
  a->params.file = a->indexes.file = a->on_conflict.file = file;
  SP_TRY(set_str(c, &a->engine, "arrow"));
  SP_TRY(set_str(c, &a->on_zero_results, "return_empty"));
  return set_str(c, &a->refresh_on_startup, "auto");
}

/* Rules that involve several keys, checked once all are read. */
static int accel_check(pod_ctx *c, accel_build *b, const char *w) {
  sp_acceleration_spec *a = b->a;
  if (strcmp(a->engine, "arrow") == 0 && a->mode == SP_ACCEL_FILE)
    return sp__pod_fail(c, SP_EINVAL, b->mode_key, "%s: File mode not supported for Arrow engine", w);
  if (strcmp(a->engine, "postgres") == 0) a->mode = SP_ACCEL_FILE; /* an attached server is always "file" */
  if (a->retention_check_enabled && !b->has_interval)
    return sp__pod_fail(c, SP_EINVAL, b->retention_key,
                        "%s: retention_check_enabled requires \"retention_check_interval\"", w);
  if (a->retention_check_enabled && !b->has_period && a->retention_sql == NULL)
    return sp__pod_fail(c, SP_EINVAL, b->retention_key,
                        "%s: retention_check_enabled requires \"retention_period\" or \"retention_sql\"", w);
  return SP_OK;
}

static int ds_acceleration(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  ds_build *d = o;
  sp_acceleration_spec *a = &d->ds->acceleration;
  char owner[400];
  snprintf(owner, sizeof owner, "acceleration of %s", d->owner);
  SP_TRY(sp__pod_expect(c, d->owner, k, v, YAML_MAPPING_NODE));
  a->present = true;
  a->enabled = true;
  a->line = sp__pod_line(k);
  a->col = sp__pod_col(k);
  if (v == NULL || v->type != YAML_MAPPING_NODE) return SP_OK; /* `acceleration:` alone: enabled with every default */
  accel_build b = {.a = a, .mode_key = k, .retention_key = k};
  SP_TRY(sp__pod_walk(c, v, accel_keys, true, &b, owner, owner));
  return accel_check(c, &b, owner);
}

/* An accelerated view (spice-compat §1.8, [1.x]): the view becomes a dataset read from the engine, named
 * like the view, with the acceleration block parsed exactly as a dataset's. */
int sp__pod_view_acceleration(pod_ctx *c, const char *owner, const char *name, yaml_node_t *k, yaml_node_t *v,
                              sp_dataset_spec *ds) {
  char from[512];
  snprintf(from, sizeof from, "view:%s", name);
  SP_TRY(set_str(c, &ds->name, name));
  SP_TRY(set_str(c, &ds->from, from));
  SP_TRY(set_str(c, &ds->connector, "view"));
  SP_TRY(set_str(c, &ds->path, name));
  SP_TRY(set_str(c, &ds->ready_state, "on_load"));
  ds->params.file = c->pod->file;
  ds->line = sp__pod_line(k);
  ds->col = sp__pod_col(k);
  SP_TRY(accel_defaults(c, &ds->acceleration, c->pod->file));
  ds_build d = {.ds = ds};
  snprintf(d.owner, sizeof d.owner, "%s", owner);
  return ds_acceleration(c, &d, owner, k, v);
}

/* ------------------------------------------------------------------------------------------------------ */
/* Dataset keys                                                                                            */
/* ------------------------------------------------------------------------------------------------------ */

static int ds_from(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  if (sp__pod_is_null(v)) return SP_OK; /* `from:` with nothing: a sink, as `from: ""` */
  return sp__pod_string(c, w, k, v, &((ds_build *)o)->ds->from);
}

static int ds_description(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  if (sp__pod_is_null(v)) return SP_OK;
  return sp__pod_string(c, w, k, v, &((ds_build *)o)->ds->description);
}

static int ds_map(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return sp__pod_expect(c, w, k, v, YAML_MAPPING_NODE);
}

static int ds_list(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return sp__pod_expect(c, w, k, v, YAML_SEQUENCE_NODE);
}

static int ds_mode(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  ds_build *d = o;
  char m[16];
  SP_TRY(sp__pod_enum(c, w, k, v, "read|read_write", m, sizeof m));
  d->ds->mode = strcmp(m, "read_write") == 0 ? SP_MODE_READ_WRITE : SP_MODE_READ;
  d->mode_key = k;
  return SP_OK;
}

static int ds_params(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return sp__pod_params(c, w, k, v, true, &((ds_build *)o)->ds->params);
}

static int ds_bool_ignored(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  bool b;
  return sp__pod_bool(c, w, k, v, &b);
}

static int repl_enabled(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return sp__pod_bool(c, w, k, v, &((ds_build *)o)->ds->replication_enabled);
}

static int ds_replication(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  static const pod_key keys[] = {{"enabled", repl_enabled}, {NULL, NULL}};
  char where[400];
  SP_TRY(sp__pod_expect(c, w, k, v, YAML_MAPPING_NODE));
  if (v == NULL || v->type != YAML_MAPPING_NODE) return SP_OK;
  snprintf(where, sizeof where, "replication of %s", w);
  return sp__pod_walk(c, v, keys, true, o, w, where);
}

static int ds_time_column(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return sp__pod_string(c, w, k, v, &((ds_build *)o)->ds->time_column);
}

static int ds_time_format(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  char m[16];
  SP_TRY(sp__pod_enum(c, w, k, v, "timestamp|timestamptz|unix_seconds|unix_millis|ISO8601|date", m, sizeof m));
  return set_str(c, &((ds_build *)o)->ds->time_format, m);
}

static int ds_ready_state(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  char m[20];
  SP_TRY(sp__pod_enum(c, w, k, v, "on_load|on_registration", m, sizeof m));
  return set_str(c, &((ds_build *)o)->ds->ready_state, m);
}

static int ds_type_action(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  ds_build *d = o;
  d->uta_key = k;
  return sp__pod_enum(c, w, k, v, "error|warn|ignore|string", d->uta, sizeof d->uta);
}

static int ds_scalar(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  if (v == NULL || v->type != YAML_SCALAR_NODE)
    return sp__pod_fail(c, SP_EINVAL, k, "%s: \"%s\" must be a single value", w, sp__pod_text(k));
  return SP_OK;
}

static const pod_key dataset_keys[] = {
    {"from", ds_from},
    {"name", NULL}, /* read first, see parse_dataset */
    {"description", ds_description},
    {"metadata", ds_map},
    {"mode", ds_mode},
    {"params", ds_params},
    {"has_metadata_table", ds_bool_ignored},
    {"replication", ds_replication},
    {"time_column", ds_time_column},
    {"time_format", ds_time_format},
    {"acceleration", ds_acceleration},
    {"embeddings", ds_list},
    {"columns", ds_list},
    {"dependsOn", ds_list},
    {"ready_state", ds_ready_state},
    {"unsupported_type_action", ds_type_action},
    {"invalid_type_action", ds_type_action},
    {"check_availability", ds_scalar},
    {"metrics", ds_list},
    {NULL, NULL},
};

/* ------------------------------------------------------------------------------------------------------ */
/* from                                                                                                    */
/* ------------------------------------------------------------------------------------------------------ */

/* Splits `from` (spice-compat §1.2): URL schemes keep the whole string as path; `file://x` is `file:x`;
 * otherwise at the first ':'; empty or "sink" is the sink; no ':' at all is a spice.ai dataset path. */
static int split_from(pod_ctx *c, sp_dataset_spec *ds) {
  static const char *const url_schemes[] = {"http", "https", "s3", "abfs", "abfss", "ftp", "sftp", NULL};
  const char *f = ds->from ? ds->from : "";
  const char *colon = strchr(f, ':');
  if (*f == '\0' || strcmp(f, "sink") == 0) {
    SP_TRY(set_str(c, &ds->connector, "sink"));
    return set_str(c, &ds->path, "");
  }
  if (colon == NULL) {
    SP_TRY(set_str(c, &ds->connector, "spice.ai"));
    return set_str(c, &ds->path, f);
  }
  size_t n = (size_t)(colon - f);
  char *conn = strndup(f, n);
  if (conn == NULL) return oom(c);
  free(ds->connector);
  ds->connector = conn;
  const char *path = colon + 1;
  for (int i = 0; url_schemes[i] != NULL; i++)
    if (strcmp(conn, url_schemes[i]) == 0 && strncmp(colon, "://", 3) == 0) path = f;
  if (strcmp(conn, "file") == 0 && strncmp(colon, "://", 3) == 0) path = colon + 3;
  return set_str(c, &ds->path, path);
}

/* ------------------------------------------------------------------------------------------------------ */
/* One dataset                                                                                             */
/* ------------------------------------------------------------------------------------------------------ */

/* Names are `table` or `schema.table` (a catalog part is refused, as in Spice). */
static bool valid_name(const char *name) {
  if (*name == '\0') return false;
  const char *dot = strchr(name, '.');
  if (dot == NULL) return true;
  return dot != name && dot[1] != '\0' && strchr(dot + 1, '.') == NULL;
}

/* Line of the `name` key of entry i of a datasets/views list. */
static int name_line(pod_ctx *c, yaml_node_t *list, size_t i) {
  yaml_node_t *k = NULL;
  sp__pod_get(c, sp__pod_node(c, list->data.sequence.items.start[i]), "name", &k);
  return sp__pod_line(k);
}

int sp__pod_check_unique(pod_ctx *c, bool is_view, const char *name, const yaml_node_t *at, size_t n_datasets,
                         size_t n_views) {
  const sp_pod *pod = c->pod;
  int line = sp__pod_line(at);
  for (size_t i = 0; i < n_datasets; i++) {
    if (pod->datasets[i].name == NULL || strcasecmp(pod->datasets[i].name, name) != 0) continue;
    if (!is_view)
      return sp__pod_fail(c, SP_EINVAL, at, "duplicate dataset name \"%s\" (lines %d and %d)", name,
                          name_line(c, c->datasets_list, i), line);
    return sp__pod_fail(c, SP_EINVAL, at, "view \"%s\" has the name of a dataset (lines %d and %d)", name,
                        name_line(c, c->datasets_list, i), line);
  }
  for (size_t i = 0; i < n_views; i++)
    if (pod->views[i].name != NULL && strcasecmp(pod->views[i].name, name) == 0)
      return sp__pod_fail(c, SP_EINVAL, at, "duplicate view name \"%s\" (lines %d and %d)", name,
                          name_line(c, c->views_list, i), line);
  return SP_OK;
}

/* Reads `name` first, so that every other message can name the dataset. */
static int read_name(pod_ctx *c, yaml_node_t *map, size_t index, sp_dataset_spec *ds) {
  yaml_node_t *k = NULL, *v = sp__pod_get(c, map, "name", &k);
  char owner[64];
  snprintf(owner, sizeof owner, "dataset #%zu", index + 1);
  if (k == NULL) {
    if (sp__pod_get(c, map, "ref", NULL) != NULL)
      return sp__pod_fail(c, SP_ENOTSUP, map, "%s: \"ref\" entries are not supported; write the dataset inline", owner);
    return sp__pod_fail(c, SP_EINVAL, map, "%s: missing required key \"name\"", owner);
  }
  SP_TRY(sp__pod_string(c, owner, k, v, &ds->name));
  if (!valid_name(ds->name))
    return sp__pod_fail(c, SP_EINVAL, k, "dataset name \"%s\" is invalid: write \"table\" or \"schema.table\"",
                        ds->name);
  return sp__pod_check_unique(c, false, ds->name, k, index, 0);
}

/* Copies unsupported_type_action into the params, replacing one written there. */
static int put_type_action(pod_ctx *c, ds_build *d) {
  if (d->uta[0] == '\0') return SP_OK;
  sp_params *p = &d->ds->params;
  for (size_t i = 0; i < p->count; i++)
    if (strcmp(p->items[i].key, "unsupported_type_action") == 0) return set_str(c, &p->items[i].value, d->uta);
  if (sp_params_set(p, "unsupported_type_action", d->uta, sp__pod_line(d->uta_key), sp__pod_col(d->uta_key)) != SP_OK)
    return oom(c);
  return SP_OK;
}

static int parse_dataset(pod_ctx *c, yaml_node_t *map, size_t index, sp_dataset_spec *ds) {
  ds->line = sp__pod_line(map);
  ds->col = sp__pod_col(map);
  ds->params.file = c->pod->file;
  SP_TRY(accel_defaults(c, &ds->acceleration, c->pod->file));
  if (map == NULL || map->type != YAML_MAPPING_NODE)
    return sp__pod_fail(c, SP_EINVAL, map, "dataset #%zu must be a mapping, not %s", index + 1, sp__pod_type_name(map));
  SP_TRY(read_name(c, map, index, ds));
  ds_build d = {.ds = ds};
  snprintf(d.owner, sizeof d.owner, "dataset \"%s\"", ds->name);
  SP_TRY(sp__pod_walk(c, map, dataset_keys, true, &d, d.owner, d.owner));
  SP_TRY(put_type_action(c, &d));
  if (ds->from == NULL) SP_TRY(set_str(c, &ds->from, ""));
  if (ds->ready_state == NULL) SP_TRY(set_str(c, &ds->ready_state, "on_load"));
  SP_TRY(split_from(c, ds));
  if (ds->mode == SP_MODE_READ_WRITE && !ds->replication_enabled)
    return sp__pod_fail(c, SP_EINVAL, d.mode_key, "%s: mode read_write requires replication.enabled: true", d.owner);
  return SP_OK;
}

int sp__pod_datasets(pod_ctx *c, yaml_node_t *key, yaml_node_t *list) {
  if (sp__pod_is_null(list)) return SP_OK;
  if (list->type != YAML_SEQUENCE_NODE)
    return sp__pod_fail(c, SP_EINVAL, key, "\"datasets\" must be a list, not %s", sp__pod_type_name(list));
  c->datasets_list = list;
  size_t n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
  if (n == 0) return SP_OK;
  c->pod->datasets = calloc(n, sizeof *c->pod->datasets);
  if (c->pod->datasets == NULL) return oom(c);
  for (size_t i = 0; i < n; i++) {
    c->pod->n_datasets = i + 1; /* counted first, so that sp_pod_free frees a half-read one */
    SP_TRY(parse_dataset(c, sp__pod_node(c, list->data.sequence.items.start[i]), i, &c->pod->datasets[i]));
  }
  return SP_OK;
}

void sp__pod_dataset_free(sp_dataset_spec *ds) {
  sp_acceleration_spec *a = &ds->acceleration;
  free(ds->view_sql);
  free(ds->from);
  free(ds->connector);
  free(ds->path);
  free(ds->name);
  free(ds->description);
  free(ds->time_column);
  free(ds->time_format);
  free(ds->ready_state);
  sp_params_free(&ds->params);
  free(a->engine);
  free(a->refresh_sql);
  free(a->on_zero_results);
  free(a->primary_key);
  free(a->retention_sql);
  free(a->refresh_on_startup);
  sp_params_free(&a->params);
  sp_params_free(&a->indexes);
  sp_params_free(&a->on_conflict);
}
