/* SPDX-License-Identifier: Apache-2.0
 *
 * A decoder of PostgreSQL's pgoutput logical replication messages (protocol version 1, text tuples), kept
 * apart from libpq so that it can be tested and fuzzed on its own.
 *
 * It reads Relation, Begin, Insert, Update, Delete, Commit and Truncate (Type and Origin are skipped) and
 * keeps the net change of each primary key since the last pgo_take: the last version of the row, or its
 * deletion. pgo_take then cuts the committed changes into one Arrow batch: a utf8 "_op" column
 * ("insert"|"update"|"delete") followed by the table's columns as utf8 in PostgreSQL's text form.
 * Changes are only taken between transactions, so a batch always holds whole transactions.
 */
#ifndef SPICE_PGOUTPUT_H
#define SPICE_PGOUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spice/arrow_abi.h"
#include "spice/error.h"

typedef struct pgo_decoder pgo_decoder;

/* A decoder keyed by `key` (column names, copied; n_key = 0: the relation's replica identity columns, which
 * are its primary key by default). Free it with pgo_decoder_free (NULL-safe). */
int pgo_decoder_new(const char *const *key, size_t n_key, pgo_decoder **out, sp_error *err);
void pgo_decoder_free(pgo_decoder *d);

/* Feeds one pgoutput message (the payload of an XLogData, borrowed). Malformed input is SP_EIO; a change
 * spicec cannot apply by key (a key column missing from a delete, an unchanged large value it does not
 * have) is SP_ENOTSUP: the caller reloads the table. */
int pgo_feed(pgo_decoder *d, const uint8_t *msg, size_t len, sp_error *err);

/* True between a Begin and its Commit. */
bool pgo_in_transaction(const pgo_decoder *d);
/* True once a Truncate of the table was read: the caller reloads it (a truncation is not a change by key). */
bool pgo_truncated(const pgo_decoder *d);
/* Committed transactions not yet taken, the keys they changed, and the end LSN of the last one. */
size_t pgo_pending_commits(const pgo_decoder *d);
size_t pgo_pending_rows(const pgo_decoder *d);
uint64_t pgo_pending_lsn(const pgo_decoder *d);

/* The key column names in use (borrowed; valid until the next pgo_feed), once a Relation was read. */
const char *const *pgo_key(const pgo_decoder *d, size_t *n);

/* Cuts the committed changes into *schema and *batch (owned by the caller) and forgets them. Only between
 * transactions; SP_EINVAL when nothing is pending or a transaction is open. */
int pgo_take(pgo_decoder *d, struct ArrowSchema *schema, struct ArrowArray *batch, sp_error *err);

/* "X/Y" text of an LSN, and back (0 on success, -1 for text that is not one). */
void pgo_lsn_format(uint64_t lsn, char *buf, size_t n);
int pgo_lsn_parse(const char *s, uint64_t *out);

#endif
