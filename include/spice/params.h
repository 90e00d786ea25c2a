/* SPDX-License-Identifier: Apache-2.0
 *
 * Parameters: the string maps of a spicepod (`params`, `acceleration.params`) and the declarative tables
 * that each module uses to describe the parameters it takes. The core validates a raw map against a table
 * before a module's open() runs, so modules never parse strings they did not declare.
 *
 * Spice's prefix rule (spice-compat §1.4): parameters flagged SP_PARAM_PREFIXED ("connector-type") are
 * written with the module's prefix (`pg_host`); the others ("runtime-type") are written bare
 * (`file_format`, `connection_pool_size`). A key in the wrong form is ignored with a warning, an unknown key
 * is ignored with a warning naming the closest valid key, a missing required one is an error
 * ("missing required parameter: pg_host"). Secret parameters that are absent are looked up in the secret
 * stores under `<prefix>_<name>`.
 */
#ifndef SPICE_PARAMS_H
#define SPICE_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spice/error.h"

typedef struct sp_secrets sp_secrets;

/* One key/value, with where it was written (line/col 0 when it did not come from a file). */
typedef struct sp_kv {
  char *key;
  char *value;
  int line, col;
} sp_kv;

/* An ordered map of owned strings. Zero-initialised is an empty map. */
typedef struct sp_params {
  sp_kv *items;
  size_t count;
  const char *file; /* borrowed: the spicepod path these came from, for messages (may be NULL) */
} sp_params;

typedef enum sp_param_type {
  SP_PARAM_STRING = 0,
  SP_PARAM_INT,      /* signed 64-bit decimal */
  SP_PARAM_BOOL,     /* true/false (also yes/no, on/off, enabled/disabled, 1/0) */
  SP_PARAM_DURATION, /* "10s", "5m", "1h", "250ms" */
  SP_PARAM_ENUM,     /* one of spec->choices, "a|b|c" (case-insensitive) */
  SP_PARAM_CHAR      /* exactly one character (CSV delimiter, quote) */
} sp_param_type;

enum {
  SP_PARAM_REQUIRED = 1u << 0,
  SP_PARAM_SECRET = 1u << 1,   /* never logged; auto-resolved from secret stores when absent */
  SP_PARAM_PREFIXED = 1u << 2, /* connector-type: written as <prefix>_<name> */
};

typedef struct sp_param_spec {
  const char *name;          /* without prefix: "host" for pg_host, "file_format" for a runtime param */
  sp_param_type type;
  unsigned flags;            /* SP_PARAM_* */
  const char *default_value; /* NULL: no default */
  const char *choices;       /* SP_PARAM_ENUM: "csv|parquet|json" */
  const char *help;          /* one line for docs and --help */
} sp_param_spec;
/* Tables end with an entry whose name is NULL. */

/* Appends (key, value); copies both. Returns SP_ENOMEM on failure. */
int sp_params_set(sp_params *p, const char *key, const char *value, int line, int col);
/* Borrowed pointer to the value, or NULL. Keys compare exactly. */
const char *sp_params_get(const sp_params *p, const char *key);
const sp_kv *sp_params_find(const sp_params *p, const char *key);
/* Typed getters for validated maps; they return `fallback` when the key is absent. */
bool sp_params_get_bool(const sp_params *p, const char *key, bool fallback);
int64_t sp_params_get_int(const sp_params *p, const char *key, int64_t fallback);
int64_t sp_params_get_duration_ms(const sp_params *p, const char *key, int64_t fallback);
/* Deep copy into *out (which must be empty). */
int sp_params_copy(sp_params *out, const sp_params *src);
void sp_params_free(sp_params *p);

/* Validates `raw` against `specs` and writes the canonical map to *out: keys written in full form
 * (prefixed ones as "<prefix>_<name>"), values checked against their type, defaults filled in, absent
 * secrets looked up in `secrets` (may be NULL). `what` names the owner in messages, e.g.
 * "dataset \"trips\"". Warnings (ignored keys) go to the log. On error *out is untouched. */
int sp_params_validate(const sp_param_spec *specs, const char *prefix, const sp_params *raw, sp_secrets *secrets,
                       const char *what, sp_params *out, sp_error *err);

/* True for param keys whose values are passwords, keys or tokens (pg_pass, s3_secret, spiceai_api_key): their
 * values are registered with sp_log_redact. */
bool sp_param_is_password(const char *key);

/* Parses a Spice duration ("10s", "5m", "1h", "2d", "1w", "250ms", "1h30m") into milliseconds.
 * Returns SP_EINVAL for anything else. */
int sp_duration_parse(const char *s, int64_t *out_ms, sp_error *err);
/* Parses a boolean as sp_params_get_bool does. Returns SP_EINVAL if not a boolean word. */
int sp_bool_parse(const char *s, bool *out, sp_error *err);

/* The valid key closest to `key` by edit distance (<= 3 edits, or failing that, the candidate whose
 * '_'-separated words include every word of `key`, each within one edit), written in full form into `buf`
 * (returned), or NULL when nothing is close. With buf NULL a spec name is returned (borrowed). */
const char *sp_params_closest(const sp_param_spec *specs, const char *prefix, const char *key, char *buf, size_t n);

#endif
