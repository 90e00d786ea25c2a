/* SPDX-License-Identifier: Apache-2.0
 *
 * Internal to the HTTP server: the counters behind `spiced --metrics` (spice-compat §4.5) and their Prometheus
 * text rendering. Recording is cheap (a mutex around a small table, or an atomic add); rendering reads the
 * runtime's dataset states and the results cache at scrape time.
 */
#ifndef SPICE_SERVER_HTTP_METRICS_H
#define SPICE_SERVER_HTTP_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "server/format.h"
#include "server/results_cache.h"
#include "spice/runtime.h"

typedef struct sp_http_metrics sp_http_metrics;

/* *out is owned by the caller (sp_http_metrics_destroy). NULL on out of memory. */
sp_http_metrics *sp_http_metrics_create(void);
void sp_http_metrics_destroy(sp_http_metrics *m);

/* One HTTP request: `path` is the matched route template ("/v1/sql", "/v1/datasets/:name/acceleration"). */
void sp_http_metrics_request(sp_http_metrics *m, const char *method, const char *path, unsigned status, double seconds);
/* One query over HTTP, successful or not. */
void sp_http_metrics_query(sp_http_metrics *m, bool ok, double seconds);
/* One results-cache lookup. */
void sp_http_metrics_cache(sp_http_metrics *m, bool hit);

/* Appends the Prometheus text exposition (version 0.0.4) of every metric to *out; `rt` gives the dataset
 * metrics and `cache` (may be NULL) the cache gauges. SP_ENOMEM only. */
int sp_http_metrics_render(sp_http_metrics *m, sp_runtime *rt, sp_rcache *cache, uint64_t cache_max_bytes,
                           sp_buf *out);

#endif
