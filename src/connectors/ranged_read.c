/* SPDX-License-Identifier: Apache-2.0
 *
 * Ranged reads of Parquet objects (see ranged_read.h). A kept copy is an sp_download whose file has the
 * object's size and holds the ranges fetched so far (the rest are holes); its manifest is a ranged_state.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connectors/ranged_read.h"
#include "spice/duckdb_util.h"
#include "spice/log.h"

enum {
  TAIL_GUESS = 64 * 1024, /* the first GET asks for this much of the end: most footers fit */
  BRIDGE = 64 * 1024,     /* missing ranges closer than this are fetched as one: fewer requests, a few bytes more */
  PARALLEL_RANGES = 8,    /* ranges fetched at once */
};

/* What a kept copy knows: its download's manifest. */
typedef struct ranged_state {
  pthread_mutex_t lock; /* guards have / n_have / cap_have */
  int fd;               /* the copy, open for the fetches (written with pwrite) */
  int64_t size;         /* the object's size */
  sp_pq_meta *meta;
  sp_byte_range *have;  /* what the copy holds: sorted, disjoint, not adjacent */
  size_t n_have, cap_have;
} ranged_state;

static void state_free(void *p) {
  ranged_state *s = p;
  if (s == NULL) return;
  if (s->fd >= 0) close(s->fd);
  sp__pq_meta_free(s->meta);
  free(s->have);
  pthread_mutex_destroy(&s->lock);
  free(s);
}

/* Records [a, b) as held. */
static int have_add(ranged_state *s, int64_t a, int64_t b) {
  if (b <= a) return SP_OK;
  pthread_mutex_lock(&s->lock);
  int rc = SP_OK;
  if (s->n_have == s->cap_have) {
    size_t cap = s->cap_have ? 2 * s->cap_have : 16;
    sp_byte_range *h = realloc(s->have, cap * sizeof *h);
    if (h) s->have = h, s->cap_have = cap;
    else rc = SP_ENOMEM;
  }
  if (rc == SP_OK) {
    s->have[s->n_have++] = (sp_byte_range){a, b};
    s->n_have = sp__byte_ranges_normalize(s->have, s->n_have);
  }
  pthread_mutex_unlock(&s->lock);
  return rc;
}

/* The parts of want[0..n) (sorted, disjoint) that the copy does not hold, those less than BRIDGE apart joined.
 * *out is malloc'd (NULL when nothing is missing). */
static int missing(ranged_state *s, const sp_byte_range *want, size_t n, sp_byte_range **out, size_t *n_out) {
  pthread_mutex_lock(&s->lock);
  sp_byte_range *m = malloc((n + s->n_have + 1) * sizeof *m);
  size_t k = 0, h = 0;
  for (size_t i = 0; m && i < n; i++) {
    int64_t a = want[i].start;
    while (h < s->n_have && s->have[h].end <= a) h++;
    for (size_t j = h; j < s->n_have && s->have[j].start < want[i].end && a < want[i].end; j++) {
      if (s->have[j].start > a) m[k++] = (sp_byte_range){a, s->have[j].start};
      if (s->have[j].end > a) a = s->have[j].end;
    }
    if (a < want[i].end) m[k++] = (sp_byte_range){a, want[i].end};
  }
  pthread_mutex_unlock(&s->lock);
  if (m == NULL) return SP_ENOMEM;
  size_t o = 0;
  for (size_t i = 1; i < k; i++) {
    if (m[i].start - m[o].end <= BRIDGE) m[o].end = m[i].end;
    else m[++o] = m[i];
  }
  *n_out = k ? o + 1 : 0;
  *out = m;
  return SP_OK;
}

/* ---- Fetching -------------------------------------------------------------------------------------------------- */

/* True when an answer is about the object the copy was started from: same size, same validator. */
static bool same_object(const sp_download *d, const sp_fetch_result *r) {
  const ranged_state *s = d->manifest;
  int64_t size = r->status == 206 || r->object_size >= 0 ? r->object_size : r->received;
  const char *v = d->by_etag ? r->etag : r->last_modified;
  return size == s->size && (v[0] == '\0' || strcmp(v, d->validator) == 0);
}

/* GETs ranges r[0..n) of the object into copy d. *changed is set when the object is no longer the one the
 * copy was started from (HTTP 412 to If-Match, another size or validator): the copy is then stale. */
static int fetch_ranges(sp_download *d, const sp_fetch *tmpl, const sp_byte_range *r, size_t n, bool *changed,
                        int64_t *bytes, sp_error *err) {
  ranged_state *s = d->manifest;
  sp_fetch *jobs = calloc(n ? n : 1, sizeof *jobs);
  sp_fetch_result *res = calloc(n ? n : 1, sizeof *res);
  if (jobs == NULL || res == NULL) {
    free(jobs);
    free(res);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    jobs[i] = *tmpl;
    jobs[i].range_first = r[i].start;
    jobs[i].range_len = r[i].end - r[i].start;
    /* If-Match compares strongly: a weak ETag never matches, so it is only compared below. */
    jobs[i].if_match = d->by_etag && strncmp(d->validator, "W/", 2) != 0 ? d->validator : NULL;
  }
  int rc = sp__http_get_into(jobs, n, s->fd, PARALLEL_RANGES, res, err);
  for (size_t i = 0; i < n; i++) {
    if (res[i].status == 412 || ((res[i].status == 200 || res[i].status == 206) && !same_object(d, &res[i])))
      *changed = true;
    *bytes += res[i].received;
    /* A 200 answered the range with the whole object, written from its first byte. */
    if (rc == SP_OK && have_add(s, res[i].status == 200 ? 0 : r[i].start, res[i].status == 200 ? s->size : r[i].end) != SP_OK)
      rc = sp_fail(err, SP_ENOMEM, "out of memory");
    sp_buf_free(&res[i].body_error);
  }
  free(jobs);
  free(res);
  if (*changed)
    return sp_fail(err, SP_EIO, "\"%s\" for dataset \"%s\" changed while it was read", tmpl->shown, tmpl->dataset);
  return rc;
}

/* ---- The kept copy ------------------------------------------------------------------------------------------- */

/* A new, empty copy named file_name in a new private folder, with its state. */
static int new_copy(const char *file_name, sp_download **out, sp_error *err) {
  sp_download *d;
  SP_TRY(sp__download_new("parquet", &d, err));
  snprintf(d->path, sizeof d->path, "%s/%s", d->dir, file_name);
  snprintf(d->format, sizeof d->format, "parquet");
  ranged_state *s = calloc(1, sizeof *s);
  if (s) {
    pthread_mutex_init(&s->lock, NULL);
    d->manifest = s;
    d->manifest_free = state_free;
    s->fd = open(d->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  }
  if (s == NULL || s->fd < 0) {
    int e = errno;
    sp__download_unref(d);
    return s ? sp_fail(err, SP_EIO, "could not create \"%s\": %s", d->path, strerror(e)) : sp_fail(err, SP_ENOMEM, "out of memory");
  }
  *out = d;
  return SP_OK;
}

/* Reads the footer of the copy (fetching what the tail did not hold) and parses it. A file that is no
 * (readable) Parquet is SP_ENOTSUP: the caller reads it whole, and DuckDB says what is wrong with it. */
static int read_footer(sp_download *d, const sp_fetch *tmpl, bool *changed, int64_t *bytes, sp_error *err) {
  ranged_state *s = d->manifest;
  uint8_t tail[SP_PQ_TAIL];
  uint32_t flen = 0;
  sp_error why = {0};
  if (s->size < 12 || pread(s->fd, tail, sizeof tail, s->size - SP_PQ_TAIL) != SP_PQ_TAIL ||
      sp__pq_footer_length(tail, s->size, &flen, &why) != SP_OK)
    return sp_fail(err, SP_ENOTSUP, "%s", why.msg[0] ? why.msg : "no Parquet footer");
  sp_byte_range footer = {s->size - SP_PQ_TAIL - flen, s->size}, *todo = NULL;
  size_t n = 0;
  if (missing(s, &footer, 1, &todo, &n) != SP_OK) return sp_fail(err, SP_ENOMEM, "out of memory");
  int rc = n ? fetch_ranges(d, tmpl, todo, n, changed, bytes, err) : SP_OK;
  free(todo);
  SP_TRY(rc);
  int64_t start = footer.start;
  uint8_t *buf = malloc(flen);
  if (buf == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  rc = pread(s->fd, buf, flen, start) == (ssize_t)flen ? SP_OK : sp_fail(err, SP_EIO, "could not read \"%s\"", d->path);
  if (rc == SP_OK && sp__pq_meta_parse(buf, flen, start, &s->meta, &why) != SP_OK)
    rc = sp_fail(err, SP_ENOTSUP, "%s", why.msg);
  free(buf);
  return rc;
}

/* Turns d (a new copy holding the answer res to the tail GET) into a usable copy: size, validator, footer. */
static int start_copy(sp_download *d, const sp_fetch_result *res, const sp_fetch *tmpl, bool *changed, int64_t *bytes,
                      sp_error *err) {
  ranged_state *s = d->manifest;
  s->size = res->status == 206 || res->object_size >= 0 ? res->object_size : res->received;
  d->by_etag = res->etag[0] != '\0';
  snprintf(d->validator, sizeof d->validator, "%s", d->by_etag ? res->etag : res->last_modified);
  int64_t first = res->status == 206 ? res->range_start : 0;
  if (have_add(s, first, first + res->received) != SP_OK) return sp_fail(err, SP_ENOMEM, "out of memory");
  if (ftruncate(s->fd, (off_t)s->size) != 0)
    return sp_fail(err, SP_EIO, "could not size \"%s\": %s", d->path, strerror(errno));
  /* A server that does not know suffix ranges answers another part (s3rver: the first bytes): the size is
   * known now, so the tail can be asked for by offsets. */
  if (s->n_have == 0 || s->have[s->n_have - 1].end != s->size) {
    sp_byte_range tail = {s->size > TAIL_GUESS ? s->size - TAIL_GUESS : 0, s->size}, *todo = NULL;
    size_t n = 0;
    int rc = missing(s, &tail, 1, &todo, &n) == SP_OK ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
    if (rc == SP_OK && n) rc = fetch_ranges(d, tmpl, todo, n, changed, bytes, err);
    free(todo);
    SP_TRY(rc);
  }
  return read_footer(d, tmpl, changed, bytes, err);
}

/* The copy to read from: the cached one when a conditional GET of the tail says the object is unchanged (304),
 * else a new one started from that GET's answer (and cached when it has a validator). *out gets a reference. */
static int open_copy(sp_download_cache *cache, const sp_fetch *tmpl, const char *file_name, sp_download **out,
                     bool *changed, int64_t *bytes, sp_error *err) {
  sp_download *cur = sp__download_cache_get(cache), *d = NULL;
  sp_fetch f = *tmpl;
  f.range_len = -TAIL_GUESS;
  if (cur) *(cur->by_etag ? &f.if_none_match : &f.if_modified_since) = cur->validator;
  sp_fetch_result res = {0};
  int rc = new_copy(file_name, &d, err);
  if (rc == SP_OK) rc = sp__http_get_into(&f, 1, ((ranged_state *)d->manifest)->fd, 1, &res, err);
  sp_buf_free(&res.body_error);
  *bytes += res.received;
  if (rc == SP_OK && res.status == 304 && cur) {
    sp__download_unref(d);
    *out = cur;
    return SP_OK;
  }
  sp__download_unref(cur);
  if (res.status == 416) rc = sp_fail(err, SP_ENOTSUP, "the object is empty"); /* no tail to ask for */
  if (rc == SP_OK) rc = start_copy(d, &res, tmpl, changed, bytes, err);
  if (rc == SP_OK && d->validator[0]) sp__download_cache_put(cache, d);
  if (rc != SP_OK) {
    sp__download_unref(d);
    return rc;
  }
  *out = d;
  return SP_OK;
}

/* ---- Reading ---------------------------------------------------------------------------------------------------- */

/* Plans the scan on the footer; conditions that DuckDB cannot parse make the plan read everything. */
static int plan_scan(const sp_pq_meta *m, const sp_scan *scan, sp_pq_plan *plan, sp_error *err) {
  char *json = NULL;
  if (scan->filter_query && sp_duckdb_serialize_sql(scan->filter_query, "pushed conditions", &json, NULL) != SP_OK &&
      (json = strdup("")) == NULL)
    return sp_fail(err, SP_ENOMEM, "out of memory");
  int rc = sp__pq_plan(m, scan->columns, scan->n_columns, json, scan->limit, plan, err);
  free(json);
  return rc;
}

static int copy_bytes(int from, int to, int64_t at, int64_t len) {
  while (len > 0) {
    off_t in = (off_t)at, out = (off_t)at;
    ssize_t n = copy_file_range(from, &in, to, &out, (size_t)len, 0);
    if (n > 0) {
      at += n, len -= n;
      continue;
    }
    if (n == 0 || (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)) return -1;
    char buf[1 << 16]; /* copy_file_range cannot do it here: by hand */
    ssize_t r = pread(from, buf, len < (int64_t)sizeof buf ? (size_t)len : sizeof buf, (off_t)at);
    if (r <= 0 || pwrite(to, buf, (size_t)r, (off_t)at) != r) return -1;
    at += r, len -= r;
  }
  return 0;
}

int sp__ranged_copy(int src_fd, const sp_pq_meta *m, const sp_pq_plan *plan, const char *path, sp_error *err) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return sp_fail(err, SP_EIO, "could not create \"%s\": %s", path, strerror(errno));
  sp_buf footer = {0};
  int rc = SP_OK;
  for (size_t i = 0; rc == SP_OK && i < plan->n_ranges; i++)
    if (copy_bytes(src_fd, fd, plan->ranges[i].start, plan->ranges[i].end - plan->ranges[i].start) != 0)
      rc = sp_fail(err, SP_EIO, "could not write \"%s\": %s", path, strerror(errno));
  if (rc == SP_OK) rc = sp__pq_footer_subset(m, plan->keep, &footer, err);
  if (rc == SP_OK && pwrite(fd, footer.data, footer.len, (off_t)m->data_end) != (ssize_t)footer.len)
    rc = sp_fail(err, SP_EIO, "could not write \"%s\": %s", path, strerror(errno));
  if (close(fd) != 0 && rc == SP_OK) rc = sp_fail(err, SP_EIO, "could not write \"%s\": %s", path, strerror(errno));
  sp_buf_free(&footer);
  return rc;
}

/* What DuckDB reads: the kept copy itself when the plan keeps every row group, else a new file with the plan's
 * ranges and a footer without the others. *out gets a reference. */
static int reading_copy(sp_download *d, const sp_pq_plan *plan, const char *file_name, sp_download **out,
                        sp_error *err) {
  const ranged_state *s = d->manifest;
  if (plan->n_kept == s->meta->n_rgs) {
    *out = sp__download_ref(d);
    return SP_OK;
  }
  sp_download *r;
  SP_TRY(sp__download_new("parquet", &r, err));
  snprintf(r->path, sizeof r->path, "%s/%s", r->dir, file_name);
  snprintf(r->format, sizeof r->format, "parquet");
  int rc = sp__ranged_copy(s->fd, s->meta, plan, r->path, err);
  if (rc != SP_OK) {
    sp__download_unref(r);
    return rc;
  }
  *out = r;
  return SP_OK;
}

/* One attempt: the copy, the plan, the missing ranges, the read. *changed when the object changed meanwhile. */
static int read_once(sp_connector *outer, sp_download_cache *cache, const sp_fetch *tmpl, const char *file_name,
                     const sp_scan *scan, const char *shown, struct ArrowArrayStream *out, bool *changed, sp_error *err) {
  sp_download *d = NULL, *copy = NULL;
  sp_pq_plan plan = {0};
  sp_byte_range *todo = NULL;
  size_t n_todo = 0;
  int64_t bytes = 0;
  int rc = open_copy(cache, tmpl, file_name, &d, changed, &bytes, err);
  ranged_state *s = d ? d->manifest : NULL;
  if (rc == SP_OK) rc = plan_scan(s->meta, scan, &plan, err);
  if (rc == SP_OK && missing(s, plan.ranges, plan.n_ranges, &todo, &n_todo) != SP_OK) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK && n_todo) rc = fetch_ranges(d, tmpl, todo, n_todo, changed, &bytes, err);
  if (rc == SP_OK) rc = reading_copy(d, &plan, file_name, &copy, err);
  if (rc == SP_OK)
    sp_log_debug("dataset \"%s\": ranged read of \"%s\" (%lld bytes): %zu of %zu row groups, %lld bytes needed, "
                 "%lld bytes received (the tail's check and %zu missing ranges)", tmpl->dataset, tmpl->shown,
                 (long long)s->size, plan.n_kept, s->meta->n_rgs, (long long)plan.bytes, (long long)bytes, n_todo);
  if (*changed && d) sp__download_cache_drop(cache, d);
  free(todo);
  sp__pq_plan_free(&plan);
  sp__download_unref(d);
  return rc == SP_OK ? sp__read_download(outer, copy, shown, scan, out, err) : rc;
}

int sp__ranged_read(sp_connector *outer, sp_download_cache *cache, const sp_fetch *tmpl, const char *file_name,
                    const sp_scan *scan, const char *shown, struct ArrowArrayStream *out, sp_error *err) {
  if (scan == NULL || scan->query) return sp_fail(err, SP_ENOTSUP, "a ranged read needs a federated scan");
  bool changed = false;
  int rc = read_once(outer, cache, tmpl, file_name, scan, shown, out, &changed, err);
  if (rc != SP_OK && changed) { /* rewritten while we read it: once more, from its new footer */
    changed = false;
    rc = read_once(outer, cache, tmpl, file_name, scan, shown, out, &changed, err);
  }
  /* Changing again (or answering with a new validator each time): one whole GET is consistent. */
  return rc != SP_OK && changed ? SP_ENOTSUP : rc;
}
