/* SPDX-License-Identifier: Apache-2.0
 *
 * Result writers over Arrow batches: JSON rows, CSV, box table, sql.v1+json. See format.h for the API and
 * docs/http-api.md for how each type is rendered.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "server/format.h"
#include "server/format_schema.h"
#include "spice/arrow.h"

struct sp_formatter {
  sp_format_kind kind;
  sp_fcol root; /* the struct schema; children are the columns */
  int64_t rows;
  sp_buf scratch; /* CSV quoting */
  /* table: held-back block of cell texts */
  sp_buf cells;
  uint32_t *cell_end; /* end offset in `cells` of each held-back cell */
  size_t n_cells, cap_cells;
  int64_t block_rows, block_max_rows;
  size_t *widths;
  sp_buf head; /* header cell texts */
  uint32_t *head_end;
  bool table_started;
};

#define BUF(a, k, T) ((const T *)(a)->buffers[(k)])

static int oom(sp_error *err) { return sp_fail(err, SP_ENOMEM, "out of memory while writing query results"); }

/* ---- Value access --------------------------------------------------------------------------------------- */

/* Bytes of the string/binary value at physical index j. */
static const char *bytes_at(const sp_fcol *c, const struct ArrowArray *a, int64_t j, size_t *n) {
  switch (c->kind) {
  case SP_FK_UTF8:
  case SP_FK_BIN: {
    int32_t s = BUF(a, 1, int32_t)[j], e = BUF(a, 1, int32_t)[j + 1];
    *n = e > s ? (size_t)(e - s) : 0;
    return BUF(a, 2, char) + s;
  }
  case SP_FK_LUTF8:
  case SP_FK_LBIN: {
    int64_t s = BUF(a, 1, int64_t)[j], e = BUF(a, 1, int64_t)[j + 1];
    *n = e > s ? (size_t)(e - s) : 0;
    return BUF(a, 2, char) + s;
  }
  case SP_FK_UTF8V:
  case SP_FK_BINV: {
    const uint8_t *v = BUF(a, 1, uint8_t) + 16 * j;
    int32_t len, bi, off;
    memcpy(&len, v, 4);
    *n = len > 0 ? (size_t)len : 0;
    if (len <= 12) return (const char *)v + 4;
    memcpy(&bi, v + 8, 4);
    memcpy(&off, v + 12, 4);
    if (bi < 0 || bi > a->n_buffers - 4 || off < 0 || a->buffers[2 + bi] == NULL) {
      *n = 0; /* a view into a buffer that is not there: written as empty rather than read out of bounds */
      return "";
    }
    return BUF(a, 2 + bi, char) + off;
  }
  default: /* fixed-size binary */
    *n = (size_t)c->width;
    return BUF(a, 1, char) + j * c->width;
  }
}

static bool is_string_kind(sp_fk k) { return k == SP_FK_UTF8 || k == SP_FK_LUTF8 || k == SP_FK_UTF8V; }
static bool is_binary_kind(sp_fk k) {
  return k == SP_FK_BIN || k == SP_FK_LBIN || k == SP_FK_BINV || k == SP_FK_FBIN;
}
static bool is_nested_kind(sp_fk k) { return k >= SP_FK_LIST && k <= SP_FK_MAP; }

static int64_t dict_index(const sp_fcol *c, const struct ArrowArray *a, int64_t j) {
  switch (c->kind) {
  case SP_FK_I8: return BUF(a, 1, int8_t)[j];
  case SP_FK_I16: return BUF(a, 1, int16_t)[j];
  case SP_FK_I32: return BUF(a, 1, int32_t)[j];
  case SP_FK_I64: return BUF(a, 1, int64_t)[j];
  case SP_FK_U8: return BUF(a, 1, uint8_t)[j];
  case SP_FK_U16: return BUF(a, 1, uint16_t)[j];
  case SP_FK_U32: return BUF(a, 1, uint32_t)[j];
  default: return (int64_t)(BUF(a, 1, uint64_t)[j] & INT64_MAX);
  }
}

/* Resolves unions to the active child; returns false when the type id is unknown. */
static bool union_child(const sp_fcol *c, const struct ArrowArray *a, int64_t j, const sp_fcol **cc,
                        const struct ArrowArray **ca, int64_t *ci) {
  int8_t id = BUF(a, 0, int8_t)[j];
  int k = id >= 0 ? c->union_child[id] : -1;
  if (k < 0) return false;
  *cc = &c->children[k];
  *ca = a->children[k];
  *ci = c->kind == SP_FK_USPARSE ? j : BUF(a, 1, int32_t)[j];
  return *ci >= 0 && *ci < (*ca)->length;
}

static size_t nonfinite(char *p, double v) {
  const char *s = isnan(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
  size_t n = strlen(s);
  memcpy(p, s, n);
  return n;
}

static size_t float_text(char *p, double v, bool is_double, bool *quote) {
  if (!isfinite(v)) {
    *quote = true;
    return nonfinite(p, v);
  }
  return is_double ? sp__fmt_double(p, v) : sp__fmt_float(p, (float)v);
}

/* Text of a fixed-width scalar at physical index j (at most SP_FMT_MAX bytes). *quote: JSON needs quotes. */
static size_t scalar_text(const sp_fcol *c, const struct ArrowArray *a, int64_t j, char *p, bool *quote) {
  *quote = false;
  switch (c->kind) {
  case SP_FK_BOOL: {
    bool v = (BUF(a, 1, uint8_t)[j >> 3] >> (j & 7)) & 1;
    memcpy(p, v ? "true" : "false", v ? 4 : 5);
    return v ? 4 : 5;
  }
  case SP_FK_I8: return sp__fmt_i64(p, BUF(a, 1, int8_t)[j]);
  case SP_FK_I16: return sp__fmt_i64(p, BUF(a, 1, int16_t)[j]);
  case SP_FK_I32: return sp__fmt_i64(p, BUF(a, 1, int32_t)[j]);
  case SP_FK_I64: return sp__fmt_i64(p, BUF(a, 1, int64_t)[j]);
  case SP_FK_U8: return sp__fmt_u64(p, BUF(a, 1, uint8_t)[j]);
  case SP_FK_U16: return sp__fmt_u64(p, BUF(a, 1, uint16_t)[j]);
  case SP_FK_U32: return sp__fmt_u64(p, BUF(a, 1, uint32_t)[j]);
  case SP_FK_U64: return sp__fmt_u64(p, BUF(a, 1, uint64_t)[j]);
  case SP_FK_F16: {
    uint16_t h = BUF(a, 1, uint16_t)[j];
    if ((h & 0x7c00) == 0x7c00) return float_text(p, sp__half_to_float(h), false, quote);
    return sp__fmt_half(p, h);
  }
  case SP_FK_F32: return float_text(p, BUF(a, 1, float)[j], false, quote);
  case SP_FK_F64: return float_text(p, BUF(a, 1, double)[j], true, quote);
  case SP_FK_DEC: return sp__fmt_decimal(p, BUF(a, 1, uint8_t) + j * c->width, c->width, c->scale);
  case SP_FK_U128: return sp__fmt_u128(p, BUF(a, 1, uint8_t) + j * 16);
  default: break;
  }
  *quote = true;
  switch (c->kind) {
  case SP_FK_UUID: return sp__fmt_uuid(p, BUF(a, 1, uint8_t) + j * 16);
  case SP_FK_DATE32: return sp__fmt_date(p, BUF(a, 1, int32_t)[j]);
  case SP_FK_DATE64: {
    int64_t ms = BUF(a, 1, int64_t)[j];
    return sp__fmt_date(p, ms / 86400000 - (ms % 86400000 < 0));
  }
  case SP_FK_TIME32:
    return sp__fmt_time(p, (int64_t)BUF(a, 1, int32_t)[j] * (c->unit == SP_FMT_SEC ? 1000000000 : 1000000));
  case SP_FK_TIME64: return sp__fmt_time(p, BUF(a, 1, int64_t)[j] * (c->unit == SP_FMT_MICRO ? 1000 : 1));
  case SP_FK_TS: return sp__fmt_timestamp(p, BUF(a, 1, int64_t)[j], c->unit, c->tz, c->tz_offset);
  case SP_FK_DUR: return sp__fmt_duration(p, BUF(a, 1, int64_t)[j], c->unit);
  case SP_FK_IV_MONTHS: return sp__fmt_interval(p, BUF(a, 1, int32_t)[j], 0, 0);
  case SP_FK_IV_DAYTIME: {
    const int32_t *v = BUF(a, 1, int32_t) + 2 * j;
    return sp__fmt_interval(p, 0, v[0], (int64_t)v[1] * 1000000);
  }
  case SP_FK_IV_MDN: {
    const uint8_t *v = BUF(a, 1, uint8_t) + 16 * j;
    int32_t m, d;
    int64_t ns;
    memcpy(&m, v, 4);
    memcpy(&d, v + 4, 4);
    memcpy(&ns, v + 8, 8);
    return sp__fmt_interval(p, m, d, ns);
  }
  default: return 0;
  }
}

static inline bool value_is_null(const sp_fcol *c, const struct ArrowArray *a, int64_t i) {
  if (c->kind == SP_FK_NULL && !c->dict) return true;
  if ((c->kind == SP_FK_USPARSE || c->kind == SP_FK_UDENSE) && !c->dict) return false; /* no validity bitmap */
  return sp_array_is_null(a, i);
}

/* ---- JSON values ---------------------------------------------------------------------------------------- */

/* Appends a column's "key": with fixed 16-byte copies (the key is zero-padded): keys are short, and a
 * variable-length memcpy is a libc call per value. */
static inline int put_key(sp_buf *out, const sp_fcol *c) {
  char *p = sp_buf_reserve(out, c->json_key_pad);
  if (p == NULL) return SP_ENOMEM;
  for (size_t k = 0; k < c->json_key_pad; k += 16) memcpy(p + k, c->json_key + k, 16);
  out->len += c->json_key_len;
  return SP_OK;
}

static inline int put_char(sp_buf *out, char ch) {
  char *p = sp_buf_reserve(out, 1);
  if (p == NULL) return SP_ENOMEM;
  *p = ch;
  out->len++;
  return SP_OK;
}

/* Kinds whose JSON form is a string ("2024-01-31"); numbers and booleans are bare (floats only quote
 * NaN and the infinities). */
static inline bool always_quoted(sp_fk k) { return k == SP_FK_UUID || (k >= SP_FK_DATE32 && k <= SP_FK_IV_MDN); }

static int json_value(const sp_fcol *c, const struct ArrowArray *a, int64_t i, sp_buf *out);
static int text_value(const sp_fcol *c, const struct ArrowArray *a, int64_t i, bool table, sp_buf *out,
                      bool *is_null);

static int json_list(const sp_fcol *c, const struct ArrowArray *a, int64_t j, sp_buf *out) {
  int64_t s, e;
  if (c->kind == SP_FK_FLIST) {
    s = j * c->width;
    e = s + c->width;
  } else if (c->kind == SP_FK_LLIST) {
    s = BUF(a, 1, int64_t)[j];
    e = BUF(a, 1, int64_t)[j + 1];
  } else if (c->kind == SP_FK_LISTV) {
    s = BUF(a, 1, int32_t)[j];
    e = s + BUF(a, 2, int32_t)[j];
  } else if (c->kind == SP_FK_LLISTV) {
    s = BUF(a, 1, int64_t)[j];
    e = s + BUF(a, 2, int64_t)[j];
  } else {
    s = BUF(a, 1, int32_t)[j];
    e = BUF(a, 1, int32_t)[j + 1];
  }
  SP_TRY(sp_buf_append(out, "[", 1));
  for (int64_t k = s; k < e; k++) {
    if (k > s) SP_TRY(sp_buf_append(out, ",", 1));
    SP_TRY(json_value(&c->children[0], a->children[0], k, out));
  }
  return sp_buf_append(out, "]", 1);
}

static int json_struct(const sp_fcol *c, const struct ArrowArray *a, int64_t j, sp_buf *out) {
  SP_TRY(put_char(out, '{'));
  for (int k = 0; k < c->n_children; k++) {
    if (k > 0) SP_TRY(put_char(out, ','));
    SP_TRY(put_key(out, &c->children[k]));
    SP_TRY(json_value(&c->children[k], a->children[k], j, out));
  }
  return sp_buf_append(out, "}", 1);
}

/* A map key: its text form as a JSON string. Written in place; the rare key that needs escaping goes
 * through a temporary copy. */
static int json_map_key(const sp_fcol *c, const struct ArrowArray *a, int64_t i, sp_buf *out) {
  size_t start = out->len;
  bool is_null;
  SP_TRY(sp_buf_append(out, "\"", 1));
  SP_TRY(text_value(c, a, i, false, out, &is_null));
  if (is_null) SP_TRY(sp_buf_append(out, "null", 4));
  size_t n = out->len - start - 1;
  const uint8_t *t = (const uint8_t *)out->data + start + 1;
  bool plain = true;
  for (size_t k = 0; k < n && plain; k++) plain = t[k] >= 0x20 && t[k] != '"' && t[k] != '\\';
  if (!plain) {
    char *copy = malloc(n ? n : 1);
    if (copy == NULL) return SP_ENOMEM;
    memcpy(copy, t, n);
    out->len = start + 1;
    int rc = sp__json_escape(out, copy, n);
    free(copy);
    SP_TRY(rc);
  }
  return sp_buf_append(out, "\":", 2);
}

static int json_map(const sp_fcol *c, const struct ArrowArray *a, int64_t j, sp_buf *out) {
  int32_t s = BUF(a, 1, int32_t)[j], e = BUF(a, 1, int32_t)[j + 1];
  const sp_fcol *ent = &c->children[0];
  const struct ArrowArray *ea = a->children[0];
  SP_TRY(sp_buf_append(out, "{", 1));
  for (int32_t k = s; k < e; k++) {
    if (k > s) SP_TRY(sp_buf_append(out, ",", 1));
    int64_t ek = k + ea->offset;
    SP_TRY(json_map_key(&ent->children[0], ea->children[0], ek, out));
    SP_TRY(json_value(&ent->children[1], ea->children[1], ek, out));
  }
  return sp_buf_append(out, "}", 1);
}

static int json_value(const sp_fcol *c, const struct ArrowArray *a, int64_t i, sp_buf *out) {
  if (value_is_null(c, a, i)) return sp_buf_append(out, "null", 4);
  int64_t j = i + a->offset;
  if (c->dict) {
    int64_t k = dict_index(c, a, j);
    if (k < 0 || k >= a->dictionary->length) return sp_buf_append(out, "null", 4);
    return json_value(c->dict, a->dictionary, k, out);
  }
  if (is_string_kind(c->kind)) {
    size_t n;
    const char *s = bytes_at(c, a, j, &n);
    return sp__json_string(out, s, n);
  }
  if (is_binary_kind(c->kind)) {
    size_t n;
    const char *s = bytes_at(c, a, j, &n);
    SP_TRY(sp_buf_append(out, "\"", 1));
    SP_TRY(sp__base64(out, (const uint8_t *)s, n));
    return sp_buf_append(out, "\"", 1);
  }
  switch (c->kind) {
  case SP_FK_LIST: case SP_FK_LLIST: case SP_FK_LISTV: case SP_FK_LLISTV: case SP_FK_FLIST:
    return json_list(c, a, j, out);
  case SP_FK_STRUCT: return json_struct(c, a, j, out);
  case SP_FK_MAP: return json_map(c, a, j, out);
  case SP_FK_USPARSE:
  case SP_FK_UDENSE: {
    const sp_fcol *cc;
    const struct ArrowArray *ca;
    int64_t ci;
    if (!union_child(c, a, j, &cc, &ca, &ci)) return sp_buf_append(out, "null", 4);
    return json_value(cc, ca, ci, out);
  }
  default: break;
  }
  char *p = sp_buf_reserve(out, SP_FMT_MAX + 2);
  if (p == NULL) return SP_ENOMEM;
  bool quote;
  if (always_quoted(c->kind)) {
    size_t n = scalar_text(c, a, j, p + 1, &quote);
    p[0] = '"';
    p[n + 1] = '"';
    out->len += n + 2;
    return SP_OK;
  }
  size_t n = scalar_text(c, a, j, p, &quote);
  if (quote) { /* NaN, Infinity */
    memmove(p + 1, p, n);
    p[0] = '"';
    p[n + 1] = '"';
    n += 2;
  }
  out->len += n;
  return SP_OK;
}

/* ---- Text values (CSV and table cells) ------------------------------------------------------------------ */

/* Strings as text, binary as hex, nested values as JSON, NULL as nothing (*is_null set). */
static int text_value(const sp_fcol *c, const struct ArrowArray *a, int64_t i, bool table, sp_buf *out,
                      bool *is_null) {
  *is_null = value_is_null(c, a, i);
  if (*is_null) return SP_OK;
  int64_t j = i + a->offset;
  if (c->dict) {
    int64_t k = dict_index(c, a, j);
    if (k < 0 || k >= a->dictionary->length) {
      *is_null = true;
      return SP_OK;
    }
    return text_value(c->dict, a->dictionary, k, table, out, is_null);
  }
  if (is_string_kind(c->kind) || is_binary_kind(c->kind)) {
    size_t n;
    const char *s = bytes_at(c, a, j, &n);
    return is_binary_kind(c->kind) ? sp__hex(out, (const uint8_t *)s, n) : sp__text_string(out, s, n, table);
  }
  if (is_nested_kind(c->kind)) return json_value(c, a, i, out);
  if (c->kind == SP_FK_USPARSE || c->kind == SP_FK_UDENSE) {
    const sp_fcol *cc;
    const struct ArrowArray *ca;
    int64_t ci;
    if (!union_child(c, a, j, &cc, &ca, &ci)) {
      *is_null = true;
      return SP_OK;
    }
    return text_value(cc, ca, ci, table, out, is_null);
  }
  char *p = sp_buf_reserve(out, SP_FMT_MAX);
  if (p == NULL) return SP_ENOMEM;
  bool quote;
  out->len += scalar_text(c, a, j, p, &quote);
  return SP_OK;
}

/* ---- CSV ------------------------------------------------------------------------------------------------ */

/* Quotes the cell written at out[start..] when RFC 4180 needs it; an empty string becomes "" so that it
 * differs from NULL (an empty field). */
static int csv_quote_cell(sp_formatter *f, sp_buf *out, size_t start) {
  size_t n = out->len - start;
  const char *t = out->data + start;
  bool need = n == 0;
  for (size_t k = 0; k < n && !need; k++) need = t[k] == ',' || t[k] == '"' || t[k] == '\n' || t[k] == '\r';
  if (!need) return SP_OK;
  f->scratch.len = 0;
  SP_TRY(sp_buf_append(&f->scratch, t, n));
  out->len = start;
  char *q = sp_buf_reserve(out, 2 * n + 2);
  if (q == NULL) return SP_ENOMEM;
  char *p = q;
  *p++ = '"';
  for (size_t k = 0; k < n; k++) {
    if (f->scratch.data[k] == '"') *p++ = '"';
    *p++ = f->scratch.data[k];
  }
  *p++ = '"';
  out->len += (size_t)(p - q);
  return SP_OK;
}

static int csv_header(sp_formatter *f, sp_buf *out) {
  for (int k = 0; k < f->root.n_children; k++) {
    if (k > 0) SP_TRY(sp_buf_append(out, ",", 1));
    size_t start = out->len;
    const char *name = f->root.children[k].name;
    SP_TRY(sp__text_string(out, name, strlen(name), false));
    if (name[0] != '\0') SP_TRY(csv_quote_cell(f, out, start));
  }
  return sp_buf_append(out, "\n", 1);
}

static int csv_row(sp_formatter *f, const struct ArrowArray *b, int64_t r, sp_buf *out) {
  for (int k = 0; k < f->root.n_children; k++) {
    if (k > 0) SP_TRY(sp_buf_append(out, ",", 1));
    size_t start = out->len;
    bool is_null;
    SP_TRY(text_value(&f->root.children[k], b->children[k], r + b->offset, false, out, &is_null));
    if (!is_null) SP_TRY(csv_quote_cell(f, out, start));
  }
  return sp_buf_append(out, "\n", 1);
}

/* ---- JSON rows ------------------------------------------------------------------------------------------ */

static int json_row(sp_formatter *f, const struct ArrowArray *b, int64_t r, sp_buf *out) {
  if (f->rows) SP_TRY(put_char(out, ','));
  SP_TRY(put_char(out, '{'));
  for (int k = 0; k < f->root.n_children; k++) {
    const sp_fcol *c = &f->root.children[k];
    if (k > 0) SP_TRY(put_char(out, ','));
    SP_TRY(put_key(out, c));
    SP_TRY(json_value(c, b->children[k], r + b->offset, out));
  }
  return put_char(out, '}');
}

/* ---- Table ---------------------------------------------------------------------------------------------- */

static int table_border(const sp_formatter *f, sp_buf *out) {
  SP_TRY(sp_buf_append(out, "+", 1));
  for (int k = 0; k < f->root.n_children; k++) {
    char *p = sp_buf_reserve(out, f->widths[k] + 3);
    if (p == NULL) return SP_ENOMEM;
    memset(p, '-', f->widths[k] + 2);
    p[f->widths[k] + 2] = '+';
    out->len += f->widths[k] + 3;
  }
  return sp_buf_append(out, "\n", 1);
}

/* One table line from n cells stored back to back in `text` with end offsets `ends`. */
static int table_line(const sp_formatter *f, const char *text, const uint32_t *ends, size_t first, sp_buf *out) {
  SP_TRY(sp_buf_append(out, "|", 1));
  for (int k = 0; k < f->root.n_children; k++) {
    size_t s = first + k == 0 ? 0 : ends[first + k - 1], e = ends[first + k];
    size_t w = sp__utf8_width(text + s, e - s), pad = f->widths[k] - w;
    char *p = sp_buf_reserve(out, (e - s) + pad + 3);
    if (p == NULL) return SP_ENOMEM;
    *p++ = ' ';
    memcpy(p, text + s, e - s);
    p += e - s;
    memset(p, ' ', pad + 1);
    p[pad + 1] = '|';
    out->len += (e - s) + pad + 3;
  }
  return sp_buf_append(out, "\n", 1);
}

static int table_head(sp_formatter *f, sp_buf *out) {
  SP_TRY(table_border(f, out));
  SP_TRY(table_line(f, f->head.data, f->head_end, 0, out));
  f->table_started = true;
  return table_border(f, out);
}

/* Writes the held-back rows: widths only ever grow; when a later block widens a column, a border line with
 * the new widths separates it from the rows above. */
static int table_flush(sp_formatter *f, sp_buf *out) {
  int n = f->root.n_children;
  bool widened = false;
  for (size_t i = 0; i < f->n_cells; i++) {
    size_t s = i == 0 ? 0 : f->cell_end[i - 1];
    size_t w = sp__utf8_width(f->cells.data + s, f->cell_end[i] - s);
    if (w > f->widths[i % (size_t)n]) {
      f->widths[i % (size_t)n] = w;
      widened = true;
    }
  }
  if (!f->table_started) SP_TRY(table_head(f, out));
  else if (widened) SP_TRY(table_border(f, out));
  for (size_t i = 0; i < f->n_cells; i += (size_t)n) SP_TRY(table_line(f, f->cells.data, f->cell_end, i, out));
  f->n_cells = 0;
  f->cells.len = 0;
  f->block_rows = 0;
  return SP_OK;
}

static int table_row(sp_formatter *f, const struct ArrowArray *b, int64_t r, sp_buf *out) {
  size_t n = (size_t)f->root.n_children;
  if (f->n_cells + n > f->cap_cells) {
    size_t cap = f->cap_cells ? f->cap_cells * 2 : n * 64;
    uint32_t *p = realloc(f->cell_end, cap * sizeof *p);
    if (p == NULL) return SP_ENOMEM;
    f->cell_end = p;
    f->cap_cells = cap;
  }
  for (size_t k = 0; k < n; k++) {
    bool is_null;
    SP_TRY(text_value(&f->root.children[k], b->children[k], r + b->offset, true, &f->cells, &is_null));
    f->cell_end[f->n_cells++] = (uint32_t)f->cells.len;
  }
  f->block_rows++;
  if (f->block_rows >= f->block_max_rows || f->cells.len >= SP_TABLE_BLOCK_BYTES) return table_flush(f, out);
  return SP_OK;
}

static int table_init(sp_formatter *f) {
  size_t n = (size_t)f->root.n_children;
  f->widths = calloc(n ? n : 1, sizeof *f->widths);
  f->head_end = calloc(n ? n : 1, sizeof *f->head_end);
  if (f->widths == NULL || f->head_end == NULL) return SP_ENOMEM;
  for (size_t k = 0; k < n; k++) {
    size_t s = f->head.len;
    const char *name = f->root.children[k].name;
    SP_TRY(sp__text_string(&f->head, name, strlen(name), true));
    f->head_end[k] = (uint32_t)f->head.len;
    f->widths[k] = sp__utf8_width(f->head.data + s, f->head.len - s);
  }
  int64_t max_cells = 1000000;
  f->block_max_rows = n ? max_cells / (int64_t)n : SP_TABLE_BLOCK_ROWS;
  if (f->block_max_rows > SP_TABLE_BLOCK_ROWS) f->block_max_rows = SP_TABLE_BLOCK_ROWS;
  if (f->block_max_rows < 1) f->block_max_rows = 1;
  /* Cell offsets are 32-bit: keep a block well below 4 GiB of text. */
  f->cells.limit = SP_TABLE_BLOCK_BYTES * 64;
  return SP_OK;
}

static int table_end(sp_formatter *f, sp_buf *out) {
  if (f->root.n_children == 0) return sp_buf_append_str(out, "++\n++\n");
  if (f->n_cells > 0) SP_TRY(table_flush(f, out));
  if (!f->table_started) SP_TRY(table_head(f, out));
  return table_border(f, out);
}

/* ---- Public API ----------------------------------------------------------------------------------------- */

int sp_formatter_create(sp_format_kind kind, const struct ArrowSchema *schema, sp_formatter **out, sp_error *err) {
  if (schema == NULL || schema->format == NULL || strcmp(schema->format, "+s") != 0)
    return sp_fail(err, SP_EINVAL, "query result schema is not a struct of columns");
  sp_formatter *f = calloc(1, sizeof *f);
  if (f == NULL) return oom(err);
  f->kind = kind;
  int rc = sp__fcol_build(&f->root, schema, 0, err);
  if (rc == SP_OK && kind == SP_FORMAT_TABLE && table_init(f) != SP_OK) rc = oom(err);
  if (rc != SP_OK) {
    sp_formatter_destroy(f);
    return rc;
  }
  *out = f;
  return SP_OK;
}

void sp_formatter_destroy(sp_formatter *f) {
  if (f == NULL) return;
  sp__fcol_free(&f->root);
  sp_buf_free(&f->scratch);
  sp_buf_free(&f->cells);
  sp_buf_free(&f->head);
  free(f->cell_end);
  free(f->head_end);
  free(f->widths);
  free(f);
}

static int sql_v1_begin(sp_formatter *f, sp_buf *out) {
  SP_TRY(sp_buf_append_str(out, "{\"schema\":{\"fields\":["));
  for (int k = 0; k < f->root.n_children; k++) {
    if (k > 0) SP_TRY(sp_buf_append(out, ",", 1));
    SP_TRY(sp__fcol_field_json(&f->root.children[k], out));
  }
  SP_TRY(sp_buf_append_str(out, "],\"metadata\":"));
  SP_TRY(sp_buf_append_str(out, f->root.metadata_json));
  return sp_buf_append_str(out, "},\"data\":[");
}

int sp_format_begin(sp_formatter *f, sp_buf *out, sp_error *err) {
  int rc = SP_OK;
  switch (f->kind) {
  case SP_FORMAT_JSON: rc = sp_buf_append(out, "[", 1); break;
  case SP_FORMAT_SQL_V1: rc = sql_v1_begin(f, out); break;
  case SP_FORMAT_CSV: rc = csv_header(f, out); break;
  case SP_FORMAT_TABLE: break;
  }
  return rc == SP_OK ? SP_OK : oom(err);
}

int sp_format_rows(sp_formatter *f, const struct ArrowArray *batch, int64_t *row, size_t soft_limit, sp_buf *out,
                   sp_error *err) {
  if (*row == 0) {
    if (batch == NULL || batch->length < 0 || batch->offset < 0 || batch->n_children != f->root.n_children ||
        (batch->n_children > 0 && batch->children == NULL))
      return sp_fail(err, SP_EINVAL, "query result batch does not match its schema");
    for (int k = 0; k < f->root.n_children; k++) {
      SP_TRY(sp__fcol_check(&f->root.children[k], batch->children[k], 1, err));
      if (batch->children[k]->length < batch->offset + batch->length)
        return sp_fail(err, SP_EINVAL, "column \"%s\" is shorter than its batch", f->root.children[k].name);
    }
  }
  int64_t r = *row;
  int rc = SP_OK;
  while (r < batch->length && rc == SP_OK) {
    switch (f->kind) {
    case SP_FORMAT_JSON:
    case SP_FORMAT_SQL_V1: rc = json_row(f, batch, r, out); break;
    case SP_FORMAT_CSV: rc = csv_row(f, batch, r, out); break;
    case SP_FORMAT_TABLE: rc = table_row(f, batch, r, out); break;
    }
    if (rc != SP_OK) break;
    f->rows++;
    r++;
    if (out->len >= soft_limit) break;
  }
  *row = r;
  return rc == SP_OK ? SP_OK : oom(err);
}

int sp_format_batch(sp_formatter *f, const struct ArrowArray *batch, sp_buf *out, sp_error *err) {
  int64_t row = 0;
  do {
    SP_TRY(sp_format_rows(f, batch, &row, SIZE_MAX, out, err));
  } while (row < batch->length);
  return SP_OK;
}

int sp_format_end(sp_formatter *f, sp_buf *out, sp_error *err) {
  int rc = SP_OK;
  char tmp[48];
  switch (f->kind) {
  case SP_FORMAT_JSON: rc = sp_buf_append(out, "]", 1); break;
  case SP_FORMAT_SQL_V1: {
    memcpy(tmp, "],\"row_count\":", 14);
    size_t n = 14 + sp__fmt_i64(tmp + 14, f->rows);
    tmp[n++] = '}';
    rc = sp_buf_append(out, tmp, n);
    break;
  }
  case SP_FORMAT_CSV: break;
  case SP_FORMAT_TABLE: rc = table_end(f, out); break;
  }
  return rc == SP_OK ? SP_OK : oom(err);
}

int64_t sp_format_row_count(const sp_formatter *f) { return f->rows; }

const char *sp_format_content_type(sp_format_kind kind) {
  switch (kind) {
  case SP_FORMAT_CSV: return "text/csv";
  case SP_FORMAT_TABLE: return "text/plain; charset=utf-8";
  case SP_FORMAT_SQL_V1: return "application/vnd.spiceai.sql.v1+json";
  default: return "application/json";
  }
}
