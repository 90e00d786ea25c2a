/* SPDX-License-Identifier: Apache-2.0
 *
 * Internal to src/server/format*.c: a column tree compiled once from an ArrowSchema (types parsed, names and
 * JSON keys escaped), so that the per-value writers only switch on a small enum.
 */
#ifndef SPICE_SERVER_FORMAT_SCHEMA_H
#define SPICE_SERVER_FORMAT_SCHEMA_H

#include <stdbool.h>
#include <stdint.h>

#include "server/format_value.h"
#include "spice/arrow_abi.h"
#include "spice/error.h"

typedef enum sp_fk {
  SP_FK_NULL = 0, SP_FK_BOOL,
  SP_FK_I8, SP_FK_I16, SP_FK_I32, SP_FK_I64, SP_FK_U8, SP_FK_U16, SP_FK_U32, SP_FK_U64,
  SP_FK_F16, SP_FK_F32, SP_FK_F64,
  SP_FK_UTF8, SP_FK_LUTF8, SP_FK_UTF8V, SP_FK_BIN, SP_FK_LBIN, SP_FK_BINV, SP_FK_FBIN,
  SP_FK_UUID, /* fixed_size_binary(16) with extension arrow.uuid */
  SP_FK_U128, /* fixed_size_binary(16) with DuckDB's opaque "uhugeint" extension */
  SP_FK_DEC,  /* width = 4, 8, 16 or 32 bytes */
  SP_FK_DATE32, SP_FK_DATE64, SP_FK_TIME32, SP_FK_TIME64, SP_FK_TS, SP_FK_DUR,
  SP_FK_IV_MONTHS, SP_FK_IV_DAYTIME, SP_FK_IV_MDN,
  SP_FK_LIST, SP_FK_LLIST, SP_FK_LISTV, SP_FK_LLISTV, SP_FK_FLIST, SP_FK_STRUCT, SP_FK_MAP,
  SP_FK_USPARSE, SP_FK_UDENSE,
} sp_fk;

typedef struct sp_fcol {
  sp_fk kind;           /* for dictionary-encoded columns: the index type */
  int width;            /* bytes (decimal, fixed binary) or items (fixed list) */
  int precision, scale; /* decimals */
  sp_fmt_unit unit;     /* times, timestamps, durations */
  sp_fmt_tz tz;
  int tz_offset;        /* minutes, SP_FMT_TZ_OFFSET */
  char *tz_name;        /* timestamp zone as written ("" none) */
  char *name;           /* column name, as written */
  char *json_key;       /* "name" quoted and escaped, followed by ':'; zero-padded to json_key_pad bytes */
  size_t json_key_len, json_key_pad; /* pad: a multiple of 16, for fixed-size copies */
  char *metadata_json;  /* the field metadata as a JSON object ("{}" when none) */
  bool nullable, dict_ordered, keys_sorted;
  struct sp_fcol *children;
  int n_children;
  struct sp_fcol *dict; /* dictionary values, or NULL */
  int8_t *union_ids;    /* union type ids, n_children of them */
  int8_t union_child[128]; /* type id → child index, -1 when unused */
} sp_fcol;

/* Compiles the tree for `schema` into *out (zeroed by the caller). SP_ENOTSUP names the column whose type
 * cannot be rendered; SP_EINVAL for malformed schemas. */
int sp__fcol_build(sp_fcol *out, const struct ArrowSchema *schema, int depth, sp_error *err);
void sp__fcol_free(sp_fcol *c);

/* Checks that `a` has the buffers and children that `c` needs for rows [0, a->length) (with its offset), so
 * that the writers can index without further checks. */
int sp__fcol_check(const sp_fcol *c, const struct ArrowArray *a, int depth, sp_error *err);

/* Appends the arrow-rs serde form of the field: {"name":..,"data_type":..,"nullable":..,...}. */
int sp__fcol_field_json(const sp_fcol *c, sp_buf *out);

#endif
