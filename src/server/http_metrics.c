/* SPDX-License-Identifier: Apache-2.0
 *
 * Metrics of the HTTP server and the runtime in Prometheus text format, under Spice's names (spice-compat
 * §4.5). Durations are histograms in seconds with the default Prometheus buckets.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/http_metrics.h"

static const double BUCKETS[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define N_BUCKETS (sizeof BUCKETS / sizeof BUCKETS[0])
#define MAX_ROWS 512

typedef struct histo {
  uint64_t count;
  double sum;
  uint64_t le[N_BUCKETS]; /* non-cumulative; summed when rendered */
} histo;

typedef struct req_row {
  char method[8];
  char path[48];
  unsigned status;
  histo h;
} req_row;

struct sp_http_metrics {
  pthread_mutex_t mu;
  req_row rows[MAX_ROWS];
  size_t n_rows;
  histo query; /* query_duration_seconds{protocol="http"} */
  uint64_t query_failures;
  atomic_uint_fast64_t cache_hits, cache_requests;
};

sp_http_metrics *sp_http_metrics_create(void) {
  sp_http_metrics *m = calloc(1, sizeof *m);
  if (m) pthread_mutex_init(&m->mu, NULL);
  return m;
}

void sp_http_metrics_destroy(sp_http_metrics *m) {
  if (m == NULL) return;
  pthread_mutex_destroy(&m->mu);
  free(m);
}

static void observe(histo *h, double s) {
  h->count++;
  h->sum += s;
  for (size_t i = 0; i < N_BUCKETS; i++)
    if (s <= BUCKETS[i]) {
      h->le[i]++;
      break;
    }
}

/* Methods outside the usual set are counted as "other", so clients cannot grow the table. */
static const char *method_label(const char *m) {
  static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", NULL};
  for (size_t i = 0; known[i]; i++)
    if (strcmp(m, known[i]) == 0) return known[i];
  return "other";
}

void sp_http_metrics_request(sp_http_metrics *m, const char *method, const char *path, unsigned status, double seconds) {
  if (m == NULL) return;
  const char *ml = method_label(method);
  pthread_mutex_lock(&m->mu);
  size_t i = 0;
  while (i < m->n_rows && !(m->rows[i].status == status && strcmp(m->rows[i].method, ml) == 0 &&
                             strcmp(m->rows[i].path, path) == 0))
    i++;
  if (i == m->n_rows && i < MAX_ROWS) {
    snprintf(m->rows[i].method, sizeof m->rows[i].method, "%s", ml);
    snprintf(m->rows[i].path, sizeof m->rows[i].path, "%s", path);
    m->rows[i].status = status;
    m->n_rows++;
  }
  if (i < m->n_rows) observe(&m->rows[i].h, seconds);
  pthread_mutex_unlock(&m->mu);
}

void sp_http_metrics_query(sp_http_metrics *m, bool ok, double seconds) {
  if (m == NULL) return;
  pthread_mutex_lock(&m->mu);
  observe(&m->query, seconds);
  if (!ok) m->query_failures++;
  pthread_mutex_unlock(&m->mu);
}

void sp_http_metrics_cache(sp_http_metrics *m, bool hit) {
  if (m == NULL) return;
  atomic_fetch_add(&m->cache_requests, 1);
  if (hit) atomic_fetch_add(&m->cache_hits, 1);
}

/* ---- Rendering ------------------------------------------------------------------------------------------- */

static int printf_buf(sp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int printf_buf(sp_buf *b, const char *fmt, ...) {
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return SP_EINTERNAL;
  return sp_buf_append(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A label value with \\, \" and \n escaped, into out (cap bytes, truncated). */
static void label_escape(const char *in, char *out, size_t cap) {
  size_t j = 0;
  for (const char *p = in; *p && j + 3 < cap; p++) {
    if (*p == '\\' || *p == '"') out[j++] = '\\', out[j++] = *p;
    else if (*p == '\n') out[j++] = '\\', out[j++] = 'n';
    else out[j++] = *p;
  }
  out[j] = '\0';
}

static int head(sp_buf *b, const char *name, const char *type, const char *help) {
  return printf_buf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The _bucket/_sum/_count lines of one histogram; `labels` is "" or `a="x",b="y"`. */
static int histo_lines(sp_buf *b, const char *name, const char *labels, const histo *h) {
  const char *sep = labels[0] ? "," : "";
  uint64_t cum = 0;
  for (size_t i = 0; i < N_BUCKETS; i++) {
    cum += h->le[i];
    SP_TRY(printf_buf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, BUCKETS[i], (unsigned long long)cum));
  }
  SP_TRY(printf_buf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)h->count));
  SP_TRY(printf_buf(b, "%s_sum{%s} %.9g\n", name, labels, h->sum));
  return printf_buf(b, "%s_count{%s} %llu\n", name, labels, (unsigned long long)h->count);
}

static int render_http(sp_http_metrics *m, sp_buf *b) {
  char labels[200];
  SP_TRY(head(b, "http_requests_total", "counter", "HTTP requests by method, matched route and status."));
  for (size_t i = 0; i < m->n_rows; i++) {
    const req_row *r = &m->rows[i];
    SP_TRY(printf_buf(b, "http_requests_total{method=\"%s\",path=\"%s\",status=\"%u\"} %llu\n", r->method, r->path,
                      r->status, (unsigned long long)r->h.count));
  }
  SP_TRY(head(b, "http_requests_duration_seconds", "histogram", "HTTP request durations, to the last byte sent."));
  for (size_t i = 0; i < m->n_rows; i++) {
    const req_row *r = &m->rows[i];
    snprintf(labels, sizeof labels, "method=\"%s\",path=\"%s\",status=\"%u\"", r->method, r->path, r->status);
    SP_TRY(histo_lines(b, "http_requests_duration_seconds", labels, &r->h));
  }
  return SP_OK;
}

static int render_queries(sp_http_metrics *m, sp_buf *b) {
  SP_TRY(head(b, "query_count", "counter", "Queries run, by protocol."));
  SP_TRY(printf_buf(b, "query_count{protocol=\"http\"} %llu\n", (unsigned long long)m->query.count));
  SP_TRY(head(b, "query_failures", "counter", "Queries that failed, by protocol."));
  SP_TRY(printf_buf(b, "query_failures{protocol=\"http\"} %llu\n", (unsigned long long)m->query_failures));
  SP_TRY(head(b, "query_duration_seconds", "histogram", "Query durations, to the last row sent."));
  return histo_lines(b, "query_duration_seconds", "protocol=\"http\"", &m->query);
}

static int render_cache(sp_http_metrics *m, sp_rcache *cache, uint64_t max_bytes, sp_buf *b) {
  uint64_t items = 0, bytes = 0;
  if (cache) sp_rcache_stats(cache, &items, &bytes);
  SP_TRY(head(b, "results_cache_request_count", "counter", "Results cache lookups."));
  SP_TRY(printf_buf(b, "results_cache_request_count %llu\n", (unsigned long long)atomic_load(&m->cache_requests)));
  SP_TRY(head(b, "results_cache_hit_count", "counter", "Results cache hits."));
  SP_TRY(printf_buf(b, "results_cache_hit_count %llu\n", (unsigned long long)atomic_load(&m->cache_hits)));
  SP_TRY(head(b, "results_cache_item_count", "gauge", "Entries in the results cache."));
  SP_TRY(printf_buf(b, "results_cache_item_count %llu\n", (unsigned long long)items));
  SP_TRY(head(b, "results_cache_size", "gauge", "Bytes held by the results cache."));
  SP_TRY(printf_buf(b, "results_cache_size %llu\n", (unsigned long long)bytes));
  SP_TRY(head(b, "results_cache_max_size", "gauge", "Configured size limit of the results cache in bytes."));
  return printf_buf(b, "results_cache_max_size %llu\n", (unsigned long long)(cache ? max_bytes : 0));
}

static int render_datasets(sp_runtime *rt, sp_buf *b) {
  size_t n = sp_runtime_dataset_count(rt);
  sp_dataset_info *d = malloc(sizeof *d);
  if (d == NULL) return SP_ENOMEM;
  sp_buf status = {0}, refresh = {0}, errors = {0}, load = {0};
  int rc = head(b, "datasets_count", "gauge", "Datasets in the spicepod.");
  if (rc == SP_OK) rc = printf_buf(b, "datasets_count %zu\n", n);
  if (rc == SP_OK) rc = head(&status, "datasets_status", "gauge",
                             "Dataset status: 1 Initializing, 2 Ready, 3 Disabled, 4 Error, 5 Refreshing.");
  if (rc == SP_OK) rc = head(&refresh, "datasets_acceleration_last_refresh_time", "gauge",
                             "When the accelerated copy of a dataset was last refreshed (unix milliseconds).");
  if (rc == SP_OK) rc = head(&errors, "datasets_acceleration_refresh_errors", "counter",
                             "Failed refreshes of an accelerated dataset since start.");
  if (rc == SP_OK) rc = head(&load, "datasets_acceleration_load_duration_ms", "gauge",
                             "Duration of the last successful refresh of an accelerated dataset (milliseconds).");
  for (size_t i = 0; i < n && rc == SP_OK; i++) {
    if (sp_runtime_dataset_info(rt, i, d) != SP_OK) continue;
    char name[600];
    label_escape(d->name, name, sizeof name);
    rc = printf_buf(&status, "datasets_status{dataset=\"%s\"} %d\n", name, (int)d->status);
    if (rc == SP_OK && d->acceleration_enabled && d->last_refresh_ms >= 0)
      rc = printf_buf(&refresh, "datasets_acceleration_last_refresh_time{dataset=\"%s\"} %lld\n", name,
                      (long long)d->last_refresh_ms);
    if (rc == SP_OK && d->acceleration_enabled)
      rc = printf_buf(&errors, "datasets_acceleration_refresh_errors{dataset=\"%s\"} %lld\n", name,
                      (long long)d->refresh_errors);
    if (rc == SP_OK && d->acceleration_enabled && d->last_load_ms >= 0)
      rc = printf_buf(&load, "datasets_acceleration_load_duration_ms{dataset=\"%s\"} %lld\n", name,
                      (long long)d->last_load_ms);
  }
  if (rc == SP_OK) rc = sp_buf_append(b, status.data, status.len);
  if (rc == SP_OK) rc = sp_buf_append(b, refresh.data, refresh.len);
  if (rc == SP_OK) rc = sp_buf_append(b, errors.data, errors.len);
  if (rc == SP_OK) rc = sp_buf_append(b, load.data, load.len);
  if (rc == SP_OK) {
    /* Engine counters: queries answered from a source after no rows (on_zero_results), batches pruned. */
    sp_engine *e = sp_runtime_engine(rt);
    rc = head(b, "accelerated_zero_results_federated_fallback", "counter",
              "Queries re-run against the source because the accelerated copy had no rows (on_zero_results).");
    if (rc == SP_OK)
      rc = printf_buf(b, "accelerated_zero_results_federated_fallback %llu\n",
                      (unsigned long long)sp_engine_zero_results_fallbacks(e));
    if (rc == SP_OK) rc = head(b, "arrow_batches_pruned", "counter", "Arrow batches skipped by their min/max.");
    if (rc == SP_OK) rc = printf_buf(b, "arrow_batches_pruned %llu\n", (unsigned long long)sp_engine_pruned_batches(e));
  }
  sp_buf_free(&status);
  sp_buf_free(&refresh);
  sp_buf_free(&errors);
  sp_buf_free(&load);
  free(d);
  return rc;
}

int sp_http_metrics_render(sp_http_metrics *m, sp_runtime *rt, sp_rcache *cache, uint64_t cache_max_bytes,
                           sp_buf *out) {
  pthread_mutex_lock(&m->mu);
  int rc = render_http(m, out);
  if (rc == SP_OK) rc = render_queries(m, out);
  pthread_mutex_unlock(&m->mu);
  if (rc == SP_OK) rc = render_cache(m, cache, cache_max_bytes, out);
  if (rc == SP_OK && rt) rc = render_datasets(rt, out);
  return rc;
}
