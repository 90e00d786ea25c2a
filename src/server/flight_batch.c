/* SPDX-License-Identifier: Apache-2.0
 *
 * The row builder of flight_batch.h. Each finished column owns its buffers through its private_data (a
 * fl_owned), freed by its release; the struct batch frees its children.
 */
#include "server/flight_batch.h"

#include <stdlib.h>
#include <string.h>

#include "spice/arrow.h"

void fl_table_init(fl_table *t, const fl_colspec *spec, size_t n) {
  memset(t, 0, sizeof *t);
  t->spec = spec;
  t->n_cols = n < FL_MAX_COLS ? n : FL_MAX_COLS;
}

static void put(fl_table *t, sp_buf *b, const void *p, size_t n) {
  if (!t->oom && sp_buf_append(b, p, n) != SP_OK) t->oom = true;
}

void fl_table_str(fl_table *t, size_t col, const char *s, size_t len) {
  fl_col *c = &t->cols[col];
  if (c->offsets.len == 0) put(t, &c->offsets, &(int32_t){0}, 4);
  if (s) put(t, &c->data, s, len);
  int32_t end = (int32_t)c->data.len;
  put(t, &c->offsets, &end, 4);
  put(t, &c->valid, &(uint8_t){s != NULL}, 1);
  c->nulls += s == NULL;
}

void fl_table_i32(fl_table *t, size_t col, int32_t v) {
  fl_col *c = &t->cols[col];
  put(t, &c->data, &v, 4);
  put(t, &c->valid, &(uint8_t){1}, 1);
}

void fl_table_end_row(fl_table *t) {
  t->rows++;
}

void fl_table_free(fl_table *t) {
  for (size_t i = 0; i < t->n_cols; i++) {
    sp_buf_free(&t->cols[i].data);
    sp_buf_free(&t->cols[i].offsets);
    sp_buf_free(&t->cols[i].valid);
  }
}

int fl_schema_make(const fl_colspec *spec, size_t n, struct ArrowSchema *out, sp_error *err) {
  int bad = sp_schema_node_init(out, "+s", "", 0);
  out->children = bad ? NULL : calloc(n ? n : 1, sizeof *out->children);
  bad |= out->children == NULL;
  for (size_t i = 0; !bad && i < n; i++, out->n_children++) {
    out->children[i] = malloc(sizeof **out->children);
    bad = out->children[i] == NULL ||
          sp_schema_node_init(out->children[i], spec[i].format, spec[i].name, strlen(spec[i].name)) != 0;
    if (!bad && spec[i].nullable) out->children[i]->flags = ARROW_FLAG_NULLABLE;
  }
  if (!bad) return SP_OK;
  sp_schema_release(out);
  return sp_fail(err, SP_ENOMEM, "flight: out of memory building a schema");
}

/* ---- Arrays --------------------------------------------------------------------------------------------- */

typedef struct fl_owned {
  void *bufs[3];
  const void *ptrs[3];
} fl_owned;

static void release_array(struct ArrowArray *a) {
  if (a->release == NULL) return;
  for (int64_t i = 0; i < a->n_children; i++) {
    if (a->children[i] && a->children[i]->release) a->children[i]->release(a->children[i]);
    free(a->children[i]);
  }
  free(a->children);
  fl_owned *o = a->private_data;
  if (o) {
    for (int i = 0; i < 3; i++) free(o->bufs[i]);
    free(o);
  }
  a->release = NULL;
}

/* A validity bitmap from one byte per row (NULL when nothing is null). */
static void *bitmap(const fl_col *c, int64_t rows) {
  if (c->nulls == 0) return NULL;
  uint8_t *bits = calloc((size_t)(rows + 7) / 8 + 1, 1);
  if (bits == NULL) return NULL;
  for (int64_t i = 0; i < rows; i++)
    if (c->valid.data[i]) bits[i >> 3] |= (uint8_t)(1u << (i & 7));
  return bits;
}

/* Moves the storage of b out (NULL-safe empty buffers get a small allocation: Arrow wants non-NULL). */
static void *take(sp_buf *b) {
  void *p = b->data ? b->data : calloc(1, 8);
  memset(b, 0, sizeof *b);
  return p;
}

static int make_column(fl_col *c, const fl_colspec *spec, int64_t rows, struct ArrowArray *a) {
  memset(a, 0, sizeof *a);
  fl_owned *o = calloc(1, sizeof *o);
  if (o == NULL) return SP_ENOMEM;
  a->private_data = o;
  a->release = release_array;
  a->length = rows;
  a->null_count = c->nulls;
  o->bufs[0] = bitmap(c, rows);
  bool var = spec->format[0] != 'i';
  int32_t zero = 0; /* an empty column still has its one offset */
  if (var && c->offsets.len == 0 && sp_buf_append(&c->offsets, &zero, 4) != SP_OK) return SP_ENOMEM;
  o->bufs[1] = take(var ? &c->offsets : &c->data);
  if (var) o->bufs[2] = take(&c->data);
  a->n_buffers = var ? 3 : 2;
  for (int i = 0; i < 3; i++) o->ptrs[i] = o->bufs[i];
  a->buffers = o->ptrs;
  bool oom = (c->nulls && !o->bufs[0]) || !o->bufs[1] || (var && !o->bufs[2]);
  return oom ? SP_ENOMEM : SP_OK;
}

int fl_table_finish(fl_table *t, struct ArrowArrayStream *out, sp_error *err) {
  struct ArrowSchema schema = {0};
  struct ArrowArray batch = {0};
  int rc = t->oom ? SP_ENOMEM : fl_schema_make(t->spec, t->n_cols, &schema, err);
  if (rc == SP_OK) {
    batch.release = release_array;
    batch.length = t->rows;
    batch.n_buffers = 1;
    static const void *no_validity[1] = {NULL};
    batch.buffers = no_validity;
    batch.children = calloc(t->n_cols ? t->n_cols : 1, sizeof *batch.children);
    rc = batch.children ? SP_OK : SP_ENOMEM;
  }
  for (size_t i = 0; rc == SP_OK && i < t->n_cols; i++, batch.n_children++) {
    batch.children[i] = calloc(1, sizeof **batch.children);
    rc = batch.children[i] ? make_column(&t->cols[i], &t->spec[i], t->rows, batch.children[i]) : SP_ENOMEM;
  }
  fl_table_free(t);
  if (rc == SP_OK) rc = sp_stream_from_batches(&schema, &batch, 1, out, err);
  else {
    if (batch.release) batch.release(&batch);
    if (rc == SP_ENOMEM) sp_fail(err, SP_ENOMEM, "flight: out of memory building a result");
  }
  sp_schema_release(&schema);
  return rc;
}
