/* SPDX-License-Identifier: Apache-2.0
 *
 * Internal to the HTTP server: the runtime settings it honours, read from the spicepod's JSON form
 * (sp_pod.json): `runtime.auth.api-key`, `runtime.results_cache` / `runtime.caching.sql_results`,
 * `runtime.cors` and `runtime.tls` (spice-compat §1.6, §8). API keys go through the spicepod's secret stores
 * (`${secrets:api_key}`), built the same way the pod loader builds them.
 */
#ifndef SPICE_SERVER_HTTP_CONFIG_H
#define SPICE_SERVER_HTTP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spice/error.h"
#include "spice/pod.h"

typedef struct sp_http_config {
  bool auth_enabled;
  char **api_keys;        /* resolved, non-empty; never logged */
  size_t n_api_keys;
  bool cache_enabled;     /* default true */
  uint64_t cache_max_bytes; /* default 128 MiB */
  int64_t cache_ttl_ms;   /* default 1000 */
  bool cors_enabled;      /* default false */
  char **cors_origins;    /* default ["*"] */
  size_t n_cors_origins;
  bool tls_enabled;
  char *tls_cert_pem;     /* the PEM text (inline, or read from certificate_file) */
  char *tls_key_pem;
} sp_http_config;

/* Fills *out from `pod` (borrowed; NULL: defaults). Unresolvable API keys are skipped with a warning that
 * names their position, never their value. SP_EINVAL for a malformed setting (bad size or duration, TLS
 * enabled without a certificate and key), SP_EIO when a certificate file cannot be read. *out is owned by the
 * caller (sp_http_config_free), also on error. */
int sp_http_config_load(const sp_pod *pod, sp_http_config *out, sp_error *err);
void sp_http_config_free(sp_http_config *c);

/* Reads a whole PEM file into a malloc'd NUL-terminated string (*out, the caller frees). SP_EIO names the path. */
int sp_http_read_file(const char *path, char **out, sp_error *err);

/* Parses a Spice byte size: "128MiB", "64MB", "1GiB", "512KiB", "100kb", "4096" (bytes). SP_EINVAL otherwise. */
int sp_http_parse_size(const char *s, uint64_t *out, sp_error *err);

/* True when `key` (n bytes) equals one of the configured keys. Every key is compared in full, whatever
 * matched, so the time taken does not say which bytes were right. */
bool sp_http_key_valid(const sp_http_config *c, const char *key, size_t n);

#endif
