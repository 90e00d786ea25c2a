/* SPDX-License-Identifier: Apache-2.0
 *
 * Federated scans of one Parquet object over HTTP(S) (the http and s3 connectors) with ranged GETs: the
 * footer is fetched (the object's tail, one request), the scan planned on it (parquet_plan.h: the row groups
 * its conditions cannot rule out, the column chunks of the columns it reads), and only those byte ranges are
 * fetched into a sparse copy of the object, which the file connector then reads with DuckDB.
 *
 * Why DuckDB never reads a byte that was not fetched: it reads only the column chunks of the columns the scan
 * names (and the bloom filters of the filtered ones), which are fetched for every row group it can see; the
 * row groups left out are removed from the footer of the copy it reads, so it cannot reach them. (A hole read
 * by mistake would fail loudly: a page header of zeros is invalid Thrift. A unit test checks both.)
 *
 * The copy is kept in the instance's cache while the object is unchanged: the next read revalidates it with a
 * conditional request of the tail (If-None-Match, or If-Modified-Since without an ETag), which a 304 answers,
 * and fetches only the ranges the copy does not hold yet. Ranges are fetched with If-Match (and each answer's
 * size and validator compared), so an object rewritten during a read is noticed; the read then starts over
 * once with the new object, and a second change makes it a whole download.
 */
#ifndef SPICE_CONNECTORS_RANGED_READ_H
#define SPICE_CONNECTORS_RANGED_READ_H

#include "connectors/http_util.h"
#include "connectors/parquet_plan.h"

/* Reads a federated scan (scan->query must be NULL) of the Parquet object at tmpl->url. tmpl holds what every
 * request to the object shares (URL, auth, timeout, messages; borrowed); file_name names the local copy (its
 * extension tells the file connector the format and should be ".parquet"); shown replaces the copy's path in
 * messages. `cache` keeps the copy between reads (the instance's; its downloads carry this module's state).
 * On success *out is owned by the caller. SP_ENOTSUP when the object cannot be read this way (no Parquet footer,
 * an encrypted one, a server whose answers are no usable ranges, an object that keeps changing): the caller
 * then downloads it whole. Other failures are the requests' (sp__http_get's messages). */
int sp__ranged_read(sp_connector *outer, sp_download_cache *cache, const sp_fetch *tmpl, const char *file_name,
                    const sp_scan *scan, const char *shown, struct ArrowArrayStream *out, sp_error *err);

/* Writes at `path` (created) a copy of a Parquet file for a planned read: the plan's ranges copied from src_fd
 * (an open file holding at least them, at their offsets), then the footer without the row groups the plan
 * drops. Everything else is a hole (unallocated where the file system allows). */
int sp__ranged_copy(int src_fd, const sp_pq_meta *m, const sp_pq_plan *plan, const char *path, sp_error *err);

#endif
