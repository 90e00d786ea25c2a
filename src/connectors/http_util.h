/* SPDX-License-Identifier: Apache-2.0
 *
 * Internal helpers of the connectors that fetch their data over the network (http, https, s3): a libcurl
 * GET (or several at once) into a file or a buffer, or byte ranges of an object written at their offsets, with
 * errors that name the URL (never a credential),
 * refcounted downloads in private temporary folders with a one-entry cache for revalidation, and the read of
 * what was downloaded through the file connector itself (one reader of Parquet/CSV/JSON for the runtime). The stream wrapper that runs a clean-up once a stream is released
 * is also used by the duckdb connector.
 */
#ifndef SPICE_CONNECTORS_HTTP_UTIL_H
#define SPICE_CONNECTORS_HTTP_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spice/arrow_abi.h"
#include "spice/buf.h"
#include "spice/connector.h"
#include "spice/error.h"

/* The file connector's format parameters, declared with the same defaults by every connector that hands its
 * downloads to the file connector (which reads them by name). */
#define SP_FILE_FORMAT_PARAM_SPECS                                                                                   \
  {"file_format", SP_PARAM_ENUM, 0, NULL, "parquet|csv|json|jsonl|ndjson", "format; default from the extension"},   \
      {"file_extension", SP_PARAM_STRING, 0, NULL, NULL, "extension of the files to read in a folder"},             \
      {"csv_has_header", SP_PARAM_BOOL, 0, "true", NULL, "the first CSV line holds column names"},                  \
      {"csv_delimiter", SP_PARAM_CHAR, 0, ",", NULL, "CSV field delimiter"},                                        \
      {"csv_quote", SP_PARAM_CHAR, 0, "\"", NULL, "CSV quote character"},                                           \
      {"csv_escape", SP_PARAM_CHAR, 0, NULL, NULL, "CSV escape character (default: the quote)"},                    \
      {"csv_schema_infer_max_records", SP_PARAM_INT, 0, "1000", NULL, "rows sampled to infer CSV types"},           \
      {"file_compression_type", SP_PARAM_ENUM, 0, NULL, "gzip|bzip2|xz|zstd|uncompressed",                         \
       "compression (default: from the extension)"},                                                              \
      {"hive_partitioning_enabled", SP_PARAM_BOOL, 0, "false", NULL, "read key=value folders as columns"},          \
      {"client_timeout", SP_PARAM_DURATION, 0, "30s", NULL, "deadline of each request to the source"}

/* One GET. Strings are borrowed for the call. */
typedef struct sp_fetch {
  const char *url;        /* what is requested (may carry a query string) */
  const char *shown;      /* the URL as messages show it: no credentials, no query */
  const char *dataset;    /* for messages */
  const char *username;   /* basic auth (or the S3 key with aws_sigv4); NULL: none */
  const char *password;   /* never copied into a message */
  const char *aws_sigv4;  /* "aws:amz:<region>:s3" to sign the request; NULL: unsigned */
  int64_t timeout_ms;     /* whole request; <= 0: none */
  long port;              /* > 0: the port when the URL names none */
  void *reuse;            /* a CURL handle from sp__http_handle to reuse (keeps connections); NULL: a new one */
  const char *if_none_match;     /* revalidation: the ETag of the copy we have (a 304 is then a success) */
  const char *if_modified_since; /* or its Last-Modified, when it had no ETag */
  /* A part of the object: range_len > 0 asks for range_len bytes from range_first, range_len < 0 for its last
   * -range_len bytes, 0 for all of it. The Range header is sent among the signed headers (SigV4), and no
   * compression is asked for (a compressed body has no usable byte offsets). */
  int64_t range_first, range_len;
  const char *if_match; /* the ETag the object must still have (HTTP 412 otherwise); NULL: any */
} sp_fetch;

/* What a GET answered. body_error holds the start (<= 4 KiB) of a non-2xx answer's body, for messages; the
 * caller frees it with sp_buf_free. */
typedef struct sp_fetch_result {
  long status; /* HTTP status; 0 when none was received; 304 when the copy we have is current */
  sp_buf body_error;
  char etag[256];          /* the answer's validators ("" when absent or too long) */
  char last_modified[128];
  int64_t range_start, range_end; /* 206: the part of the object the body is, [start, end) (Content-Range); -1 */
  int64_t object_size;     /* the object's size: Content-Range's for a 206, Content-Length for a 200; -1 unknown */
  int64_t received;        /* body bytes stored */
  bool encoded;            /* the body came with a Content-Encoding other than identity */
} sp_fetch_result;

/* GETs f->url into `path` (created or truncated), or into *buf when path is NULL (appended). Transport
 * failures fail with a message naming f->shown and the dataset: SP_ETIMEDOUT, SP_ECONNECT (refused, DNS, TLS).
 * A non-2xx status also fails, SP_EUNAUTH for 401/403, SP_ENOTFOUND for 404 and 410, SP_EIO otherwise, with a
 * generic message the caller may replace (res->status and res->body_error say what came back). res is always
 * filled; free res->body_error. */
int sp__http_get(const sp_fetch *f, const char *path, sp_buf *buf, sp_fetch_result *res, sp_error *err);

/* GETs jobs[i] into paths[i] for every i < n, `parallel` at a time at most, connections kept per lane.
 * Stops at the first failure, with sp__http_get's message; *failed (may be NULL) then receives that GET's
 * result (free its body_error). Each job's `reuse` is ignored. */
int sp__http_get_many(const sp_fetch *jobs, const char *const *paths, size_t n, size_t parallel,
                      sp_fetch_result *failed, sp_error *err);

/* GETs jobs[i] (usually ranges of one object) into the open file fd for every i < n, `parallel` at a time:
 * each body is written (pwrite) where it lies in the object, from the Content-Range start of a 206 answer or
 * from 0 for a 200 answer holding the whole object. results[i] (n of them) receives each answer; free their
 * body_error. Stops at the first failure, with sp__http_get's message; an answer that cannot be placed (a 206
 * without a Content-Range, or another range than the one asked for, a compressed body, a short one) fails with
 * SP_ENOTSUP. A suffix range (range_len < 0) accepts any part the answer names: some servers answer another. */
int sp__http_get_into(const sp_fetch *jobs, size_t n, int fd, size_t parallel, sp_fetch_result *results,
                      sp_error *err);

/* A handle for sp_fetch.reuse, so that many GETs to one server share connections; NULL when out of memory.
 * Free it with sp__http_handle_free (NULL-safe). */
void *sp__http_handle(void);
void sp__http_handle_free(void *handle);

/* f->url with credentials, query and fragment removed, into out (for messages). */
void sp__url_shown(const char *url, char *out, size_t n);

/* Percent-encodes s as RFC 3986 wants in a SigV4 canonical request (unreserved kept; '/' kept when keep_slash). */
int sp__url_encode(sp_buf *out, const char *s, bool keep_slash);

/* Makes a private temporary folder (mode 0700) under $TMPDIR or /tmp, named spicec-<what>-XXXXXX. */
int sp__tmpdir_make(const char *what, char *out, size_t n, sp_error *err);
/* Removes a folder made by sp__tmpdir_make and everything in it. NULL-safe, errors ignored. */
void sp__tmpdir_remove(const char *dir);

/* A download: a private temporary folder holding what one read fetched, shared by reference between the reads
 * that use it and the instance's cache; the folder is removed with the last reference. */
typedef struct sp_download {
  int refs;               /* atomic */
  char dir[4096];         /* the temporary folder */
  char path[4400];        /* what to read: a file or a folder inside dir */
  char format[16];        /* file_format to use when the params give none ("" = from the extension) */
  char validator[600];    /* what says this copy is still current: an ETag, a Last-Modified, a listing's hash */
  bool by_etag;           /* validator is an ETag (else a Last-Modified date or a listing hash) */
  void *manifest;         /* what the connector knows about the files (s3: the listing), or NULL */
  void (*manifest_free)(void *manifest);
} sp_download;

/* Makes a download with a new folder spicec-<what>-XXXXXX, one reference held by the caller. */
int sp__download_new(const char *what, sp_download **out, sp_error *err);
sp_download *sp__download_ref(sp_download *d);
void sp__download_unref(sp_download *d); /* NULL-safe */

/* The last download of an instance, so that a read can revalidate it instead of fetching it again. */
typedef struct sp_download_cache {
  pthread_mutex_t lock;
  sp_download *current;
} sp_download_cache;

void sp__download_cache_init(sp_download_cache *c);
void sp__download_cache_destroy(sp_download_cache *c);
/* The current download with a reference for the caller, or NULL. */
sp_download *sp__download_cache_get(sp_download_cache *c);
/* Makes d the current download (the cache takes its own reference). */
void sp__download_cache_put(sp_download_cache *c, sp_download *d);
/* Forgets d if it is still the current download (it turned out stale). */
void sp__download_cache_drop(sp_download_cache *c, const sp_download *d);

/* Reads download d with the file connector, with the params and the dataset of `outer`: a scan when `scan`
 * is non-NULL, else every row. Takes over the caller's reference to d (dropped when the returned stream is
 * released, or before returning on failure). Messages show `shown` (the URL) where they would show the
 * temporary path. *out is owned by the caller. */
int sp__read_download(sp_connector *outer, sp_download *d, const char *shown, const sp_scan *scan,
                      struct ArrowArrayStream *out, sp_error *err);

/* Wraps *inner (moved) in a stream that calls done(ctx) once, after inner is released. On failure (ENOMEM)
 * inner is released and done(ctx) called before returning. */
int sp__stream_finally(struct ArrowArrayStream *inner, void (*done)(void *ctx), void *ctx,
                       struct ArrowArrayStream *out, sp_error *err);

#endif
