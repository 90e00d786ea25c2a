/* SPDX-License-Identifier: Apache-2.0
 *
 * Internals of the spicepod loader, shared by its files:
 *   pod.c          entry points, top-level keys, runtime, views, secret stores
 *   pod_dataset.c  datasets and their acceleration blocks
 *   pod_yaml.c     libyaml document helpers: positions, scalar typing, typed getters, errors, JSON
 *
 * All state lives in one pod_ctx on the caller's stack, so parsing is thread-safe.
 */
#ifndef SPICE_POD_INT_H
#define SPICE_POD_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <yaml.h>

#include "spice/error.h"
#include "spice/params.h"
#include "spice/pod.h"
#include "spice/secrets.h"

typedef struct pod_ctx {
  yaml_document_t *doc;
  const char *file;    /* for messages */
  const char *dir;     /* pod folder: sql_ref, .env files */
  sp_secrets *secrets; /* the caller's, or `own_secrets` made on first need; NULL until then */
  sp_secrets *own_secrets;
  sp_pod *pod;                             /* being filled */
  yaml_node_t *datasets_list, *views_list; /* for the lines of earlier names in duplicate-name messages */
  sp_error *err;
} pod_ctx;

/* What a YAML scalar resolves to under the YAML 1.2 core schema (as serde_yaml reads it). */
typedef enum pod_scalar_kind { POD_NULL, POD_BOOL, POD_INT, POD_FLOAT, POD_STRING } pod_scalar_kind;

/* One handled key of a mapping: its name and its handler. `obj` is the struct being filled. */
typedef int (*pod_key_fn)(pod_ctx *c, void *obj, const char *owner, yaml_node_t *key, yaml_node_t *val);
typedef struct pod_key {
  const char *name;
  pod_key_fn fn; /* NULL: accepted and ignored (kept in the JSON only) */
} pod_key;

/* ---- nodes and messages (pod_yaml.c) ---- */
yaml_node_t *sp__pod_node(pod_ctx *c, int id);
int sp__pod_line(const yaml_node_t *n);
int sp__pod_col(const yaml_node_t *n);
const char *sp__pod_text(const yaml_node_t *n); /* a scalar's text, "" for others */
pod_scalar_kind sp__pod_scalar_kind(const yaml_node_t *n);
bool sp__pod_is_null(const yaml_node_t *n);
const char *sp__pod_type_name(const yaml_node_t *n); /* "a mapping", "a list", "null", "a string", ... */
/* The value of `name` in a mapping node (and its key node), or NULL. */
yaml_node_t *sp__pod_get(pod_ctx *c, yaml_node_t *map, const char *name, yaml_node_t **key_out);

/* Formats "<file>:<line>:<col>: <message>" into c->err, at node `at`, and returns `code`. */
int sp__pod_fail(pod_ctx *c, int code, const yaml_node_t *at, const char *fmt, ...) SP_PRINTF(4, 5);
/* Logs a warning "<file>:<line>:<col>: <message>". */
void sp__pod_warn(pod_ctx *c, const yaml_node_t *at, const char *fmt, ...) SP_PRINTF(3, 4);

/* Walks a mapping, calling the handler of each key from `keys` (a NULL-named entry ends it). Unknown keys
 * are errors when `strict` (with a suggestion), warnings otherwise. */
int sp__pod_walk(pod_ctx *c, yaml_node_t *map, const pod_key *keys, bool strict, void *obj, const char *owner,
                 const char *where);

/* ---- typed getters: errors say `<owner>: "<key>" must be ...` at the key ---- */
int sp__pod_string(pod_ctx *c, const char *owner, yaml_node_t *key, yaml_node_t *val, char **out);
int sp__pod_bool(pod_ctx *c, const char *owner, yaml_node_t *key, yaml_node_t *val, bool *out);
int sp__pod_int(pod_ctx *c, const char *owner, yaml_node_t *key, yaml_node_t *val, int64_t *out);
int sp__pod_duration(pod_ctx *c, const char *owner, yaml_node_t *key, yaml_node_t *val, int64_t *out_ms);
/* `choices` is "a|b|c", matched ignoring case; *out is the canonical spelling (borrowed from a static
 * table the caller gives, copied into out_buf). */
int sp__pod_enum(pod_ctx *c, const char *owner, yaml_node_t *key, yaml_node_t *val, const char *choices, char *out_buf,
                 size_t n);
int sp__pod_expect(pod_ctx *c, const char *owner, yaml_node_t *key, yaml_node_t *val, yaml_node_type_t type);
/* A map of scalars into *out (values stringified; `${store:key}` resolved when `interpolate`); null, list
 * and map values are errors. */
int sp__pod_params(pod_ctx *c, const char *owner, yaml_node_t *key, yaml_node_t *val, bool interpolate, sp_params *out);

/* The pod's secret stores, made on first need when the caller passed none. */
sp_secrets *sp__pod_secrets(pod_ctx *c);

/* The whole document as compact JSON (malloc'd), checking every mapping for duplicate and non-scalar keys
 * on the way. */
int sp__pod_to_json(pod_ctx *c, yaml_node_t *root, char **out);

/* ---- datasets (pod_dataset.c) ---- */
int sp__pod_datasets(pod_ctx *c, yaml_node_t *key, yaml_node_t *list);
void sp__pod_dataset_free(sp_dataset_spec *ds);
/* Fills *ds (zeroed by the caller) as the dataset of an accelerated view from its `acceleration` block. */
int sp__pod_view_acceleration(pod_ctx *c, const char *owner, const char *name, yaml_node_t *k, yaml_node_t *v,
                              sp_dataset_spec *ds);
/* Fails when `name` (case-insensitively) is the name of one of the first n_datasets datasets or n_views
 * views. `at` is the new `name` key; the message names its line and the earlier one's. */
int sp__pod_check_unique(pod_ctx *c, bool is_view, const char *name, const yaml_node_t *at, size_t n_datasets,
                         size_t n_views);

#endif
