/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for the pgoutput decoder (src/connectors/pgoutput.c): logical replication messages that
 * come from a PostgreSQL server over the network. The first byte picks the key (the relation's replica
 * identity, or a configured column "id"); the rest is a sequence of messages, each a 2-byte big-endian length
 * and its bytes. Whenever no transaction is open and changes are pending they are cut into a batch, whose
 * shape must agree with what the decoder said was pending. Seeds (tests/fuzz/corpus/pgoutput/) are real
 * server output (pg_logical_slot_peek_binary_changes with pgoutput) in that framing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/pgoutput.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void cut(pgo_decoder *d) {
  if (pgo_in_transaction(d) || pgo_pending_commits(d) == 0) return;
  size_t rows = pgo_pending_rows(d);
  struct ArrowSchema s;
  struct ArrowArray a;
  if (pgo_take(d, &s, &a, NULL) != SP_OK) return;
  if (a.length != (int64_t)rows || a.n_children != s.n_children || a.n_children < 1) abort();
  for (int64_t i = 0; i < a.n_children; i++)
    if (a.children[i]->length != (int64_t)rows) abort();
  a.release(&a);
  s.release(&s);
  if (pgo_pending_rows(d) != 0 || pgo_pending_commits(d) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  static const char *const key[] = {"id"};
  pgo_decoder *d;
  if (pgo_decoder_new(key, data[0] & 1, &d, NULL) != SP_OK) return 0;
  size_t o = 1;
  while (o + 2 <= size) {
    size_t n = (size_t)data[o] << 8 | data[o + 1];
    o += 2;
    if (n > size - o) n = size - o;
    /* A copy of exactly n bytes, so that reads past the message are caught. */
    uint8_t *m = malloc(n ? n : 1);
    if (m == NULL) break;
    memcpy(m, data + o, n);
    int rc = pgo_feed(d, m, n, NULL);
    free(m);
    o += n;
    if (rc != SP_OK) break;
    cut(d);
  }
  pgo_decoder_free(d);
  return 0;
}
