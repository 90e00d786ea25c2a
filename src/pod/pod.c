/* SPDX-License-Identifier: Apache-2.0
 *
 * The spicepod loader (spice-compat §1): one YAML document, read with libyaml's document API, checked in
 * two passes. The first converts the whole document to JSON (kept for GET /v1/spicepods, values as written)
 * and rejects duplicate keys anywhere; the second reads the typed sections in dependency order: `secrets`
 * first (stores must exist before `${store:key}` is resolved), then `runtime`, `datasets` and `views`.
 *
 * Every error names file:line:col (1-based), the key and what was expected. Unknown top-level, runtime and
 * view keys are warnings; unknown dataset and acceleration keys are errors, as in Spice.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "pod/pod_int.h"

#define POD_MAX_FILE (64u << 20)

static int oom(pod_ctx *c) { return sp_fail(c->err, SP_ENOMEM, "out of memory"); }

/* Reads a whole file (at most `max` bytes) into a NUL-terminated buffer. */
static int read_file(const char *path, size_t max, char **out, size_t *out_len, sp_error *err) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return sp_fail(err, errno == ENOENT ? SP_ENOTFOUND : SP_EIO, "could not open \"%s\": %s", path, strerror(errno));
  char *buf = NULL;
  size_t len = 0, cap = 0;
  int rc = SP_OK;
  for (;;) {
    if (len + 8192 + 1 > cap) {
      char *b = realloc(buf, cap = cap ? cap * 2 : 16384);
      if (b == NULL) {
        rc = sp_fail(err, SP_ENOMEM, "out of memory reading \"%s\"", path);
        break;
      }
      buf = b;
    }
    size_t n = fread(buf + len, 1, cap - len - 1, f);
    len += n;
    if (len > max) {
      rc = sp_fail(err, SP_EINVAL, "\"%s\" is larger than %zu MiB", path, max >> 20);
      break;
    }
    if (n == 0) {
      if (ferror(f)) rc = sp_fail(err, SP_EIO, "could not read \"%s\": %s", path, strerror(errno));
      break;
    }
  }
  fclose(f);
  if (rc != SP_OK) {
    free(buf);
    return rc;
  }
  buf[len] = '\0';
  *out = buf;
  *out_len = len;
  return SP_OK;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Top-level scalars                                                                                       */
/* ------------------------------------------------------------------------------------------------------ */

/* Nodes of the sections read after the top-level walk, in dependency order. */
typedef struct top_build {
  yaml_node_t *version, *kind, *name;
  yaml_node_t *secrets, *runtime, *datasets_k, *datasets, *views_k, *views;
} top_build;

static int top_version(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  ((top_build *)o)->version = k;
  SP_TRY(sp__pod_string(c, w, k, v, &c->pod->version));
  if (strcmp(c->pod->version, "v1beta1") != 0 && strcmp(c->pod->version, "v1") != 0)
    return sp__pod_fail(c, SP_EINVAL, k, "unsupported spicepod version \"%s\" (expected v1beta1 or v1)",
                        c->pod->version);
  return SP_OK;
}

static int top_kind(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  ((top_build *)o)->kind = k;
  SP_TRY(sp__pod_string(c, w, k, v, &c->pod->kind));
  if (strcmp(c->pod->kind, "Spicepod") != 0)
    return sp__pod_fail(c, SP_EINVAL, k, "\"kind\" must be Spicepod, got \"%s\"", c->pod->kind);
  return SP_OK;
}

static int top_name(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  ((top_build *)o)->name = k;
  return sp__pod_string(c, w, k, v, &c->pod->name);
}

static int top_datasets(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  ((top_build *)o)->datasets_k = k;
  ((top_build *)o)->datasets = v;
  return SP_OK;
}

static int top_views(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  ((top_build *)o)->views_k = k;
  ((top_build *)o)->views = v;
  return SP_OK;
}

static int top_secrets(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  ((top_build *)o)->secrets = v;
  return sp__pod_expect(c, w, k, v, YAML_SEQUENCE_NODE);
}

static int top_runtime(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  ((top_build *)o)->runtime = v;
  return sp__pod_expect(c, w, k, v, YAML_MAPPING_NODE);
}

static int any_map(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return sp__pod_expect(c, w, k, v, YAML_MAPPING_NODE);
}

static int any_list(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return sp__pod_expect(c, w, k, v, YAML_SEQUENCE_NODE);
}

static const pod_key top_keys[] = {
    {"version", top_version},   {"kind", top_kind},         {"name", top_name},
    {"datasets", top_datasets}, {"views", top_views},       {"runtime", top_runtime},
    {"secrets", top_secrets},   {"metadata", any_map},      {"catalogs", any_list},
    {"models", any_list},       {"embeddings", any_list},   {"tools", any_list},
    {"extensions", any_map},    {"dependencies", any_list}, {NULL, NULL},
};

/* ------------------------------------------------------------------------------------------------------ */
/* secrets                                                                                                 */
/* ------------------------------------------------------------------------------------------------------ */

typedef struct store_build {
  char *from, *name;
  yaml_node_t *from_key;
  sp_params params;
} store_build;

static int st_from(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  ((store_build *)o)->from_key = k;
  return sp__pod_string(c, w, k, v, &((store_build *)o)->from);
}

static int st_name(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return sp__pod_string(c, w, k, v, &((store_build *)o)->name);
}

static int st_params(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return sp__pod_params(c, w, k, v, false, &((store_build *)o)->params);
}

static int st_description(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  char *s = NULL;
  int rc = sp__pod_is_null(v) ? SP_OK : sp__pod_string(c, w, k, v, &s);
  free(s);
  return rc;
}

static const pod_key store_keys[] = {
    {"from", st_from}, {"name", st_name}, {"params", st_params}, {"description", st_description}, {NULL, NULL},
};

static int read_store(pod_ctx *c, yaml_node_t *item, size_t i) {
  char owner[64];
  snprintf(owner, sizeof owner, "secret store #%zu", i + 1);
  if (item == NULL || item->type != YAML_MAPPING_NODE)
    return sp__pod_fail(c, SP_EINVAL, item, "%s must be a mapping, not %s", owner, sp__pod_type_name(item));
  store_build b = {.params.file = c->pod->file};
  int rc = sp__pod_walk(c, item, store_keys, false, &b, owner, owner);
  if (rc == SP_OK && b.from == NULL) rc = sp__pod_fail(c, SP_EINVAL, item, "%s: missing required key \"from\"", owner);
  if (rc == SP_OK) {
    sp_error e = {0};
    sp_secrets *s = sp__pod_secrets(c);
    if (s == NULL) {
      rc = oom(c);
    } else if (sp_secrets_add_store(s, b.from, b.name, &b.params, &e) != SP_OK) {
      rc = sp__pod_fail(c, e.code, b.from_key, "%s", e.msg);
    }
  }
  free(b.from);
  free(b.name);
  sp_params_free(&b.params);
  return rc;
}

static int read_secrets(pod_ctx *c, yaml_node_t *list) {
  if (list == NULL || list->type != YAML_SEQUENCE_NODE) return SP_OK;
  for (yaml_node_item_t *i = list->data.sequence.items.start; i < list->data.sequence.items.top; i++)
    SP_TRY(read_store(c, sp__pod_node(c, *i), (size_t)(i - list->data.sequence.items.start)));
  return SP_OK;
}

/* ------------------------------------------------------------------------------------------------------ */
/* runtime                                                                                                 */
/* ------------------------------------------------------------------------------------------------------ */

typedef struct rt_build {
  sp_runtime_spec *rt;
  int results_cache; /* -1 unset, else 0/1 from results_cache.enabled */
  int sql_results;   /* -1 unset, else 0/1 from caching.sql_results.enabled */
} rt_build;

static int rc_enabled(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  bool b;
  SP_TRY(sp__pod_bool(c, w, k, v, &b));
  ((rt_build *)o)->results_cache = b;
  return SP_OK;
}

static int sr_enabled(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  bool b;
  SP_TRY(sp__pod_bool(c, w, k, v, &b));
  ((rt_build *)o)->sql_results = b;
  return SP_OK;
}

static int any_duration(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  int64_t ms;
  return sp__pod_duration(c, w, k, v, &ms);
}

static int rt_shutdown_timeout(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return sp__pod_duration(c, w, k, v, &((rt_build *)o)->rt->shutdown_timeout_ms);
}

static int q_timeout(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return sp__pod_duration(c, w, k, v, &((rt_build *)o)->rt->query_timeout_ms);
}

static int any_int(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  int64_t n;
  return sp__pod_int(c, w, k, v, &n);
}

static int any_scalar(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  if (v != NULL && v->type == YAML_SCALAR_NODE) return SP_OK;
  return sp__pod_fail(c, SP_EINVAL, k, "%s: \"%s\" must be a single value", w, sp__pod_text(k));
}

static const pod_key results_cache_keys[] = {
    {"enabled", rc_enabled},
    {"cache_max_size", any_scalar},
    {"item_ttl", any_duration},
    {"eviction_policy", any_scalar},
    {"cache_key_type", any_scalar},
    {"hashing_algorithm", any_scalar},
    {"stale_while_revalidate_ttl", any_duration},
    {NULL, NULL},
};

static const pod_key sql_results_keys[] = {
    {"enabled", sr_enabled},
    {"max_size", any_scalar},
    {"item_ttl", any_duration},
    {"eviction_policy", any_scalar},
    {"cache_key_type", any_scalar},
    {"hashing_algorithm", any_scalar},
    {"stale_while_revalidate_ttl", any_duration},
    {NULL, NULL},
};

/* Walks a nested mapping of a runtime section, with unknown keys as warnings. */
static int sub_walk(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v, const pod_key *keys) {
  char where[128];
  SP_TRY(sp__pod_expect(c, w, k, v, YAML_MAPPING_NODE));
  if (v == NULL || v->type != YAML_MAPPING_NODE) return SP_OK;
  snprintf(where, sizeof where, "%s.%s", w, sp__pod_text(k));
  return sp__pod_walk(c, v, keys, false, o, where, where);
}

static int rt_results_cache(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return sub_walk(c, o, w, k, v, results_cache_keys);
}

static int rt_sql_results(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return sub_walk(c, o, w, k, v, sql_results_keys);
}

static int rt_caching(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  static const pod_key keys[] = {
      {"sql_results", rt_sql_results}, {"search_results", any_map}, {"embeddings", any_map}, {NULL, NULL}};
  return sub_walk(c, o, w, k, v, keys);
}

/* runtime.query: `timeout` is spicec's; the others are Spice's DataFusion settings, accepted and unused. */
static int rt_query(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  static const pod_key keys[] = {{"timeout", q_timeout},
                                 {"memory_limit", any_scalar},
                                 {"spill_compression", any_scalar},
                                 {"temp_directory", any_scalar},
                                 {NULL, NULL}};
  return sub_walk(c, o, w, k, v, keys);
}

static int rt_params(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return sp__pod_params(c, w, k, v, true, &((rt_build *)o)->rt->params);
}

/* `http: 127.0.0.1:8090` or `http: {address: ...}`. */
static int read_addr(pod_ctx *c, const char *w, yaml_node_t *k, yaml_node_t *v, char **out) {
  if (v != NULL && v->type == YAML_MAPPING_NODE) {
    yaml_node_t *ak = NULL, *av = sp__pod_get(c, v, "address", &ak);
    return ak ? sp__pod_string(c, w, ak, av, out) : SP_OK;
  }
  return sp__pod_string(c, w, k, v, out);
}

static int rt_http(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return read_addr(c, w, k, v, &((rt_build *)o)->rt->http_addr);
}

static int rt_flight(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  return read_addr(c, w, k, v, &((rt_build *)o)->rt->flight_addr);
}

static const pod_key runtime_keys[] = {
    {"results_cache", rt_results_cache},
    {"caching", rt_caching},
    {"params", rt_params},
    {"tls", any_map},
    {"auth", any_map},
    {"cors", any_map},
    {"task_history", any_map},
    {"telemetry", any_map},
    {"tracing", any_map},
    {"query", rt_query},
    {"num_of_parallel_loading_at_start_up", any_int},
    {"dataset_load_parallelism", any_int},
    {"shutdown_timeout", rt_shutdown_timeout},
    {"output_level", any_scalar},
    {"http", rt_http},
    {"flight", rt_flight},
    {"metrics", NULL},
    {"ready_state", NULL},
    {NULL, NULL},
};

static int read_runtime(pod_ctx *c, yaml_node_t *map) {
  rt_build b = {.rt = &c->pod->runtime, .results_cache = -1, .sql_results = -1};
  b.rt->shutdown_timeout_ms = 30000;
  b.rt->params.file = c->pod->file;
  if (map != NULL && map->type == YAML_MAPPING_NODE)
    SP_TRY(sp__pod_walk(c, map, runtime_keys, false, &b, "runtime", "runtime"));
  b.rt->results_cache_enabled = b.results_cache >= 0 ? b.results_cache : b.sql_results >= 0 ? b.sql_results : true;
  return SP_OK;
}

/* ------------------------------------------------------------------------------------------------------ */
/* views                                                                                                   */
/* ------------------------------------------------------------------------------------------------------ */

typedef struct view_build {
  sp_view_spec *v;
  yaml_node_t *sql_ref_k, *sql_k;
  char *sql_ref;
} view_build;

static int vw_sql(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  ((view_build *)o)->sql_k = k;
  return sp__pod_string(c, w, k, v, &((view_build *)o)->v->sql);
}

static int vw_sql_ref(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  ((view_build *)o)->sql_ref_k = k;
  return sp__pod_string(c, w, k, v, &((view_build *)o)->sql_ref);
}

static int vw_description(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  if (sp__pod_is_null(v)) return SP_OK;
  return sp__pod_string(c, w, k, v, &((view_build *)o)->v->description);
}

static int vw_acceleration(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  view_build *b = o;
  sp_dataset_spec *ds = calloc(1, sizeof *ds);
  if (ds == NULL) return sp_fail(c->err, SP_ENOMEM, "out of memory");
  b->v->accelerated = ds; /* freed with the view, even on failure */
  return sp__pod_view_acceleration(c, w, b->v->name, k, v, ds);
}

static int vw_ready_state(pod_ctx *c, void *o, const char *w, yaml_node_t *k, yaml_node_t *v) {
  char m[20];
  return sp__pod_enum(c, w, k, v, "on_load|on_registration", m, sizeof m);
}

static const pod_key view_keys[] = {
    {"name", NULL},        {"sql", vw_sql},         {"sql_ref", vw_sql_ref},   {"description", vw_description},
    {"metadata", any_map}, {"dependsOn", any_list}, {"acceleration", vw_acceleration}, {"ready_state", vw_ready_state},
    {NULL, NULL},
};

/* Reads the view's SQL from `sql_ref`, a path relative to the pod folder. */
static int read_sql_ref(pod_ctx *c, view_build *b, const char *owner) {
  char path[4096];
  if (b->sql_ref[0] == '/' || strcmp(c->dir, ".") == 0)
    snprintf(path, sizeof path, "%s", b->sql_ref);
  else
    snprintf(path, sizeof path, "%s/%s", c->dir, b->sql_ref);
  sp_error e = {0};
  size_t len;
  if (read_file(path, 16u << 20, &b->v->sql, &len, &e) != SP_OK)
    return sp__pod_fail(c, e.code, b->sql_ref_k, "%s: could not read sql_ref: %s", owner, e.msg);
  return SP_OK;
}

static int read_view(pod_ctx *c, yaml_node_t *map, size_t i) {
  sp_view_spec *v = &c->pod->views[i];
  char owner[320];
  v->line = sp__pod_line(map);
  v->col = sp__pod_col(map);
  if (map == NULL || map->type != YAML_MAPPING_NODE)
    return sp__pod_fail(c, SP_EINVAL, map, "view #%zu must be a mapping, not %s", i + 1, sp__pod_type_name(map));
  yaml_node_t *nk = NULL, *nv = sp__pod_get(c, map, "name", &nk);
  snprintf(owner, sizeof owner, "view #%zu", i + 1);
  if (nk == NULL) return sp__pod_fail(c, SP_EINVAL, map, "%s: missing required key \"name\"", owner);
  SP_TRY(sp__pod_string(c, owner, nk, nv, &v->name));
  SP_TRY(sp__pod_check_unique(c, true, v->name, nk, c->pod->n_datasets, i));
  snprintf(owner, sizeof owner, "view \"%s\"", v->name);
  view_build b = {.v = v};
  int rc = sp__pod_walk(c, map, view_keys, false, &b, owner, owner);
  if (rc == SP_OK && b.sql_ref != NULL && v->sql != NULL)
    rc = sp__pod_fail(c, SP_EINVAL, b.sql_ref_k, "%s: write either \"sql\" or \"sql_ref\", not both", owner);
  else if (rc == SP_OK && b.sql_ref != NULL)
    rc = read_sql_ref(c, &b, owner);
  else if (rc == SP_OK && v->sql == NULL)
    rc = sp__pod_fail(c, SP_EINVAL, map, "%s: one of \"sql\" or \"sql_ref\" is required", owner);
  free(b.sql_ref);
  if (rc == SP_OK && v->accelerated && !v->accelerated->acceleration.enabled) {
    sp__pod_dataset_free(v->accelerated); /* `enabled: false`: a plain view */
    free(v->accelerated);
    v->accelerated = NULL;
  } else if (rc == SP_OK && v->accelerated && (v->accelerated->view_sql = strdup(v->sql)) == NULL) {
    rc = sp_fail(c->err, SP_ENOMEM, "out of memory");
  }
  return rc;
}

static int read_views(pod_ctx *c, yaml_node_t *key, yaml_node_t *list) {
  if (sp__pod_is_null(list)) return SP_OK;
  if (list->type != YAML_SEQUENCE_NODE)
    return sp__pod_fail(c, SP_EINVAL, key, "\"views\" must be a list, not %s", sp__pod_type_name(list));
  c->views_list = list;
  size_t n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
  if (n == 0) return SP_OK;
  if ((c->pod->views = calloc(n, sizeof *c->pod->views)) == NULL) return oom(c);
  for (size_t i = 0; i < n; i++) {
    c->pod->n_views = i + 1;
    SP_TRY(read_view(c, sp__pod_node(c, list->data.sequence.items.start[i]), i));
  }
  return SP_OK;
}

/* ------------------------------------------------------------------------------------------------------ */
/* The document                                                                                            */
/* ------------------------------------------------------------------------------------------------------ */

/* 1-based line and column of byte `offset` in the input (libyaml reader errors give only an offset). */
static void offset_position(const char *yaml, size_t len, size_t offset, int *line, int *col) {
  *line = 1;
  *col = 1;
  for (size_t i = 0; i < offset && i < len; i++) {
    if (yaml[i] == '\n')
      (*line)++, *col = 1;
    else
      (*col)++;
  }
}

static int yaml_error(pod_ctx *c, yaml_parser_t *p, const char *yaml, size_t len) {
  int line = (int)p->problem_mark.line + 1, col = (int)p->problem_mark.column + 1;
  if (p->error == YAML_MEMORY_ERROR) return oom(c);
  if (p->error == YAML_READER_ERROR) offset_position(yaml, len, p->problem_offset, &line, &col);
  const char *problem = p->problem ? p->problem : "unknown error";
  if (p->context != NULL)
    return sp_fail(c->err, SP_EINVAL, "%s:%d:%d: invalid YAML: %s (%s at line %d, column %d)", c->file, line, col,
                   problem, p->context, (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
  return sp_fail(c->err, SP_EINVAL, "%s:%d:%d: invalid YAML: %s", c->file, line, col, problem);
}

/* A spicepod is one document: a second one is refused rather than silently dropped. */
static int no_second_document(pod_ctx *c, yaml_parser_t *p, const char *yaml, size_t len) {
  yaml_document_t next;
  if (!yaml_parser_load(p, &next)) return yaml_error(c, p, yaml, len);
  yaml_node_t *root = yaml_document_get_root_node(&next);
  int rc = SP_OK;
  if (root != NULL)
    rc = sp_fail(c->err, SP_EINVAL, "%s:%d:%d: a spicepod is one YAML document; found a second one", c->file,
                 sp__pod_line(root), sp__pod_col(root));
  yaml_document_delete(&next);
  return rc;
}

static int read_required(pod_ctx *c, yaml_node_t *root) {
  static const char *const names[] = {"version", "kind", "name"};
  char *const values[] = {c->pod->version, c->pod->kind, c->pod->name};
  for (int i = 0; i < 3; i++)
    if (values[i] == NULL) return sp__pod_fail(c, SP_EINVAL, root, "missing required key \"%s\" in spicepod", names[i]);
  return SP_OK;
}

/* Reads the typed sections of a loaded document into c->pod. */
static int read_document(pod_ctx *c, yaml_node_t *root) {
  if (root == NULL) return sp_fail(c->err, SP_EINVAL, "%s:1:1: the spicepod is empty", c->file);
  if (root->type != YAML_MAPPING_NODE)
    return sp__pod_fail(c, SP_EINVAL, root, "a spicepod must be a mapping of keys, not %s", sp__pod_type_name(root));
  SP_TRY(sp__pod_to_json(c, root, &c->pod->json));
  top_build t = {0};
  SP_TRY(sp__pod_walk(c, root, top_keys, false, &t, "spicepod", "spicepod"));
  SP_TRY(read_required(c, root));
  SP_TRY(read_secrets(c, t.secrets));
  SP_TRY(read_runtime(c, t.runtime));
  SP_TRY(sp__pod_datasets(c, t.datasets_k, t.datasets));
  return read_views(c, t.views_k, t.views);
}

/* The folder part of `file` ("." when it has none). */
static char *dir_of(const char *file) {
  const char *slash = strrchr(file, '/');
  if (slash == NULL) return strdup(".");
  if (slash == file) return strdup("/");
  return strndup(file, (size_t)(slash - file));
}

int sp_pod_parse(const char *yaml, size_t len, const char *file, sp_secrets *secrets, sp_pod **out, sp_error *err) {
  if (yaml == NULL) yaml = "", len = 0;
  sp_pod *pod = calloc(1, sizeof *pod);
  if (pod == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  pod->file = strdup(file ? file : "spicepod.yaml");
  pod->dir = pod->file ? dir_of(pod->file) : NULL;
  if (pod->file == NULL || pod->dir == NULL) {
    sp_pod_free(pod);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  pod_ctx c = {.file = pod->file, .dir = pod->dir, .secrets = secrets, .pod = pod, .err = err};
  yaml_parser_t parser;
  yaml_document_t doc;
  int rc;
  if (!yaml_parser_initialize(&parser)) {
    sp_pod_free(pod);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
  if (!yaml_parser_load(&parser, &doc)) {
    rc = yaml_error(&c, &parser, yaml, len);
  } else {
    c.doc = &doc;
    rc = read_document(&c, yaml_document_get_root_node(&doc));
    if (rc == SP_OK) rc = no_second_document(&c, &parser, yaml, len);
    yaml_document_delete(&doc);
  }
  yaml_parser_delete(&parser);
  sp_secrets_destroy(c.own_secrets);
  if (rc != SP_OK) {
    sp_pod_free(pod);
    return rc;
  }
  *out = pod;
  return SP_OK;
}

/* Finds spicepod.yaml or spicepod.yml in a folder. */
static int find_in_folder(const char *dir, char *path, size_t n, sp_error *err) {
  static const char *const names[] = {"spicepod.yaml", "spicepod.yml"};
  struct stat st;
  for (int i = 0; i < 2; i++) {
    /* In the current folder the name alone reads best in messages: spicepod.yaml:8:7: … */
    if (strcmp(dir, ".") == 0) snprintf(path, n, "%s", names[i]);
    else snprintf(path, n, "%s/%s", dir, names[i]);
    if (stat(path, &st) == 0) return SP_OK;
  }
  return sp_fail(err, SP_ENOTFOUND, "no spicepod.yaml or spicepod.yml in \"%s\"", dir);
}

int sp_pod_load(const char *path, sp_secrets *secrets, sp_pod **out, sp_error *err) {
  char file[4096];
  struct stat st;
  if (path == NULL) path = ".";
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    SP_TRY(find_in_folder(path, file, sizeof file, err));
  else
    snprintf(file, sizeof file, "%s", path);
  char *text;
  size_t len;
  int rc = read_file(file, POD_MAX_FILE, &text, &len, err);
  if (rc != SP_OK) {
    sp_error_prefix(err, "could not load spicepod");
    return rc;
  }
  rc = sp_pod_parse(text, len, file, secrets, out, err);
  free(text);
  return rc;
}

void sp_pod_free(sp_pod *pod) {
  if (pod == NULL) return;
  for (size_t i = 0; i < pod->n_datasets; i++)
    sp__pod_dataset_free(&pod->datasets[i]);
  free(pod->datasets);
  for (size_t i = 0; i < pod->n_views; i++) {
    free(pod->views[i].name);
    free(pod->views[i].sql);
    free(pod->views[i].description);
    if (pod->views[i].accelerated) sp__pod_dataset_free(pod->views[i].accelerated);
    free(pod->views[i].accelerated);
  }
  free(pod->views);
  free(pod->runtime.http_addr);
  free(pod->runtime.flight_addr);
  sp_params_free(&pod->runtime.params);
  free(pod->file);
  free(pod->dir);
  free(pod->version);
  free(pod->kind);
  free(pod->name);
  free(pod->json);
  free(pod);
}

/* ------------------------------------------------------------------------------------------------------ */
/* Refresh modes                                                                                           */
/* ------------------------------------------------------------------------------------------------------ */

static const char *const refresh_mode_names[] = {
    [SP_REFRESH_FULL] = "full",         [SP_REFRESH_APPEND] = "append",   [SP_REFRESH_CHANGES] = "changes",
    [SP_REFRESH_DISABLED] = "disabled", [SP_REFRESH_CACHING] = "caching",
};

const char *sp_refresh_mode_name(sp_refresh_mode m) {
  return (unsigned)m < sizeof refresh_mode_names / sizeof refresh_mode_names[0] ? refresh_mode_names[m] : "unknown";
}

int sp_refresh_mode_parse(const char *s, sp_refresh_mode *out) {
  for (size_t i = 0; s != NULL && i < sizeof refresh_mode_names / sizeof refresh_mode_names[0]; i++) {
    if (strcasecmp(s, refresh_mode_names[i]) == 0) {
      *out = (sp_refresh_mode)i;
      return SP_OK;
    }
  }
  return SP_EINVAL;
}
