/* SPDX-License-Identifier: Apache-2.0
 *
 * Compiles an ArrowSchema into the column tree the result writers use, checks incoming batches against it,
 * and writes the arrow-rs serde form of fields for the sql.v1+json envelope.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/format_schema.h"

#define MAX_DEPTH 64

/* ---- Format strings ------------------------------------------------------------------------------------- */

typedef struct simple_fmt {
  const char *fmt;
  sp_fk kind;
  sp_fmt_unit unit;
} simple_fmt;

static const simple_fmt k_simple[] = {
    {"n", SP_FK_NULL, 0},         {"b", SP_FK_BOOL, 0},         {"c", SP_FK_I8, 0},
    {"s", SP_FK_I16, 0},          {"i", SP_FK_I32, 0},          {"l", SP_FK_I64, 0},
    {"C", SP_FK_U8, 0},           {"S", SP_FK_U16, 0},          {"I", SP_FK_U32, 0},
    {"L", SP_FK_U64, 0},          {"e", SP_FK_F16, 0},          {"f", SP_FK_F32, 0},
    {"g", SP_FK_F64, 0},          {"u", SP_FK_UTF8, 0},         {"U", SP_FK_LUTF8, 0},
    {"vu", SP_FK_UTF8V, 0},       {"z", SP_FK_BIN, 0},          {"Z", SP_FK_LBIN, 0},
    {"vz", SP_FK_BINV, 0},        {"tdD", SP_FK_DATE32, 0},     {"tdm", SP_FK_DATE64, 0},
    {"tts", SP_FK_TIME32, SP_FMT_SEC}, {"ttm", SP_FK_TIME32, SP_FMT_MILLI},
    {"ttu", SP_FK_TIME64, SP_FMT_MICRO}, {"ttn", SP_FK_TIME64, SP_FMT_NANO},
    {"tDs", SP_FK_DUR, SP_FMT_SEC}, {"tDm", SP_FK_DUR, SP_FMT_MILLI},
    {"tDu", SP_FK_DUR, SP_FMT_MICRO}, {"tDn", SP_FK_DUR, SP_FMT_NANO},
    {"tiM", SP_FK_IV_MONTHS, 0},  {"tiD", SP_FK_IV_DAYTIME, 0}, {"tin", SP_FK_IV_MDN, 0},
    {"+l", SP_FK_LIST, 0},        {"+L", SP_FK_LLIST, 0},       {"+vl", SP_FK_LISTV, 0},
    {"+vL", SP_FK_LLISTV, 0},     {"+s", SP_FK_STRUCT, 0},      {"+m", SP_FK_MAP, 0},
};

static bool parse_int(const char **s, long lo, long hi, int *out) {
  char *end;
  long v = strtol(*s, &end, 10);
  if (end == *s || v < lo || v > hi) return false;
  *s = end;
  *out = (int)v;
  return true;
}

static bool is_utc_name(const char *tz) {
  static const char *const names[] = {"UTC", "Etc/UTC", "Z", "+00:00", "-00:00", "+0000", "GMT", "Etc/GMT",
                                      "Etc/UCT", "UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(tz, names[i]) == 0) return true;
  return false;
}

/* "+05:30" / "-0800" → minutes. */
static bool parse_offset(const char *tz, int *out) {
  if ((tz[0] != '+' && tz[0] != '-') || strlen(tz) < 5) return false;
  int h = (tz[1] - '0') * 10 + (tz[2] - '0');
  const char *m = tz[3] == ':' ? tz + 4 : tz + 3;
  if (strlen(m) != 2) return false;
  for (const char *p = tz + 1; *p; p++)
    if (*p != ':' && (*p < '0' || *p > '9')) return false;
  int mm = (m[0] - '0') * 10 + (m[1] - '0');
  if (h > 23 || mm > 59) return false;
  *out = (tz[0] == '-' ? -1 : 1) * (h * 60 + mm);
  return true;
}

static int parse_timestamp(sp_fcol *c, const char *f) {
  static const char units[] = "smun";
  const char *u = strchr(units, f[2]);
  if (f[2] == '\0' || u == NULL || f[3] != ':') return -1;
  c->kind = SP_FK_TS;
  c->unit = (sp_fmt_unit)(u - units);
  c->tz_name = strdup(f + 4);
  if (c->tz_name == NULL) return SP_ENOMEM;
  if (c->tz_name[0] == '\0') c->tz = SP_FMT_TZ_NONE;
  else if (is_utc_name(c->tz_name)) c->tz = SP_FMT_TZ_UTC;
  else if (parse_offset(c->tz_name, &c->tz_offset)) c->tz = c->tz_offset == 0 ? SP_FMT_TZ_UTC : SP_FMT_TZ_OFFSET;
  else c->tz = SP_FMT_TZ_UTC; /* named zone: the instant is written in UTC (documented) */
  return SP_OK;
}

static int parse_union(sp_fcol *c, const char *ids, int n_children) {
  memset(c->union_child, -1, sizeof c->union_child);
  c->union_ids = calloc((size_t)(n_children > 0 ? n_children : 1), 1);
  if (c->union_ids == NULL) return SP_ENOMEM;
  const char *s = ids;
  for (int k = 0; k < n_children; k++) {
    int id;
    if (!parse_int(&s, 0, 127, &id)) return -1;
    c->union_ids[k] = (int8_t)id;
    c->union_child[id] = (int8_t)k;
    if (*s == ',') s++;
    else if (*s != '\0' || k != n_children - 1) return -1;
  }
  return *s == '\0' ? SP_OK : -1;
}

/* Fills kind and parameters from the format string. Returns SP_OK, SP_ENOMEM, or -1 when unsupported. */
static int parse_format(sp_fcol *c, const char *f, int n_children) {
  for (size_t i = 0; i < sizeof k_simple / sizeof k_simple[0]; i++) {
    if (strcmp(f, k_simple[i].fmt) == 0) {
      c->kind = k_simple[i].kind;
      c->unit = k_simple[i].unit;
      return SP_OK;
    }
  }
  const char *s;
  if (strncmp(f, "d:", 2) == 0) {
    s = f + 2;
    c->kind = SP_FK_DEC;
    c->width = 16;
    int bits = 128;
    if (!parse_int(&s, 1, 76, &c->precision) || *s++ != ',' || !parse_int(&s, -76, 76, &c->scale)) return -1;
    if (*s == ',' && (s++, !parse_int(&s, 32, 256, &bits))) return -1;
    if (*s != '\0' || (bits != 32 && bits != 64 && bits != 128 && bits != 256)) return -1;
    c->width = bits / 8;
    return SP_OK;
  }
  if (strncmp(f, "w:", 2) == 0) {
    s = f + 2;
    c->kind = SP_FK_FBIN;
    return parse_int(&s, 0, 1 << 30, &c->width) && *s == '\0' ? SP_OK : -1;
  }
  if (strncmp(f, "+w:", 3) == 0) {
    s = f + 3;
    c->kind = SP_FK_FLIST;
    return parse_int(&s, 0, 1 << 30, &c->width) && *s == '\0' ? SP_OK : -1;
  }
  if (strncmp(f, "ts", 2) == 0) return parse_timestamp(c, f);
  if (strncmp(f, "+us:", 4) == 0 || strncmp(f, "+ud:", 4) == 0) {
    c->kind = f[2] == 's' ? SP_FK_USPARSE : SP_FK_UDENSE;
    return parse_union(c, f + 4, n_children);
  }
  return -1;
}

/* ---- Metadata ------------------------------------------------------------------------------------------- */

static int32_t read_i32(const char *p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* Renders the Arrow metadata blob as a JSON object and reports the extension name and its metadata. */
static int metadata_to_json(sp_fcol *c, const char *md, char *ext, size_t ext_n, char *ext_md, size_t ext_md_n) {
  sp_buf b = {0};
  int rc = sp_buf_append(&b, "{", 1);
  int32_t n = md ? read_i32(md) : 0;
  const char *p = md ? md + 4 : NULL;
  for (int32_t i = 0; rc == SP_OK && i < n && i < 4096; i++) {
    int32_t kl = read_i32(p), vl;
    if (kl < 0 || kl > (1 << 24)) break;
    const char *k = p + 4;
    vl = read_i32(k + kl);
    if (vl < 0 || vl > (1 << 24)) break;
    const char *v = k + kl + 4;
    p = v + vl;
    if (kl == 20 && memcmp(k, "ARROW:extension:name", 20) == 0) snprintf(ext, ext_n, "%.*s", (int)vl, v);
    if (kl == 24 && memcmp(k, "ARROW:extension:metadata", 24) == 0) snprintf(ext_md, ext_md_n, "%.*s", (int)vl, v);
    if (i > 0) rc = sp_buf_append(&b, ",", 1);
    if (rc == SP_OK) rc = sp__json_string(&b, k, (size_t)kl);
    if (rc == SP_OK) rc = sp_buf_append(&b, ":", 1);
    if (rc == SP_OK) rc = sp__json_string(&b, v, (size_t)vl);
  }
  if (rc == SP_OK) rc = sp_buf_append(&b, "}", 1);
  if (rc == SP_OK && sp_buf_cstr(&b) == NULL) rc = SP_ENOMEM;
  if (rc != SP_OK) {
    sp_buf_free(&b);
    return SP_ENOMEM;
  }
  c->metadata_json = b.data;
  return SP_OK;
}

/* ---- Build / free --------------------------------------------------------------------------------------- */

static int set_names(sp_fcol *c, const char *name) {
  c->name = strdup(name ? name : "");
  sp_buf k = {0};
  int rc = c->name ? sp__json_string(&k, c->name, strlen(c->name)) : SP_ENOMEM;
  if (rc == SP_OK) rc = sp_buf_append(&k, ":", 1);
  size_t len = k.len, pad = (len + 15) / 16 * 16;
  char *z = rc == SP_OK ? sp_buf_reserve(&k, pad - len + 1) : NULL;
  if (z == NULL) {
    sp_buf_free(&k);
    return SP_ENOMEM;
  }
  memset(z, 0, pad - len + 1);
  c->json_key = k.data;
  c->json_key_len = len;
  c->json_key_pad = pad;
  return SP_OK;
}

static bool is_index_kind(sp_fk k) { return k >= SP_FK_I8 && k <= SP_FK_U64; }

static int expected_children(const sp_fcol *c) {
  switch (c->kind) {
  case SP_FK_LIST: case SP_FK_LLIST: case SP_FK_LISTV: case SP_FK_LLISTV: case SP_FK_FLIST: case SP_FK_MAP:
    return 1;
  case SP_FK_STRUCT: case SP_FK_USPARSE: case SP_FK_UDENSE: return -1; /* any */
  default: return 0;
  }
}

static int build_children(sp_fcol *c, const struct ArrowSchema *s, int depth, sp_error *err) {
  int want = expected_children(c);
  if (want >= 0 && s->n_children != want)
    return sp_fail(err, SP_EINVAL, "column \"%s\" has %lld child fields, expected %d", c->name,
                   (long long)s->n_children, want);
  if (s->n_children == 0) return SP_OK;
  if (s->children == NULL) return sp_fail(err, SP_EINVAL, "column \"%s\" has no child fields", c->name);
  c->children = calloc((size_t)s->n_children, sizeof *c->children);
  if (c->children == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  c->n_children = (int)s->n_children;
  for (int k = 0; k < c->n_children; k++) {
    if (s->children[k] == NULL) return sp_fail(err, SP_EINVAL, "column \"%s\" has a missing child field", c->name);
    SP_TRY(sp__fcol_build(&c->children[k], s->children[k], depth + 1, err));
  }
  if (c->kind == SP_FK_MAP && (c->children[0].kind != SP_FK_STRUCT || c->children[0].n_children != 2))
    return sp_fail(err, SP_EINVAL, "map column \"%s\" does not hold key/value entries", c->name);
  return SP_OK;
}

static void apply_extension(sp_fcol *c, const char *ext, const char *ext_md) {
  if (c->kind != SP_FK_FBIN || c->width != 16) return;
  if (strcmp(ext, "arrow.uuid") == 0) c->kind = SP_FK_UUID;
  else if (strcmp(ext, "arrow.opaque") == 0 && strstr(ext_md, "\"uhugeint\"") != NULL) c->kind = SP_FK_U128;
}

int sp__fcol_build(sp_fcol *c, const struct ArrowSchema *s, int depth, sp_error *err) {
  if (depth > MAX_DEPTH) return sp_fail(err, SP_ENOTSUP, "result type nests deeper than %d levels", MAX_DEPTH);
  if (s->format == NULL || s->n_children < 0 || s->n_children > 100000)
    return sp_fail(err, SP_EINVAL, "malformed Arrow schema for column \"%s\"", s->name ? s->name : "");
  if (set_names(c, s->name) != SP_OK) return sp_fail(err, SP_ENOMEM, "out of memory");
  c->nullable = (s->flags & ARROW_FLAG_NULLABLE) != 0;
  c->dict_ordered = (s->flags & ARROW_FLAG_DICTIONARY_ORDERED) != 0;
  c->keys_sorted = (s->flags & ARROW_FLAG_MAP_KEYS_SORTED) != 0;
  char ext[64] = "", ext_md[256] = "";
  if (metadata_to_json(c, s->metadata, ext, sizeof ext, ext_md, sizeof ext_md) != SP_OK)
    return sp_fail(err, SP_ENOMEM, "out of memory");
  int rc = parse_format(c, s->format, (int)s->n_children);
  if (rc == SP_ENOMEM) return sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc != SP_OK)
    return sp_fail(err, SP_ENOTSUP, "column \"%s\" has Arrow type \"%s\", which results cannot be written in yet",
                   c->name, s->format);
  apply_extension(c, ext, ext_md);
  if (s->dictionary != NULL) {
    if (!is_index_kind(c->kind))
      return sp_fail(err, SP_EINVAL, "dictionary column \"%s\" has a non-integer index type", c->name);
    c->dict = calloc(1, sizeof *c->dict);
    if (c->dict == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
    SP_TRY(sp__fcol_build(c->dict, s->dictionary, depth + 1, err));
  }
  return build_children(c, s, depth, err);
}

void sp__fcol_free(sp_fcol *c) {
  if (c == NULL) return;
  for (int k = 0; k < c->n_children; k++) sp__fcol_free(&c->children[k]);
  free(c->children);
  if (c->dict) {
    sp__fcol_free(c->dict);
    free(c->dict);
  }
  free(c->union_ids);
  free(c->tz_name);
  free(c->name);
  free(c->json_key);
  free(c->metadata_json);
  memset(c, 0, sizeof *c);
}

/* ---- Batch checks --------------------------------------------------------------------------------------- */

static int n_buffers_needed(const sp_fcol *c) {
  if (c->dict) return 2;
  switch (c->kind) {
  case SP_FK_NULL: return 0;
  case SP_FK_FLIST: case SP_FK_STRUCT: case SP_FK_USPARSE: return 1;
  case SP_FK_UTF8: case SP_FK_LUTF8: case SP_FK_BIN: case SP_FK_LBIN: return 3;
  case SP_FK_UTF8V: case SP_FK_BINV: return 3; /* validity, views, ..., buffer sizes */
  case SP_FK_LISTV: case SP_FK_LLISTV: return 3;  /* validity, offsets, sizes */
  default: return 2;
  }
}

/* List views: every (offset, size) pair must stay inside the child. */
static int check_views(const sp_fcol *c, const struct ArrowArray *a, const struct ArrowArray *child, sp_error *err) {
  for (int64_t j = a->offset; j < a->offset + a->length; j++) {
    int64_t o = c->kind == SP_FK_LLISTV ? ((const int64_t *)a->buffers[1])[j] : ((const int32_t *)a->buffers[1])[j];
    int64_t n = c->kind == SP_FK_LLISTV ? ((const int64_t *)a->buffers[2])[j] : ((const int32_t *)a->buffers[2])[j];
    if (o < 0 || n < 0 || o > child->length || n > child->length - o)
      return sp_fail(err, SP_EINVAL, "column \"%s\" has list views outside its child array", c->name);
  }
  return SP_OK;
}

static int check_offsets(const sp_fcol *c, const struct ArrowArray *a, const struct ArrowArray *child, sp_error *err) {
  if (c->kind == SP_FK_LISTV || c->kind == SP_FK_LLISTV) return check_views(c, a, child, err);
  int64_t end = a->offset + a->length;
  int64_t first = c->kind == SP_FK_LLIST ? ((const int64_t *)a->buffers[1])[a->offset]
                                         : ((const int32_t *)a->buffers[1])[a->offset];
  int64_t last = c->kind == SP_FK_LLIST ? ((const int64_t *)a->buffers[1])[end]
                                        : ((const int32_t *)a->buffers[1])[end];
  if (first < 0 || last < first || last > child->length)
    return sp_fail(err, SP_EINVAL, "column \"%s\" has list offsets outside its child array", c->name);
  return SP_OK;
}

static int check_children(const sp_fcol *c, const struct ArrowArray *a, int depth, sp_error *err) {
  if (a->n_children < c->n_children || (c->n_children > 0 && a->children == NULL))
    return sp_fail(err, SP_EINVAL, "column \"%s\" has %lld child arrays, expected %d", c->name,
                   (long long)a->n_children, c->n_children);
  int64_t rows = a->offset + a->length;
  for (int k = 0; k < c->n_children; k++) {
    const struct ArrowArray *ch = a->children[k];
    if (ch == NULL) return sp_fail(err, SP_EINVAL, "column \"%s\" has a missing child array", c->name);
    SP_TRY(sp__fcol_check(&c->children[k], ch, depth + 1, err));
    bool short_child = false;
    if (c->kind == SP_FK_STRUCT || c->kind == SP_FK_USPARSE) short_child = ch->length < rows;
    else if (c->kind == SP_FK_FLIST) short_child = ch->length < rows * (int64_t)c->width;
    if (short_child) return sp_fail(err, SP_EINVAL, "column \"%s\" has a child array that is too short", c->name);
  }
  if ((c->kind == SP_FK_LIST || c->kind == SP_FK_LLIST || c->kind == SP_FK_LISTV || c->kind == SP_FK_LLISTV ||
       c->kind == SP_FK_MAP) && a->length > 0)
    return check_offsets(c, a, a->children[0], err);
  return SP_OK;
}

int sp__fcol_check(const sp_fcol *c, const struct ArrowArray *a, int depth, sp_error *err) {
  if (a == NULL || a->length < 0 || a->offset < 0 || depth > MAX_DEPTH)
    return sp_fail(err, SP_EINVAL, "malformed Arrow array for column \"%s\"", c->name);
  int need = n_buffers_needed(c);
  if (a->n_buffers < need || (need > 0 && a->buffers == NULL))
    return sp_fail(err, SP_EINVAL, "column \"%s\" has %lld buffers, expected %d", c->name, (long long)a->n_buffers,
                   need);
  if (a->length > 0) {
    /* Buffer 0 is the validity bitmap (may be absent) except for unions, where it holds the type ids. */
    int from = (c->kind == SP_FK_USPARSE || c->kind == SP_FK_UDENSE) && !c->dict ? 0 : 1;
    int upto = (c->kind == SP_FK_UTF8V || c->kind == SP_FK_BINV) && !c->dict ? 2 : need;
    for (int k = from; k < upto; k++)
      if (a->buffers[k] == NULL) return sp_fail(err, SP_EINVAL, "column \"%s\" is missing buffer %d", c->name, k);
  }
  if (c->dict) {
    if (a->dictionary == NULL) return sp_fail(err, SP_EINVAL, "dictionary column \"%s\" has no dictionary", c->name);
    return sp__fcol_check(c->dict, a->dictionary, depth + 1, err);
  }
  return check_children(c, a, depth, err);
}

/* ---- arrow-rs serde names (sql.v1+json schema) ------------------------------------------------------------ */

static const char *const k_unit_names[] = {"Second", "Millisecond", "Microsecond", "Nanosecond"};

static const char *simple_type_name(sp_fk k) {
  switch (k) {
  case SP_FK_NULL: return "Null";
  case SP_FK_BOOL: return "Boolean";
  case SP_FK_I8: return "Int8";
  case SP_FK_I16: return "Int16";
  case SP_FK_I32: return "Int32";
  case SP_FK_I64: return "Int64";
  case SP_FK_U8: return "UInt8";
  case SP_FK_U16: return "UInt16";
  case SP_FK_U32: return "UInt32";
  case SP_FK_U64: return "UInt64";
  case SP_FK_F16: return "Float16";
  case SP_FK_F32: return "Float32";
  case SP_FK_F64: return "Float64";
  case SP_FK_UTF8: return "Utf8";
  case SP_FK_LUTF8: return "LargeUtf8";
  case SP_FK_UTF8V: return "Utf8View";
  case SP_FK_BIN: return "Binary";
  case SP_FK_LBIN: return "LargeBinary";
  case SP_FK_BINV: return "BinaryView";
  case SP_FK_DATE32: return "Date32";
  case SP_FK_DATE64: return "Date64";
  default: return NULL;
  }
}

static int type_json(const sp_fcol *c, bool as_dict_value, sp_buf *out);

static int children_json(const sp_fcol *c, sp_buf *out) {
  for (int k = 0; k < c->n_children; k++) {
    if (k > 0 && sp_buf_append(out, ",", 1) != SP_OK) return SP_ENOMEM;
    SP_TRY(sp__fcol_field_json(&c->children[k], out));
  }
  return SP_OK;
}

static int nested_type_json(const sp_fcol *c, sp_buf *out) {
  char tmp[96];
  switch (c->kind) {
  case SP_FK_LIST:
  case SP_FK_LLIST:
  case SP_FK_LISTV:
  case SP_FK_LLISTV:
    SP_TRY(sp_buf_append_str(out, c->kind == SP_FK_LIST    ? "{\"List\":"
                                  : c->kind == SP_FK_LLIST ? "{\"LargeList\":"
                                  : c->kind == SP_FK_LISTV ? "{\"ListView\":"
                                                           : "{\"LargeListView\":"));
    SP_TRY(children_json(c, out));
    return sp_buf_append(out, "}", 1);
  case SP_FK_FLIST:
    SP_TRY(sp_buf_append_str(out, "{\"FixedSizeList\":["));
    SP_TRY(children_json(c, out));
    snprintf(tmp, sizeof tmp, ",%d]}", c->width);
    return sp_buf_append_str(out, tmp);
  case SP_FK_STRUCT:
    SP_TRY(sp_buf_append_str(out, "{\"Struct\":["));
    SP_TRY(children_json(c, out));
    return sp_buf_append_str(out, "]}");
  case SP_FK_MAP:
    SP_TRY(sp_buf_append_str(out, "{\"Map\":["));
    SP_TRY(children_json(c, out));
    return sp_buf_append_str(out, c->keys_sorted ? ",true]}" : ",false]}");
  default: /* unions */
    SP_TRY(sp_buf_append_str(out, "{\"Union\":[["));
    for (int k = 0; k < c->n_children; k++) {
      snprintf(tmp, sizeof tmp, "%s[%d,", k ? "," : "", c->union_ids[k]);
      SP_TRY(sp_buf_append_str(out, tmp));
      SP_TRY(sp__fcol_field_json(&c->children[k], out));
      SP_TRY(sp_buf_append(out, "]", 1));
    }
    return sp_buf_append_str(out, c->kind == SP_FK_USPARSE ? "],\"Sparse\"]}" : "],\"Dense\"]}");
  }
}

static int type_json(const sp_fcol *c, bool as_dict_value, sp_buf *out) {
  char tmp[160];
  if (c->dict && !as_dict_value) {
    snprintf(tmp, sizeof tmp, "{\"Dictionary\":[\"%s\",", simple_type_name(c->kind));
    SP_TRY(sp_buf_append_str(out, tmp));
    SP_TRY(type_json(c->dict, false, out));
    return sp_buf_append_str(out, "]}");
  }
  const char *simple = simple_type_name(c->kind);
  if (simple) {
    snprintf(tmp, sizeof tmp, "\"%s\"", simple);
    return sp_buf_append_str(out, tmp);
  }
  switch (c->kind) {
  case SP_FK_FBIN: case SP_FK_UUID: case SP_FK_U128:
    snprintf(tmp, sizeof tmp, "{\"FixedSizeBinary\":%d}", c->width);
    break;
  case SP_FK_DEC:
    snprintf(tmp, sizeof tmp, "{\"Decimal%d\":[%d,%d]}", c->width * 8, c->precision, c->scale);
    break;
  case SP_FK_TIME32: case SP_FK_TIME64: case SP_FK_DUR:
    snprintf(tmp, sizeof tmp, "{\"%s\":\"%s\"}", c->kind == SP_FK_TIME32 ? "Time32" : c->kind == SP_FK_TIME64 ? "Time64" : "Duration",
             k_unit_names[c->unit]);
    break;
  case SP_FK_IV_MONTHS: case SP_FK_IV_DAYTIME: case SP_FK_IV_MDN:
    snprintf(tmp, sizeof tmp, "{\"Interval\":\"%s\"}",
             c->kind == SP_FK_IV_MONTHS ? "YearMonth" : c->kind == SP_FK_IV_DAYTIME ? "DayTime" : "MonthDayNano");
    break;
  case SP_FK_TS:
    snprintf(tmp, sizeof tmp, "{\"Timestamp\":[\"%s\",", k_unit_names[c->unit]);
    SP_TRY(sp_buf_append_str(out, tmp));
    if (c->tz_name[0] == '\0') SP_TRY(sp_buf_append_str(out, "null"));
    else SP_TRY(sp__json_string(out, c->tz_name, strlen(c->tz_name)));
    return sp_buf_append_str(out, "]}");
  default:
    return nested_type_json(c, out);
  }
  return sp_buf_append_str(out, tmp);
}

int sp__fcol_field_json(const sp_fcol *c, sp_buf *out) {
  SP_TRY(sp_buf_append_str(out, "{\"name\":"));
  SP_TRY(sp_buf_append(out, c->json_key, c->json_key_len - 1));
  SP_TRY(sp_buf_append_str(out, ",\"data_type\":"));
  SP_TRY(type_json(c, false, out));
  SP_TRY(sp_buf_append_str(out, c->nullable ? ",\"nullable\":true" : ",\"nullable\":false"));
  SP_TRY(sp_buf_append_str(out, c->dict_ordered ? ",\"dict_id\":0,\"dict_is_ordered\":true"
                                                : ",\"dict_id\":0,\"dict_is_ordered\":false"));
  SP_TRY(sp_buf_append_str(out, ",\"metadata\":"));
  SP_TRY(sp_buf_append_str(out, c->metadata_json));
  return sp_buf_append(out, "}", 1);
}
