/* SPDX-License-Identifier: Apache-2.0
 *
 * Hot reload: the spicepod is read again and the difference applied without a restart (nginx's cycle: build
 * and validate the whole new configuration first, then swap).
 *   - a spicepod that does not load, or names an unknown connector or engine, is rejected: nothing changes;
 *   - datasets whose definition is unchanged keep serving, untouched (no reload, no gap);
 *   - removed datasets stop and their tables go; changed ones are removed, then added again;
 *   - added datasets load like at start. New `file:` federated datasets are read through connector scans
 *     (the sandbox's allowed paths are fixed at start); file accelerators live in .spice/data as always.
 * Views are compared by their SQL and redefined when they change. Runtime settings (ports, auth, caches) need a
 * restart.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "runtime/registry.h"
#include "runtime/runtime_int.h"
#include "spice/log.h"

/* The dataset (or accelerated view) entry `name` of a spicepod's JSON, as canonical text (sorted keys). */
static char *dataset_key(json_t *pod, const char *name) {
  static const char *const lists[] = {"datasets", "views"};
  for (int l = 0; l < 2; l++) {
    json_t *list = json_object_get(pod, lists[l]);
    for (size_t i = 0; i < json_array_size(list); i++) {
      json_t *d = json_array_get(list, i);
      const char *n = json_string_value(json_object_get(d, "name"));
      if (n && strcasecmp(n, name) == 0) return json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
    }
  }
  return NULL;
}

static int same_definition(json_t *old_pod, json_t *new_pod, const char *name) {
  char *a = dataset_key(old_pod, name), *b = dataset_key(new_pod, name);
  int same = a && b && strcmp(a, b) == 0;
  free(a);
  free(b);
  return same;
}

/* Checks what can be checked without touching anything: modules exist, modes are supported. */
static int validate(const sp_pod *pod, sp_error *err) {
  for (size_t i = 0; i < sp__pod_spec_count(pod); i++) {
    const sp_dataset_spec *d = sp__pod_spec(pod, i);
    const sp_accelerator_module *am;
    if (d->view_sql == NULL && sp_registry_connector(d->connector) == NULL)
      return sp_fail(err, SP_EINVAL, "dataset \"%s\": unknown data connector \"%s\"", d->name, d->connector);
    if (!d->acceleration.present || !d->acceleration.enabled) continue;
    if ((am = sp_registry_accelerator(d->acceleration.engine)) == NULL)
      return sp_fail(err, SP_EINVAL, "dataset \"%s\": unknown acceleration engine \"%s\"", d->name, d->acceleration.engine);
    if (d->acceleration.mode == SP_ACCEL_FILE && !(am->caps & SP_ACCEL_CAP_FILE))
      return sp_fail(err, SP_EINVAL, "dataset \"%s\": File mode not supported for %s engine", d->name, am->name);
  }
  return SP_OK;
}

/* Drops the views of the running spicepod that the new one removes or changes. */
static void drop_changed_views(sp_runtime *rt, const sp_pod *next) {
  for (size_t i = 0; i < rt->pod->n_views; i++) {
    const sp_view_spec *v = &rt->pod->views[i];
    int kept = 0;
    for (size_t j = 0; j < next->n_views && !kept; j++)
      kept = strcasecmp(next->views[j].name, v->name) == 0 && strcmp(next->views[j].sql, v->sql) == 0 &&
             (next->views[j].accelerated != NULL) == (v->accelerated != NULL);
    if (v->accelerated) continue; /* an accelerated view is a dataset: handled with them */
    if (!kept) sp_engine_drop_table(rt->engine, v->name, NULL);
  }
}

int sp_runtime_reload(sp_runtime *rt, int *out_changes, sp_error *err) {
  sp_secrets *secrets = NULL;
  sp_pod *pod = NULL;
  int rc = sp_secrets_create(NULL, &secrets, err);
  if (rc == SP_OK) rc = sp_pod_load(rt->pod_path, secrets, &pod, err);
  if (rc == SP_OK) rc = validate(pod, err);
  json_t *old_json = rc == SP_OK ? json_loads(rt->pod->json, 0, NULL) : NULL;
  json_t *new_json = rc == SP_OK ? json_loads(pod->json, 0, NULL) : NULL;
  size_t total = rc == SP_OK ? sp__pod_spec_count(pod) : 0;
  sp_dataset **next = rc == SP_OK ? calloc(total + 1, sizeof *next) : NULL;
  sp_dataset **gone = rc == SP_OK ? calloc(rt->n + 1, sizeof *gone) : NULL;
  sp_retired_pod *retired = rc == SP_OK ? realloc(rt->retired, (rt->n_retired + 1) * sizeof *retired) : NULL;
  if (retired) rt->retired = retired;
  if (rc == SP_OK && (!old_json || !new_json || !next || !gone || !retired)) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc != SP_OK) {
    json_decref(old_json);
    json_decref(new_json);
    free(next);
    free(gone);
    sp_pod_free(pod);
    sp_secrets_destroy(secrets);
    sp_error_prefix(err, "spicepod not reloaded");
    return rc;
  }
  /* Plan: keep the unchanged, note the rest. */
  size_t n_gone = 0, changes = 0;
  pthread_rwlock_wrlock(&rt->ds_lock);
  for (size_t i = 0; i < rt->n; i++) {
    sp_dataset *ds = rt->datasets[i];
    int kept = 0;
    for (size_t j = 0; j < total && !kept; j++)
      if (next[j] == NULL && strcasecmp(sp__pod_spec(pod, j)->name, ds->spec->name) == 0 &&
          same_definition(old_json, new_json, ds->spec->name)) {
        next[j] = ds;
        kept = 1;
      }
    if (!kept) gone[n_gone++] = ds;
  }
  /* Until the new ones exist, only the kept datasets are visible. */
  size_t n = 0;
  for (size_t j = 0; j < total; j++)
    if (next[j]) rt->datasets[n++] = next[j];
  rt->n = n;
  pthread_rwlock_unlock(&rt->ds_lock);
  json_decref(old_json);
  json_decref(new_json);

  sp__watcher_stop(rt->watcher);
  rt->watcher = NULL;
  for (size_t i = 0; i < n_gone; i++) {
    sp_log_info("dataset \"%s\" removed by reload", gone[i]->spec->name);
    sp__dataset_stop(gone[i]);
    sp_engine_drop_table(rt->engine, gone[i]->spec->name, NULL);
    sp__dataset_destroy(gone[i]);
    changes++;
  }
  free(gone);
  for (size_t j = 0; j < total; j++) {
    if (next[j]) continue;
    sp_error e = {0};
    if (sp__dataset_create(rt, sp__pod_spec(pod, j), &next[j], &e) != SP_OK) {
      sp_log_error("reload: %s", e.msg);
      next[j] = NULL;
      continue;
    }
    sp_log_info("dataset \"%s\" added by reload", sp__pod_spec(pod, j)->name);
    changes++;
  }
  /* Swap: the new spicepod and every dataset it defines. */
  pthread_rwlock_wrlock(&rt->ds_lock);
  drop_changed_views(rt, pod);
  sp_dataset **arr = realloc(rt->datasets, (total + 1) * sizeof *arr);
  if (arr) rt->datasets = arr;
  n = 0;
  for (size_t j = 0; j < total && arr; j++)
    if (next[j]) rt->datasets[n++] = next[j];
  rt->n = n;
  rt->retired[rt->n_retired++] = (sp_retired_pod){.pod = rt->pod, .secrets = rt->secrets};
  rt->pod = pod;
  rt->secrets = secrets;
  pthread_rwlock_unlock(&rt->ds_lock);
  sp_engine_set_query_timeout(rt->engine, pod->runtime.query_timeout_ms);
  sp__define_views(rt);

  sp_error e = {0};
  if (sp__watcher_start(rt, rt->datasets, rt->n, &rt->watcher, &e) != SP_OK) sp_log_warn("reload: %s", e.msg);
  for (size_t j = 0; j < total; j++)
    if (next[j] && !next[j]->has_thread && sp__dataset_start(next[j], &e) != SP_OK) sp_log_error("reload: %s", e.msg);
  free(next);
  __atomic_add_fetch(&rt->data_version, 1, __ATOMIC_RELEASE);
  if (out_changes) *out_changes = (int)changes;
  sp_log_info("spicepod reloaded: %zu dataset change(s)", changes);
  return SP_OK;
}
