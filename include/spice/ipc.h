/* SPDX-License-Identifier: Apache-2.0
 *
 * Arrow IPC streaming format (format/Columnar.rst "Serialization and Interprocess Communication"): an encoder
 * and a validating decoder for Schema, DictionaryBatch and RecordBatch messages, over the C Data Interface.
 * Used by Flight (FlightData carries one message's flatbuffer header and body in separate fields) and by
 * anything that writes or reads `.arrows` stream files. Metadata version V5, little-endian, no compression.
 *
 * Types: null, bool, int/uint 8-64, half/float/double, utf8, large utf8, binary, large binary, fixed-size
 * binary, decimal32/64/128/256, date32/64, time32/64, timestamp (unit, zone), duration, intervals (months,
 * day_time, month_day_nano), list, large list, fixed-size list, struct, map, and dictionary-encoded fields
 * (integer indices, any non-dictionary value type). Views, unions and run-end encoding give SP_ENOTSUP.
 *
 * Writing (buffers are appended to a caller's sp_buf, from src/server/format.h, meant to be reused):
 *
 *   sp_ipc_writer *w;  sp_buf out = {0};
 *   SP_TRY(sp_ipc_writer_create(&schema, &w, err));        schema copied; may be released afterwards
 *   sp_ipc_write_schema(w, &out, err);
 *   for each batch: sp_ipc_write_batch(w, &batch, &out, err);   batch borrowed (struct array of the schema)
 *   sp_ipc_write_eos(&out, err);
 *   sp_ipc_writer_destroy(w);
 *
 * Each write appends complete encapsulated messages (0xFFFFFFFF, int32 metadata length, flatbuffer Message
 * padded to 8, body with every buffer 8-aligned), so out is a valid stream. sp_ipc_writer_frames() then
 * tells where each message of the last call sits in out (Flight sends header and body separately). Alignment
 * is relative to out->len at the call: keep it a multiple of 8 (or reset it to 0) for aligned buffers.
 *
 * Reading: sp_ipc_reader_next() over a stream in memory, or sp_ipc_reader_message() over (header, body) pairs.
 * Every offset, length, count and alignment is checked before use; malformed input gives SP_EINVAL with a
 * message (unsupported but valid input SP_ENOTSUP). Decoded batches own their memory (the body is copied into
 * one aligned block per message, shared by the batch's arrays and by the batches using a dictionary).
 */
#ifndef SPICE_IPC_H
#define SPICE_IPC_H

#include <stddef.h>
#include <stdint.h>

#include "spice/arrow_abi.h"
#include "spice/buf.h"
#include "spice/error.h"

typedef enum sp_ipc_msg_type {
  SP_IPC_EOS = 0, /* end of stream (sp_ipc_reader_next) */
  SP_IPC_SCHEMA = 1,
  SP_IPC_DICTIONARY = 2,
  SP_IPC_RECORD_BATCH = 3,
} sp_ipc_msg_type;

/* Nesting deeper than this is refused on both sides (the official verifier allows 128 flatbuffer levels). */
#define SP_IPC_MAX_DEPTH 48
/* Fields (all levels) in one schema, at most. */
#define SP_IPC_MAX_FIELDS 10000

/* ---- Writer --------------------------------------------------------------------------------------------- */

typedef struct sp_ipc_writer sp_ipc_writer;

/* One message appended by the last write call, as byte ranges of the caller's sp_buf. header is the raw
 * flatbuffer Message (what FlightData.data_header holds); body the message body (FlightData.data_body). */
typedef struct sp_ipc_frame {
  sp_ipc_msg_type type;
  size_t header_off, header_len;
  size_t body_off, body_len;
} sp_ipc_frame;

/* A writer for batches of `schema` (a struct schema: its children are the columns; copied). SP_ENOTSUP for
 * a type the format cannot carry here. The writer is freed with sp_ipc_writer_destroy. */
int sp_ipc_writer_create(const struct ArrowSchema *schema, sp_ipc_writer **out, sp_error *err);
void sp_ipc_writer_destroy(sp_ipc_writer *w); /* NULL-safe */

/* Appends the Schema message to out. */
int sp_ipc_write_schema(sp_ipc_writer *w, struct sp_buf *out, sp_error *err);
/* Appends one DictionaryBatch message per dictionary-encoded field of batch (replacing the previous one),
 * then the RecordBatch message. batch is only read (any offset; sliced children are written compacted). */
int sp_ipc_write_batch(sp_ipc_writer *w, const struct ArrowArray *batch, struct sp_buf *out, sp_error *err);
/* Appends the end-of-stream marker (0xFFFFFFFF 0x00000000). */
int sp_ipc_write_eos(struct sp_buf *out, sp_error *err);
/* The messages appended by the last write call on w (valid until the next one), *n of them. */
const sp_ipc_frame *sp_ipc_writer_frames(const sp_ipc_writer *w, size_t *n);

/* ---- Reader --------------------------------------------------------------------------------------------- */

typedef struct sp_ipc_reader sp_ipc_reader;

int sp_ipc_reader_create(sp_ipc_reader **out, sp_error *err);
void sp_ipc_reader_destroy(sp_ipc_reader *r); /* NULL-safe; batches already returned stay valid */

/* Decodes one message from its flatbuffer header (no 0xFFFFFFFF/length prefix) and body (copied; both only
 * borrowed). The first message must be the Schema. *type says what it was; for SP_IPC_RECORD_BATCH, *batch
 * receives a struct array owned by the caller (release it); otherwise *batch is left untouched. */
int sp_ipc_reader_message(sp_ipc_reader *r, const uint8_t *header, size_t header_len, const uint8_t *body,
                          size_t body_len, sp_ipc_msg_type *type, struct ArrowArray *batch, sp_error *err);
/* Decodes the next encapsulated message at data (len bytes left in the stream); *consumed is its size.
 * SP_IPC_EOS for the end marker or for len == 0. Older framing without 0xFFFFFFFF is accepted. */
int sp_ipc_reader_next(sp_ipc_reader *r, const uint8_t *data, size_t len, size_t *consumed, sp_ipc_msg_type *type,
                       struct ArrowArray *batch, sp_error *err);
/* A copy of the stream's schema (a struct schema; owned by the caller). SP_EINVAL before the Schema message. */
int sp_ipc_reader_schema(const sp_ipc_reader *r, struct ArrowSchema *out, sp_error *err);

/* Reads a whole stream: *schema and *batches (malloc'd array of *n batches) are owned by the caller. */
int sp_ipc_read_stream(const uint8_t *data, size_t len, struct ArrowSchema *schema, struct ArrowArray **batches,
                       size_t *n, sp_error *err);

#endif
