/* SPDX-License-Identifier: Apache-2.0
 *
 * An incremental RFC 4180 reader: bytes arrive from the network in arbitrary pieces, records leave as soon as
 * their line ends, so a large result is never held whole. An empty unquoted field is NULL (how DuckDB and
 * arrow-csv write NULL); "" is the empty string.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

enum { CSV_FIELD_START = 0, CSV_UNQUOTED, CSV_QUOTED, CSV_QUOTE_IN_QUOTED };

void sp_cli_csv_init(sp_cli_csv *p, sp_cli_csv_record_fn on_record, void *ctx) {
  memset(p, 0, sizeof *p);
  p->on_record = on_record;
  p->ctx = ctx;
}

void sp_cli_csv_reset(sp_cli_csv *p) {
  sp_cli_buf_reset(&p->field);
  sp_cli_buf_reset(&p->record);
  free(p->offsets);
  free(p->views);
  sp_cli_csv_init(p, p->on_record, p->ctx);
}

static int end_field(sp_cli_csv *p, sp_error *err) {
  if (p->nfields == p->cap_fields) {
    size_t cap = p->cap_fields ? p->cap_fields * 2 : 16;
    size_t *offsets = realloc(p->offsets, cap * sizeof *offsets);
    if (offsets == NULL) return sp_fail(err, SP_ENOMEM, "out of memory reading CSV");
    p->offsets = offsets;
    const char **views = realloc(p->views, cap * sizeof *views);
    if (views == NULL) return sp_fail(err, SP_ENOMEM, "out of memory reading CSV");
    p->views = views;
    p->cap_fields = cap;
  }
  bool is_null = p->field.len == 0 && !p->quoted;
  p->offsets[p->nfields++] = is_null ? SIZE_MAX : p->record.len;
  if (!is_null) {
    SP_TRY(sp_cli_buf_append(&p->record, p->field.data, p->field.len, err));
    SP_TRY(sp_cli_buf_putc(&p->record, '\0', err));
  }
  p->field.len = 0;
  p->quoted = false;
  p->state = CSV_FIELD_START;
  return SP_OK;
}

static int end_record(sp_cli_csv *p, sp_error *err) {
  SP_TRY(end_field(p, err));
  int rc = SP_OK;
  bool blank = p->nfields == 1 && p->offsets[0] == SIZE_MAX;
  if (!blank) {
    for (size_t i = 0; i < p->nfields; i++) {
      p->views[i] = p->offsets[i] == SIZE_MAX ? NULL : p->record.data + p->offsets[i];
    }
    rc = p->on_record(p->ctx, p->views, p->nfields, err);
  }
  p->nfields = 0;
  p->record.len = 0;
  return rc;
}

/* One byte outside quotes: a separator, a line end, or data. '\r' is dropped (CRLF line ends). */
static int feed_unquoted(sp_cli_csv *p, char c, sp_error *err) {
  if (c == ',') return end_field(p, err);
  if (c == '\n') return end_record(p, err);
  if (c == '\r') return SP_OK;
  if (c == '"' && p->state == CSV_FIELD_START) {
    p->state = CSV_QUOTED;
    p->quoted = true;
    return SP_OK;
  }
  p->state = CSV_UNQUOTED;
  return sp_cli_buf_putc(&p->field, c, err);
}

static int feed_byte(sp_cli_csv *p, char c, sp_error *err) {
  switch (p->state) {
  case CSV_QUOTED:
    if (c == '"') {
      p->state = CSV_QUOTE_IN_QUOTED;
      return SP_OK;
    }
    return sp_cli_buf_putc(&p->field, c, err);
  case CSV_QUOTE_IN_QUOTED:
    if (c == '"') { /* "" inside quotes is one quote */
      p->state = CSV_QUOTED;
      return sp_cli_buf_putc(&p->field, c, err);
    }
    p->state = CSV_UNQUOTED; /* the quoted part ended; a lenient reader keeps what follows */
    return feed_unquoted(p, c, err);
  default:
    return feed_unquoted(p, c, err);
  }
}

int sp_cli_csv_feed(sp_cli_csv *p, const char *data, size_t len, sp_error *err) {
  for (size_t i = 0; i < len; i++) SP_TRY(feed_byte(p, data[i], err));
  return SP_OK;
}

int sp_cli_csv_finish(sp_cli_csv *p, sp_error *err) {
  if (p->state == CSV_QUOTED) return sp_fail(err, SP_EINVAL, "CSV ends inside a quoted field");
  if (p->state == CSV_FIELD_START && p->nfields == 0 && !p->quoted) return SP_OK; /* ended with a newline */
  return end_record(p, err);
}

int sp_cli_csv_to_table(void *ctx, const char *const *fields, size_t nfields, sp_error *err) {
  sp_cli_table *t = ctx;
  if (t->ncols == 0) {
    const char *const *names = fields;
    return sp_cli_table_set_columns(t, names, nfields, err);
  }
  if (nfields != t->ncols) {
    return sp_fail(err, SP_EINVAL, "CSV row %zu has %zu fields, the header has %zu", t->total_rows + 1, nfields,
                   t->ncols);
  }
  return sp_cli_table_add_row(t, fields, err);
}
