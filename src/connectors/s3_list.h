/* SPDX-License-Identifier: Apache-2.0
 *
 * The S3 ListObjectsV2 answer (XML from the network: outside input) and S3's <Error> documents, parsed by a
 * small strict reader of the subset of XML they use. No libxml2: the grammar needed is a few elements deep.
 */
#ifndef SPICE_CONNECTORS_S3_LIST_H
#define SPICE_CONNECTORS_S3_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spice/error.h"

typedef struct sp_s3_object {
  char *key;    /* decoded, NUL-free */
  int64_t size; /* -1 when the answer did not say */
  char *etag;   /* as sent (quotes included), or NULL */
} sp_s3_object;

/* Zero-initialised is empty; sp__s3_listing_free frees it. */
typedef struct sp_s3_listing {
  sp_s3_object *objects;
  size_t n, cap;
  bool truncated;      /* IsTruncated of the last page parsed */
  char *next_token;    /* NextContinuationToken of the last page parsed, or NULL */
  char *error_code;    /* an <Error> document: its Code and Message (NULL otherwise) */
  char *error_message;
} sp_s3_listing;

/* Parses one page (or an <Error> document) of `len` bytes, appending its objects to *out and replacing
 * truncated / next_token / error_*. Fails with SP_EIO and a message saying what is wrong with the text; *out
 * keeps what earlier pages added. */
int sp__s3_list_parse(const char *xml, size_t len, sp_s3_listing *out, sp_error *err);
void sp__s3_listing_free(sp_s3_listing *l);

#endif
