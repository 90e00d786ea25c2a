/* SPDX-License-Identifier: Apache-2.0
 *
 * Arrow IPC decoder (include/spice/ipc.h). Input is untrusted (Flight clients, files): the flatbuffer is read
 * through flatbuf.c's checked accessors, and every node and buffer is checked against the schema and the body
 * before an ArrowArray points at it: counts, lengths (with overflow checks), 8-byte alignment of buffer
 * offsets, offsets monotonic and inside their data, dictionary indices inside their dictionary. Null bitmaps
 * are not recounted (null_count is taken from the message, as Arrow C++ does) and UTF-8 is not validated.
 *
 * Memory: each decoded message owns one block: an aligned copy of its body and every node it allocated. The
 * block is freed when the last of its nodes is released (nodes may be moved out and released separately). A
 * batch that uses a dictionary holds a reference on the dictionary's block.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/flatbuf.h"
#include "arrow/ipc_format.h"
#include "spice/arrow.h"
#include "spice/ipc.h"

#define MAX_NODE_LENGTH ((int64_t)1 << 40)

static int bad(sp_error *err, const char *what) { return sp_fail(err, SP_EINVAL, "malformed arrow ipc: %s", what); }
static int oom(sp_error *err) { return sp_fail(err, SP_ENOMEM, "out of memory reading arrow ipc"); }

/* ---- Schema nodes --------------------------------------------------------------------------------------- */

/* A schema node owning copies of its strings; children are added by the caller. */
static int schema_node(struct ArrowSchema *s, const char *format, const char *name, size_t name_len,
                       sp_error *err) {
  return sp_schema_node_init(s, format, name, name_len) == 0 ? SP_OK : oom(err);
}

/* ---- Reader state --------------------------------------------------------------------------------------- */

typedef struct block block;

typedef struct rdict {
  int64_t id;
  const struct ArrowSchema *field; /* the dictionary-encoded field (its ->dictionary is the value type) */
  struct ArrowArray values;        /* latest dictionary batch; release == NULL until one arrived */
} rdict;

struct sp_ipc_reader {
  bool have_schema;
  struct ArrowSchema schema;
  rdict *dicts; /* in schema pre-order */
  size_t n_dicts;
  size_t n_fields; /* while decoding a schema */
};

int sp_ipc_reader_create(sp_ipc_reader **out, sp_error *err) {
  *out = calloc(1, sizeof **out);
  return *out ? SP_OK : oom(err);
}

void sp_ipc_reader_destroy(sp_ipc_reader *r) {
  if (r == NULL) return;
  for (size_t i = 0; i < r->n_dicts; i++) sp_array_release(&r->dicts[i].values);
  free(r->dicts);
  sp_schema_release(&r->schema);
  free(r);
}

int sp_ipc_reader_schema(const sp_ipc_reader *r, struct ArrowSchema *out, sp_error *err) {
  if (!r->have_schema) return sp_fail(err, SP_EINVAL, "arrow ipc: no schema message read yet");
  return sp_schema_copy(out, &r->schema, err);
}

/* ---- Decoding a schema ---------------------------------------------------------------------------------- */

static const char *const UNIT_LETTER = "smun";

/* The format string of a Type table; *n_children is how many children the type requires (-1 any). */
static int type_format(uint8_t tt, const fb_table *t, char *f, size_t fsz, int *n_children, sp_error *err) {
  int32_t i32a = 0, i32b = 0, i32c = 0;
  int16_t u = 0;
  uint8_t b8 = 0;
  const char *tz;
  size_t tzlen;
  *n_children = 0;
  switch (tt) {
  case T_NULL: snprintf(f, fsz, "n"); return SP_OK;
  case T_BOOL: snprintf(f, fsz, "b"); return SP_OK;
  case T_UTF8: snprintf(f, fsz, "u"); return SP_OK;
  case T_LARGE_UTF8: snprintf(f, fsz, "U"); return SP_OK;
  case T_BINARY: snprintf(f, fsz, "z"); return SP_OK;
  case T_LARGE_BINARY: snprintf(f, fsz, "Z"); return SP_OK;
  case T_INT: {
    SP_TRY(fb_i32(t, INT_BITWIDTH, 0, &i32a, err));
    SP_TRY(fb_u8(t, INT_SIGNED, 0, &b8, err));
    int k = i32a == 8 ? 0 : i32a == 16 ? 1 : i32a == 32 ? 2 : i32a == 64 ? 3 : -1;
    if (k < 0) return bad(err, "integer bit width");
    snprintf(f, fsz, "%c", (b8 ? "csil" : "CSIL")[k]);
    return SP_OK;
  }
  case T_FLOAT:
    SP_TRY(fb_i16(t, FLOAT_PRECISION, 0, &u, err));
    if (u < 0 || u > 2) return bad(err, "floating point precision");
    snprintf(f, fsz, "%c", "efg"[u]);
    return SP_OK;
  case T_DECIMAL:
    SP_TRY(fb_i32(t, DEC_PRECISION, 0, &i32a, err));
    SP_TRY(fb_i32(t, DEC_SCALE, 0, &i32b, err));
    SP_TRY(fb_i32(t, DEC_BITWIDTH, 128, &i32c, err));
    if (i32a < 1 || (i32c != 32 && i32c != 64 && i32c != 128 && i32c != 256)) return bad(err, "decimal type");
    if (i32c == 128) snprintf(f, fsz, "d:%d,%d", i32a, i32b);
    else snprintf(f, fsz, "d:%d,%d,%d", i32a, i32b, i32c);
    return SP_OK;
  case T_DATE:
    SP_TRY(fb_i16(t, DATE_UNIT, 1, &u, err));
    if (u != 0 && u != 1) return bad(err, "date unit");
    snprintf(f, fsz, "td%c", u == 0 ? 'D' : 'm');
    return SP_OK;
  case T_TIME:
    SP_TRY(fb_i16(t, TIME_UNIT, 1, &u, err));
    SP_TRY(fb_i32(t, TIME_BITWIDTH, 32, &i32a, err));
    if (u < 0 || u > 3 || i32a != (u <= 1 ? 32 : 64)) return bad(err, "time unit or width");
    snprintf(f, fsz, "tt%c", UNIT_LETTER[u]);
    return SP_OK;
  case T_TIMESTAMP:
    SP_TRY(fb_i16(t, TS_UNIT, 0, &u, err));
    SP_TRY(fb_str(t, TS_TIMEZONE, &tz, &tzlen, err));
    if (u < 0 || u > 3) return bad(err, "timestamp unit");
    if (tzlen > 63 || (tz && memchr(tz, 0, tzlen))) return bad(err, "timestamp zone");
    snprintf(f, fsz, "ts%c:%.*s", UNIT_LETTER[u], (int)tzlen, tz ? tz : "");
    return SP_OK;
  case T_DURATION:
    SP_TRY(fb_i16(t, DURATION_UNIT, 1, &u, err));
    if (u < 0 || u > 3) return bad(err, "duration unit");
    snprintf(f, fsz, "tD%c", UNIT_LETTER[u]);
    return SP_OK;
  case T_INTERVAL:
    SP_TRY(fb_i16(t, INTERVAL_UNIT, 0, &u, err));
    if (u < 0 || u > 2) return bad(err, "interval unit");
    snprintf(f, fsz, "ti%c", "MDn"[u]);
    return SP_OK;
  case T_FIXED_BINARY:
    SP_TRY(fb_i32(t, FSB_WIDTH, 0, &i32a, err));
    if (i32a < 1) return bad(err, "fixed-size binary width");
    snprintf(f, fsz, "w:%d", i32a);
    return SP_OK;
  case T_FIXED_LIST:
    SP_TRY(fb_i32(t, FSL_SIZE, 0, &i32a, err));
    if (i32a < 0) return bad(err, "fixed-size list size");
    snprintf(f, fsz, "+w:%d", i32a);
    *n_children = 1;
    return SP_OK;
  case T_LIST: snprintf(f, fsz, "+l"); *n_children = 1; return SP_OK;
  case T_LARGE_LIST: snprintf(f, fsz, "+L"); *n_children = 1; return SP_OK;
  case T_MAP: snprintf(f, fsz, "+m"); *n_children = 1; return SP_OK;
  case T_STRUCT: snprintf(f, fsz, "+s"); *n_children = -1; return SP_OK;
  case T_UNION: case T_RUN_END: case T_BINARY_VIEW: case T_UTF8_VIEW: case T_LIST_VIEW: case T_LARGE_LIST_VIEW:
    return sp_fail(err, SP_ENOTSUP, "arrow ipc: type %d (union, run-end or view) is not supported", tt);
  default: return bad(err, "unknown type");
  }
}

/* [KeyValue] as the C Data Interface's metadata blob (NULL when absent or empty). */
static int metadata_blob(const fb_table *t, int id, char **out, sp_error *err) {
  fb_vec v;
  *out = NULL;
  SP_TRY(fb_vector(t, id, 4, 4, &v, err));
  if (v.n == 0) return SP_OK;
  size_t size = 4;
  for (int pass = 0; pass < 2; pass++) {
    size_t pos = 4;
    for (uint32_t i = 0; i < v.n; i++) {
      fb_table kv;
      const char *k, *val;
      size_t kl, vl;
      SP_TRY(fb_vec_table(&v, i, &kv, err));
      SP_TRY(fb_str(&kv, KV_KEY, &k, &kl, err));
      SP_TRY(fb_str(&kv, KV_VALUE, &val, &vl, err));
      if (kl > INT32_MAX || vl > INT32_MAX) return bad(err, "metadata entry too long");
      if (pass == 0) {
        size += 8 + kl + vl;
        continue;
      }
      int32_t l = (int32_t)kl;
      memcpy(*out + pos, &l, 4);
      if (kl) memcpy(*out + pos + 4, k, kl);
      pos += 4 + kl;
      l = (int32_t)vl;
      memcpy(*out + pos, &l, 4);
      if (vl) memcpy(*out + pos + 4, val, vl);
      pos += 4 + vl;
    }
    if (pass == 0) {
      *out = malloc(size);
      if (*out == NULL) return oom(err);
      int32_t n = (int32_t)v.n;
      memcpy(*out, &n, 4);
    }
  }
  return SP_OK;
}

static int add_dict(sp_ipc_reader *r, int64_t id, const struct ArrowSchema *field, sp_error *err) {
  for (size_t i = 0; i < r->n_dicts; i++)
    if (r->dicts[i].id == id) return bad(err, "two fields with one dictionary id");
  rdict *d = realloc(r->dicts, (r->n_dicts + 1) * sizeof *d);
  if (d == NULL) return oom(err);
  r->dicts = d;
  d[r->n_dicts++] = (rdict){.id = id, .field = field};
  return SP_OK;
}

static int decode_field(sp_ipc_reader *r, const fb_table *f, struct ArrowSchema *out, int depth, bool in_dict,
                        sp_error *err);

/* The children of a field into s (children of the value type for a dictionary field). */
static int decode_children(sp_ipc_reader *r, const fb_vec *v, struct ArrowSchema *s, int depth, bool in_dict,
                           sp_error *err) {
  if (v->n == 0) return SP_OK;
  s->children = calloc(v->n, sizeof *s->children);
  if (s->children == NULL) return oom(err);
  for (uint32_t i = 0; i < v->n; i++) {
    fb_table c;
    s->children[i] = calloc(1, sizeof **s->children);
    s->n_children++;
    if (s->children[i] == NULL) return oom(err);
    SP_TRY(fb_vec_table(v, i, &c, err));
    SP_TRY(decode_field(r, &c, s->children[i], depth + 1, in_dict, err));
  }
  return SP_OK;
}

/* Checks the children a type requires (a map's is a struct of two). */
static int check_children(const struct ArrowSchema *v, int want, sp_error *err) {
  if (want >= 0 && v->n_children != want) return bad(err, "wrong number of children for the type");
  if (strcmp(v->format, "+m") == 0) {
    const struct ArrowSchema *e = v->children[0];
    if (strcmp(e->format, "+s") != 0 || e->n_children != 2 || e->dictionary != NULL)
      return bad(err, "map entries are not a struct of key and value");
  }
  return SP_OK;
}

/* The dictionary encoding of field f, if any: s becomes the index node, s->dictionary the value node. */
static int decode_dictionary(sp_ipc_reader *r, const fb_table *d, struct ArrowSchema *s, const char *value_format,
                             sp_error *err) {
  int64_t id;
  uint8_t ordered;
  fb_table it;
  char index_format[8] = "i";
  SP_TRY(fb_i64(d, DICT_ID, 0, &id, err));
  SP_TRY(fb_u8(d, DICT_ORDERED, 0, &ordered, err));
  SP_TRY(fb_subtable(d, DICT_INDEX_TYPE, &it, err));
  if (it.b) {
    int n;
    SP_TRY(type_format(T_INT, &it, index_format, sizeof index_format, &n, err));
  }
  struct ArrowSchema *v = calloc(1, sizeof *v);
  if (v == NULL) return oom(err);
  s->dictionary = v;
  SP_TRY(schema_node(v, value_format, NULL, 0, err));
  sp_schema_strings *p = s->private_data;
  char *idx = strdup(index_format);
  if (idx == NULL) return oom(err);
  free(p->format);
  p->format = idx;
  s->format = idx;
  if (ordered) s->flags |= ARROW_FLAG_DICTIONARY_ORDERED;
  return add_dict(r, id, s, err);
}

static int decode_field(sp_ipc_reader *r, const fb_table *f, struct ArrowSchema *out, int depth, bool in_dict,
                        sp_error *err) {
  if (depth > SP_IPC_MAX_DEPTH) return bad(err, "schema nested too deeply");
  if (++r->n_fields > SP_IPC_MAX_FIELDS) return bad(err, "too many fields");
  const char *name;
  size_t name_len;
  uint8_t nullable, tt, keys_sorted = 0;
  fb_table type, dict;
  fb_vec children;
  char format[96];
  int want;
  SP_TRY(fb_str(f, FIELD_NAME, &name, &name_len, err));
  SP_TRY(fb_u8(f, FIELD_NULLABLE, 0, &nullable, err));
  SP_TRY(fb_u8(f, FIELD_TYPE_TYPE, 0, &tt, err));
  SP_TRY(fb_subtable(f, FIELD_TYPE, &type, err));
  if (type.b == NULL) return bad(err, "field without a type");
  SP_TRY(type_format(tt, &type, format, sizeof format, &want, err));
  if (tt == T_MAP) SP_TRY(fb_u8(&type, MAP_KEYS_SORTED, 0, &keys_sorted, err));
  SP_TRY(fb_subtable(f, FIELD_DICTIONARY, &dict, err));
  SP_TRY(fb_vector(f, FIELD_CHILDREN, 4, 4, &children, err));
  SP_TRY(schema_node(out, format, name ? name : "", name_len, err));
  if (nullable) out->flags |= ARROW_FLAG_NULLABLE;
  SP_TRY(metadata_blob(f, FIELD_CUSTOM_METADATA, &((sp_schema_strings *)out->private_data)->metadata, err));
  out->metadata = ((sp_schema_strings *)out->private_data)->metadata;
  struct ArrowSchema *v = out;
  if (dict.b) {
    if (in_dict) return sp_fail(err, SP_ENOTSUP, "arrow ipc: nested dictionaries are not supported");
    SP_TRY(decode_dictionary(r, &dict, out, format, err));
    v = out->dictionary;
  }
  if (keys_sorted) v->flags |= ARROW_FLAG_MAP_KEYS_SORTED;
  SP_TRY(decode_children(r, &children, v, depth, in_dict || dict.b != NULL, err));
  return check_children(v, want, err);
}

static int decode_schema(sp_ipc_reader *r, const fb_table *h, sp_error *err) {
  if (r->have_schema) return bad(err, "a second schema message");
  int16_t endian;
  fb_vec fields;
  SP_TRY(fb_i16(h, SCHEMA_ENDIANNESS, 0, &endian, err));
  if (endian != 0) return sp_fail(err, SP_ENOTSUP, "arrow ipc: big-endian streams are not supported");
  SP_TRY(fb_vector(h, SCHEMA_FIELDS, 4, 4, &fields, err));
  struct ArrowSchema s;
  int rc = schema_node(&s, "+s", "", 0, err);
  r->n_fields = 0;
  if (rc == SP_OK) rc = metadata_blob(h, SCHEMA_CUSTOM_METADATA, &((sp_schema_strings *)s.private_data)->metadata, err);
  if (rc == SP_OK) {
    s.metadata = ((sp_schema_strings *)s.private_data)->metadata;
    rc = decode_children(r, &fields, &s, 0, false, err);
  }
  if (rc != SP_OK) {
    sp_schema_node_release(&s);
    free(r->dicts);
    r->dicts = NULL;
    r->n_dicts = 0;
    return rc;
  }
  r->schema = s;
  r->have_schema = true;
  return SP_OK;
}

/* ---- Blocks: the memory of decoded arrays --------------------------------------------------------------- */

struct block {
  int refs; /* atomic: one per node handed out */
  uint8_t *body;
  void **allocs;
  size_t n_allocs, cap_allocs;
  block **deps; /* dictionary blocks this one uses */
  size_t n_deps, cap_deps;
};

static void block_free(block *b) {
  for (size_t i = 0; i < b->n_allocs; i++) free(b->allocs[i]);
  free(b->allocs);
  for (size_t i = 0; i < b->n_deps; i++)
    if (__atomic_sub_fetch(&b->deps[i]->refs, 1, __ATOMIC_ACQ_REL) == 0) block_free(b->deps[i]);
  free(b->deps);
  free(b->body);
  free(b);
}

static bool push_ptr(void ***v, size_t *n, size_t *cap, void *p) {
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 16;
    void **q = realloc(*v, c * sizeof *q);
    if (q == NULL) return false;
    *v = q;
    *cap = c;
  }
  (*v)[(*n)++] = p;
  return true;
}

static void *balloc(block *b, size_t size) {
  void *p = calloc(1, size);
  if (p && !push_ptr(&b->allocs, &b->n_allocs, &b->cap_allocs, p)) {
    free(p);
    return NULL;
  }
  return p;
}

static void node_release(struct ArrowArray *a) {
  if (a->release == NULL) return;
  for (int64_t i = 0; i < a->n_children; i++)
    if (a->children[i]->release) a->children[i]->release(a->children[i]);
  if (a->dictionary && a->dictionary->release) a->dictionary->release(a->dictionary);
  block *b = a->private_data;
  a->release = NULL;
  if (__atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0) block_free(b);
}

/* A node of b with n_buffers buffer slots and n_children children (allocated, zeroed). */
static struct ArrowArray *new_node(block *b, int64_t n_buffers, int64_t n_children) {
  struct ArrowArray *a = balloc(b, sizeof *a);
  if (a == NULL) return NULL;
  a->buffers = balloc(b, (size_t)(n_buffers ? n_buffers : 1) * sizeof *a->buffers);
  a->children = balloc(b, (size_t)(n_children ? n_children : 1) * sizeof *a->children);
  if (a->buffers == NULL || a->children == NULL) return NULL;
  for (int64_t i = 0; i < n_children; i++)
    if ((a->children[i] = balloc(b, sizeof *a->children[i])) == NULL) return NULL;
  a->n_buffers = n_buffers;
  a->n_children = n_children;
  a->release = node_release;
  a->private_data = b;
  __atomic_add_fetch(&b->refs, 1, __ATOMIC_ACQ_REL);
  return a;
}

/* Shares the dictionary tree src (nodes of another block) into b: new nodes, same buffers, and a reference on
 * src's block. */
static int share_tree(block *b, const struct ArrowArray *src, struct ArrowArray *dst, sp_error *err) {
  struct ArrowArray *n = new_node(b, src->n_buffers, src->n_children);
  if (n == NULL) return oom(err);
  n->length = src->length;
  n->null_count = src->null_count;
  n->offset = src->offset;
  for (int64_t i = 0; i < src->n_buffers; i++) n->buffers[i] = src->buffers[i];
  for (int64_t i = 0; i < src->n_children; i++) SP_TRY(share_tree(b, src->children[i], n->children[i], err));
  *dst = *n;
  n->release = NULL; /* moved into dst; the ref it took stays with dst */
  return SP_OK;
}

/* ---- Decoding a record batch ---------------------------------------------------------------------------- */

typedef struct rctx {
  sp_ipc_reader *r;
  block *b;
  fb_vec nodes, buffers;
  uint32_t node_i, buf_i;
  int64_t body_len;
  size_t dict_i;
  bool dictionary_batch;
} rctx;

static const int64_t ZEROS[4] = {0}; /* empty offsets buffers point here */

/* The next field node. A null-type node's null count is ignored (apache-arrow writes -1 for a sliced one; the
 * count is its length by definition). */
static int take_node(rctx *c, bool null_type, int64_t *length, int64_t *nulls, sp_error *err) {
  if (c->node_i >= c->nodes.n) return bad(err, "fewer field nodes than fields");
  const uint8_t *p = c->nodes.b->p + c->nodes.pos + 16 * (size_t)c->node_i++;
  *length = fb_load_i64(p);
  *nulls = fb_load_i64(p + 8);
  if (*length < 0 || *length > MAX_NODE_LENGTH) return bad(err, "field node length out of range");
  if (null_type) *nulls = *length;
  if (*nulls < 0 || *nulls > *length) return bad(err, "field node null count out of range");
  return SP_OK;
}

/* The next buffer: inside the body, 8-aligned. *p is NULL for an empty buffer. */
static int take_buffer(rctx *c, const uint8_t **p, int64_t *len, sp_error *err) {
  if (c->buf_i >= c->buffers.n) return bad(err, "fewer buffers than the fields need");
  const uint8_t *e = c->buffers.b->p + c->buffers.pos + 16 * (size_t)c->buf_i++;
  int64_t off = fb_load_i64(e);
  *len = fb_load_i64(e + 8);
  if (off < 0 || *len < 0 || off > c->body_len || *len > c->body_len - off) return bad(err, "buffer outside the body");
  if (off % 8 != 0) return bad(err, "buffer not 8-byte aligned");
  *p = *len ? c->b->body + off : NULL;
  return SP_OK;
}

/* A buffer of at least need bytes (need computed without overflow by the caller). */
static int take_sized(rctx *c, int64_t need, const uint8_t **p, sp_error *err) {
  int64_t len = 0;
  SP_TRY(take_buffer(c, p, &len, err));
  if (len < need) return bad(err, "buffer shorter than its field needs");
  if (*p == NULL) *p = (const uint8_t *)ZEROS;
  return SP_OK;
}

static int64_t fixed_width(const sp_arrow_typeinfo *t) {
  switch (t->type) {
  case SP_ARROW_INT8: case SP_ARROW_UINT8: return 1;
  case SP_ARROW_INT16: case SP_ARROW_UINT16: case SP_ARROW_HALF: return 2;
  case SP_ARROW_INT32: case SP_ARROW_UINT32: case SP_ARROW_FLOAT: case SP_ARROW_DATE32: case SP_ARROW_TIME32:
  case SP_ARROW_DECIMAL32: case SP_ARROW_INTERVAL_MONTHS: return 4;
  case SP_ARROW_INT64: case SP_ARROW_UINT64: case SP_ARROW_DOUBLE: case SP_ARROW_DATE64: case SP_ARROW_TIME64:
  case SP_ARROW_TIMESTAMP: case SP_ARROW_DURATION: case SP_ARROW_DECIMAL64: case SP_ARROW_INTERVAL_DAY_TIME: return 8;
  case SP_ARROW_DECIMAL128: case SP_ARROW_INTERVAL_MONTH_DAY_NANO: return 16;
  case SP_ARROW_DECIMAL256: return 32;
  case SP_ARROW_FIXED_BINARY: return t->byte_width;
  default: return 0;
  }
}

/* Offsets of n values (n + 1 entries, or none when n == 0): non-negative, non-decreasing; the last one is
 * returned in *end for the caller to check against the data or the child. */
static int take_offsets(rctx *c, bool large, int64_t n, const uint8_t **p, int64_t *end, sp_error *err) {
  int64_t len = 0, es = large ? 8 : 4;
  SP_TRY(take_buffer(c, p, &len, err));
  *end = 0;
  if (n == 0 && len < es) {
    *p = (const uint8_t *)ZEROS;
    return SP_OK;
  }
  if (len / es < n + 1) return bad(err, "offsets buffer shorter than its field needs");
  int64_t prev = -1;
  for (int64_t i = 0; i <= n; i++) {
    int64_t o;
    if (large) {
      memcpy(&o, *p + 8 * i, 8);
    } else {
      int32_t o32;
      memcpy(&o32, *p + 4 * i, 4);
      o = o32;
    }
    if (o < 0 || o < prev) return bad(err, "offsets negative or decreasing");
    prev = o;
  }
  *end = prev;
  return SP_OK;
}

static int decode_array(rctx *c, const struct ArrowSchema *s, struct ArrowArray *out, int depth, sp_error *err);

static int child_at_least(const struct ArrowArray *child, int64_t need, sp_error *err) {
  return child->length < need ? bad(err, "child shorter than its parent needs") : SP_OK;
}

/* Checks every valid index of a dictionary-encoded node against the dictionary's length. */
static int check_indices(const struct ArrowArray *a, const sp_arrow_typeinfo *t, int64_t dict_len, sp_error *err) {
  const uint8_t *valid = a->buffers[0], *v = a->buffers[1];
  int64_t w = fixed_width(t);
  for (int64_t i = 0; i < a->length; i++) {
    if (valid && !(valid[i >> 3] & (1u << (i & 7)))) continue;
    int64_t k;
    switch (t->type) {
    case SP_ARROW_INT8: k = (int8_t)v[i]; break;
    case SP_ARROW_UINT8: k = v[i]; break;
    case SP_ARROW_INT16: { int16_t x; memcpy(&x, v + 2 * i, 2); k = x; break; }
    case SP_ARROW_UINT16: { uint16_t x; memcpy(&x, v + 2 * i, 2); k = x; break; }
    case SP_ARROW_INT32: { int32_t x; memcpy(&x, v + 4 * i, 4); k = x; break; }
    case SP_ARROW_UINT32: { uint32_t x; memcpy(&x, v + 4 * i, 4); k = x; break; }
    case SP_ARROW_INT64: memcpy(&k, v + 8 * i, 8); break;
    default: { uint64_t x; memcpy(&x, v + (size_t)w * i, 8); k = x > INT64_MAX ? -1 : (int64_t)x; break; }
    }
    if (k < 0 || k >= dict_len) return bad(err, "dictionary index out of range");
  }
  return SP_OK;
}

static int attach_dictionary(rctx *c, const struct ArrowSchema *s, struct ArrowArray *a, sp_error *err) {
  if (c->dict_i >= c->r->n_dicts || c->r->dicts[c->dict_i].field != s) return bad(err, "dictionary field order");
  rdict *d = &c->r->dicts[c->dict_i++];
  if (d->values.release == NULL) return bad(err, "record batch before its dictionary");
  sp_arrow_typeinfo t;
  sp_arrow_parse_format(s->format, &t);
  SP_TRY(check_indices(a, &t, d->values.length, err));
  block *db = d->values.private_data;
  if (!push_ptr((void ***)&c->b->deps, &c->b->n_deps, &c->b->cap_deps, db)) return oom(err);
  __atomic_add_fetch(&db->refs, 1, __ATOMIC_ACQ_REL);
  a->dictionary = balloc(c->b, sizeof *a->dictionary);
  if (a->dictionary == NULL) return oom(err);
  return share_tree(c->b, &d->values, a->dictionary, err);
}

/* The buffers after validity (and the children) of one node of value type t. */
static int decode_values(rctx *c, const struct ArrowSchema *v, const sp_arrow_typeinfo *t, struct ArrowArray *a,
                         int depth, sp_error *err) {
  int64_t n = a->length, end, need;
  const uint8_t *p, *data;
  switch (t->type) {
  case SP_ARROW_BOOL:
    SP_TRY(take_sized(c, (n + 7) / 8, &p, err));
    a->buffers[1] = p;
    return SP_OK;
  case SP_ARROW_UTF8: case SP_ARROW_BINARY: case SP_ARROW_LARGE_UTF8: case SP_ARROW_LARGE_BINARY:
    SP_TRY(take_offsets(c, t->type == SP_ARROW_LARGE_UTF8 || t->type == SP_ARROW_LARGE_BINARY, n, &p, &end, err));
    SP_TRY(take_sized(c, end, &data, err));
    a->buffers[1] = p;
    a->buffers[2] = data;
    return SP_OK;
  case SP_ARROW_LIST: case SP_ARROW_LARGE_LIST: case SP_ARROW_MAP:
    SP_TRY(take_offsets(c, t->type == SP_ARROW_LARGE_LIST, n, &p, &end, err));
    a->buffers[1] = p;
    SP_TRY(decode_array(c, v->children[0], a->children[0], depth + 1, err));
    return child_at_least(a->children[0], end, err);
  case SP_ARROW_FIXED_LIST:
    SP_TRY(decode_array(c, v->children[0], a->children[0], depth + 1, err));
    if (__builtin_mul_overflow(n, (int64_t)t->byte_width, &need)) return bad(err, "fixed-size list too long");
    return child_at_least(a->children[0], need, err);
  case SP_ARROW_STRUCT:
    for (int64_t i = 0; i < v->n_children; i++) {
      SP_TRY(decode_array(c, v->children[i], a->children[i], depth + 1, err));
      SP_TRY(child_at_least(a->children[i], n, err));
    }
    return SP_OK;
  default:
    if (__builtin_mul_overflow(n, fixed_width(t), &need)) return bad(err, "fixed-width values too long");
    SP_TRY(take_sized(c, need, &p, err));
    a->buffers[1] = p;
    return SP_OK;
  }
}

static int64_t buffer_count(sp_arrow_type t) {
  switch (t) {
  case SP_ARROW_NA: return 0;
  case SP_ARROW_STRUCT: case SP_ARROW_FIXED_LIST: return 1;
  case SP_ARROW_UTF8: case SP_ARROW_BINARY: case SP_ARROW_LARGE_UTF8: case SP_ARROW_LARGE_BINARY: return 3;
  default: return 2;
  }
}

/* One field's node, buffers and children, in the order the format lists them (pre-order). */
static int decode_array(rctx *c, const struct ArrowSchema *s, struct ArrowArray *out, int depth, sp_error *err) {
  if (depth > SP_IPC_MAX_DEPTH) return bad(err, "arrays nested too deeply");
  const struct ArrowSchema *v = s->dictionary && !c->dictionary_batch ? s->dictionary : s;
  sp_arrow_typeinfo t; /* the layout: the index type for a dictionary field */
  sp_arrow_parse_format(s->format, &t);
  int64_t length = 0, nulls = 0;
  SP_TRY(take_node(c, t.type == SP_ARROW_NA, &length, &nulls, err));
  bool indices = s->dictionary != NULL && !c->dictionary_batch;
  struct ArrowArray *a = new_node(c->b, buffer_count(t.type), indices ? 0 : v->n_children);
  if (a == NULL) return oom(err);
  a->length = length;
  a->null_count = nulls;
  if (t.type == SP_ARROW_NA) {
    a->null_count = length;
  } else {
    const uint8_t *valid;
    int64_t vlen = 0;
    SP_TRY(take_buffer(c, &valid, &vlen, err));
    if (nulls > 0 && vlen < (length + 7) / 8) return bad(err, "validity bitmap shorter than its field");
    a->buffers[0] = nulls > 0 ? valid : NULL;
    if (indices) {
      if (__builtin_mul_overflow(length, fixed_width(&t), &vlen)) return bad(err, "indices too long");
      SP_TRY(take_sized(c, vlen, &valid, err));
      a->buffers[1] = valid;
      SP_TRY(attach_dictionary(c, s, a, err));
    } else {
      SP_TRY(decode_values(c, v, &t, a, depth, err));
    }
  }
  *out = *a;
  a->release = NULL; /* moved into out, which keeps the node's reference */
  return SP_OK;
}

/* ---- Messages ------------------------------------------------------------------------------------------- */

/* Reads a RecordBatch table's nodes and buffers into c (body already in c->b). */
static int open_batch(rctx *c, const fb_table *rb, int64_t *length, sp_error *err) {
  fb_table comp;
  fb_vec variadic;
  SP_TRY(fb_i64(rb, RB_LENGTH, 0, length, err));
  if (*length < 0 || *length > MAX_NODE_LENGTH) return bad(err, "record batch length out of range");
  SP_TRY(fb_subtable(rb, RB_COMPRESSION, &comp, err));
  if (comp.b) return sp_fail(err, SP_ENOTSUP, "arrow ipc: compressed record batches are not supported");
  SP_TRY(fb_vector(rb, RB_VARIADIC, 8, 8, &variadic, err));
  if (variadic.n) return bad(err, "variadic buffer counts without view types");
  SP_TRY(fb_vector(rb, RB_NODES, 16, 8, &c->nodes, err));
  return fb_vector(rb, RB_BUFFERS, 16, 8, &c->buffers, err);
}

static int check_all_used(const rctx *c, sp_error *err) {
  if (c->node_i != c->nodes.n) return bad(err, "more field nodes than fields");
  if (c->buf_i != c->buffers.n) return bad(err, "more buffers than the fields use");
  return SP_OK;
}

static int decode_record_batch(rctx *c, const fb_table *rb, struct ArrowArray *out, sp_error *err) {
  int64_t length;
  const struct ArrowSchema *s = &c->r->schema;
  SP_TRY(open_batch(c, rb, &length, err));
  struct ArrowArray *root = new_node(c->b, 1, s->n_children);
  if (root == NULL) return oom(err);
  root->length = length;
  for (int64_t i = 0; i < s->n_children; i++) {
    SP_TRY(decode_array(c, s->children[i], root->children[i], 1, err));
    SP_TRY(child_at_least(root->children[i], length, err));
  }
  SP_TRY(check_all_used(c, err));
  *out = *root;
  root->release = NULL;
  return SP_OK;
}

static int decode_dictionary_batch(rctx *c, const fb_table *db, sp_error *err) {
  int64_t id, length;
  uint8_t delta;
  fb_table data;
  SP_TRY(fb_i64(db, DB_ID, 0, &id, err));
  SP_TRY(fb_u8(db, DB_IS_DELTA, 0, &delta, err));
  SP_TRY(fb_subtable(db, DB_DATA, &data, err));
  if (data.b == NULL) return bad(err, "dictionary batch without data");
  if (delta) return sp_fail(err, SP_ENOTSUP, "arrow ipc: delta dictionaries are not supported");
  rdict *d = NULL;
  for (size_t i = 0; i < c->r->n_dicts; i++)
    if (c->r->dicts[i].id == id) d = &c->r->dicts[i];
  if (d == NULL) return bad(err, "dictionary batch for an unknown id");
  SP_TRY(open_batch(c, &data, &length, err));
  c->dictionary_batch = true;
  struct ArrowArray values;
  SP_TRY(decode_array(c, d->field->dictionary, &values, 1, err));
  SP_TRY(check_all_used(c, err));
  sp_array_release(&d->values);
  d->values = values;
  return SP_OK;
}

int sp_ipc_reader_message(sp_ipc_reader *r, const uint8_t *header, size_t header_len, const uint8_t *body,
                          size_t body_len, sp_ipc_msg_type *type, struct ArrowArray *batch, sp_error *err) {
  fb_buf fb = {header, header_len};
  fb_table msg, h;
  int16_t version;
  uint8_t ht;
  int64_t blen;
  SP_TRY(fb_root(&fb, &msg, err));
  SP_TRY(fb_i16(&msg, MSG_VERSION, 0, &version, err));
  SP_TRY(fb_u8(&msg, MSG_HEADER_TYPE, 0, &ht, err));
  SP_TRY(fb_subtable(&msg, MSG_HEADER, &h, err));
  SP_TRY(fb_i64(&msg, MSG_BODY_LENGTH, 0, &blen, err));
  if (version < METADATA_V4 || version > METADATA_V5)
    return sp_fail(err, SP_ENOTSUP, "arrow ipc: metadata version %d is not supported", version);
  if (h.b == NULL) return bad(err, "message without a header");
  if (blen < 0 || (uint64_t)blen > body_len) return bad(err, "body shorter than the message says");
  if (ht == H_SCHEMA) {
    SP_TRY(decode_schema(r, &h, err));
    *type = SP_IPC_SCHEMA;
    return SP_OK;
  }
  if (ht != H_DICTIONARY && ht != H_RECORD_BATCH)
    return sp_fail(err, SP_ENOTSUP, "arrow ipc: message type %d is not supported", ht);
  if (!r->have_schema) return bad(err, "batch before the schema");
  rctx c = {.r = r, .body_len = blen};
  c.b = calloc(1, sizeof *c.b);
  if (c.b == NULL || (c.b->body = malloc(blen ? (size_t)blen : 1)) == NULL) {
    free(c.b);
    return oom(err);
  }
  if (blen) memcpy(c.b->body, body, (size_t)blen);
  struct ArrowArray out;
  int rc = ht == H_DICTIONARY ? decode_dictionary_batch(&c, &h, err) : decode_record_batch(&c, &h, &out, err);
  if (rc != SP_OK) {
    block_free(c.b); /* nothing of it was handed out */
    return rc;
  }
  if (c.b->refs == 0) block_free(c.b);
  *type = ht == H_DICTIONARY ? SP_IPC_DICTIONARY : SP_IPC_RECORD_BATCH;
  if (ht == H_RECORD_BATCH) *batch = out;
  return SP_OK;
}

int sp_ipc_reader_next(sp_ipc_reader *r, const uint8_t *data, size_t len, size_t *consumed, sp_ipc_msg_type *type,
                       struct ArrowArray *batch, sp_error *err) {
  *consumed = 0;
  if (len == 0) {
    *type = SP_IPC_EOS;
    return SP_OK;
  }
  if (len < 4) return bad(err, "truncated message prefix");
  size_t pos = 0;
  uint32_t word;
  memcpy(&word, data, 4);
  if (word == 0xffffffffu) {
    if (len < 8) return bad(err, "truncated message prefix");
    memcpy(&word, data + 4, 4);
    pos = 8;
  } else {
    pos = 4; /* pre-0.15 framing: the length alone */
  }
  if (word == 0) {
    *consumed = pos;
    *type = SP_IPC_EOS;
    return SP_OK;
  }
  if (word > len - pos || word > INT32_MAX) return bad(err, "metadata longer than the stream");
  if (word % 8 != 0) return bad(err, "metadata length not a multiple of 8");
  const uint8_t *meta = data + pos;
  pos += word;
  /* The body length is in the message; peek at it to know how much of the stream is this message's. */
  fb_buf fb = {meta, word};
  fb_table msg;
  int64_t blen;
  SP_TRY(fb_root(&fb, &msg, err));
  SP_TRY(fb_i64(&msg, MSG_BODY_LENGTH, 0, &blen, err));
  if (blen < 0 || (uint64_t)blen > len - pos) return bad(err, "body longer than the stream");
  SP_TRY(sp_ipc_reader_message(r, meta, word, data + pos, (size_t)blen, type, batch, err));
  *consumed = pos + (size_t)blen;
  return SP_OK;
}

int sp_ipc_read_stream(const uint8_t *data, size_t len, struct ArrowSchema *schema, struct ArrowArray **batches,
                       size_t *n, sp_error *err) {
  sp_ipc_reader *r;
  SP_TRY(sp_ipc_reader_create(&r, err));
  struct ArrowArray *list = NULL;
  size_t count = 0, pos = 0;
  int rc = SP_OK;
  for (;;) {
    size_t used;
    sp_ipc_msg_type type;
    struct ArrowArray b;
    rc = sp_ipc_reader_next(r, data + pos, len - pos, &used, &type, &b, err);
    if (rc != SP_OK || type == SP_IPC_EOS) break;
    pos += used;
    if (type != SP_IPC_RECORD_BATCH) continue;
    struct ArrowArray *l = realloc(list, (count + 1) * sizeof *l);
    if (l == NULL) {
      sp_array_release(&b);
      rc = oom(err);
      break;
    }
    list = l;
    list[count++] = b;
  }
  if (rc == SP_OK && !r->have_schema) rc = bad(err, "stream without a schema");
  if (rc == SP_OK) rc = sp_ipc_reader_schema(r, schema, err);
  sp_ipc_reader_destroy(r);
  if (rc != SP_OK) {
    for (size_t i = 0; i < count; i++) sp_array_release(&list[i]);
    free(list);
    return rc;
  }
  *batches = list;
  *n = count;
  return SP_OK;
}
