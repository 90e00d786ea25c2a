/* SPDX-License-Identifier: Apache-2.0
 *
 * Secret stores and `${store:key}` interpolation (spice-compat §8). The default store is `env`, which reads
 * the process environment and the files `.env.local` then `.env` in the spicepod's folder (the first value
 * found wins, the environment first). A lookup upper-cases the key and tries SPICE_<KEY> then <KEY>.
 * `${secrets:key}` searches every store in precedence order. Secret values are never logged.
 */
#ifndef SPICE_SECRETS_H
#define SPICE_SECRETS_H

#include "spice/error.h"

typedef struct sp_secrets sp_secrets;

/* Creates the store set for a spicepod in `pod_dir` (borrowed; NULL = current folder). The caller owns the
 * result and frees it with sp_secrets_destroy. */
int sp_secrets_create(const char *pod_dir, sp_secrets **out, sp_error *err);
void sp_secrets_destroy(sp_secrets *s);

/* Adds a store declared in a spicepod's `secrets:` list, named `name` (`${name:key}`; NULL: "env"). Only
 * `from` "env" is supported (params: optional `file_path`, a dotenv file relative to the pod folder, read
 * instead of .env.local/.env); others are SP_ENOTSUP "secret store \"X\" is not supported". The first call replaces
 * the default `env` store (a pod that lists stores gets exactly those); a store added later wins over earlier
 * ones in `${secrets:key}`; adding a name again replaces that store. `params` is borrowed (may be NULL). */
typedef struct sp_params sp_params;
int sp_secrets_add_store(sp_secrets *s, const char *from, const char *name, const sp_params *params, sp_error *err);

/* Looks `key` up in store `store` ("env", or "secrets" for all). Returns a malloc'd copy the caller frees,
 * or NULL when not found. */
char *sp_secrets_get(sp_secrets *s, const char *store, const char *key);

/* Replaces every ${store:key} in `in`. On success *out is a malloc'd string the caller frees. An unresolved
 * reference is SP_ENOTFOUND with a message naming it (never a value). */
int sp_secrets_interpolate(sp_secrets *s, const char *in, char **out, sp_error *err);

#endif
