/* SPDX-License-Identifier: Apache-2.0
 *
 * The protobuf wire format, read (pb.h).
 */
#include "core/pb.h"

int sp_pb_varint(sp_pb_reader *r, uint64_t *v) {
  uint64_t x = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (r->p >= r->end) return -1;
    uint8_t b = *r->p++;
    x |= (uint64_t)(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *v = x;
      return 0;
    }
  }
  return -1; /* more than 10 bytes */
}

int sp_pb_next(sp_pb_reader *r, sp_pb_field *f) {
  uint64_t key;
  if (sp_pb_varint(r, &key) != 0) return -1;
  f->num = key >> 3;
  f->wire = (int)(key & 7);
  if (f->num == 0) return -1;
  size_t left = (size_t)(r->end - r->p);
  switch (f->wire) {
  case 0: return sp_pb_varint(r, &f->varint);
  case 1:
  case 5:
    if (left < (f->wire == 1 ? 8u : 4u)) return -1;
    r->p += f->wire == 1 ? 8 : 4;
    return 0;
  case 2:
    if (sp_pb_varint(r, &f->varint) != 0) return -1;
    left = (size_t)(r->end - r->p);
    if (f->varint > left) return -1;
    f->bytes.data = r->p;
    f->bytes.len = (size_t)f->varint;
    r->p += f->bytes.len;
    return 0;
  default: return -1; /* groups (3, 4) are not used by Flight */
  }
}
