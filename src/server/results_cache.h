/* SPDX-License-Identifier: Apache-2.0
 *
 * Internal to the HTTP server: the results cache of POST /v1/sql (spice-compat §7; `runtime.results_cache`,
 * `runtime.caching.sql_results`). An LRU of encoded response bodies, bounded in bytes, keyed by the
 * normalised SQL text, the parameters and the response format. An entry remembers the runtime's data version
 * (sp_runtime_data_version) from before its query ran and is dropped on lookup once that version moved or its
 * TTL passed, so a cached answer is never older than the last refresh.
 *
 * Why a text normaliser and not DuckDB's json_serialize_sql: the key is computed for every query, on the
 * hot path of a cached point query, and a DuckDB parse needs a pooled connection and costs more than the whole
 * cache hit. The normaliser is deliberately conservative: it only rewrites what cannot change the meaning or
 * the result's column names (whitespace and comments outside literals and quoted identifiers, the case of
 * reserved keywords), so two keys are equal only for queries that are the same statement.
 */
#ifndef SPICE_SERVER_RESULTS_CACHE_H
#define SPICE_SERVER_RESULTS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/format.h"
#include "spice/engine.h"
#include "spice/error.h"

/* Appends the normal form of sql[0..n) to *out: runs of whitespace and comments become one space (none at
 * the ends, none around '(', ')' and ','), reserved keywords and function names outside
 * quotes are lower-cased (not right after AS or '.'), and string literals, E'' strings, dollar-quoted strings and quoted identifiers
 * are copied byte for byte. *cacheable is false for statements whose result may change without a data
 * version change: anything but a query (INSERT, CREATE, SET, PRAGMA, …) and queries naming volatile
 * functions (random(), now(), nextval(), …), table functions that read files or the catalog (read_*,
 * duckdb_*, information_schema). SP_ENOMEM only. */
int sp_sql_normalize(const char *sql, size_t n, sp_buf *out, bool *cacheable);

/* True when sql[0..n) names a word of a statement that changes data or the catalog (INSERT, UPDATE, DELETE,
 * CREATE, COPY, …) outside literals and comments. The server starts a new cache generation after running one,
 * so that cached answers never outlive a write made through the API. */
bool sp_sql_may_write(const char *sql, size_t n);

/* The full cache key: normalised SQL, then the format and each parameter (name, type, value), length-prefixed
 * so that no two different requests share a key. */
int sp_cache_key(const char *sql, const sp_value *params, size_t n_params, int format, sp_buf *out, bool *cacheable);

typedef struct sp_rcache sp_rcache;

/* max_bytes bounds keys + bodies + per-entry overhead; ttl_ms <= 0 means entries never expire by age.
 * *out is owned by the caller (sp_rcache_destroy). Thread-safe. */
int sp_rcache_create(uint64_t max_bytes, int64_t ttl_ms, sp_rcache **out, sp_error *err);
void sp_rcache_destroy(sp_rcache *c);

/* Largest body worth caching: a quarter of max_bytes (bodies past it are not buffered for the cache). */
uint64_t sp_rcache_item_limit(const sp_rcache *c);

/* On a hit (same key, stored at `version`, younger than the TTL at now_ms) appends the body to *out, marks the
 * entry most recently used and returns true. A stale or expired entry is removed. */
bool sp_rcache_get(sp_rcache *c, const char *key, size_t klen, uint64_t version, int64_t now_ms, sp_buf *out);

/* Stores a copy of body under key (replacing an older entry), evicting least recently used entries to fit.
 * A body over the item limit is not stored (SP_OK all the same). SP_ENOMEM only. */
int sp_rcache_put(sp_rcache *c, const char *key, size_t klen, uint64_t version, int64_t now_ms, const char *body,
                  size_t n);

/* Current number of entries and bytes accounted. */
void sp_rcache_stats(sp_rcache *c, uint64_t *items, uint64_t *bytes);

#endif
