/* SPDX-License-Identifier: Apache-2.0
 *
 * PostgreSQL binary COPY → Arrow (see pg_copy.h). The wire format is documented in PostgreSQL's "COPY"
 * reference page (File Formats → Binary Format) and each type's *send() function: integers are big-endian,
 * dates count days and timestamps microseconds from 2000-01-01, numeric is base-10000 digits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/pg_copy.h"
#include "spice/arrow.h"

#define PGC_DATE_SHIFT 10957                 /* days from 1970-01-01 to 2000-01-01 */
#define PGC_TS_SHIFT INT64_C(946684800000000) /* microseconds, same */
#define PGC_MAX_ARRAY_DIMS 6

__extension__ typedef unsigned __int128 pgc_u128;
__extension__ typedef __int128 pgc_i128;

/* ---- Builders --------------------------------------------------------------------------------------------- */

/* One column being built: validity bits, fixed-width values or offsets + bytes, and for lists a child. */
typedef struct pgc_builder {
  pgc_kind kind;
  int precision, scale;
  int width; /* bytes per value for fixed-width kinds; 0 for var-width and lists; -1 for bool (bits) */
  uint8_t *valid;
  size_t valid_cap;
  uint8_t *data;
  size_t data_len, data_cap;
  int32_t *offs;
  size_t offs_cap; /* entries */
  int64_t len, nulls;
  size_t hint_data, hint_rows; /* sizes of the previous batch, to presize the next one */
  struct pgc_builder *child;
} pgc_builder;

struct pgc_decoder {
  size_t n;
  pgc_builder *cols;
  int header_done, done;
  uint8_t *carry; /* bytes of a row split across feeds */
  size_t carry_len, carry_cap;
  int64_t rows;
};

static int width_of(pgc_kind k) {
  switch (k) {
  case PGC_BOOL: return -1;
  case PGC_INT2: return 2;
  case PGC_INT4: case PGC_FLOAT4: case PGC_DATE: return 4;
  case PGC_INT8: case PGC_OID: case PGC_FLOAT8: case PGC_TIME: case PGC_TIMESTAMP: case PGC_TIMESTAMPTZ: return 8;
  case PGC_INTERVAL: case PGC_NUMERIC: return 16;
  default: return 0;
  }
}

/* Grows *p to hold at least `need` bytes, doubling; new bytes are zeroed. */
static int grow(void **p, size_t *cap, size_t need) {
  if (need <= *cap && *p != NULL) return 0;
  size_t c = *cap < 256 ? 256 : *cap;
  while (c < need) c *= 2;
  void *q = realloc(*p, c);
  if (q == NULL) return -1;
  memset((uint8_t *)q + *cap, 0, c - *cap);
  *p = q;
  *cap = c;
  return 0;
}

/* Makes room for one more value (validity, offsets, fixed data), presized from the previous batch. */
static int reserve_one(pgc_builder *b) {
  size_t rows = (size_t)b->len + 1, hint = b->hint_rows > rows ? b->hint_rows : rows;
  if (b->valid == NULL || (rows + 7) / 8 > b->valid_cap)
    if (grow((void **)&b->valid, &b->valid_cap, b->valid ? (rows + 7) / 8 : (hint + 7) / 8) != 0) return -1;
  if (b->width == 0) {
    size_t need = (b->offs ? rows + 1 : hint + 1) * sizeof(int32_t), cap = b->offs_cap * sizeof(int32_t);
    if (b->offs == NULL || need > cap) {
      if (grow((void **)&b->offs, &cap, need) != 0) return -1;
      b->offs_cap = cap / sizeof(int32_t);
    }
  } else {
    size_t need = b->width < 0 ? (rows + 7) / 8 : rows * (size_t)b->width;
    size_t first = b->width < 0 ? (hint + 7) / 8 : hint * (size_t)b->width;
    if (b->data == NULL || need > b->data_cap)
      if (grow((void **)&b->data, &b->data_cap, b->data ? need : first) != 0) return -1;
  }
  return 0;
}

static int reserve_bytes(pgc_builder *b, size_t more) {
  size_t need = b->data_len + more;
  if (need > INT32_MAX) return -1;
  if (b->data == NULL || need > b->data_cap) {
    size_t want = b->data == NULL && b->hint_data > need ? b->hint_data : need;
    if (grow((void **)&b->data, &b->data_cap, want) != 0) return -1;
  }
  return 0;
}

/* Marks the value being appended valid or null and advances; var-width kinds close their offset. */
static void commit(pgc_builder *b, bool valid) {
  if (valid) b->valid[b->len >> 3] |= (uint8_t)(1u << (b->len & 7));
  else b->nulls++;
  if (b->width == 0) b->offs[b->len + 1] = b->kind == PGC_LIST ? (int32_t)b->child->len : (int32_t)b->data_len;
  b->len++;
}

static int append_null(pgc_builder *b) {
  if (reserve_one(b) != 0) return -1;
  if (b->width > 0) memset(b->data + (size_t)b->len * (size_t)b->width, 0, (size_t)b->width);
  /* bool data bits are already zero (grow zeroes) */
  commit(b, false);
  return 0;
}

static void builder_init(pgc_builder *b, pgc_kind kind, int precision, int scale) {
  memset(b, 0, sizeof *b);
  b->kind = kind;
  b->precision = precision;
  b->scale = scale;
  b->width = width_of(kind);
}

static void builder_free(pgc_builder *b) {
  if (b == NULL) return;
  free(b->valid);
  free(b->data);
  free(b->offs);
  if (b->child) {
    builder_free(b->child);
    free(b->child);
  }
}

/* ---- Big-endian reads ------------------------------------------------------------------------------------- */

static int16_t rd16(const uint8_t *p) { return (int16_t)(uint16_t)((unsigned)p[0] << 8 | p[1]); }
static int32_t rd32(const uint8_t *p) {
  return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}
static int64_t rd64(const uint8_t *p) { return (int64_t)((uint64_t)(uint32_t)rd32(p) << 32 | (uint32_t)rd32(p + 4)); }

/* ---- Numeric ---------------------------------------------------------------------------------------------- */

#define NUMERIC_POS 0x0000
#define NUMERIC_NEG 0x4000
#define NUMERIC_NAN 0xC000
#define NUMERIC_PINF 0xD000
#define NUMERIC_NINF 0xF000

typedef struct pg_numeric {
  int ndigits, weight, sign, dscale;
  const uint8_t *digits; /* ndigits big-endian int16, each 0..9999 */
} pg_numeric;

static int numeric_parse(const uint8_t *p, int32_t n, pg_numeric *out, sp_error *err) {
  if (n < 8) return sp_fail(err, SP_EIO, "numeric value too short");
  out->ndigits = rd16(p);
  out->weight = rd16(p + 2);
  out->sign = (uint16_t)rd16(p + 4);
  out->dscale = (uint16_t)rd16(p + 6);
  out->digits = p + 8;
  if (out->ndigits < 0 || n != 8 + 2 * out->ndigits || out->dscale > 0x3FFF)
    return sp_fail(err, SP_EIO, "malformed numeric value");
  if (out->sign != NUMERIC_POS && out->sign != NUMERIC_NEG && out->sign != NUMERIC_NAN && out->sign != NUMERIC_PINF &&
      out->sign != NUMERIC_NINF)
    return sp_fail(err, SP_EIO, "malformed numeric sign");
  for (int i = 0; i < out->ndigits; i++)
    if (rd16(out->digits + 2 * i) < 0 || rd16(out->digits + 2 * i) > 9999)
      return sp_fail(err, SP_EIO, "malformed numeric digit");
  return SP_OK;
}

/* 10^e for 0 <= e <= 38 (called per digit: two table reads, no loop). */
static pgc_u128 pow10_u128(int e) {
  static const uint64_t p[20] = {1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
                                 100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
                                 10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
                                 100000000000000000ULL, 1000000000000000000ULL, 10000000000000000000ULL};
  return e <= 19 ? (pgc_u128)p[e] : (pgc_u128)p[19] * p[e - 19];
}

/* The value scaled by 10^scale as a 128-bit integer, refusing anything over `precision` digits. Digits
 * beyond the scale are dropped (PostgreSQL already rounded them for a numeric(p,s) column). */
static int numeric_to_i128(const pg_numeric *v, int precision, int scale, pgc_i128 *out, sp_error *err) {
  static const int p10[4] = {1, 10, 100, 1000};
  pgc_u128 acc = 0;
  for (int i = 0; i < v->ndigits; i++) {
    unsigned d = (unsigned)rd16(v->digits + 2 * i);
    int e = 4 * (v->weight - i) + scale;
    pgc_u128 term;
    if (e >= 0) {
      if (e > 38 && d != 0) return sp_fail(err, SP_EIO, "numeric value out of range for decimal(%d,%d)", precision, scale);
      if (d == 0) continue;
      if (__builtin_mul_overflow((pgc_u128)d, pow10_u128(e), &term))
        return sp_fail(err, SP_EIO, "numeric value out of range for decimal(%d,%d)", precision, scale);
    } else if (e > -4) {
      term = d / (unsigned)p10[-e];
    } else {
      continue;
    }
    if (__builtin_add_overflow(acc, term, &acc))
      return sp_fail(err, SP_EIO, "numeric value out of range for decimal(%d,%d)", precision, scale);
  }
  if (acc >= pow10_u128(precision))
    return sp_fail(err, SP_EIO, "numeric value out of range for decimal(%d,%d)", precision, scale);
  *out = v->sign == NUMERIC_NEG ? -(pgc_i128)acc : (pgc_i128)acc;
  return SP_OK;
}

/* The text PostgreSQL's numeric_out would print (every digit, dscale decimals). */
static int numeric_to_text(pgc_builder *b, const pg_numeric *v) {
  const char *special = v->sign == NUMERIC_NAN ? "NaN" : v->sign == NUMERIC_PINF ? "Infinity" : v->sign == NUMERIC_NINF ? "-Infinity" : NULL;
  if (special) {
    size_t m = strlen(special);
    if (reserve_bytes(b, m) != 0) return -1;
    memcpy(b->data + b->data_len, special, m);
    b->data_len += m;
    return 0;
  }
  size_t max = 2 + 4 * (size_t)(v->weight >= 0 ? v->weight + 1 : 1) + 1 + (size_t)v->dscale + 4;
  if (reserve_bytes(b, max) != 0) return -1;
  char *o = (char *)b->data + b->data_len, *start = o;
  if (v->sign == NUMERIC_NEG) *o++ = '-';
  if (v->weight < 0) {
    *o++ = '0';
  } else {
    for (int i = 0; i <= v->weight; i++) {
      int d = i < v->ndigits ? rd16(v->digits + 2 * i) : 0;
      o += i == 0 ? sprintf(o, "%d", d) : sprintf(o, "%04d", d);
    }
  }
  if (v->dscale > 0) {
    *o++ = '.';
    int left = v->dscale;
    for (int f = 1; left > 0; f++) {
      int j = v->weight + f;
      int d = j >= 0 && j < v->ndigits ? rd16(v->digits + 2 * j) : 0;
      char g[8];
      sprintf(g, "%04d", d);
      int take = left < 4 ? left : 4;
      memcpy(o, g, (size_t)take);
      o += take;
      left -= take;
    }
  }
  b->data_len += (size_t)(o - start);
  return 0;
}

/* ---- Values ----------------------------------------------------------------------------------------------- */

static const char *kind_name(pgc_kind k) {
  static const char *const names[PGC_KIND_COUNT] = {
      "bool", "int2", "int4", "int8", "oid", "float4", "float8", "text", "jsonb", "bytea", "date", "time",
      "timestamp", "timestamptz", "interval", "uuid", "numeric", "numeric", "array", "bpchar"};
  return (unsigned)k < PGC_KIND_COUNT ? names[k] : "?";
}

static int append_bytes(pgc_builder *b, const uint8_t *p, size_t n) {
  if (reserve_bytes(b, n) != 0) return -1;
  if (n) memcpy(b->data + b->data_len, p, n);
  b->data_len += n;
  return 0;
}

static void put_le(uint8_t *dst, const void *v, size_t n) { memcpy(dst, v, n); /* x86-64 and arm64: little-endian */ }

static int decode_value(pgc_builder *b, const uint8_t *p, int32_t n, sp_error *err);

/* A one-dimensional view of a binary array: its elements go into the child builder. */
static int decode_array(pgc_builder *b, const uint8_t *p, int32_t n, sp_error *err) {
  if (n < 12) return sp_fail(err, SP_EIO, "array value too short");
  int32_t ndim = rd32(p), flags = rd32(p + 4);
  if (ndim < 0 || ndim > PGC_MAX_ARRAY_DIMS || (flags & ~1) != 0) return sp_fail(err, SP_EIO, "malformed array header");
  if (n < 12 + 8 * ndim) return sp_fail(err, SP_EIO, "array value too short");
  int64_t count = ndim ? 1 : 0;
  for (int32_t i = 0; i < ndim; i++) {
    int32_t dim = rd32(p + 12 + 8 * i);
    if (dim < 0 || (count *= dim) > n) return sp_fail(err, SP_EIO, "malformed array dimensions");
  }
  const uint8_t *q = p + 12 + 8 * ndim, *end = p + n;
  for (int64_t i = 0; i < count; i++) {
    if (end - q < 4) return sp_fail(err, SP_EIO, "array value truncated");
    int32_t len = rd32(q);
    q += 4;
    if (len == -1) {
      if (append_null(b->child) != 0) return sp_fail(err, SP_ENOMEM, "out of memory");
      continue;
    }
    if (len < 0 || end - q < len) return sp_fail(err, SP_EIO, "array element truncated");
    SP_TRY(decode_value(b->child, q, len, err));
    q += len;
  }
  if (q != end) return sp_fail(err, SP_EIO, "trailing bytes after an array value");
  if (b->child->len > INT32_MAX) return sp_fail(err, SP_EIO, "too many array elements in one batch");
  return SP_OK;
}

static int decode_uuid(pgc_builder *b, const uint8_t *p) {
  static const char hex[] = "0123456789abcdef";
  if (reserve_bytes(b, 36) != 0) return -1;
  char *o = (char *)b->data + b->data_len;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *o++ = '-';
    *o++ = hex[p[i] >> 4];
    *o++ = hex[p[i] & 15];
  }
  b->data_len += 36;
  return 0;
}

/* Fixed-width kinds: the wire size each one must have. */
static int wire_size(pgc_kind k) {
  switch (k) {
  case PGC_BOOL: return 1;
  case PGC_INT2: return 2;
  case PGC_INT4: case PGC_OID: case PGC_FLOAT4: case PGC_DATE: return 4;
  case PGC_INT8: case PGC_FLOAT8: case PGC_TIME: case PGC_TIMESTAMP: case PGC_TIMESTAMPTZ: return 8;
  case PGC_INTERVAL: case PGC_UUID: return 16;
  default: return -1;
  }
}

/* Decodes a fixed-width wire value into slot `dst`; *store = 0 asks for a null instead (infinite dates and
 * timestamps, NaN and infinite numerics in a decimal column). */
static int decode_fixed(pgc_builder *b, uint8_t *dst, const uint8_t *p, int32_t n, int *store, sp_error *err) {
  *store = 1;
  switch (b->kind) {
  case PGC_INT2: { int16_t v = rd16(p); put_le(dst, &v, 2); return SP_OK; }
  case PGC_INT4: case PGC_FLOAT4: { int32_t v = rd32(p); put_le(dst, &v, 4); return SP_OK; }
  case PGC_OID: { int64_t v = (uint32_t)rd32(p); put_le(dst, &v, 8); return SP_OK; }
  case PGC_INT8: case PGC_FLOAT8: case PGC_TIME: { int64_t v = rd64(p); put_le(dst, &v, 8); return SP_OK; }
  case PGC_DATE: {
    int32_t v = rd32(p);
    if (v == INT32_MAX || v == INT32_MIN || __builtin_add_overflow(v, PGC_DATE_SHIFT, &v)) return (*store = 0, SP_OK);
    put_le(dst, &v, 4);
    return SP_OK;
  }
  case PGC_TIMESTAMP: case PGC_TIMESTAMPTZ: {
    int64_t v = rd64(p);
    if (v == INT64_MAX || v == INT64_MIN || __builtin_add_overflow(v, PGC_TS_SHIFT, &v)) return (*store = 0, SP_OK);
    put_le(dst, &v, 8);
    return SP_OK;
  }
  case PGC_INTERVAL: { /* wire: int64 us, int32 days, int32 months; Arrow: int32 months, int32 days, int64 ns */
    int64_t us = rd64(p), ns;
    int32_t days = rd32(p + 8), months = rd32(p + 12);
    if (__builtin_mul_overflow(us, 1000, &ns)) return (*store = 0, SP_OK);
    put_le(dst, &months, 4);
    put_le(dst + 4, &days, 4);
    put_le(dst + 8, &ns, 8);
    return SP_OK;
  }
  case PGC_NUMERIC: {
    pg_numeric v;
    SP_TRY(numeric_parse(p, n, &v, err));
    if (v.sign == NUMERIC_NAN || v.sign == NUMERIC_PINF || v.sign == NUMERIC_NINF) return (*store = 0, SP_OK);
    pgc_i128 x = 0;
    SP_TRY(numeric_to_i128(&v, b->precision, b->scale, &x, err));
    put_le(dst, &x, 16);
    return SP_OK;
  }
  default: return sp_fail(err, SP_EINTERNAL, "not a fixed-width kind");
  }
}

static int decode_value(pgc_builder *b, const uint8_t *p, int32_t n, sp_error *err) {
  int ws = wire_size(b->kind);
  if (ws > 0 && n != ws) return sp_fail(err, SP_EIO, "%s value has %d bytes, expected %d", kind_name(b->kind), (int)n, ws);
  if (reserve_one(b) != 0) return sp_fail(err, SP_ENOMEM, "out of memory");
  int r = 1;
  switch (b->kind) {
  case PGC_BOOL:
    if (p[0]) b->data[b->len >> 3] |= (uint8_t)(1u << (b->len & 7));
    break;
  case PGC_TEXT: case PGC_BYTEA:
    r = append_bytes(b, p, (size_t)n) == 0 ? 1 : -1;
    break;
  case PGC_BPCHAR:
    while (n > 0 && p[n - 1] == ' ') n--;
    r = append_bytes(b, p, (size_t)n) == 0 ? 1 : -1;
    break;
  case PGC_JSONB:
    if (n < 1 || p[0] != 1) return sp_fail(err, SP_EIO, "unknown jsonb version");
    r = append_bytes(b, p + 1, (size_t)n - 1) == 0 ? 1 : -1;
    break;
  case PGC_UUID:
    r = decode_uuid(b, p) == 0 ? 1 : -1;
    break;
  case PGC_NUMERIC_TEXT: {
    pg_numeric v;
    SP_TRY(numeric_parse(p, n, &v, err));
    r = numeric_to_text(b, &v) == 0 ? 1 : -1;
    break;
  }
  case PGC_LIST:
    SP_TRY(decode_array(b, p, n, err));
    break;
  default:
    SP_TRY(decode_fixed(b, b->data + (size_t)b->len * (size_t)b->width, p, n, &r, err));
    if (r == 0) memset(b->data + (size_t)b->len * (size_t)b->width, 0, (size_t)b->width);
    break;
  }
  if (r < 0) return sp_fail(err, SP_ENOMEM, "out of memory (or a batch over 2 GiB)");
  commit(b, r == 1);
  return SP_OK;
}

/* ---- Rows ------------------------------------------------------------------------------------------------- */

static const uint8_t copy_signature[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xFF, '\r', '\n', 0};

/* Size of the file header at p, 0 if incomplete, or an error. */
static int header_size(const uint8_t *p, size_t avail, size_t *out, sp_error *err) {
  if (avail < 19) return (*out = 0, SP_OK);
  if (memcmp(p, copy_signature, 11) != 0) return sp_fail(err, SP_EIO, "not a binary COPY stream (bad signature)");
  int32_t flags = rd32(p + 11), ext = rd32(p + 15);
  if (flags & (1 << 16)) return sp_fail(err, SP_EIO, "binary COPY with OIDs is not supported");
  if (flags & 0xFFFF) return sp_fail(err, SP_EIO, "binary COPY has unknown critical flags");
  if (ext < 0) return sp_fail(err, SP_EIO, "malformed binary COPY header");
  *out = avail - 19 >= (size_t)ext ? 19 + (size_t)ext : 0;
  return SP_OK;
}

/* Size of the row (or trailer) at p, 0 if incomplete, or an error. */
static int row_size(const pgc_decoder *d, const uint8_t *p, size_t avail, size_t *out, sp_error *err) {
  *out = 0;
  if (avail < 2) return SP_OK;
  int16_t fields = rd16(p);
  if (fields == -1) return (*out = 2, SP_OK);
  if (fields < 0 || (size_t)fields != d->n)
    return sp_fail(err, SP_EIO, "binary COPY row has %d fields, expected %zu", (int)fields, d->n);
  size_t o = 2;
  for (int16_t i = 0; i < fields; i++) {
    if (avail - o < 4) return SP_OK;
    int32_t len = rd32(p + o);
    o += 4;
    if (len == -1) continue;
    if (len < 0) return sp_fail(err, SP_EIO, "malformed field length in binary COPY");
    if (avail - o < (size_t)len) return SP_OK;
    o += (size_t)len;
  }
  *out = o;
  return SP_OK;
}

static int decode_row(pgc_decoder *d, const uint8_t *p, sp_error *err) {
  size_t o = 2;
  for (size_t i = 0; i < d->n; i++) {
    int32_t len = rd32(p + o);
    o += 4;
    if (len == -1) {
      if (append_null(&d->cols[i]) != 0) return sp_fail(err, SP_ENOMEM, "out of memory");
      continue;
    }
    SP_TRY(decode_value(&d->cols[i], p + o, len, err));
    o += (size_t)len;
  }
  d->rows++;
  return SP_OK;
}

/* Decodes every complete unit (header, rows, trailer) in p; *used = bytes consumed. */
static int parse(pgc_decoder *d, const uint8_t *p, size_t n, size_t *used, sp_error *err) {
  size_t o = 0, sz = 0;
  *used = 0;
  while (o < n) {
    if (d->done) return sp_fail(err, SP_EIO, "data after the end of the binary COPY stream");
    if (!d->header_done) {
      SP_TRY(header_size(p + o, n - o, &sz, err));
      if (sz == 0) break;
      d->header_done = 1;
      o += sz;
      continue;
    }
    SP_TRY(row_size(d, p + o, n - o, &sz, err));
    if (sz == 0) break;
    if (sz == 2 && rd16(p + o) == -1) d->done = 1;
    else SP_TRY(decode_row(d, p + o, err));
    o += sz;
  }
  *used = o;
  return SP_OK;
}

int pgc_feed(pgc_decoder *d, const uint8_t *data, size_t len, sp_error *err) {
  size_t used;
  if (d->carry_len == 0) {
    SP_TRY(parse(d, data, len, &used, err));
    data += used;
    len -= used;
    if (len == 0) return SP_OK;
  }
  if (grow((void **)&d->carry, &d->carry_cap, d->carry_len + len) != 0) return sp_fail(err, SP_ENOMEM, "out of memory");
  memcpy(d->carry + d->carry_len, data, len);
  d->carry_len += len;
  if (len == 0 || d->carry_len == len) return SP_OK; /* just stashed a fresh remainder */
  SP_TRY(parse(d, d->carry, d->carry_len, &used, err));
  memmove(d->carry, d->carry + used, d->carry_len - used);
  d->carry_len -= used;
  return SP_OK;
}

int64_t pgc_pending_rows(const pgc_decoder *d) { return d->rows; }

static size_t builder_bytes(const pgc_builder *b) {
  return b->data_len + (size_t)b->len * (b->width == 0 ? 4 : 0) + (b->child ? builder_bytes(b->child) : 0);
}

size_t pgc_pending_bytes(const pgc_decoder *d) {
  size_t s = 0;
  for (size_t i = 0; i < d->n; i++) s += builder_bytes(&d->cols[i]);
  return s;
}

bool pgc_done(const pgc_decoder *d) { return d->done != 0; }

int pgc_end(const pgc_decoder *d, sp_error *err) {
  if (!d->done || d->carry_len != 0) return sp_fail(err, SP_EIO, "binary COPY stream ended early");
  return SP_OK;
}

int pgc_decoder_new(const pgc_type *types, size_t n, pgc_decoder **out, sp_error *err) {
  pgc_decoder *d = calloc(1, sizeof *d);
  if (d == NULL || (d->cols = calloc(n ? n : 1, sizeof *d->cols)) == NULL) {
    free(d);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  d->n = n;
  for (size_t i = 0; i < n; i++) {
    int bad = (types[i].kind == PGC_NUMERIC && (types[i].precision < 1 || types[i].precision > 38 || types[i].scale < 0 ||
                                                 types[i].scale > types[i].precision)) ||
              (types[i].kind == PGC_LIST && types[i].elem == PGC_NUMERIC &&
               (types[i].elem_precision < 1 || types[i].elem_precision > 38 || types[i].elem_scale < 0 ||
                types[i].elem_scale > types[i].elem_precision)) ||
              (unsigned)types[i].kind >= PGC_KIND_COUNT || (unsigned)types[i].elem >= PGC_KIND_COUNT;
    if (bad) {
      pgc_decoder_free(d);
      return sp_fail(err, SP_EINVAL, "unsupported column type for binary COPY decoding");
    }
    builder_init(&d->cols[i], types[i].kind, types[i].precision, types[i].scale);
    if (types[i].kind != PGC_LIST) continue;
    if (types[i].elem == PGC_LIST || (d->cols[i].child = calloc(1, sizeof(pgc_builder))) == NULL) {
      pgc_decoder_free(d);
      return sp_fail(err, SP_EINVAL, "unsupported list element");
    }
    builder_init(d->cols[i].child, types[i].elem, types[i].elem_precision, types[i].elem_scale);
  }
  *out = d;
  return SP_OK;
}

void pgc_decoder_free(pgc_decoder *d) {
  if (d == NULL) return;
  for (size_t i = 0; i < d->n; i++) builder_free(&d->cols[i]);
  free(d->cols);
  free(d->carry);
  free(d);
}

/* ---- Exported arrays -------------------------------------------------------------------------------------- */

typedef struct pgc_array_priv {
  void *mem[3];
  const void *bufs[3];
  struct ArrowArray *kids;
  struct ArrowArray **kid_ptrs;
  int64_t n_kids;
} pgc_array_priv;

static void array_release(struct ArrowArray *a) {
  if (a->release == NULL) return;
  pgc_array_priv *p = a->private_data;
  for (int64_t i = 0; i < p->n_kids; i++) sp_array_release(&p->kids[i]);
  free(p->kids);
  free(p->kid_ptrs);
  for (int i = 0; i < 3; i++) free(p->mem[i]);
  free(p);
  a->release = NULL;
}

static int array_alloc(struct ArrowArray *a, int64_t n_kids) {
  pgc_array_priv *p = calloc(1, sizeof *p);
  if (p == NULL) return -1;
  memset(a, 0, sizeof *a);
  a->private_data = p;
  a->release = array_release;
  a->buffers = p->bufs;
  if (n_kids > 0) {
    p->kids = calloc((size_t)n_kids, sizeof *p->kids);
    p->kid_ptrs = calloc((size_t)n_kids, sizeof *p->kid_ptrs);
    if (p->kids == NULL || p->kid_ptrs == NULL) return -1;
    for (int64_t i = 0; i < n_kids; i++) p->kid_ptrs[i] = &p->kids[i];
    p->n_kids = n_kids;
    a->children = p->kid_ptrs;
    a->n_children = n_kids;
  }
  return 0;
}

/* Every buffer a consumer may read must exist, even for an empty batch. */
static int ensure_buffers(pgc_builder *b) {
  if (b->valid == NULL && grow((void **)&b->valid, &b->valid_cap, 8) != 0) return -1;
  if (b->width != 0 || b->kind != PGC_LIST)
    if (b->data == NULL && grow((void **)&b->data, &b->data_cap, 16) != 0) return -1;
  if (b->width == 0 && b->offs == NULL) {
    size_t cap = 0;
    if (grow((void **)&b->offs, &cap, 16) != 0) return -1;
    b->offs_cap = cap / sizeof(int32_t);
  }
  return 0;
}

/* Moves a builder's buffers into *a and resets it for the next batch (presized to this one). */
static int builder_finish(pgc_builder *b, struct ArrowArray *a) {
  if (ensure_buffers(b) != 0 || array_alloc(a, b->kind == PGC_LIST ? 1 : 0) != 0) return -1;
  pgc_array_priv *p = a->private_data;
  a->length = b->len;
  a->null_count = b->nulls;
  p->mem[0] = b->valid;
  if (b->kind == PGC_LIST) {
    a->n_buffers = 2;
    p->mem[1] = b->offs;
    if (builder_finish(b->child, &p->kids[0]) != 0) return -1;
  } else if (b->width == 0) {
    a->n_buffers = 3;
    p->mem[1] = b->offs;
    p->mem[2] = b->data;
  } else {
    a->n_buffers = 2;
    p->mem[1] = b->data;
  }
  for (int i = 0; i < 3; i++) p->bufs[i] = p->mem[i];
  b->hint_rows = (size_t)b->len;
  b->hint_data = b->data_len;
  b->valid = b->data = NULL;
  b->offs = NULL;
  b->valid_cap = b->data_cap = b->offs_cap = 0;
  b->len = b->nulls = 0;
  b->data_len = 0;
  return 0;
}

int pgc_finish_batch(pgc_decoder *d, struct ArrowArray *out, sp_error *err) {
  struct ArrowArray a;
  memset(&a, 0, sizeof a);
  if (array_alloc(&a, (int64_t)d->n) != 0) {
    if (a.release) a.release(&a);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  a.length = d->rows;
  a.n_buffers = 1; /* struct validity: NULL, no nulls */
  for (size_t i = 0; i < d->n; i++)
    if (builder_finish(&d->cols[i], &((pgc_array_priv *)a.private_data)->kids[i]) != 0) {
      a.release(&a);
      return sp_fail(err, SP_ENOMEM, "out of memory");
    }
  d->rows = 0;
  *out = a;
  return SP_OK;
}

/* ---- Schema ----------------------------------------------------------------------------------------------- */

typedef struct pgc_schema_priv {
  char format[32];
  char *name;
  struct ArrowSchema *kids;
  struct ArrowSchema **kid_ptrs;
  int64_t n_kids;
} pgc_schema_priv;

static void schema_release(struct ArrowSchema *s) {
  if (s->release == NULL) return;
  pgc_schema_priv *p = s->private_data;
  for (int64_t i = 0; i < p->n_kids; i++) sp_schema_release(&p->kids[i]);
  free(p->kids);
  free(p->kid_ptrs);
  free(p->name);
  free(p);
  s->release = NULL;
}

static int schema_node(struct ArrowSchema *s, const char *format, const char *name, int64_t n_kids) {
  memset(s, 0, sizeof *s); /* a failure leaves a node that releases what it holds */
  pgc_schema_priv *p = calloc(1, sizeof *p);
  if (p == NULL) return -1;
  s->private_data = p;
  s->release = schema_release;
  snprintf(p->format, sizeof p->format, "%s", format);
  s->format = p->format;
  if ((p->name = strdup(name)) == NULL) return -1;
  s->name = p->name;
  s->flags = ARROW_FLAG_NULLABLE;
  if (n_kids > 0) {
    p->kids = calloc((size_t)n_kids, sizeof *p->kids);
    p->kid_ptrs = calloc((size_t)n_kids, sizeof *p->kid_ptrs);
    if (p->kids == NULL || p->kid_ptrs == NULL) return -1;
    for (int64_t i = 0; i < n_kids; i++) p->kid_ptrs[i] = &p->kids[i];
    p->n_kids = n_kids;
    s->children = p->kid_ptrs;
    s->n_children = n_kids;
  }
  return 0;
}

static void format_of(pgc_kind k, int precision, int scale, char *buf, size_t n) {
  static const char *const fmts[PGC_KIND_COUNT] = {"b", "s", "i", "l", "l", "f", "g", "u", "u", "z", "tdD", "ttu",
                                                   "tsu:", "tsu:UTC", "tin", "u", NULL, "u", "+l", "u"};
  if (k == PGC_NUMERIC) snprintf(buf, n, "d:%d,%d", precision, scale);
  else snprintf(buf, n, "%s", (unsigned)k < PGC_KIND_COUNT ? fmts[k] : "n");
}

static int column_schema(struct ArrowSchema *s, const pgc_type *t, const char *name) {
  char fmt[32];
  format_of(t->kind, t->precision, t->scale, fmt, sizeof fmt);
  if (schema_node(s, fmt, name, t->kind == PGC_LIST ? 1 : 0) != 0) return -1;
  if (t->kind != PGC_LIST) return 0;
  format_of(t->elem, t->elem_precision, t->elem_scale, fmt, sizeof fmt);
  return schema_node(&((pgc_schema_priv *)s->private_data)->kids[0], fmt, "item", 0);
}

int pgc_schema(const pgc_type *types, const char *const *names, size_t n, struct ArrowSchema *out, sp_error *err) {
  struct ArrowSchema s;
  int bad = schema_node(&s, "+s", "", (int64_t)n);
  for (size_t i = 0; i < n && !bad; i++) bad = column_schema(&((pgc_schema_priv *)s.private_data)->kids[i], &types[i], names[i]);
  if (bad) {
    if (s.release) s.release(&s);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  s.flags = 0;
  *out = s;
  return SP_OK;
}
