/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for the results cache's SQL normaliser (src/server/results_cache.c), which reads every
 * /v1/sql statement. Invariants: it never grows the text, it is idempotent (normalising a normal form changes
 * nothing, and gives the same cacheable verdict), and the full key builder accepts the same text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/results_cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sp_buf once = {0}, twice = {0}, key = {0};
  bool c1 = false, c2 = false, c3 = false;
  if (sp_sql_normalize((const char *)data, size, &once, &c1) != SP_OK) abort();
  if (once.len > size) abort();
  if (sp_sql_normalize(once.data ? once.data : "", once.len, &twice, &c2) != SP_OK) abort();
  if (twice.len != once.len || (once.len && memcmp(once.data, twice.data, once.len) != 0) || c1 != c2) abort();
  char *text = malloc(size + 1);
  if (text == NULL) abort();
  memcpy(text, data, size);
  text[size] = '\0';
  if (memchr(data, '\0', size) == NULL) {
    if (sp_cache_key(text, NULL, 0, 1, &key, &c3) != SP_OK || c3 != c1) abort();
    if (key.len < once.len || (once.len && memcmp(key.data, once.data, once.len) != 0)) abort();
  }
  free(text);
  sp_buf_free(&once);
  sp_buf_free(&twice);
  sp_buf_free(&key);
  return 0;
}
