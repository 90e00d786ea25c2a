/* SPDX-License-Identifier: Apache-2.0
 *
 * pgoutput (protocol version 1) decoding into net changes by key; see pgoutput.h. Message layouts are those
 * of PostgreSQL's "Logical Replication Message Formats": big-endian integers, NUL-terminated strings,
 * TupleData = Int16 count, then per column 'n' (null), 'u' (unchanged TOASTed value) or 't' Int32 len bytes.
 *
 * The net change of a key is kept in one entry (found through an open-addressing hash of the key's text), so
 * a batch holds each key once and applying it is order-free: delete every key, insert the surviving rows.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/pgoutput.h"
#include "spice/arrow.h"

typedef struct pgo_column {
  char *name;
  int identity; /* part of the replica identity (flag 1 of the Relation message) */
  int padded;   /* char(n): trailing spaces are padding, dropped as the COPY decoder drops them */
} pgo_column;

/* One key's net change: its latest values (n_cols strings, NULL = SQL NULL), or its deletion. */
typedef struct pgo_entry {
  char *key;       /* serialized key text (see key_of) */
  size_t key_len;
  uint64_t hash;
  char first, last; /* 'i', 'u' or 'd': the first and latest change in this batch */
  char **vals;
} pgo_entry;

struct pgo_decoder {
  char **want_key; /* configured key names, or NULL */
  size_t n_want;
  uint32_t rel_id;  /* the relation being decoded (the publication holds one table) */
  int has_rel;
  pgo_column *cols;
  size_t n_cols;
  size_t *key_idx;  /* key columns, as indexes into cols */
  const char **key_names;
  size_t n_key;
  int in_tx, truncated;
  size_t commits;
  uint64_t lsn;
  pgo_entry *entries;
  size_t n_entries, cap_entries;
  int32_t *slots;   /* hash table of entry indexes, -1 empty */
  size_t n_slots;
};

/* ---- Reading ----------------------------------------------------------------------------------------------- */

typedef struct reader {
  const uint8_t *p;
  size_t n, off;
  int bad;
} reader;

static const uint8_t *take(reader *r, size_t k) {
  if (r->bad || r->n - r->off < k) {
    r->bad = 1;
    return NULL;
  }
  const uint8_t *q = r->p + r->off;
  r->off += k;
  return q;
}

static uint64_t rd_be(reader *r, size_t k) {
  const uint8_t *q = take(r, k);
  uint64_t v = 0;
  for (size_t i = 0; q && i < k; i++) v = v << 8 | q[i];
  return v;
}

/* A NUL-terminated string inside the message; NULL (and r->bad) when it runs off the end. */
static const char *rd_str(reader *r) {
  if (r->bad) return NULL;
  const uint8_t *z = memchr(r->p + r->off, 0, r->n - r->off);
  if (z == NULL) {
    r->bad = 1;
    return NULL;
  }
  const char *s = (const char *)(r->p + r->off);
  r->off = (size_t)(z - r->p) + 1;
  return s;
}

/* One column of a TupleData. */
typedef struct tval {
  char kind; /* 'n', 'u', 't' */
  const char *p;
  uint32_t len;
} tval;

/* Reads a TupleData of exactly n columns (described by cols) into v. */
static int rd_tuple(reader *r, const pgo_column *cols, tval *v, size_t n, sp_error *err) {
  uint64_t count = rd_be(r, 2);
  if (r->bad || count != n)
    return sp_fail(err, SP_EIO, "pgoutput tuple has %" PRIu64 " columns, the relation %zu", count, n);
  for (size_t i = 0; i < n; i++) {
    const uint8_t *k = take(r, 1);
    if (k == NULL) break;
    v[i].kind = (char)*k;
    v[i].p = NULL;
    v[i].len = 0;
    if (*k == 't') {
      v[i].len = (uint32_t)rd_be(r, 4);
      v[i].p = (const char *)take(r, v[i].len);
      while (cols[i].padded && v[i].p && v[i].len > 0 && v[i].p[v[i].len - 1] == ' ') v[i].len--;
    } else if (*k != 'n' && *k != 'u') {
      return sp_fail(err, SP_EIO, "pgoutput tuple column %zu has unknown kind 0x%02x (binary tuples are not supported)", i, *k);
    }
  }
  if (r->bad) return sp_fail(err, SP_EIO, "pgoutput tuple is truncated");
  return SP_OK;
}

/* ---- Entries ------------------------------------------------------------------------------------------------ */

static void free_vals(char **vals, size_t n) {
  if (vals == NULL) return;
  for (size_t i = 0; i < n; i++) free(vals[i]);
  free(vals);
}

static void clear_entries(pgo_decoder *d) {
  for (size_t i = 0; i < d->n_entries; i++) {
    free(d->entries[i].key);
    free_vals(d->entries[i].vals, d->n_cols);
  }
  d->n_entries = 0;
  d->commits = 0;
  if (d->slots) memset(d->slots, 0xff, d->n_slots * sizeof *d->slots);
}

static uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
  return h;
}

/* The key of a tuple as one string: per key column 'n', or 't' + 4-byte length + bytes. SP_ENOTSUP when a
 * key column is not in the tuple (an unchanged value, or not part of the replica identity). */
static int key_of(const pgo_decoder *d, const tval *v, int full, char **out, size_t *out_len, sp_error *err) {
  size_t n = 0;
  for (size_t k = 0; k < d->n_key; k++) n += 5 + v[d->key_idx[k]].len;
  char *s = malloc(n ? n : 1), *o = s;
  if (s == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t k = 0; k < d->n_key; k++) {
    const pgo_column *c = &d->cols[d->key_idx[k]];
    const tval *t = &v[d->key_idx[k]];
    if (t->kind == 'u' || (t->kind == 'n' && !full && !c->identity)) {
      free(s);
      return sp_fail(err, SP_ENOTSUP, "a change of key column \"%s\" was not sent whole (use the table's primary key "
                     "as the key, or REPLICA IDENTITY FULL)", c->name);
    }
    *o++ = t->kind;
    if (t->kind == 't') {
      memcpy(o, &t->len, 4);
      memcpy(o + 4, t->p, t->len);
      o += 4 + t->len;
    }
  }
  *out = s;
  *out_len = (size_t)(o - s);
  return SP_OK;
}

static int grow_slots(pgo_decoder *d, sp_error *err) {
  size_t n = d->n_slots ? d->n_slots * 2 : 1024;
  int32_t *s = malloc(n * sizeof *s);
  if (s == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  memset(s, 0xff, n * sizeof *s);
  for (size_t i = 0; i < d->n_entries; i++) {
    size_t j = (size_t)d->entries[i].hash & (n - 1);
    while (s[j] >= 0) j = (j + 1) & (n - 1);
    s[j] = (int32_t)i;
  }
  free(d->slots);
  d->slots = s;
  d->n_slots = n;
  return SP_OK;
}

/* The entry of a key (taking ownership of `key`), created empty when new. */
static int find_entry(pgo_decoder *d, char *key, size_t len, pgo_entry **out, sp_error *err) {
  if ((d->n_entries + 1) * 2 > d->n_slots && grow_slots(d, err) != SP_OK) goto fail;
  uint64_t h = fnv1a(key, len);
  size_t j = (size_t)h & (d->n_slots - 1);
  for (; d->slots[j] >= 0; j = (j + 1) & (d->n_slots - 1)) {
    pgo_entry *e = &d->entries[d->slots[j]];
    if (e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0) {
      free(key);
      *out = e;
      return SP_OK;
    }
  }
  if (d->n_entries == d->cap_entries) {
    size_t cap = d->cap_entries ? d->cap_entries * 2 : 256;
    pgo_entry *e = realloc(d->entries, cap * sizeof *e);
    if (e == NULL) goto oom;
    d->entries = e;
    d->cap_entries = cap;
  }
  pgo_entry *e = &d->entries[d->n_entries];
  memset(e, 0, sizeof *e);
  e->key = key;
  e->key_len = len;
  e->hash = h;
  d->slots[j] = (int32_t)d->n_entries++;
  *out = e;
  return SP_OK;
oom:
  sp_fail(err, SP_ENOMEM, "out of memory");
fail:
  free(key);
  return err ? err->code : SP_ENOMEM;
}

/* Copies the tuple's values (only the key columns when keys_only); an unchanged value ('u') is taken from
 * `old` (a full old tuple) or from `prev` (the key's values earlier in this batch). */
static int copy_vals(const pgo_decoder *d, const tval *v, const tval *old, char **prev, int keys_only, char ***out,
                     sp_error *err) {
  char **vals = calloc(d->n_cols ? d->n_cols : 1, sizeof *vals);
  if (vals == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0; i < d->n_cols; i++) {
    const tval *t = &v[i];
    if (keys_only) {
      int is_key = 0;
      for (size_t k = 0; k < d->n_key; k++) is_key |= d->key_idx[k] == i;
      if (!is_key) continue;
    }
    if (t->kind == 'u' && old && old[i].kind == 't') t = &old[i];
    if (t->kind == 'u' && prev) {
      if (prev[i] && (vals[i] = strdup(prev[i])) == NULL) goto oom;
      continue;
    }
    if (t->kind == 'u') {
      free_vals(vals, d->n_cols);
      return sp_fail(err, SP_ENOTSUP, "an update left the large value of column \"%s\" unchanged and spicec does not "
                     "have it (REPLICA IDENTITY FULL sends it)", d->cols[i].name);
    }
    if (t->kind == 't' && (vals[i] = strndup(t->p ? t->p : "", t->len)) == NULL) goto oom;
  }
  *out = vals;
  return SP_OK;
oom:
  free_vals(vals, d->n_cols);
  return sp_fail(err, SP_ENOMEM, "out of memory");
}

/* Records a change of one key: op 'i'/'u' with the tuple's values, or 'd'. */
static int record(pgo_decoder *d, char op, const tval *v, const tval *old, int full_old, sp_error *err) {
  char *key = NULL, **vals = NULL;
  size_t len = 0;
  pgo_entry *e = NULL;
  SP_TRY(key_of(d, v, op != 'd' || full_old, &key, &len, err));
  SP_TRY(find_entry(d, key, len, &e, err));
  SP_TRY(copy_vals(d, v, old, e->last == 'd' ? NULL : e->vals, op == 'd', &vals, err));
  free_vals(e->vals, d->n_cols);
  e->vals = vals;
  if (e->first == 0) e->first = op;
  e->last = op;
  return SP_OK;
}

/* ---- Messages ----------------------------------------------------------------------------------------------- */

static void free_relation(pgo_decoder *d) {
  for (size_t i = 0; i < d->n_cols; i++) free(d->cols[i].name);
  free(d->cols);
  free(d->key_idx);
  free(d->key_names);
  d->cols = NULL;
  d->key_idx = NULL;
  d->key_names = NULL;
  d->n_cols = d->n_key = 0;
  d->has_rel = 0;
}

/* Resolves the key columns: the configured names, or the replica identity. */
static int resolve_key(pgo_decoder *d, sp_error *err) {
  size_t n = d->n_want;
  if (n == 0)
    for (size_t i = 0; i < d->n_cols; i++) n += d->cols[i].identity != 0;
  d->key_idx = calloc(n ? n : 1, sizeof *d->key_idx);
  d->key_names = calloc(n ? n : 1, sizeof *d->key_names);
  if (d->key_idx == NULL || d->key_names == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0; i < d->n_cols && d->n_want == 0; i++)
    if (d->cols[i].identity) d->key_idx[d->n_key++] = i;
  for (size_t k = 0; k < d->n_want; k++) {
    size_t i = 0;
    while (i < d->n_cols && strcmp(d->cols[i].name, d->want_key[k]) != 0) i++;
    if (i == d->n_cols) return sp_fail(err, SP_EINVAL, "primary key column \"%s\" is not a column of the table", d->want_key[k]);
    /* Deletes carry only the replica identity: a key outside it could not be found again. */
    if (!d->cols[i].identity)
      return sp_fail(err, SP_EINVAL, "primary key column \"%s\" is not in the table's replica identity (use the "
                     "table's primary key, or ALTER TABLE … REPLICA IDENTITY FULL)", d->want_key[k]);
    d->key_idx[d->n_key++] = i;
  }
  for (size_t k = 0; k < d->n_key; k++) d->key_names[k] = d->cols[d->key_idx[k]].name;
  return SP_OK;
}

/* True if the relation message's columns are those already known (a re-send after a cache flush). */
static int same_columns(const pgo_decoder *d, const pgo_column *cols, size_t n) {
  if (!d->has_rel || n != d->n_cols) return 0;
  for (size_t i = 0; i < n; i++)
    if (strcmp(cols[i].name, d->cols[i].name) != 0 || cols[i].identity != d->cols[i].identity ||
        cols[i].padded != d->cols[i].padded)
      return 0;
  return 1;
}

static int on_relation(pgo_decoder *d, reader *r, sp_error *err) {
  uint32_t id = (uint32_t)rd_be(r, 4);
  rd_str(r); /* namespace */
  rd_str(r); /* relation name */
  rd_be(r, 1); /* replica identity setting */
  size_t n = (size_t)rd_be(r, 2);
  if (r->bad || n > r->n) return sp_fail(err, SP_EIO, "pgoutput relation message is truncated");
  pgo_column *cols = calloc(n ? n : 1, sizeof *cols);
  if (cols == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0; i < n && !r->bad; i++) {
    cols[i].identity = (int)(rd_be(r, 1) & 1);
    const char *name = rd_str(r);
    cols[i].padded = rd_be(r, 4) == 1042; /* type oid: bpchar */
    rd_be(r, 4);                           /* type modifier */
    if (name && (cols[i].name = strdup(name)) == NULL) r->bad = 1;
  }
  int rc = SP_OK;
  if (r->bad) rc = sp_fail(err, SP_EIO, "pgoutput relation message is truncated");
  else if (d->has_rel && d->rel_id == id && same_columns(d, cols, n)) rc = SP_OK;
  else if (d->n_entries > 0) rc = sp_fail(err, SP_ENOTSUP, "the columns of the table changed while changes were pending");
  if (rc != SP_OK || (d->has_rel && d->rel_id == id && same_columns(d, cols, n))) {
    for (size_t i = 0; i < n; i++) free(cols[i].name);
    free(cols);
    return rc;
  }
  free_relation(d);
  d->cols = cols;
  d->n_cols = n;
  d->rel_id = id;
  d->has_rel = 1;
  return resolve_key(d, err);
}

/* The relation id of a change message, checked against the known relation; 1 when it is another table. */
static int change_relation(pgo_decoder *d, reader *r, sp_error *err) {
  uint32_t id = (uint32_t)rd_be(r, 4);
  if (r->bad) return sp_fail(err, SP_EIO, "pgoutput change message is truncated");
  if (!d->in_tx) return sp_fail(err, SP_EIO, "pgoutput change outside a transaction");
  if (!d->has_rel || id != d->rel_id) return d->has_rel ? 1 : sp_fail(err, SP_EIO, "pgoutput change before its relation");
  if (d->n_key == 0)
    return sp_fail(err, SP_ENOTSUP, "the table has no primary key (set acceleration.primary_key or REPLICA IDENTITY)");
  return SP_OK;
}

static int on_insert(pgo_decoder *d, reader *r, tval *v, sp_error *err) {
  int rc = change_relation(d, r, err);
  if (rc != SP_OK) return rc == 1 ? SP_OK : rc;
  if (rd_be(r, 1) != 'N') return sp_fail(err, SP_EIO, "pgoutput insert without a new tuple");
  SP_TRY(rd_tuple(r, d->cols, v, d->n_cols, err));
  for (size_t i = 0; i < d->n_cols; i++)
    if (v[i].kind == 'u') return sp_fail(err, SP_EIO, "pgoutput insert with an unchanged value");
  return record(d, 'i', v, NULL, 0, err);
}

static int on_update(pgo_decoder *d, reader *r, tval *v, tval *old, sp_error *err) {
  int rc = change_relation(d, r, err);
  if (rc != SP_OK) return rc == 1 ? SP_OK : rc;
  uint64_t old_kind = rd_be(r, 1), kind = old_kind;
  int has_old = old_kind == 'K' || old_kind == 'O';
  if (has_old) {
    SP_TRY(rd_tuple(r, d->cols, old, d->n_cols, err));
    kind = rd_be(r, 1);
  }
  if (kind != 'N') return sp_fail(err, SP_EIO, "pgoutput update without a new tuple");
  SP_TRY(rd_tuple(r, d->cols, v, d->n_cols, err));
  /* An old tuple comes when the key changed (or with REPLICA IDENTITY FULL): the old key goes away first. */
  if (has_old) SP_TRY(record(d, 'd', old, NULL, old_kind == 'O', err));
  return record(d, 'u', v, old_kind == 'O' ? old : NULL, 0, err);
}

static int on_delete(pgo_decoder *d, reader *r, tval *old, sp_error *err) {
  int rc = change_relation(d, r, err);
  if (rc != SP_OK) return rc == 1 ? SP_OK : rc;
  uint64_t kind = rd_be(r, 1);
  if (kind != 'K' && kind != 'O') return sp_fail(err, SP_EIO, "pgoutput delete without an old tuple");
  SP_TRY(rd_tuple(r, d->cols, old, d->n_cols, err));
  return record(d, 'd', old, NULL, kind == 'O', err);
}

static int on_truncate(pgo_decoder *d, reader *r, sp_error *err) {
  uint64_t n = rd_be(r, 4);
  rd_be(r, 1); /* options */
  for (uint64_t i = 0; i < n && !r->bad; i++)
    if ((uint32_t)rd_be(r, 4) == d->rel_id && d->has_rel) d->truncated = 1;
  if (r->bad) return sp_fail(err, SP_EIO, "pgoutput truncate message is truncated");
  return SP_OK;
}

static int on_change(pgo_decoder *d, char type, reader *r, sp_error *err) {
  tval *v = calloc(2 * (d->n_cols ? d->n_cols : 1), sizeof *v);
  if (v == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  int rc = type == 'I' ? on_insert(d, r, v, err)
           : type == 'U' ? on_update(d, r, v, v + d->n_cols, err)
                         : on_delete(d, r, v + d->n_cols, err);
  free(v);
  return rc;
}

int pgo_feed(pgo_decoder *d, const uint8_t *msg, size_t len, sp_error *err) {
  reader r = {.p = msg, .n = len};
  if (len == 0) return sp_fail(err, SP_EIO, "empty pgoutput message");
  char type = (char)msg[0];
  r.off = 1;
  switch (type) {
  case 'B':
    if (d->in_tx) return sp_fail(err, SP_EIO, "pgoutput begin inside a transaction");
    d->in_tx = 1;
    return SP_OK;
  case 'C':
    rd_be(&r, 1);  /* flags */
    rd_be(&r, 8);  /* commit LSN */
    {
      uint64_t end = rd_be(&r, 8);
      if (r.bad || !d->in_tx) return sp_fail(err, SP_EIO, "pgoutput commit is truncated or outside a transaction");
      d->in_tx = 0;
      d->commits++;
      d->lsn = end;
    }
    return SP_OK;
  case 'R': return on_relation(d, &r, err);
  case 'I': case 'U': case 'D': return on_change(d, type, &r, err);
  case 'T': return on_truncate(d, &r, err);
  case 'Y': case 'O': case 'M': return SP_OK; /* types, origins, logical messages */
  default: return sp_fail(err, SP_EIO, "unknown pgoutput message type 0x%02x", (unsigned)(uint8_t)type);
  }
}

/* ---- Batches ------------------------------------------------------------------------------------------------ */

/* A utf8 or struct array node whose buffers and children it owns. */
typedef struct owned_array {
  void *bufs[3];
  const void *ptrs[3];
  struct ArrowArray *kids;
  struct ArrowArray **kid_ptrs;
} owned_array;

static void owned_release(struct ArrowArray *a) {
  owned_array *o = a->private_data;
  for (int64_t i = 0; i < a->n_children; i++)
    if (o->kids[i].release) o->kids[i].release(&o->kids[i]);
  free(o->kids);
  free(o->kid_ptrs);
  for (int i = 0; i < 3; i++) free(o->bufs[i]);
  free(o);
  a->release = NULL;
}

/* Column `col` of the entries (col = -1: the _op names) as a utf8 array. */
static int utf8_column(const pgo_decoder *d, long col, struct ArrowArray *out) {
  size_t n = d->n_entries, bytes = 0;
  int64_t nulls = 0;
  static const char *const names[] = {"insert", "update", "delete"};
  for (size_t i = 0; i < n; i++) {
    const pgo_entry *e = &d->entries[i];
    const char *s = col < 0 ? names[e->last == 'd' ? 2 : e->first == 'i' ? 0 : 1] : e->vals[col];
    bytes += s ? strlen(s) : 0;
    nulls += s == NULL;
  }
  owned_array *o = calloc(1, sizeof *o);
  if (o == NULL) return -1;
  uint8_t *valid = calloc((n + 7) / 8 + 1, 1);
  int32_t *offs = malloc((n + 1) * sizeof *offs);
  char *data = malloc(bytes + 1);
  o->bufs[0] = valid, o->bufs[1] = offs, o->bufs[2] = data;
  memset(out, 0, sizeof *out);
  out->private_data = o;
  out->release = owned_release;
  if (valid == NULL || offs == NULL || data == NULL || bytes > INT32_MAX) return -1;
  size_t at = 0;
  offs[0] = 0;
  for (size_t i = 0; i < n; i++) {
    const pgo_entry *e = &d->entries[i];
    const char *s = col < 0 ? names[e->last == 'd' ? 2 : e->first == 'i' ? 0 : 1] : e->vals[col];
    size_t k = s ? strlen(s) : 0;
    if (s) valid[i / 8] |= (uint8_t)(1u << (i % 8));
    memcpy(data + at, s ? s : "", k);
    at += k;
    offs[i + 1] = (int32_t)at;
  }
  o->ptrs[0] = nulls ? valid : NULL, o->ptrs[1] = offs, o->ptrs[2] = data;
  out->length = (int64_t)n;
  out->null_count = nulls;
  out->n_buffers = 3;
  out->buffers = o->ptrs;
  return 0;
}

static int take_schema(const pgo_decoder *d, struct ArrowSchema *s) {
  if (sp_schema_node_init(s, "+s", NULL, 0) != 0) return -1;
  s->children = calloc(d->n_cols + 1, sizeof *s->children);
  if (s->children == NULL) return -1;
  for (size_t i = 0; i <= d->n_cols; i++) {
    const char *name = i == 0 ? "_op" : d->cols[i - 1].name;
    if ((s->children[i] = malloc(sizeof **s->children)) == NULL) return -1;
    s->n_children++;
    if (sp_schema_node_init(s->children[i], "u", name, strlen(name)) != 0) return -1;
    s->children[i]->flags = i == 0 ? 0 : ARROW_FLAG_NULLABLE;
  }
  return 0;
}

static int take_array(const pgo_decoder *d, struct ArrowArray *a) {
  owned_array *o = calloc(1, sizeof *o);
  if (o == NULL) return -1;
  memset(a, 0, sizeof *a);
  a->private_data = o;
  a->release = owned_release;
  o->kids = calloc(d->n_cols + 1, sizeof *o->kids);
  o->kid_ptrs = calloc(d->n_cols + 1, sizeof *o->kid_ptrs);
  if (o->kids == NULL || o->kid_ptrs == NULL) return -1;
  o->ptrs[0] = NULL;
  a->length = (int64_t)d->n_entries;
  a->n_buffers = 1;
  a->buffers = o->ptrs;
  a->children = o->kid_ptrs;
  for (size_t i = 0; i <= d->n_cols; i++) {
    o->kid_ptrs[i] = &o->kids[i];
    a->n_children++;
    if (utf8_column(d, (long)i - 1, &o->kids[i]) != 0) return -1;
  }
  return 0;
}

int pgo_take(pgo_decoder *d, struct ArrowSchema *schema, struct ArrowArray *batch, sp_error *err) {
  if (d->in_tx || d->commits == 0 || !d->has_rel)
    return sp_fail(err, SP_EINVAL, "no committed pgoutput changes to take");
  struct ArrowSchema s;
  struct ArrowArray a;
  int bad = take_schema(d, &s) != 0;
  bad |= take_array(d, &a) != 0;
  if (bad) {
    sp_schema_release(&s);
    sp_array_release(&a);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  clear_entries(d);
  *schema = s;
  *batch = a;
  return SP_OK;
}

/* ---- Life cycle and accessors ------------------------------------------------------------------------------- */

int pgo_decoder_new(const char *const *key, size_t n_key, pgo_decoder **out, sp_error *err) {
  pgo_decoder *d = calloc(1, sizeof *d);
  if (d == NULL || (n_key && (d->want_key = calloc(n_key, sizeof *d->want_key)) == NULL)) {
    free(d);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n_key; i++) {
    if ((d->want_key[i] = strdup(key[i])) == NULL) {
      d->n_want = i;
      pgo_decoder_free(d);
      return sp_fail(err, SP_ENOMEM, "out of memory");
    }
  }
  d->n_want = n_key;
  *out = d;
  return SP_OK;
}

void pgo_decoder_free(pgo_decoder *d) {
  if (d == NULL) return;
  clear_entries(d);
  free(d->entries);
  free(d->slots);
  free_relation(d);
  for (size_t i = 0; i < d->n_want; i++) free(d->want_key[i]);
  free(d->want_key);
  free(d);
}

bool pgo_in_transaction(const pgo_decoder *d) { return d->in_tx != 0; }
bool pgo_truncated(const pgo_decoder *d) { return d->truncated != 0; }
size_t pgo_pending_commits(const pgo_decoder *d) { return d->commits; }
size_t pgo_pending_rows(const pgo_decoder *d) { return d->n_entries; }
uint64_t pgo_pending_lsn(const pgo_decoder *d) { return d->lsn; }

const char *const *pgo_key(const pgo_decoder *d, size_t *n) {
  *n = d->n_key;
  return d->key_names;
}

void pgo_lsn_format(uint64_t lsn, char *buf, size_t n) {
  snprintf(buf, n, "%" PRIX32 "/%" PRIX32, (uint32_t)(lsn >> 32), (uint32_t)lsn);
}

int pgo_lsn_parse(const char *s, uint64_t *out) {
  unsigned hi, lo;
  int used = 0;
  if (s == NULL || sscanf(s, "%8X/%8X%n", &hi, &lo, &used) != 2 || s[used] != '\0') return -1;
  *out = (uint64_t)hi << 32 | lo;
  return 0;
}
