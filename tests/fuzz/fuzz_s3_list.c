/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for the S3 ListObjectsV2 / <Error> reader (src/connectors/s3_list.c): any bytes as one
 * page, parsed twice into the same listing (as pages are). Nothing may crash or read past the input; every key
 * is a terminated string no longer than the input. Seeds: tests/fuzz/corpus/s3_list/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/s3_list.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* An exact-size copy: the parser must not need a terminator. */
  char *xml = malloc(size ? size : 1);
  if (xml == NULL) return 0;
  memcpy(xml, data, size);
  sp_s3_listing l = {0};
  sp_error err;
  for (int page = 0; page < 2; page++) {
    if (sp__s3_list_parse(xml, size, &l, &err) != SP_OK && strlen(err.msg) == 0) abort();
    for (size_t i = 0; i < l.n; i++)
      if (strlen(l.objects[i].key) > size || l.objects[i].size < -1) abort();
    if (l.next_token && strlen(l.next_token) > size) abort();
  }
  sp__s3_listing_free(&l);
  free(xml);
  return 0;
}
