/* SPDX-License-Identifier: Apache-2.0
 *
 * Result tables and how they are drawn. Widths are measured in terminal columns, not bytes: one per code point,
 * two for East Asian wide characters, none for combining marks (a small table of our own, so the output does
 * not depend on the locale the CLI happens to run under).
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* ---- the table -------------------------------------------------------------------------------------------- */

static char *dup_or_null(const char *s, bool *oom) {
  if (s == NULL) return NULL;
  char *d = strdup(s);
  if (d == NULL) *oom = true;
  return d;
}

int sp_cli_table_set_columns(sp_cli_table *t, const char *const *names, size_t ncols, sp_error *err) {
  if (t->ncols != 0) return sp_fail(err, SP_EINVAL, "table already has columns");
  char **cols = calloc(ncols ? ncols : 1, sizeof *cols);
  if (cols == NULL) return sp_fail(err, SP_ENOMEM, "out of memory for %zu column names", ncols);
  bool oom = false;
  for (size_t i = 0; i < ncols; i++) cols[i] = dup_or_null(names[i] ? names[i] : "", &oom);
  if (oom) {
    for (size_t i = 0; i < ncols; i++) free(cols[i]);
    free(cols);
    return sp_fail(err, SP_ENOMEM, "out of memory for column names");
  }
  t->cols = cols;
  t->ncols = ncols;
  return SP_OK;
}

static int table_grow(sp_cli_table *t, sp_error *err) {
  size_t cap = t->cap_rows ? t->cap_rows * 2 : 64;
  if (t->keep && cap > t->keep) cap = t->keep;
  char **cells = realloc(t->cells, cap * (t->ncols ? t->ncols : 1) * sizeof *cells);
  if (cells == NULL) return sp_fail(err, SP_ENOMEM, "out of memory for %zu result rows", cap);
  t->cells = cells;
  t->cap_rows = cap;
  return SP_OK;
}

int sp_cli_table_add_row(sp_cli_table *t, const char *const *cells, sp_error *err) {
  t->total_rows++;
  if (t->keep && t->nrows >= t->keep) return SP_OK;
  if (t->nrows == t->cap_rows) SP_TRY(table_grow(t, err));
  char **row = t->cells + t->nrows * t->ncols;
  bool oom = false;
  for (size_t i = 0; i < t->ncols; i++) row[i] = dup_or_null(cells[i], &oom);
  if (oom) {
    for (size_t i = 0; i < t->ncols; i++) free(row[i]);
    return sp_fail(err, SP_ENOMEM, "out of memory for a result row");
  }
  t->nrows++;
  return SP_OK;
}

void sp_cli_table_reset(sp_cli_table *t) {
  for (size_t i = 0; i < t->nrows * t->ncols; i++) free(t->cells[i]);
  for (size_t i = 0; i < t->ncols; i++) free(t->cols[i]);
  free(t->cells);
  free(t->cols);
  size_t keep = t->keep;
  memset(t, 0, sizeof *t);
  t->keep = keep;
}

/* ---- widths --------------------------------------------------------------------------------------------- */

/* Decodes one UTF-8 sequence at s[0..len); returns its length (>= 1) and sets *cp, or U+FFFD for a bad byte. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp) {
  unsigned char c = s[0];
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || n > len) {
    *cp = 0xFFFD;
    return 1;
  }
  uint32_t v = n == 1 ? c : n == 2 ? (c & 0x1Fu) : n == 3 ? (c & 0x0Fu) : (c & 0x07u);
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80) {
      *cp = 0xFFFD;
      return 1;
    }
    v = (v << 6) | (s[i] & 0x3Fu);
  }
  static const uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < min_for_len[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
    *cp = 0xFFFD; /* overlong forms and surrogates are not characters */
    return 1;
  }
  *cp = v;
  return n;
}

typedef struct cp_range {
  uint32_t lo, hi;
} cp_range;

static bool in_ranges(uint32_t cp, const cp_range *r, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (cp >= r[i].lo && cp <= r[i].hi) return true;
  }
  return false;
}

static int codepoint_width(uint32_t cp) {
  static const cp_range zero[] = {
      {0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x0610, 0x061A}, {0x064B, 0x065F},
      {0x0E31, 0x0E31}, {0x0E34, 0x0E3A}, {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF}, {0x200B, 0x200F},
      {0x20D0, 0x20FF}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F}, {0xFEFF, 0xFEFF}, {0xE0100, 0xE01EF},
  };
  static const cp_range wide[] = {
      {0x1100, 0x115F},   {0x2E80, 0x303E},   {0x3041, 0x33FF},   {0x3400, 0x4DBF},   {0x4E00, 0x9FFF},
      {0xA000, 0xA4CF},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},   {0xFE30, 0xFE4F},   {0xFF00, 0xFF60},
      {0xFFE0, 0xFFE6},   {0x1F300, 0x1F64F}, {0x1F900, 0x1F9FF}, {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD},
  };
  if (in_ranges(cp, zero, sizeof zero / sizeof zero[0])) return 0;
  if (in_ranges(cp, wide, sizeof wide / sizeof wide[0])) return 2;
  return 1;
}

size_t sp_cli_text_width(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t w = 0;
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    i += utf8_decode(p + i, len - i, &cp);
    w += (size_t)codepoint_width(cp);
  }
  return w;
}

/* ---- cells as drawn ------------------------------------------------------------------------------------- */

/* Writes s with control characters escaped into b; invalid UTF-8 becomes U+FFFD so terminals stay sane. */
static void escape_cell(sp_cli_buf *b, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  size_t len = strlen(s);
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    size_t n = utf8_decode(p + i, len - i, &cp);
    char esc[8];
    if (cp == '\n' || cp == '\t' || cp == '\r') {
      snprintf(esc, sizeof esc, "\\%c", cp == '\n' ? 'n' : cp == '\t' ? 't' : 'r');
      sp_cli_buf_append(b, esc, 2, NULL);
    } else if (cp < 0x20 || cp == 0x7F) {
      snprintf(esc, sizeof esc, "\\x%02X", (unsigned)cp);
      sp_cli_buf_append(b, esc, 4, NULL);
    } else if (cp == 0xFFFD && n == 1) {
      sp_cli_buf_append(b, "\xEF\xBF\xBD", 3, NULL);
    } else {
      sp_cli_buf_append(b, s + i, n, NULL);
    }
    i += n;
  }
  if (b->data == NULL) sp_cli_buf_append(b, "", 0, NULL);
}

/* Byte length of the longest prefix of s that fits in `cols` columns. */
static size_t prefix_fitting(const char *s, size_t len, size_t cols) {
  const unsigned char *p = (const unsigned char *)s;
  size_t w = 0, i = 0;
  while (i < len) {
    uint32_t cp;
    size_t n = utf8_decode(p + i, len - i, &cp);
    size_t cw = (size_t)codepoint_width(cp);
    if (w + cw > cols) break;
    w += cw;
    i += n;
  }
  return i;
}

/* The drawn form of each cell: escaped, then cut to its column width. */
typedef struct drawn {
  char **text;   /* (nrows + 1) * ncols, row 0 is the header */
  size_t *width; /* display width of each text */
  size_t *col_w; /* width of each column */
} drawn;

static void drawn_free(drawn *d, size_t n) {
  if (d->text) {
    for (size_t i = 0; i < n; i++) free(d->text[i]);
  }
  free(d->text);
  free(d->width);
  free(d->col_w);
}

static const char *cell_at(const sp_cli_table *t, size_t row, size_t col) {
  if (row == 0) return t->cols[col];
  const char *s = t->cells[(row - 1) * t->ncols + col];
  return s ? s : "";
}

/* Shrinks the widest columns, one column at a time, until the table fits max_width (never below 5). */
static void fit_columns(size_t *col_w, size_t ncols, size_t max_width) {
  size_t total = 1;
  for (size_t c = 0; c < ncols; c++) total += col_w[c] + 3;
  while (total > max_width) {
    size_t widest = 0;
    for (size_t c = 1; c < ncols; c++) {
      if (col_w[c] > col_w[widest]) widest = c;
    }
    if (col_w[widest] <= 5) break;
    col_w[widest]--;
    total--;
  }
}

static char *cut_to(const char *s, size_t cols, size_t *width) {
  size_t len = strlen(s);
  size_t w = sp_cli_text_width(s, len);
  if (w <= cols) {
    *width = w;
    return strdup(s);
  }
  size_t keep = cols ? prefix_fitting(s, len, cols - 1) : 0;
  char *out = malloc(keep + 4);
  if (out == NULL) return NULL;
  memcpy(out, s, keep);
  memcpy(out + keep, "\xE2\x80\xA6", 4); /* "…" and the NUL */
  *width = sp_cli_text_width(out, keep + 3);
  return out;
}

static bool drawn_build(drawn *d, const sp_cli_table *t, size_t rows, const sp_cli_render_opts *o) {
  size_t n = (rows + 1) * t->ncols;
  d->text = calloc(n ? n : 1, sizeof *d->text);
  d->width = calloc(n ? n : 1, sizeof *d->width);
  d->col_w = calloc(t->ncols ? t->ncols : 1, sizeof *d->col_w);
  if (!d->text || !d->width || !d->col_w) return false;
  for (size_t i = 0; i < n; i++) {
    sp_cli_buf b = {0};
    escape_cell(&b, cell_at(t, i / t->ncols, i % t->ncols));
    d->text[i] = b.data;
    if (d->text[i] == NULL) return false;
    d->width[i] = sp_cli_text_width(b.data, b.len);
    size_t *cw = &d->col_w[i % t->ncols];
    size_t w = o->max_cell_width && d->width[i] > o->max_cell_width ? o->max_cell_width : d->width[i];
    if (w > *cw) *cw = w;
  }
  if (o->max_width) fit_columns(d->col_w, t->ncols, o->max_width);
  for (size_t i = 0; i < n; i++) {
    size_t cw = d->col_w[i % t->ncols];
    if (d->width[i] <= cw) continue;
    char *cut = cut_to(d->text[i], cw, &d->width[i]);
    if (cut == NULL) return false;
    free(d->text[i]);
    d->text[i] = cut;
  }
  return true;
}

/* ---- drawing -------------------------------------------------------------------------------------------- */

static void print_rule(FILE *f, const size_t *col_w, size_t ncols) {
  fputc('+', f);
  for (size_t c = 0; c < ncols; c++) {
    for (size_t i = 0; i < col_w[c] + 2; i++) fputc('-', f);
    fputc('+', f);
  }
  fputc('\n', f);
}

static void print_padded(FILE *f, const char *s, size_t width, size_t col_w) {
  fputs(s, f);
  for (size_t i = width; i < col_w; i++) fputc(' ', f);
}

static void print_row(FILE *f, const drawn *d, size_t row, size_t ncols) {
  fputc('|', f);
  for (size_t c = 0; c < ncols; c++) {
    size_t i = row * ncols + c;
    fputc(' ', f);
    print_padded(f, d->text[i], d->width[i], d->col_w[c]);
    fputs(" |", f);
  }
  fputc('\n', f);
}

void sp_cli_table_print_box(FILE *f, const sp_cli_table *t, const sp_cli_render_opts *o) {
  if (t->ncols == 0) return;
  size_t rows = o->max_rows && t->nrows > o->max_rows ? o->max_rows : t->nrows;
  drawn d = {0};
  if (!drawn_build(&d, t, rows, o)) {
    drawn_free(&d, (rows + 1) * t->ncols);
    fputs("out of memory drawing the result table\n", f);
    return;
  }
  print_rule(f, d.col_w, t->ncols);
  print_row(f, &d, 0, t->ncols);
  print_rule(f, d.col_w, t->ncols);
  for (size_t r = 1; r <= rows; r++) print_row(f, &d, r, t->ncols);
  if (rows > 0) print_rule(f, d.col_w, t->ncols);
  if (t->total_rows > rows) fprintf(f, "... %zu more rows\n", t->total_rows - rows);
  drawn_free(&d, (rows + 1) * t->ncols);
}

static void print_upper(FILE *f, const char *s) {
  for (; *s; s++) fputc(*s >= 'a' && *s <= 'z' ? *s - 'a' + 'A' : *s, f);
}

void sp_cli_table_print_plain(FILE *f, const sp_cli_table *t) {
  if (t->ncols == 0) return;
  sp_cli_render_opts o = {0};
  drawn d = {0};
  if (!drawn_build(&d, t, t->nrows, &o)) {
    drawn_free(&d, (t->nrows + 1) * t->ncols);
    fputs("out of memory drawing the table\n", f);
    return;
  }
  for (size_t r = 0; r <= t->nrows; r++) {
    for (size_t c = 0; c < t->ncols; c++) {
      size_t i = r * t->ncols + c;
      bool last = c + 1 == t->ncols;
      if (r == 0) {
        print_upper(f, d.text[i]);
      } else {
        fputs(d.text[i], f);
      }
      if (!last) {
        for (size_t k = d.width[i]; k < d.col_w[c] + 2; k++) fputc(' ', f);
      }
    }
    fputc('\n', f);
  }
  drawn_free(&d, (t->nrows + 1) * t->ncols);
}
